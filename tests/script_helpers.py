"""Running the single-file scripts in tests: a subprocess per run (or a torchrun launch), its
TensorBoard scalars, and the script with its LaGO lines removed."""

import os
import subprocess
import sys
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

REPO = Path(__file__).resolve().parents[1]


def script_env() -> dict[str, str]:
    # One thread: on a shared CPU, torch's thread pool makes small updates up to 100x slower.
    return {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def run_script(script, args, cwd, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(script), *args],
        cwd=cwd,
        env=script_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_torchrun(script, args, cwd, nproc=2, timeout=300) -> subprocess.CompletedProcess:
    """``script`` data-parallel on ``nproc`` CPU processes (gloo), on one machine."""
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    return subprocess.run(
        [*launcher, str(script), *args],
        cwd=cwd,
        env=script_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def only_run(cwd: Path) -> Path:
    (run,) = (cwd / "runs").iterdir()
    return run


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
