"""Writing files and folders atomically: readers see either the old version, the complete new one, or
(for a first write) none; a failure at any step leaves the previous version whole."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

# The process's umask, read once (reading it means setting it, which is not thread-safe): a temporary file
# or folder is created private (0600 / 0700) and given, before it is renamed into place, the mode a plain
# open() or mkdir() would have given it.
_UMASK = os.umask(0)
os.umask(_UMASK)


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
        tmp.chmod(0o777 & ~_UMASK)
        write(tmp)
        for file in tmp.rglob("*"):
            _fsync(file)
        _fsync(tmp)
        if not target.exists():
            os.replace(tmp, target)
        elif replace:
            old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(target, old)
            try:
                os.replace(tmp, target)
            except BaseException:
                os.replace(old, target)  # put the previous version back before giving up
                raise
            shutil.rmtree(old, ignore_errors=True)  # the new folder is in place: a leftover is harmless
        else:
            shutil.rmtree(tmp)
        _fsync(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def write_file_atomically(target: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Write ``target`` through ``write(file)`` into a temporary sibling, fsync it, then rename it over
    ``target``. On any error the temporary file is removed and ``target`` is left as it was."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.tmp-", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
        _fsync(target.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target
