"""The results grids: does the LM prior help PPO and SAC, against vanilla PPO and a prior without an LM?

    python benchmark/results.py run                   # the final grid, resumable (2 workers, 1 thread each)
    python benchmark/results.py run --only clevr --seeds 1 2 --budget-minutes 30
    python benchmark/results.py list                  # the runs, their commands, and which are done
    python benchmark/results.py report                # rliable aggregates, tables and PNG plots in docs/
    python benchmark/results.py evaluate-clevr MODEL SEED   # the final grid's CLEVR-Robot score of an agent

Two grids (``--grid``), both defined in ``grid.py``: ``final`` (the default; docs/results.md) measures
the priors shipped since 30 November 2026 at budgets ten times the first grid's, seeds 1-10 on
CLEVR-Robot, with the configurations of ``final_grid``; its records go to
``benchmark/results/final/data/`` and its report (``report_final_grid.py``) to ``docs/results/final/``.
``early`` (docs/results-early.md) is the first grid, kept as it was measured: records in
``benchmark/results/data/``, report by ``report_early_grid.py``.

``run`` writes one JSON file per finished run (atomically; a file that exists is not run again, so
an interrupted grid resumes where it stopped). Each file holds the run's configuration and command,
its final evaluation, its ``charts/success_rate`` learning curve (against env steps and against wall
seconds) and its SPS. ``report`` reads only those files.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path

from grid import DATA, FINAL_DATA, GRIDS, REPO, Run

from cleanrl_lago.utils.launch import scalar_events
from priors.atomic import write_file_atomically

DOCS = REPO / "docs" / "results"
# Paper-budget runs in progress: each one's checkpoint and TensorBoard events are tracked by git (committed
# before a working session ends), so a run longer than a session resumes from a fresh clone.
WORK = REPO / "benchmark" / "results" / "final" / "work"
FINAL_DOCS = REPO / "docs" / "results" / "final"
# CLEVR-Robot agents are scored by the harness itself (evaluate_clevr): greedy and sampled actions,
# success within 10 and within 50 pushes, over this many episodes each.
FINAL_CLEVR_EVAL_EPISODES = 200


def evaluate_clevr(
    model_path: str, episodes: int, seed: int, split: str = "train"
) -> dict[str, dict[str, float]]:
    """A saved ``ppo_lago_clevr`` agent, greedy and sampled: {mode: {within_10, within_50}}, the share of
    ``episodes`` episodes (one env, run one after the other: no bias toward short episodes) that
    reach the goal within 10 and within 50 pushes (50 is the episode limit). The agent reads the goal
    from its observation, never the instruction, so the phrasing split does not matter here.

    ``model_path`` may also be a prior's folder: the prior then acts alone, on the same episodes and
    score, reading each episode's instruction in ``split``'s phrasings (the env's own draw)."""
    import gymnasium as gym
    import numpy as np
    import torch
    from torch.distributions.categorical import Categorical

    import cleanrl_lago.envs  # noqa: F401
    from cleanrl_lago.ppo_lago_clevr import Agent
    from cleanrl_lago.utils.evals import episode_records

    prior = None
    if (Path(model_path) / "config.json").exists():
        from priors import load_prior

        prior = load_prior(model_path, device="cpu")
    elif model_path == "uniform":  # the reference: random pushes (sampled), or always push 0 (greedy)
        agent = Agent(24, 40)
        with torch.no_grad():
            agent.actor[-1].weight.zero_()
            agent.actor[-1].bias.zero_()
    else:
        saved = torch.load(model_path, map_location="cpu", weights_only=True)
        agent = Agent(saved["obs_dim"], saved["n_actions"])
        agent.load_state_dict(saved["agent"])
    out = {}
    for mode in ("greedy", "sampled"):
        generator = torch.Generator().manual_seed(seed)
        envs = gym.vector.SyncVectorEnv(
            [
                lambda: gym.wrappers.RecordEpisodeStatistics(
                    gym.make("CLEVR-Robot-v0", **({} if prior is None else {"instruction_split": split}))
                )
            ],
            autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
        )

        def act(obs, mode=mode, generator=generator, env=envs.envs[0]):
            if (
                prior is not None
            ):  # after an autoreset the env holds the instruction of the episode obs starts
                logits = prior(obs, [env.unwrapped.instruction]).float()
            else:
                logits = agent.actor(torch.as_tensor(obs, dtype=torch.float32))
            if mode == "greedy":
                return logits.argmax(-1).numpy()
            return Categorical(logits=logits).probs.multinomial(1, generator=generator).squeeze(-1).numpy()

        episodes_ = episode_records(envs, act, episodes, seed)
        success = np.array([s for _, _, s in episodes_]) > 0
        length = np.array([n for _, n, _ in episodes_])
        out[mode] = {
            "within_10": float(np.mean(success & (length <= 10))),
            "within_50": float(np.mean(success)),
            "episodes": len(episodes_),
        }
    return out


def evaluate_metaworld_prior(
    prior_path: str, task: str, episodes: int, seed: int, split: str = "train"
) -> dict:
    """A Meta-World prior acting alone (its mean action) on the episodes a ``ppo_lago_metaworld`` agent of the
    grid is scored on: the script's evaluation envs (raw rewards, 200-step episodes, seed ``seed``), the
    first phrasing of ``split``, as env 0 of a run gets it. {"success_rate": share of ``episodes``}."""
    import numpy as np
    import torch

    from cleanrl_lago.envs.metaworld_tasks import task_instructions
    from cleanrl_lago.ppo_lago_metaworld import make_env
    from cleanrl_lago.utils.evals import metaworld_eval_envs, run_episodes
    from priors import load_prior

    prior = load_prior(prior_path, device="cpu")
    instruction = task_instructions(task, split)[0]
    envs = metaworld_eval_envs(make_env, [task], 200, "prior-alone", False, seed, gamma=None)

    def act(obs):
        with torch.no_grad():
            return prior(obs, [instruction] * len(obs)).chunk(2, dim=-1)[0].float().numpy()

    return {"success_rate": float(np.mean(run_episodes(envs, act, episodes, seed).successes))}


EVAL_TAGS = ("eval/success_rate", "eval/success_rate_train", "eval/success_rate_heldout")


def resume_from(work: Path) -> tuple[list[str], float]:
    """A paper-budget run's persistent folder: the ``--resume`` arguments for the checkpoint an interrupted
    attempt left there (none: a fresh start), and the seconds earlier attempts spent up to their last
    checkpoint (the work they kept). Each attempt notes its start in ``attempt_start``; the checkpoint's own
    ``saved_at`` (not the file's time, which a fresh clone resets) ends the attempt's kept work."""
    from cleanrl_lago.utils.runs import load_checkpoint

    kept_file, start_file = work / "kept_seconds", work / "attempt_start"
    kept = float(kept_file.read_text()) if kept_file.exists() else 0.0
    checkpoints = sorted(work.glob("runs/*/checkpoint.pt"))
    if checkpoints and start_file.exists():
        checkpoint = load_checkpoint(checkpoints[0].parent)
        # (a checkpoint from before saved_at was recorded: its file's time, right unless it was cloned)
        saved_at = checkpoint.get("saved_at", checkpoints[0].stat().st_mtime)
        kept += max(0.0, saved_at - float(start_file.read_text()))
        kept_file.write_text(str(kept))
    start_file.write_text(str(time.time()))
    return (["--resume", str(checkpoints[0].parent.relative_to(work))] if checkpoints else []), kept


def execute(run: Run, log_dir: Path) -> dict:
    """Run one configuration in a temporary folder (a paper-budget run: a persistent one under ``WORK``, which
    an interrupted attempt leaves with its checkpoint to resume from) and return its result record."""
    if run.algo == "prior":
        return execute_prior_alone(run, log_dir)
    work = WORK / run.run_id if run.budget == "paper" else None
    if work is not None:
        work.mkdir(parents=True, exist_ok=True)
    with nullcontext(str(work)) if work is not None else tempfile.TemporaryDirectory() as cwd:
        resume, kept = resume_from(work) if work is not None else ([], 0.0)
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
        with open(log_dir / f"{run.run_id}.log", "a" if resume else "w") as log:
            proc = subprocess.run(
                [sys.executable, *run.command(), *resume],
                cwd=cwd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wall = time.time() - start + kept
        if proc.returncode != 0:
            raise RuntimeError(
                f"{run.run_id} failed (exit {proc.returncode}); see {log_dir / run.run_id}.log"
            )
        (run_dir,) = (Path(cwd) / "runs").iterdir()
        scalars = scalar_events(run_dir)
        harness_eval = None
        if run.grid == "final" and run.env == "clevr":
            (model,) = run_dir.glob("*.cleanrl_model")
            proc = subprocess.run(
                [sys.executable, str(Path(__file__).resolve()), "evaluate-clevr", str(model), str(run.seed + 10_000)],
                env=env, capture_output=True, text=True,
            )  # fmt: skip
            if proc.returncode != 0:
                raise RuntimeError(
                    f"{run.run_id}: evaluation failed: {proc.stderr.strip().splitlines()[-1:]}"
                )
            harness_eval = json.loads(proc.stdout)
    # Seconds from the first logged event: the process start-up (imports, loading the prior) is left out
    # of the curves; it is in wall_seconds.
    t0 = min(events[0][0] for events in scalars.values())
    curve = scalars.get("charts/success_rate", [])
    evals = {tag.split("/", 1)[1]: events[-1][2] for tag, events in scalars.items() if tag in EVAL_TAGS}
    if harness_eval is not None:
        evals = harness_eval  # {greedy, sampled: {within_10, within_50, episodes}}
    return {
        "run": asdict(run),
        "config": run.config,
        "command": "python "
        + " ".join(str(Path(a).relative_to(REPO)) if a.startswith(str(REPO)) else a for a in run.command()),
        # success_rate (Meta-World); CLEVR-Robot: success_rate_train / success_rate_heldout (early grid), or
        # {greedy, sampled: {within_10, within_50}} (final grid, evaluate_clevr)
        "eval": evals,
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


def execute_prior_alone(run: Run, log_dir: Path) -> dict:
    """A prior acting alone (part 14): ``evaluate_clevr`` or ``evaluate_metaworld_prior`` on the episodes its
    PPO runs' agents are scored on. The record has no training: an empty curve, no SPS."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    start = time.time()
    with open(log_dir / f"{run.run_id}.log", "w") as log:
        proc = subprocess.run(
            [sys.executable, *run.command()], env=env, stdout=subprocess.PIPE, stderr=log, text=True
        )
    if proc.returncode != 0:
        raise RuntimeError(f"{run.run_id} failed (exit {proc.returncode}); see {log_dir / run.run_id}.log")
    return {
        "run": asdict(run),
        "config": run.config,
        "command": "python "
        + " ".join(str(Path(a).relative_to(REPO)) if a.startswith(str(REPO)) else a for a in run.command()),
        "eval": json.loads(proc.stdout),
        "curve": {"step": [], "seconds": [], "success_rate": []},
        "sps": None,
        "wall_seconds": time.time() - start,
        "prior_time_fraction": None,
    }


def write_atomic(path: Path, record: dict) -> None:
    """One record, written through a temporary file, fsync and a rename (``priors.atomic``)."""
    write_file_atomically(path, lambda f: f.write(json.dumps(record, indent=1).encode()))


def _missing_prior(run: Run) -> Path | None:
    path = run.prior_path
    return None if path is None or path.is_file() or (path / "config.json").exists() else path


def _runs(args) -> list[Run]:
    return GRIDS[args.grid](*([args.seeds] if args.seeds else []))


def cmd_run(args) -> None:
    log_dir = REPO / "benchmark" / "results" / ("logs" if args.grid == "early" else "final/logs")
    log_dir.mkdir(parents=True, exist_ok=True)
    todo = [r for r in _runs(args) if re.search(args.only, r.run_id)]
    todo = [r for r in todo if not (r.data_dir / f"{r.run_id}.json").exists()]
    # Runs whose comparison prior is not there yet (still training) go last.
    todo.sort(key=lambda r: _missing_prior(r) is not None)
    deadline = time.time() + 60 * args.budget_minutes
    print(f"{len(todo)} runs to do, {args.workers} at a time, budget {args.budget_minutes} min", flush=True)

    def one(run: Run) -> None:
        if time.time() > deadline or (run.data_dir / f"{run.run_id}.json").exists():
            return  # past the budget, or done meanwhile (by another runner)
        if (missing := _missing_prior(run)) is not None:
            print(f"{run.run_id}: missing comparison prior {missing}; see docs/results.md", flush=True)
            return
        try:
            record = execute(run, log_dir)
        except RuntimeError as err:
            print(err, flush=True)
            return
        run.data_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(run.data_dir / f"{run.run_id}.json", record)
        shutil.rmtree(
            WORK / run.run_id, ignore_errors=True
        )  # a paper-budget run's checkpoint, no longer needed
        print(f"{run.run_id}: eval {record['eval']}, {record['wall_seconds']:.0f} s", flush=True)

    with ThreadPoolExecutor(args.workers) as pool:
        list(pool.map(one, todo))
    left = [r for r in todo if not (r.data_dir / f"{r.run_id}.json").exists()]
    print(f"done; {len(left)} runs left (run again to resume)")


def cmd_list(args) -> None:
    for run in _runs(args):
        done = (run.data_dir / f"{run.run_id}.json").exists()
        print(f"{'done' if done else '    '}  {run.run_id}  python {' '.join(run.command())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the grid (resumable)")
    run.add_argument("--workers", type=int, default=2, help="runs at a time, each with 1 torch thread")
    run.add_argument("--budget-minutes", type=float, default=24 * 60, help="start no run after this")
    run.add_argument("--only", default="", help="regular expression on run ids")
    lst = sub.add_parser("list", help="the runs of the grid and which are done")
    rep = sub.add_parser("report", help="aggregate with rliable and plot into docs/results/")
    for p in (run, lst, rep):
        p.add_argument("--grid", choices=sorted(GRIDS), default="final", help="which grid (default: final)")
    for p in (run, lst):
        p.add_argument(
            "--seeds",
            type=int,
            nargs="+",
            help="only these seeds (default: the grid's); a part planned for seeds 1-3 runs none of 4-10",
        )
    mw = sub.add_parser(
        "evaluate-metaworld", help="score a Meta-World prior alone on one task (JSON on stdout)"
    )
    mw.add_argument("prior", help="a prior's folder")
    mw.add_argument("task")
    mw.add_argument("seed", type=int)
    mw.add_argument("--episodes", type=int, default=20)
    mw.add_argument("--split", default="train", help="the instruction phrasings: train or heldout")
    ev = sub.add_parser("evaluate-clevr", help="score a saved CLEVR-Robot agent (JSON on stdout)")
    ev.add_argument(
        "model", help="a .cleanrl_model file, a prior's folder (alone), or `uniform` for random pushes"
    )
    ev.add_argument("--split", default="train", help="a prior's instruction phrasings: train or heldout")
    ev.add_argument("seed", type=int)
    ev.add_argument("--episodes", type=int, default=FINAL_CLEVR_EVAL_EPISODES)
    args = parser.parse_args()
    if args.command == "run":
        cmd_run(args)
    elif args.command == "list":
        cmd_list(args)
    elif args.command == "evaluate-metaworld":
        print(
            json.dumps(evaluate_metaworld_prior(args.prior, args.task, args.episodes, args.seed, args.split))
        )
    elif args.command == "evaluate-clevr":
        print(json.dumps(evaluate_clevr(args.model, args.episodes, args.seed, args.split)))
    elif args.grid == "early":
        from report_early_grid import report  # imported here: rliable and matplotlib serve the reports alone

        report(DATA, DOCS)
    else:
        from report_final_grid import report

        report(FINAL_DATA, FINAL_DOCS)


if __name__ == "__main__":
    main()
