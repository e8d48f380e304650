"""Running one training script for a benchmark: wall time, peak memory and its logged scalars."""

import os
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

    Returns (the last value of each logged scalar, peak RSS in MiB, wall seconds). The peak is this
    run's own: the largest resident set of the process or of any process it waited for
    (``wait4``'s ``ru_maxrss``), so runs may come in any order.
    ``launcher`` starts the script some other way, e.g. ``("-m", "torch.distributed.run", ...)``.
    """
    with tempfile.TemporaryDirectory() as cwd, tempfile.TemporaryFile("w+") as stderr:
        start = time.time()
        proc = subprocess.Popen(
            [sys.executable, *launcher, str(script), *args],
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)},
        )
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.time() - start
        if proc.returncode != 0:
            stderr.seek(0)
            raise SystemExit(f"{script.name} {' '.join(args)} failed:\n{stderr.read()[-3000:]}")
        (run_dir,) = (Path(cwd) / "runs").iterdir()
        last = {tag: events[-1][2] for tag, events in scalar_events(run_dir).items()}
    return last, usage.ru_maxrss / 1024, wall
