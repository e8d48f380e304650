"""The results grid: does the LM prior help PPO and SAC, against vanilla, an MLP prior and a random LM?

    python benchmark/results.py run                   # the whole grid, resumable (2 workers, 1 thread each)
    python benchmark/results.py run --only clevr --seeds 1 2 --budget-minutes 30
    python benchmark/results.py list                  # the runs, and which are done
    python benchmark/results.py report                # rliable aggregates, tables and PNG plots in docs/

``run`` writes one JSON file per finished run to ``benchmark/results/data/`` (atomically; a file
that exists is not run again, so an interrupted grid resumes where it stopped). Each file holds
the run's configuration, its final evaluation success rates, its ``charts/success_rate`` learning
curve (against env steps and against wall seconds) and its SPS. ``report`` reads only those files.

Priors: ``lm`` is the LM prior the main grid was measured with, trained and run with its LM in
fp32 (the scripts' default then). ``lm-bf16`` is the shipped default prior now: the same trained
weights converted to run the LM in bf16 (``python -m priors.convert``, now spelled
``python -m cleanrl_lago.convert_prior``). ``lm``, ``mlp`` and
``random-lm`` lie in ``benchmark/comparison_priors/``; ``mlp`` and ``random-lm`` were trained by
the same command as ``lm`` with only ``--kind`` changed (each ``config.json`` holds the exact
command). The folder is not called ``benchmark/priors``: that name would shadow the ``priors``
package for scripts run from here.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from cleanrl_lago.utils.benchmark import scalar_events
from priors.atomic import write_file_atomically

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "benchmark" / "results" / "data"
PRIORS = REPO / "benchmark" / "comparison_priors"
DOCS = REPO / "docs" / "results"

SEEDS = (1, 2, 3, 4, 5)
# The first five MT10 tasks in Meta-World's own order (a fixed rule, not picked by outcome).
METAWORLD_TASKS = ("reach-v3", "push-v3", "pick-place-v3", "door-open-v3", "drawer-open-v3")
KL_SWEEP = (0.2, 1.0)  # with the main 0.05, three values of kl_coef
MAIN_KL = {"ppo": 0.05, "sac": 0.1}  # SAC: the coefficient's start, tuned toward --kl-target

# Budgets, chosen so the whole grid fits a 2-core CPU in about 1.5 hours (see docs/results.md).
# CLEVR-Robot is scored with sampled actions: at these budgets the policy is still close to uniform,
# and its argmax repeats one push (vanilla PPO: about 32% sampled, 4% greedy).
CLEVR_BUDGET = [
    "--total-timesteps",
    "20480",
    "--num-envs",
    "8",
    "--num-steps",
    "128",
    "--eval-episodes",
    "50",
    "--no-eval-greedy",
]
PPO_METAWORLD_BUDGET = [
    "--total-timesteps",
    "10240",
    "--num-steps",
    "512",
    "--num-minibatches",
    "8",
    "--max-episode-steps",
    "200",
    "--eval-episodes",
    "10",
]
SAC_BUDGET = [
    "--total-timesteps",
    "3000",
    "--learning-starts",
    "1000",
    "--max-episode-steps",
    "200",
    "--eval-episodes",
    "10",
]


@dataclass(frozen=True)
class Run:
    algo: str  # "ppo" or "sac"
    env: str  # "clevr" or a Meta-World task
    prior: str  # "none", "lm" (fp32 LM), "lm-bf16" (bf16 LM, the shipped default), "mlp" or "random-lm"
    kl_coef: float
    seed: int
    split: str = "train"  # the instruction phrasings the prior is given while PPO trains (CLEVR-Robot)

    @property
    def config(self) -> str:
        """The configuration's name in tables and plots (everything but env and seed)."""
        if self.prior == "none":
            return f"{self.algo.upper()}"
        label = {
            "lm": "LM prior",
            "lm-bf16": "LM prior (bf16 LM)",
            "mlp": "MLP prior",
            "random-lm": "random-LM prior",
        }
        name = f"{self.algo.upper()} + {label[self.prior]}"
        return name if self.kl_coef == MAIN_KL[self.algo] else f"{name}, kl_coef {self.kl_coef:g}"

    @property
    def run_id(self) -> str:
        split = "" if self.split == "train" else f"__{self.split}"
        return f"{self.algo}__{self.env}{split}__{self.prior}__kl{self.kl_coef:g}__seed{self.seed}"

    @property
    def prior_path(self) -> Path | None:
        """The comparison prior's folder (None: no prior, or the script's default prior)."""
        if self.prior in ("none", "lm-bf16"):
            return None
        name = "smollm2-fp32" if self.prior == "lm" else self.prior
        return PRIORS / f"{'clevr-robot' if self.env == 'clevr' else 'metaworld-mt10'}-{name}"

    def command(self) -> list[str]:
        if self.algo == "ppo" and self.env == "clevr":
            script, budget = "ppo_lago_clevr.py", CLEVR_BUDGET
            env_args: list[str] = []
        elif self.algo == "ppo":
            script, budget = "ppo_lago_metaworld.py", PPO_METAWORLD_BUDGET
            env_args = ["--env-id", self.env]
        else:
            script, budget = "sac_lago.py", SAC_BUDGET
            env_args = ["--env-id", self.env]
        args = [str(REPO / "cleanrl_lago" / script), *env_args, *budget, "--seed", str(self.seed)]
        args += ["--kl-coef", f"{self.kl_coef:g}", "--save-model", "--checkpoint-every", "0"]
        if self.split != "train":
            args += ["--instruction-split", self.split]
        if self.prior_path is not None:
            args += ["--prior", str(self.prior_path)]
        return args


