"""Launching the single-file scripts from Python, for the tests and the benchmarks alike: a subprocess per run
(or a torchrun launch) with its wall time and peak memory, and the TensorBoard scalars it logged. (CleanRL's
``cleanrl_utils/benchmark.py`` launches runs too; here ``benchmark/`` holds the measurements themselves.)"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

REPO = Path(__file__).resolve().parents[2]
TORCHRUN = ("-m", "torch.distributed.run", "--standalone")


def script_env(threads: int | None = 1) -> dict[str, str]:
    """The environment of a run: this checkout first on the path, unbuffered output and (by default)
    one thread: on a shared CPU, torch's thread pool makes small updates up to 100x slower."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)}
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


@dataclass
class Run:
    """A finished run: its exit status, output, wall seconds and peak resident memory in MiB."""

    returncode: int
    stdout: str
    stderr: str
    wall: float
    peak_mib: float


def run_script(
    script: str | Path,
    args: list[str],
    cwd: str | Path,
    *,
    launcher: tuple[str, ...] = (),
    threads: int | None = 1,
    timeout: float = 600,
) -> Run:
    """Run ``python [*launcher] script *args`` in ``cwd``. The peak memory is this run's own: the largest
    resident set of the process or of any process it waited for (``wait4``'s ``ru_maxrss``)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.time()
        proc = subprocess.Popen(
            [sys.executable, *launcher, str(script), *args],
            cwd=cwd,
            stdout=out,
            stderr=err,
            text=True,
            env=script_env(threads),
        )
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.time() > deadline:
                proc.kill()
                proc.wait()
                raise subprocess.TimeoutExpired(proc.args, timeout)
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.time() - start
        out.seek(0)
        err.seek(0)
        return Run(proc.returncode, out.read(), err.read(), wall, usage.ru_maxrss / 1024)


def run_torchrun(script: str | Path, args: list[str], cwd: str | Path, nproc: int = 2, timeout: float = 600) -> Run:
    """``script`` data-parallel on ``nproc`` CPU processes (gloo), on one machine."""
    return run_script(script, args, cwd, launcher=(*TORCHRUN, f"--nproc_per_node={nproc}"), timeout=timeout)


def scalar_events(run_dir: str | Path) -> dict[str, list[tuple[float, int, float]]]:
    """Every scalar a run logged to TensorBoard: {tag: [(wall_time, step, value), ...]}."""
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.wall_time, e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def scalars(run_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar a run logged, as {tag: [(step, value), ...]}."""
    return {tag: [(step, value) for _, step, value in events] for tag, events in scalar_events(run_dir).items()}


def only_run(cwd: str | Path) -> Path:
    """The one run folder under ``cwd/runs``."""
    (run,) = (Path(cwd) / "runs").iterdir()
    return run


def run_training(
    script: str | Path, args: list[str], launcher: tuple[str, ...] = (), threads: int | None = None
) -> tuple[dict[str, float], float, float]:
    """Run ``script`` in a temporary folder for a benchmark; return (the last value of each logged scalar,
    peak RSS in MiB, wall seconds). Exits with the run's error output if it fails."""
    with tempfile.TemporaryDirectory() as cwd:
        run = run_script(script, args, cwd, launcher=launcher, threads=threads, timeout=24 * 3600)
        if run.returncode != 0:
            raise SystemExit(f"{Path(script).name} {' '.join(args)} failed:\n{run.stderr[-3000:]}")
        last = {tag: events[-1][2] for tag, events in scalar_events(only_run(cwd)).items()}
    return last, run.peak_mib, run.wall
