"""Expert demonstrations for cleanrl-lago's benchmarks: the scripted experts run in the
environments, and their episodes stored as Minari datasets (by :mod:`priors.datasets`, which
also loads them back). See ``docs/demonstrations.md``::

    python -m cleanrl_lago.demonstrations --env clevr --episodes 500
    python -m cleanrl_lago.demonstrations --env metaworld --tasks mt10 --episodes-per-task 20 --seed 0
    python -m cleanrl_lago.demonstrations --env metaworld --tasks mt10 --episodes-per-task 100 \
        --behaviour expert,noise:0.3 --behaviour-shares 0.5,0.5 --dataset-id cleanrl-lago/metaworld-mt10/mixed-v1

CLEVR-Robot's expert is :mod:`cleanrl_lago.envs.clevr_expert`; Meta-World's are its own scripted
policies (``metaworld.policies``).
"""

from __future__ import annotations

import logging
import shlex
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import gymnasium as gym
import numpy as np
from metaworld.policies import ENV_POLICY_MAP
from priors.recording import (
    DEMONSTRATOR,
    EpisodeRecorder,
    ExpertEpisode,
    check_new_dataset,
    policy_success_rates,
    task_success_rates,
    write_dataset,
)
from tqdm import tqdm

from cleanrl_lago.envs.clevr_expert import GOOD_TOLERANCE, expert_labels
from cleanrl_lago.envs.clevr_robot import (
    BALL_RADIUS,
    NUM_ACTIONS,
    NUM_BALLS,
    WALL_X,
    WALL_Y_BEHIND,
    WALL_Y_FRONT,
    ClevrRobotEnv,
    all_goals,
    sample_instruction,
)
from cleanrl_lago.envs.metaworld_tasks import (
    check_task,
    make_metaworld_env,
    resolve_tasks,
    task_instructions,
)
from cleanrl_lago.envs.metaworld_tasks import observation_space as metaworld_observation_space
from cleanrl_lago.envs.prior_envs import CLEVR_ENV_ID
from cleanrl_lago.utils.cli import cli

logger = logging.getLogger(__name__)

METAWORLD_ENV_ID = "Meta-World/MT1"
CLEVR_DATASET_ID = "cleanrl-lago/clevr-robot/expert-v0"
METAWORLD_DATASET_ID = "cleanrl-lago/metaworld-{tasks}/expert-v0"
COMMAND = "python -m cleanrl_lago.demonstrations"
OTHER_SPLITS = ("validation", "test")
"""The instruction splits whose phrasings datasets record beside the train one."""
BEHAVIOURS = {
    "clevr": "expert, random or epsilon:P with P in [0, 1]",
    "metaworld": "expert or noise:S with S >= 0",
}
"""The acting policies :func:`parse_behaviours` accepts for each benchmark."""


# ----- experts ---------------------------------------------------------------------------------
def parse_behaviours(
    behaviour: str, shares: str | None = None, env: Literal["clevr", "metaworld"] = "clevr"
) -> dict[str, float]:
    """``"expert,random,epsilon:0.3"`` and optional shares ``"0.5,0.2,0.3"`` (default: equal) as
    ``{policy: share of the episodes}``. CLEVR-Robot: ``epsilon:P`` takes a uniformly random push
    with probability P at each step, else the expert's. Meta-World (``env="metaworld"``):
    ``noise:S`` executes the expert's action plus Gaussian noise of standard deviation S."""
    names = [b.strip() for b in behaviour.split(",") if b.strip()]
    for name in names:
        kind, _, value = name.partition(":")
        number = value.replace(".", "", 1).isdigit()
        if env == "clevr":
            valid = (kind in ("expert", "random") and not value) or (kind == "epsilon" and number and float(value) <= 1.0)
        else:
            valid = (kind == "expert" and not value) or (kind == "noise" and number)
        if not valid:
            raise ValueError(f"unknown behaviour {name!r} for {env}: use {BEHAVIOURS[env]}")
    if not names or len(set(names)) != len(names):
        raise ValueError(f"--behaviour needs distinct policies, got {behaviour!r}")
    weights = [1.0] * len(names) if shares is None else [float(w) for w in shares.split(",")]
    if len(weights) != len(names) or min(weights) < 0 or sum(weights) <= 0:
        raise ValueError(f"--behaviour-shares needs {len(names)} non-negative numbers, got {shares!r}")
    return {name: w / sum(weights) for name, w in zip(names, weights, strict=True)}