def grid(seeds=SEEDS) -> list[Run]:
    """Every run, in the order they are run: the main comparison first, seed-major (a grid cut short
    still has whole seeds), then SAC, then the kl_coef sweep.

    The random-LM prior (is it the pretrained knowledge or the architecture?) is compared on
    CLEVR-Robot, where the goal comes only from the instruction; on Meta-World the task is also
    in the observation. On CLEVR-Robot each prior guides PPO once with the phrasings it was trained
    on and once with held-out phrasings; vanilla PPO never reads the instruction (its observation
    holds the goal), so one vanilla run serves both.
    """
    runs = []
    for seed in seeds:
        for env in ("clevr", *METAWORLD_TASKS):
            runs.append(Run("ppo", env, "none", 0.0, seed))
            runs.append(Run("ppo", env, "mlp", MAIN_KL["ppo"], seed))
            runs.append(Run("ppo", env, "lm", MAIN_KL["ppo"], seed))
            if env == "clevr":
                runs.append(Run("ppo", env, "random-lm", MAIN_KL["ppo"], seed))
                for prior in ("mlp", "lm", "random-lm"):
                    runs.append(Run("ppo", env, prior, MAIN_KL["ppo"], seed, split="heldout"))
    for seed in seeds:
        for env in METAWORLD_TASKS:
            runs.append(Run("sac", env, "none", 0.0, seed))
            runs.append(Run("sac", env, "lm", MAIN_KL["sac"], seed))
    for seed in seeds:
        for kl in KL_SWEEP:
            runs.append(Run("ppo", "clevr", "lm", kl, seed))
    # The shipped default priors, trained with the LM in bf16 after the grid above was measured.
    for seed in seeds:
        for env in ("clevr", *METAWORLD_TASKS):
            runs.append(Run("ppo", env, "lm-bf16", MAIN_KL["ppo"], seed))
            if env == "clevr":
                runs.append(Run("ppo", env, "lm-bf16", MAIN_KL["ppo"], seed, split="heldout"))
            else:
                runs.append(Run("sac", env, "lm-bf16", MAIN_KL["sac"], seed))
    return runs


EVAL_TAGS = ("eval/success_rate", "eval/success_rate_train", "eval/success_rate_heldout")


