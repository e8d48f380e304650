"""The scripts in tests: runs, their TensorBoard scalars (one implementation for tests and benchmarks,
``cleanrl_lago.utils.launch``), and a script with its LaGO lines removed."""

import runpy
import signal
import sys

from cleanrl_lago.utils.launch import REPO, only_run, run_script, run_torchrun, scalars, script_env

__all__ = [
    "REPO",
    "only_run",
    "run_in_process",
    "run_script",
    "run_torchrun",
    "scalars",
    "script_env",
    "strip_lago",
]


def run_in_process(script, args, cwd, monkeypatch):
    """Run ``script`` as ``__main__`` in this process (in ``cwd``, with ``args``) and return its globals;
    the signal handlers and excepthook the script installs are put back afterwards."""
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", [str(script), *args])
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    old_handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return runpy.run_path(str(script), run_name="__main__")
    finally:
        for s, handler in old_handlers.items():
            signal.signal(s, handler)


def strip_lago(source: str) -> str:
    """The script with every LaGO line and block (``# LaGO`` ... ``# end LaGO``) removed."""
    kept, skipping = [], False
    for line in source.splitlines():
        marker = line.strip()
        if marker.startswith("# LaGO"):
            skipping = True
        elif marker == "# end LaGO":
            skipping = False
        elif not skipping and not line.rstrip().endswith("# LaGO"):
            kept.append(line)
    return "\n".join(kept) + "\n"