def episode_policies(shares: dict[str, float], episodes: int) -> list[str]:
    """The acting policy of each episode: ``round(share * episodes)`` episodes each (largest
    remainders fill up), in blocks in the order given."""
    exact = {name: share * episodes for name, share in shares.items()}
    counts = {name: int(np.floor(v)) for name, v in exact.items()}
    by_remainder = sorted(exact, key=lambda name: counts[name] - exact[name])
    for name in by_remainder[: episodes - sum(counts.values())]:
        counts[name] += 1
    return [name for name, n in counts.items() for _ in range(n)]


def clevr_episodes(
    episodes: int,
    seed: int = 0,
    max_episode_steps: int | None = None,
    behaviour: dict[str, float] | None = None,
    tolerance: float = GOOD_TOLERANCE,
    mislabel_goals: bool = False,
    shuffle_goals: bool = False,
) -> Iterator[ExpertEpisode]:
    """Run CLEVR-Robot episodes; episode ``i`` resets with seed ``seed + i``.

    The env samples the goal and its train-split instruction from the episode's seed. Who acts
    follows ``behaviour`` (:func:`parse_behaviours`; default: the expert in every episode); the
    expert labels every observation with its action and its set of good pushes
    (:func:`cleanrl_lago.envs.clevr_expert.expert_labels`, ``tolerance``). Random pushes are drawn
    with ``np.random.default_rng((seed + i, 1))``. Each episode also records a validation and a test
    phrasing of its goal, drawn with ``np.random.default_rng((seed + i, 2))``: priors select models
    on the first and report the second; they train on the train phrasing only.

    ``mislabel_goals`` records a deliberately wrong dataset (the control of a prior that misleads):
    every phrasing names :func:`opposite_goal` of the goal the expert pursues, its train phrasing drawn
    after the other splits' with the same generator. ``shuffle_goals`` records an uninformative one: every
    phrasing names :func:`other_goal`, one of the 79 goals the expert does not pursue, drawn with
    ``np.random.default_rng((seed + i, 3))``, so the instruction says nothing about the goal.
    """
    _check_wrong_goals(mislabel_goals, shuffle_goals)
    kwargs = {} if max_episode_steps is None else {"max_episode_steps": max_episode_steps}
    env = gym.make(CLEVR_ENV_ID, instruction_split="train", **kwargs)
    policies = episode_policies(behaviour or {"expert": 1.0}, episodes)
    try:
        for i, policy in enumerate(policies):
            epsilon = 1.0 if policy == "random" else float(policy.partition(":")[2] or 0.0)
            rng = np.random.default_rng((seed + i, 1))
            obs, info = env.reset(seed=seed + i)
            ep = EpisodeRecorder(obs, info)
            while True:
                label, good = expert_labels(env.unwrapped, tolerance)
                ep.label(label, good)
                acting = "random" if epsilon > 0 and rng.random() < epsilon else "expert"
                action = int(rng.integers(NUM_ACTIONS)) if acting == "random" else label
                obs, reward, terminated, truncated, info = env.step(action)
                ep.add(action, obs, reward, terminated, truncated, info, behaviour=acting)
                if terminated or truncated:
                    break
            ep.label(*expert_labels(env.unwrapped, tolerance))
            phrasing_rng = np.random.default_rng((seed + i, 2))
            named = env.unwrapped.goal
            if mislabel_goals:
                named = opposite_goal(named)
            elif shuffle_goals:
                named = other_goal(named, np.random.default_rng((seed + i, 3)))
            other = {split: sample_instruction(named, split, phrasing_rng) for split in OTHER_SPLITS}
            wrong = mislabel_goals or shuffle_goals
            instruction = sample_instruction(named, "train", phrasing_rng) if wrong else info["instruction"]
            yield ep.finish(seed + i, CLEVR_ENV_ID, instruction, np.int64, policy=policy, split_instructions=other)
    finally:
        env.close()


def _check_wrong_goals(mislabel_goals: bool, shuffle_goals: bool) -> None:
    if mislabel_goals and shuffle_goals:
        raise ValueError("--mislabel-goals and --shuffle-goals make two different wrong datasets: choose one")