def execute(run: Run, log_dir: Path) -> dict:
    """Run one configuration in a temporary folder and return its result record."""
    with tempfile.TemporaryDirectory() as cwd:
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "PYTHONUNBUFFERED": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        }
        env.setdefault("MUJOCO_GL", "osmesa")
        env.setdefault("PYOPENGL_PLATFORM", env["MUJOCO_GL"])
        start = time.time()
        with open(log_dir / f"{run.run_id}.log", "w") as log:
            proc = subprocess.run(
                [sys.executable, *run.command()], cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        wall = time.time() - start
        if proc.returncode != 0:
            raise RuntimeError(
                f"{run.run_id} failed (exit {proc.returncode}); see {log_dir / run.run_id}.log"
            )
        (run_dir,) = (Path(cwd) / "runs").iterdir()
        scalars = scalar_events(run_dir)
    # Seconds from the first logged event: the process start-up (imports, loading the prior) is left out
    # of the curves; it is in wall_seconds.
    t0 = min(events[0][0] for events in scalars.values())
    curve = scalars.get("charts/success_rate", [])
    evals = {tag.split("/", 1)[1]: events[-1][2] for tag, events in scalars.items() if tag in EVAL_TAGS}
    return {
        "run": asdict(run),
        "config": run.config,
        "command": "python "
        + " ".join(str(Path(a).relative_to(REPO)) if a.startswith(str(REPO)) else a for a in run.command()),
        "eval": evals,  # success_rate (Meta-World) or success_rate_train / success_rate_heldout (CLEVR)
        "curve": {
            "step": [s for _, s, _ in curve],
            "seconds": [w - t0 for w, _, _ in curve],
            "success_rate": [v for _, _, v in curve],
        },
        "sps": scalars["charts/SPS"][-1][2],
        "wall_seconds": wall,
        # PPO logs the share per iteration (averaged here); SAC's is since the start (its last value).
        "prior_time_fraction": (
            None
            if "charts/prior_time_fraction" not in scalars
            else scalars["charts/prior_time_fraction"][-1][2]
            if run.algo == "sac"
            else sum(v for *_, v in scalars["charts/prior_time_fraction"])
            / len(scalars["charts/prior_time_fraction"])
        ),
    }


def write_atomic(path: Path, record: dict) -> None:
    """One record, written through a temporary file, fsync and a rename (``priors.atomic``)."""
    write_file_atomically(path, lambda f: f.write(json.dumps(record, indent=1).encode()))


def _missing_prior(run: Run) -> Path | None:
    path = run.prior_path
    return None if path is None or (path / "config.json").exists() else path


def cmd_run(args) -> None:
    DATA.mkdir(parents=True, exist_ok=True)
    log_dir = REPO / "benchmark" / "results" / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    todo = [r for r in grid(args.seeds) if re.search(args.only, r.run_id)]
    todo = [r for r in todo if not (DATA / f"{r.run_id}.json").exists()]
    # Runs whose comparison prior is not there yet (still training) go last.
    todo.sort(key=lambda r: _missing_prior(r) is not None)
    deadline = time.time() + 60 * args.budget_minutes
    print(f"{len(todo)} runs to do, {args.workers} at a time, budget {args.budget_minutes} min", flush=True)

    def one(run: Run) -> None:
        if time.time() > deadline:
            return
        if (missing := _missing_prior(run)) is not None:
            print(f"{run.run_id}: missing comparison prior {missing}; see docs/results.md", flush=True)
            return
        try:
            record = execute(run, log_dir)
        except RuntimeError as err:
            print(err, flush=True)
            return
        write_atomic(DATA / f"{run.run_id}.json", record)
        print(f"{run.run_id}: eval {record['eval']}, {record['wall_seconds']:.0f} s", flush=True)

    with ThreadPoolExecutor(args.workers) as pool:
        list(pool.map(one, todo))
    left = [r for r in todo if not (DATA / f"{r.run_id}.json").exists()]
    print(f"done; {len(left)} runs left (run again to resume)")


def cmd_list(args) -> None:
    for run in grid(args.seeds):
        done = (DATA / f"{run.run_id}.json").exists()
        print(f"{'done' if done else '    '}  {run.run_id}  python {' '.join(run.command())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the grid (resumable)")
    run.add_argument("--workers", type=int, default=2, help="runs at a time, each with 1 torch thread")
    run.add_argument("--budget-minutes", type=float, default=24 * 60, help="start no run after this")
    run.add_argument("--only", default="", help="regular expression on run ids")
    run.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    lst = sub.add_parser("list", help="the runs of the grid and which are done")
    lst.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    sub.add_parser("report", help="aggregate with rliable and plot into docs/results/")
    args = parser.parse_args()
    if args.command == "run":
        cmd_run(args)
    elif args.command == "list":
        cmd_list(args)
    else:
        from results_report import report

        report(DATA, DOCS)


if __name__ == "__main__":
    main()
