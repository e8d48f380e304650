"""Running one training script for a benchmark: wall time, peak memory and its logged scalars."""

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

REPO = Path(__file__).resolve().parents[1]


def scalar_events(run_dir: Path) -> dict[str, list[tuple[float, int, float]]]:
    """Every scalar a run logged to TensorBoard: {tag: [(wall_time, step, value), ...]}."""
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.wall_time, e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def run_training(
    script: Path, args: list[str], launcher: tuple[str, ...] = ()
) -> tuple[dict[str, float], float, float]:
    """Run ``script`` with ``args`` in a temporary folder, as ``python [*launcher] script *args``.

    Returns (the last value of each logged scalar, peak RSS in MiB, wall seconds). The peak is
    ``RUSAGE_CHILDREN``'s running maximum over every child so far: run the smaller job first.
    ``launcher`` starts the script some other way, e.g. ``("-m", "torch.distributed.run", ...)``.
    """
    with tempfile.TemporaryDirectory() as cwd:
        start = time.time()
        result = subprocess.run(
            [sys.executable, *launcher, str(script), *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)},
        )
        wall = time.time() - start
        if result.returncode != 0:
            raise SystemExit(f"{script.name} {' '.join(args)} failed:\n{result.stderr[-3000:]}")
        (run_dir,) = (Path(cwd) / "runs").iterdir()
        last = {tag: events[-1][2] for tag, events in scalar_events(run_dir).items()}
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return last, peak_mib, wall