def opposite_goal(goal: tuple[int, int, int]) -> tuple[int, int, int]:
    """The goal with the opposite relation: left <-> right, front <-> behind (``RELATIONS`` pairs them)."""
    a, relation, b = goal
    return a, relation ^ 1, b


def other_goal(goal: tuple[int, int, int], rng: np.random.Generator) -> tuple[int, int, int]:
    """A goal drawn uniformly from the 79 goals other than ``goal``."""
    others = [g for g in all_goals() if g != tuple(goal)]
    return others[int(rng.integers(len(others)))]


def balls_touching_wall(observations: np.ndarray, margin: float = 0.01) -> np.ndarray:
    """[N, 5] bool: which balls of CLEVR-Robot observations touch a wall (centre within
    ``BALL_RADIUS + margin`` of it)."""
    balls = np.asarray(observations)[:, : 2 * NUM_BALLS].reshape(-1, NUM_BALLS, 2)
    reach = BALL_RADIUS + margin
    return (
        (np.abs(balls[..., 0]) >= WALL_X - reach)
        | (balls[..., 1] <= WALL_Y_BEHIND + reach)
        | (balls[..., 1] >= WALL_Y_FRONT - reach)
    )


def wall_contact_share(observations: np.ndarray) -> float:
    """Share of CLEVR-Robot observations in which at least one ball touches a wall."""
    return float(balls_touching_wall(observations).any(axis=1).mean()) if len(observations) else 0.0


def metaworld_episodes(
    tasks: list[str],
    episodes_per_task: int,
    seed: int = 0,
    stop_after_success: int | None = 10,
    max_episode_steps: int | None = None,
    behaviour: dict[str, float] | None = None,
) -> Iterator[ExpertEpisode]:
    """Run Meta-World's scripted policies, ``episodes_per_task`` episodes per task in order.

    Episode ``j`` of the ``k``-th task resets with seed ``seed + k * episodes_per_task + j`` (the
    env itself is made with ``seed``); its instruction is drawn from the task's train phrasings with
    ``np.random.default_rng`` of that seed, and it also records a validation and a test phrasing
    drawn with ``np.random.default_rng((episode_seed, 2))`` (as :func:`clevr_episodes`). With
    ``stop_after_success=K`` an episode is truncated ``K`` steps after its first successful step;
    ``None`` runs to the time limit.

    Who acts follows ``behaviour`` (:func:`parse_behaviours` with ``env="metaworld"``; default: the
    expert in every episode), in the same shares within each task. The expert's action is its
    policy's output clipped to the action space; ``noise:S`` executes that action plus Gaussian
    noise of standard deviation S (drawn with ``np.random.default_rng((episode_seed, 1))``), clipped
    again, and the expert's clean action in each visited observation is the label (DART). When
    another policy than the expert acts, every episode's observations carry these labels
    (``expert_action``); an expert-only collection stores the executed actions, which are the labels.
    """
    policies = episode_policies(behaviour or {"expert": 1.0}, episodes_per_task)
    labelled = set(policies) != {DEMONSTRATOR}
    for k, task in enumerate(tasks):
        check_task(task)
        env = make_metaworld_env(task, seed=seed, max_episode_steps=max_episode_steps)
        policy = ENV_POLICY_MAP[task]()
        low, high = env.action_space.low, env.action_space.high
        instructions = task_instructions(task, "train")
        other_phrasings = {split: task_instructions(task, split) for split in OTHER_SPLITS}
        try:
            for j, acting in enumerate(policies):
                episode_seed = seed + k * episodes_per_task + j
                instruction = instructions[np.random.default_rng(episode_seed).integers(len(instructions))]
                noise_std = float(acting.partition(":")[2] or 0.0)
                noise_rng = np.random.default_rng((episode_seed, 1))
                obs, info = env.reset(seed=episode_seed)
                ep = EpisodeRecorder(obs, info)
                steps_since_success = None
                while True:
                    label = np.clip(policy.get_action(obs), low, high).astype(np.float32)
                    if labelled:
                        ep.label(label)
                    action = label
                    if noise_std > 0:
                        noisy = label + noise_rng.normal(0.0, noise_std, label.shape)
                        action = np.clip(noisy, low, high).astype(np.float32)
                    obs, reward, terminated, truncated, info = env.step(action)
                    if steps_since_success is not None:
                        steps_since_success += 1
                    elif info.get("success"):
                        steps_since_success = 0
                    if stop_after_success is not None and steps_since_success == stop_after_success:
                        truncated = True
                    ep.add(action, obs, reward, terminated, truncated, info, behaviour=acting)
                    if terminated or truncated:
                        break
                if labelled:
                    ep.label(np.clip(policy.get_action(obs), low, high).astype(np.float32))
                phrasing_rng = np.random.default_rng((episode_seed, 2))
                other = {split: p[phrasing_rng.integers(len(p))] for split, p in other_phrasings.items()}
                yield ep.finish(episode_seed, task, instruction, np.float32, policy=acting, split_instructions=other)
        finally:
            env.close()


