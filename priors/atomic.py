"""Writing folders atomically: readers see either the old folder, the complete new one, or none."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_folder_atomically(
    target: str | Path, write: Callable[[Path], None], *, replace: bool = True
) -> Path:
    """Fill a temporary sibling folder with ``write(tmp)``, fsync it, then rename it to ``target``.

    If ``target`` exists it is replaced only once the new folder is complete (renamed aside, the new
    folder renamed in, the old one deleted); with ``replace=False`` the existing folder is kept
    instead (a concurrent writer of the same content won). On any error the temporary folder is
    removed and ``target`` is left as it was.
    """
    target = Path(target).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        write(tmp)
        for file in tmp.rglob("*"):
            _fsync(file)
        _fsync(tmp)
        if not target.exists():
            os.replace(tmp, target)
        elif replace:
            old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old)
        else:
            shutil.rmtree(tmp)
        _fsync(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
