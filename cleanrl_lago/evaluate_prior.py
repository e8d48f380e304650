"""Evaluate a prior acting on its own, greedy and sampled, on each instruction split, with 95% intervals.

    python -m cleanrl_lago.evaluate_prior clevr-robot-smollm2 --episodes 200
    python -m cleanrl_lago.evaluate_prior runs/priors/my-prior --splits test --seeds 1 2 3 --json out.json

Success is the share of episodes in which the goal held at some step (CLEVR-Robot: within the env's
50 pushes; Meta-World: within ``--max-episode-steps``). The interval is Wilson's score interval for one
seed; with several ``--seeds`` the episodes of all seeds are pooled.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tyro
from priors import Quantization, episode_successes, load_prior

from cleanrl_lago.envs.prior_envs import prior_environment
from cleanrl_lago.utils.cli import cli


@dataclass
class Args:
    prior: tyro.conf.Positional[str]
    """the prior: a folder, a Hugging Face Hub repo id, or the name of a shipped prior"""
    episodes: int = 200
    """episodes per split (and per task for Meta-World) and seed"""
    splits: tuple[str, ...] = ("train", "validation", "test")
    """instruction splits to evaluate on (train, validation, test; heldout = test)"""
    seeds: tuple[int, ...] = (10_000,)
    """evaluation seeds (the episodes' scenes); pooled"""
    modes: tuple[str, ...] = ("greedy", "sampled")
    """greedy (argmax or mean action) and/or sampled actions"""
    max_episode_steps: int | None = None
    """the time limit of an episode (default: the env's own)"""
    tasks: tuple[str, ...] | None = None
    """Meta-World: evaluate on these tasks instead of the prior's own (tasks it never saw: a transfer check)"""
    quantization: Quantization | None = None
    """the precision of the prior's frozen LM (default: the prior's own)"""
    device: str = "cpu"
    """where the prior runs"""
    json: str | None = None
    """also write the figures to this JSON file"""


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson's score interval for a binomial proportion (95% by default)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def main(argv: list[str] | None = None) -> dict:
    args = cli(Args, args=argv, description=__doc__.splitlines()[0])
    for mode in args.modes:
        if mode not in ("greedy", "sampled"):
            raise ValueError(f"--modes {mode}: use greedy and/or sampled")
    prior = load_prior(args.prior, device=args.device, quantization=args.quantization)
    if args.tasks and not prior.config.tasks:
        raise ValueError(f"--tasks: {args.prior} is a prior for {prior.config.env_id}, which has no tasks")
    env = prior_environment(prior.config.env_id, list(args.tasks) if args.tasks else prior.config.tasks)
    unseen = sorted(set(env.tasks or []) - set(prior.config.tasks or []))
    if unseen:
        print(f"evaluating on tasks the prior was not trained on: {', '.join(unseen)}")
    results = {}
    per_episode = args.episodes * (len(env.tasks) if env.tasks else 1)
    for split in args.splits:
        for mode in args.modes:
            outcomes = [
                episode_successes(
                    prior,
                    env.make_env,
                    tasks=env.tasks,
                    split=split,
                    episodes=args.episodes,
                    seed=seed,
                    max_episode_steps=args.max_episode_steps,
                    sample=mode == "sampled",
                )
                for seed in args.seeds
            ]
            n = per_episode * len(args.seeds)
            successes = int(sum(o.sum() for o in outcomes))
            low, high = wilson_interval(successes, n)
            cell = {"success": successes / n, "ci95": [low, high], "episodes": n}
            print(f"{split:>10} {mode:>7}: success {successes / n:.1%} [{low:.1%}, {high:.1%}] over {n} episodes")
            if env.tasks:  # per task: its consecutive block of episodes in every seed's run
                by_task = np.stack([o.reshape(len(env.tasks), args.episodes) for o in outcomes], 1)
                cell["per_task"] = {task: float(rows.mean()) for task, rows in zip(env.tasks, by_task, strict=True)}
                print("            " + ", ".join(f"{t} {r:.0%}" for t, r in cell["per_task"].items()))
            results[f"{split}/{mode}"] = cell
    if args.json:
        Path(args.json).write_text(json.dumps({"prior": args.prior, **results}, indent=1))
    return results


if __name__ == "__main__":
    main()