@dataclass
class CollectionSummary:
    """What a collection wrote."""

    dataset_id: str
    path: Path
    episodes: int
    steps: int
    success_rate: float
    task_success_rates: dict[str, float]
    size_mb: float
    seconds: float
    policy_success_rates: dict[str, float]
    """success rate of each acting policy's episodes"""
    wall_contact_shares: dict[str, float]
    """CLEVR-Robot: share of the states (where an action is chosen) with a ball touching a wall, per
    acting policy and ``"all"``; empty for Meta-World"""


def collection_command(dataset_id: str) -> str:
    """The command that collects ``dataset_id`` (a guess from the id for ids not made by default)."""
    if dataset_id == CLEVR_DATASET_ID:
        return f"{COMMAND} --env clevr"
    for tasks in ("mt10", "mt50"):
        if dataset_id == METAWORLD_DATASET_ID.format(tasks=tasks):
            return f"{COMMAND} --env metaworld --tasks {tasks}"
    env = "clevr" if "clevr" in dataset_id.lower() else "metaworld --tasks TASKS"
    return f"{COMMAND} --env {env} --dataset-id {dataset_id}"


def _folder_size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def collect_clevr(
    dataset_id: str = CLEVR_DATASET_ID,
    episodes: int = 500,
    seed: int = 0,
    max_episode_steps: int | None = None,
    overwrite: bool = False,
    command: str | None = None,
    behaviour: dict[str, float] | None = None,
    tolerance: float = GOOD_TOLERANCE,
    mislabel_goals: bool = False,
    shuffle_goals: bool = False,
) -> CollectionSummary:
    """Collect CLEVR-Robot episodes, labelled by the expert, into the Minari dataset ``dataset_id``
    (who acts: ``behaviour``; ``mislabel_goals``, ``shuffle_goals``: see :func:`clevr_episodes`)."""
    _check_wrong_goals(mislabel_goals, shuffle_goals)
    check_new_dataset(dataset_id, overwrite)
    behaviour = behaviour or {"expert": 1.0}
    start = time.perf_counter()
    gen = clevr_episodes(episodes, seed, max_episode_steps, behaviour, tolerance, mislabel_goals, shuffle_goals)
    collected = _with_progress(gen, episodes)
    spaces_env = ClevrRobotEnv()
    spaces_env.close()
    settings = {
        "env": "clevr",
        "seed": seed,
        "episodes": episodes,
        "max_episode_steps": max_episode_steps or gym.spec(CLEVR_ENV_ID).max_episode_steps,
        "behaviour_shares": behaviour,
        "good_action_tolerance": tolerance,
        "mislabel_goals": mislabel_goals,
        "shuffle_goals": shuffle_goals,
        "command": command or f"{COMMAND} --env clevr --episodes {episodes} --seed {seed}",
    }
    path = write_dataset(
        dataset_id,
        collected,
        env_id=CLEVR_ENV_ID,
        observation_space=spaces_env.observation_space,
        action_space=spaces_env.action_space,
        settings=settings,
        overwrite=overwrite,
        code_permalink="cleanrl_lago/demonstrations.py",
    )
    summary = _summary(dataset_id, path, collected, start)
    by_policy: dict[str, list[np.ndarray]] = {}
    for ep in collected:
        by_policy.setdefault(ep.policy, []).append(ep.observations[:-1])
    by_policy["all"] = [ep.observations[:-1] for ep in collected]
    summary.wall_contact_shares = {name: wall_contact_share(np.concatenate(obs)) for name, obs in by_policy.items()}
    return summary


def collect_metaworld(
    tasks: list[str],
    dataset_id: str,
    episodes_per_task: int = 20,
    seed: int = 0,
    stop_after_success: int | None = 10,
    max_episode_steps: int | None = None,
    overwrite: bool = False,
    command: str | None = None,
    behaviour: dict[str, float] | None = None,
) -> CollectionSummary:
    """Collect Meta-World scripted-policy episodes for ``tasks``, labelled by the expert, into the
    Minari dataset ``dataset_id`` (who acts: ``behaviour``, see :func:`metaworld_episodes`)."""
    for task in tasks:
        check_task(task)
    if stop_after_success is not None and stop_after_success < 0:
        raise ValueError(f"stop_after_success must be >= 0 or None, got {stop_after_success}")
    check_new_dataset(dataset_id, overwrite)
    behaviour = behaviour or {"expert": 1.0}
    start = time.perf_counter()
    gen = metaworld_episodes(tasks, episodes_per_task, seed, stop_after_success, max_episode_steps, behaviour)
    collected = _with_progress(gen, len(tasks) * episodes_per_task)
    # Tasks differ only in their goal bounds: store the union, in float32 like the observations.
    observation_space = metaworld_observation_space(tasks, dtype=np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (4,), dtype=np.float32)
    settings = {
        "env": "metaworld",
        "seed": seed,
        "episodes_per_task": episodes_per_task,
        "stop_after_success": stop_after_success,
        "max_episode_steps": max_episode_steps or 500,
        "behaviour_shares": behaviour,
        "command": command
        or _metaworld_command(tasks, episodes_per_task, seed, stop_after_success, max_episode_steps, behaviour),
    }
    path = write_dataset(
        dataset_id,
        collected,
        env_id=METAWORLD_ENV_ID,
        observation_space=observation_space,
        action_space=action_space,
        settings=settings,
        overwrite=overwrite,
        code_permalink="cleanrl_lago/demonstrations.py",
    )
    return _summary(dataset_id, path, collected, start)


def _metaworld_command(
    tasks: list[str],
    episodes_per_task: int,
    seed: int,
    stop_after_success: int | None,
    max_episode_steps: int | None,
    behaviour: dict[str, float],
) -> str:
    """The command line that collects these episodes (options at their defaults left out)."""
    command = f"{COMMAND} --env metaworld --tasks {','.join(tasks)} --episodes-per-task {episodes_per_task} --seed {seed}"
    if stop_after_success != 10:
        command += f" --stop-after-success {stop_after_success}"
    if max_episode_steps is not None:
        command += f" --max-episode-steps {max_episode_steps}"
    if behaviour != {"expert": 1.0}:
        command += f" --behaviour {','.join(behaviour)} --behaviour-shares {','.join(map(str, behaviour.values()))}"
    return command


def _with_progress(episodes: Iterator[ExpertEpisode], total: int) -> list[ExpertEpisode]:
    collected: list[ExpertEpisode] = []
    with tqdm(total=total, desc="expert episodes", unit="ep", disable=None) as bar:
        for ep in episodes:
            collected.append(ep)
            bar.set_postfix(task=ep.task, success=f"{np.mean([e.success for e in collected]):.0%}")
            bar.update()
    return collected


def _summary(dataset_id: str, path: Path, episodes: list[ExpertEpisode], start: float) -> CollectionSummary:
    return CollectionSummary(
        dataset_id=dataset_id,
        path=path,
        episodes=len(episodes),
        steps=sum(len(ep.actions) for ep in episodes),
        # the expert's own episodes, as the per-task rates
        success_rate=float(np.mean([ep.success for ep in episodes if ep.policy == "expert"] or [False])),
        task_success_rates=task_success_rates(episodes),
        size_mb=_folder_size_mb(path),
        seconds=time.perf_counter() - start,
        policy_success_rates=policy_success_rates(episodes),
        wall_contact_shares={},
    )


# ----- command line ----------------------------------------------------------------------------
@dataclass
class Args:
    env: Literal["clevr", "metaworld"] = "clevr"
    """which benchmark's scripted expert to run"""
    tasks: str = "mt10"
    """Meta-World tasks: 'mt10', 'mt50' or comma-separated names such as 'reach-v3,push-v3'"""
    episodes: int = 500
    """CLEVR-Robot: number of episodes (seeds seed .. seed + episodes - 1)"""
    behaviour: str = "expert"
    """who acts, comma-separated: expert; CLEVR-Robot also random (uniform pushes), epsilon:P (a random push
    with probability P at each step, else the expert's); Meta-World also noise:S (the expert's action plus
    Gaussian noise of standard deviation S, clipped); the expert labels every step either way"""
    behaviour_shares: str | None = None
    """share of the episodes of each --behaviour policy (Meta-World: within each task), comma-separated
    (default: equal)"""
    good_action_tolerance: float = GOOD_TOLERANCE
    """CLEVR-Robot: a push is good when no push makes the goal hold and its cost is within this of the best"""
    mislabel_goals: bool = False
    """CLEVR-Robot, a control for a prior that misleads: every instruction names the opposite relation
    (left <-> right, front <-> behind) of the goal the expert pursues"""
    shuffle_goals: bool = False
    """CLEVR-Robot, a control for an uninformative prior: every instruction names a goal drawn at random from
    the 79 the expert does not pursue"""
    episodes_per_task: int = 20
    """Meta-World: number of episodes per task"""
    seed: int = 0
    """first episode seed (Meta-World: also the seed of the tasks' object/goal variants)"""
    stop_after_success: int | None = 10
    """Meta-World: truncate an episode this many steps after its first success (None: run to the time limit)"""
    max_episode_steps: int | None = None
    """time limit per episode (default: the env's own, 50 for CLEVR-Robot and 500 for Meta-World)"""
    dataset_id: str | None = None
    """Minari dataset id (default: cleanrl-lago/clevr-robot/expert-v0 or cleanrl-lago/metaworld-<tasks>/expert-v0)"""
    overwrite: bool = False
    """replace the dataset if it exists"""


def _default_metaworld_id(spec: str, tasks: list[str]) -> str:
    key = spec.strip().lower()
    if key in ("mt10", "mt50"):
        return METAWORLD_DATASET_ID.format(tasks=key)
    if len(tasks) == 1:
        return METAWORLD_DATASET_ID.format(tasks=tasks[0].removesuffix("-v3"))
    raise ValueError("several Meta-World tasks given: name the dataset with --dataset-id")


def main(argv: list[str] | None = None) -> CollectionSummary:
    from tqdm.contrib.logging import logging_redirect_tqdm

    args = cli(Args, args=argv, description=__doc__.splitlines()[0])
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    command = f"{COMMAND} " + shlex.join(sys.argv[1:] if argv is None else argv)
    with logging_redirect_tqdm():
        if args.env == "clevr":
            summary = collect_clevr(
                dataset_id=args.dataset_id or CLEVR_DATASET_ID,
                episodes=args.episodes,
                seed=args.seed,
                max_episode_steps=args.max_episode_steps,
                overwrite=args.overwrite,
                command=command,
                behaviour=parse_behaviours(args.behaviour, args.behaviour_shares, env="clevr"),
                tolerance=args.good_action_tolerance,
                mislabel_goals=args.mislabel_goals,
                shuffle_goals=args.shuffle_goals,
            )
        else:
            for flag, on in (("--mislabel-goals", args.mislabel_goals), ("--shuffle-goals", args.shuffle_goals)):
                if on:
                    raise ValueError(f"{flag} is for CLEVR-Robot only: drop it, or use --env clevr")
            tasks = resolve_tasks(args.tasks)
            summary = collect_metaworld(
                tasks,
                dataset_id=args.dataset_id or _default_metaworld_id(args.tasks, tasks),
                episodes_per_task=args.episodes_per_task,
                seed=args.seed,
                stop_after_success=args.stop_after_success,
                max_episode_steps=args.max_episode_steps,
                overwrite=args.overwrite,
                command=command,
                behaviour=parse_behaviours(args.behaviour, args.behaviour_shares, env="metaworld"),
            )
    for task, rate in summary.task_success_rates.items():
        logger.info("expert success %-28s %6.1f%%", task, 100 * rate)
    for policy, rate in summary.policy_success_rates.items():
        logger.info("success of %-16s episodes %6.1f%%", policy, 100 * rate)
    for policy, share in summary.wall_contact_shares.items():
        logger.info("states with a ball touching a wall, %-12s %6.1f%%", policy, 100 * share)
    logger.info(
        "wrote %s: %d episodes, %d steps, expert success %.1f%%, %.2f MB, %.1f s -> %s",
        summary.dataset_id,
        summary.episodes,
        summary.steps,
        100 * summary.success_rate,
        summary.size_mb,
        summary.seconds,
        summary.path,
    )
    return summary


if __name__ == "__main__":
    main()
