"""Expert demonstrations tagged with language instructions, stored as Minari datasets.

Collect (see ``docs/demonstrations.md``)::

    python -m priors.demonstrations --env clevr --episodes 500
    python -m priors.demonstrations --env metaworld --tasks mt10 --episodes-per-task 20 --seed 0

and load for prior training with :func:`load_demonstrations`.

Storage. Each episode is a Minari episode (observations float32 with the final one, actions,
rewards, terminations, truncations; the episode's seed in its metadata). Its infos hold, per
step (reset included), the integer ``instruction_id`` and ``task_id`` and the bool ``success``.
The tables these ids index, the collection settings and the command live under the key
``"cleanrl_lago"`` of the dataset's ``metadata.json``. (Minari's hdf5 backend would store
strings in infos too, but reads them back as bytes, and a string per step is wasteful.)

A dataset is written to a hidden temporary folder under ``MINARI_DATASETS_PATH`` and renamed
into place when complete, so an interrupted collection never leaves a partial dataset.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import minari
import numpy as np
import tyro
from minari.data_collector import EpisodeBuffer
from minari.dataset.minari_dataset import parse_dataset_id
from minari.namespace import create_namespace, list_local_namespaces
from minari.storage import get_dataset_path
from tqdm import tqdm

logger = logging.getLogger(__name__)

METADATA_KEY = "cleanrl_lago"
FORMAT_VERSION = 1
CLEVR_ENV_ID = "CLEVR-Robot-v0"
METAWORLD_ENV_ID = "Meta-World/MT1"
CLEVR_DATASET_ID = "cleanrl-lago/clevr-robot/expert-v0"
METAWORLD_DATASET_ID = "cleanrl-lago/metaworld-{tasks}/expert-v0"


@dataclass
class Demonstrations:
    """All steps of a demonstrations dataset, flattened across episodes (N steps in total)."""

    observations: np.ndarray
    """[N, obs_dim] float32: the observation each action was taken in."""
    actions: np.ndarray
    """[N] int64 (discrete actions) or [N, act_dim] float32 (continuous)."""
    instructions: list[str]
    """The dataset's distinct instruction strings, in order of first appearance."""
    instruction_ids: np.ndarray
    """[N] int64 index into ``instructions``: the instruction of the step's episode."""
    episode_ids: np.ndarray
    """[N] int64 Minari episode id of the step."""
    tasks: list[str]
    """The distinct task names (CLEVR: the single task ``"CLEVR-Robot-v0"``)."""
    task_ids: np.ndarray
    """[N] int64 index into ``tasks``."""
    env_id: str
    """Gymnasium id that recreates an episode's env (Meta-World: with ``env_name=task``)."""
    observation_space: gym.Space
    action_space: gym.Space
    success_rate: float
    """Share of the expert episodes that reached success."""
    task_success_rates: dict[str, float] = field(default_factory=dict)
    """Expert success rate per task."""

    def __len__(self) -> int:
        return len(self.actions)


@dataclass
class ExpertEpisode:
    """One expert episode as collected, before it is stored."""

    seed: int
    task: str
    instruction: str
    observations: np.ndarray  # [T + 1, obs_dim] float32
    actions: np.ndarray  # [T] or [T, act_dim]
    rewards: np.ndarray  # [T]
    terminations: np.ndarray  # [T] bool
    truncations: np.ndarray  # [T] bool
    successes: np.ndarray  # [T + 1] bool, reset included

    @property
    def success(self) -> bool:
        return bool(self.successes.any())


# ----- experts ---------------------------------------------------------------------------------
def clevr_episodes(
    episodes: int, seed: int = 0, max_episode_steps: int | None = None
) -> Iterator[ExpertEpisode]:
    """Run the scripted CLEVR-Robot expert; episode ``i`` resets with seed ``seed + i``.

    The env samples the goal and its train-split instruction from the episode's seed.
    """
    import cleanrl_lago.envs  # noqa: F401  (registers CLEVR-Robot-v0)
    from cleanrl_lago.envs.clevr_expert import expert_action

    kwargs = {} if max_episode_steps is None else {"max_episode_steps": max_episode_steps}
    env = gym.make(CLEVR_ENV_ID, instruction_split="train", **kwargs)
    try:
        for i in range(episodes):
            obs, info = env.reset(seed=seed + i)
            ep = _Recorder(obs, info)
            while True:
                action = expert_action(env.unwrapped)
                obs, reward, terminated, truncated, info = env.step(action)
                ep.add(action, obs, reward, terminated, truncated, info)
                if terminated or truncated:
                    break
            yield ep.finish(seed + i, CLEVR_ENV_ID, info["instruction"], action_dtype=np.int64)
    finally:
        env.close()


def metaworld_episodes(
    tasks: list[str],
    episodes_per_task: int,
    seed: int = 0,
    stop_after_success: int | None = 10,
    max_episode_steps: int | None = None,
) -> Iterator[ExpertEpisode]:
    """Run Meta-World's scripted policies, ``episodes_per_task`` episodes per task in order.

    Episode ``j`` of the ``k``-th task resets with seed ``seed + k * episodes_per_task + j`` (the
    env itself is made with ``seed``); its instruction is drawn from the task's train phrasings with
    ``np.random.default_rng`` of that seed. With ``stop_after_success=K`` an episode is truncated
    ``K`` steps after its first successful step; ``None`` runs to the time limit.
    The stored action is the policy's output clipped to the action space, as the env executes it.
    """
    from metaworld.policies import ENV_POLICY_MAP

    from cleanrl_lago.envs.metaworld_tasks import check_task, make_metaworld_env, task_instructions

    for k, task in enumerate(tasks):
        check_task(task)
        env = make_metaworld_env(task, seed=seed, max_episode_steps=max_episode_steps)
        policy = ENV_POLICY_MAP[task]()
        low, high = env.action_space.low, env.action_space.high
        instructions = task_instructions(task, "train")
        try:
            for j in range(episodes_per_task):
                episode_seed = seed + k * episodes_per_task + j
                instruction = instructions[np.random.default_rng(episode_seed).integers(len(instructions))]
                obs, info = env.reset(seed=episode_seed)
                ep = _Recorder(obs, info)
                steps_since_success = None
                while True:
                    action = np.clip(policy.get_action(obs), low, high).astype(np.float32)
                    obs, reward, terminated, truncated, info = env.step(action)
                    if steps_since_success is not None:
                        steps_since_success += 1
                    elif info.get("success"):
                        steps_since_success = 0
                    if stop_after_success is not None and steps_since_success == stop_after_success:
                        truncated = True
                    ep.add(action, obs, reward, terminated, truncated, info)
                    if terminated or truncated:
                        break
                yield ep.finish(episode_seed, task, instruction, action_dtype=np.float32)
        finally:
            env.close()


class _Recorder:
    def __init__(self, obs: np.ndarray, info: dict[str, Any]):
        self.observations = [np.asarray(obs, dtype=np.float32)]
        self.successes = [bool(info.get("success", False))]
        self.actions: list[Any] = []
        self.rewards: list[float] = []
        self.terminations: list[bool] = []
        self.truncations: list[bool] = []

    def add(self, action, obs, reward, terminated, truncated, info) -> None:
        self.actions.append(action)
        self.observations.append(np.asarray(obs, dtype=np.float32))
        self.rewards.append(float(reward))
        self.terminations.append(bool(terminated))
        self.truncations.append(bool(truncated))
        self.successes.append(bool(info.get("success", False)))

    def finish(self, seed: int, task: str, instruction: str, action_dtype: type) -> ExpertEpisode:
        return ExpertEpisode(
            seed=seed,
            task=task,
            instruction=instruction,
            observations=np.stack(self.observations),
            actions=np.asarray(self.actions, dtype=action_dtype),
            rewards=np.asarray(self.rewards, dtype=np.float64),
            terminations=np.asarray(self.terminations, dtype=bool),
            truncations=np.asarray(self.truncations, dtype=bool),
            successes=np.asarray(self.successes, dtype=bool),
        )


# ----- writing ---------------------------------------------------------------------------------
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


@contextlib.contextmanager
def _minari_root(path: Path) -> Iterator[None]:
    """Point Minari at another datasets folder for the duration (it reads the variable on each call)."""
    previous = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(path)
    try:
        yield
    finally:
        if previous is None:
            del os.environ["MINARI_DATASETS_PATH"]
        else:
            os.environ["MINARI_DATASETS_PATH"] = previous


def collection_command(dataset_id: str) -> str:
    """The command that collects ``dataset_id`` (a guess from the id for ids not made by default)."""
    cmd = "python -m priors.demonstrations"
    if dataset_id == CLEVR_DATASET_ID:
        return f"{cmd} --env clevr"
    for tasks in ("mt10", "mt50"):
        if dataset_id == METAWORLD_DATASET_ID.format(tasks=tasks):
            return f"{cmd} --env metaworld --tasks {tasks}"
    env = "clevr" if "clevr" in dataset_id.lower() else "metaworld --tasks TASKS"
    return f"{cmd} --env {env} --dataset-id {dataset_id}"


def write_dataset(
    dataset_id: str,
    episodes: list[ExpertEpisode],
    *,
    env_id: str,
    observation_space: gym.Space,
    action_space: gym.Space,
    settings: dict[str, Any],
    overwrite: bool = False,
) -> Path:
    """Store ``episodes`` as the Minari dataset ``dataset_id``, all or nothing; returns its folder."""
    _check_new(dataset_id, overwrite)
    final = get_dataset_path(dataset_id)
    instructions = list(dict.fromkeys(ep.instruction for ep in episodes))
    tasks = list(dict.fromkeys(ep.task for ep in episodes))
    instruction_index = {s: i for i, s in enumerate(instructions)}
    task_index = {s: i for i, s in enumerate(tasks)}
    buffers = [
        EpisodeBuffer(
            id=i,
            seed=ep.seed,
            observations=ep.observations,
            actions=ep.actions,
            rewards=ep.rewards.tolist(),
            terminations=ep.terminations.tolist(),
            truncations=ep.truncations.tolist(),
            infos={
                "instruction_id": np.full(
                    len(ep.successes), instruction_index[ep.instruction], dtype=np.int64
                ),
                "task_id": np.full(len(ep.successes), task_index[ep.task], dtype=np.int64),
                "success": ep.successes,
            },
        )
        for i, ep in enumerate(episodes)
    ]
    metadata = {
        "format_version": FORMAT_VERSION,
        "env_id": env_id,
        "tasks": tasks,
        "instructions": instructions,
        "instruction_split": "train",
        "task_success_rates": _task_success_rates(episodes),
        **settings,
    }
    # A hidden folder next to the datasets: Minari's listings skip it, and the final rename stays
    # on one filesystem.
    root = get_dataset_path()
    staging = Path(tempfile.mkdtemp(prefix=".incomplete-", dir=root))
    try:
        with _minari_root(staging), warnings.catch_warnings():
            # Minari warns about optional fields (eval env, env spec, e-mail) we leave out on purpose.
            warnings.filterwarnings("ignore", category=UserWarning, module=r"minari\.")
            dataset = minari.create_dataset_from_buffers(
                dataset_id,
                buffers,
                observation_space=observation_space,
                action_space=action_space,
                algorithm_name="scripted expert",
                author="cleanrl-lago developers",
                code_permalink="priors/demonstrations.py",
                description=(
                    f"Scripted-expert demonstrations on {env_id} ({len(tasks)} task(s)) tagged with train-split "
                    f"language instructions. Per-step infos: instruction_id, task_id (indices into "
                    f"metadata['{METADATA_KEY}']['instructions'/'tasks']) and success."
                ),
            )
            dataset.storage.update_metadata({METADATA_KEY: metadata})
        namespace = parse_dataset_id(dataset_id)[0]
        if namespace is not None and namespace not in list_local_namespaces():
            create_namespace(namespace)
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():
            final.rename(staging / "replaced")
        (staging / dataset_id).rename(final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def _task_success_rates(episodes: list[ExpertEpisode]) -> dict[str, float]:
    outcomes: dict[str, list[bool]] = {}
    for ep in episodes:
        outcomes.setdefault(ep.task, []).append(ep.success)
    return {task: float(np.mean(s)) for task, s in outcomes.items()}


def _folder_size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def collect_clevr(
    dataset_id: str = CLEVR_DATASET_ID,
    episodes: int = 500,
    seed: int = 0,
    max_episode_steps: int | None = None,
    overwrite: bool = False,
    command: str | None = None,
) -> CollectionSummary:
    """Collect CLEVR-Robot expert episodes into the Minari dataset ``dataset_id``."""
    import cleanrl_lago.envs  # noqa: F401  (registers CLEVR-Robot-v0)
    from cleanrl_lago.envs.clevr_robot import ClevrRobotEnv

    _check_new(dataset_id, overwrite)
    start = time.perf_counter()
    gen = clevr_episodes(episodes, seed, max_episode_steps)
    collected = _with_progress(gen, episodes)
    spaces_env = ClevrRobotEnv()
    spaces_env.close()
    settings = {
        "env": "clevr",
        "seed": seed,
        "episodes": episodes,
        "max_episode_steps": max_episode_steps or gym.spec(CLEVR_ENV_ID).max_episode_steps,
        "command": command
        or f"python -m priors.demonstrations --env clevr --episodes {episodes} --seed {seed}",
    }
    path = write_dataset(
        dataset_id,
        collected,
        env_id=CLEVR_ENV_ID,
        observation_space=spaces_env.observation_space,
        action_space=spaces_env.action_space,
        settings=settings,
        overwrite=overwrite,
    )
    return _summary(dataset_id, path, collected, start)


def collect_metaworld(
    tasks: list[str],
    dataset_id: str,
    episodes_per_task: int = 20,
    seed: int = 0,
    stop_after_success: int | None = 10,
    max_episode_steps: int | None = None,
    overwrite: bool = False,
    command: str | None = None,
) -> CollectionSummary:
    """Collect Meta-World scripted-policy episodes for ``tasks`` into the Minari dataset ``dataset_id``."""
    from cleanrl_lago.envs.metaworld_tasks import check_task
    from cleanrl_lago.envs.metaworld_tasks import observation_space as metaworld_observation_space

    for task in tasks:
        check_task(task)
    if stop_after_success is not None and stop_after_success < 0:
        raise ValueError(f"stop_after_success must be >= 0 or None, got {stop_after_success}")
    _check_new(dataset_id, overwrite)
    start = time.perf_counter()
    gen = metaworld_episodes(tasks, episodes_per_task, seed, stop_after_success, max_episode_steps)
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
        "command": command
        or (
            f"python -m priors.demonstrations --env metaworld --tasks {','.join(tasks)} "
            f"--episodes-per-task {episodes_per_task} --seed {seed}"
        ),
    }
    path = write_dataset(
        dataset_id,
        collected,
        env_id=METAWORLD_ENV_ID,
        observation_space=observation_space,
        action_space=action_space,
        settings=settings,
        overwrite=overwrite,
    )
    return _summary(dataset_id, path, collected, start)


def _check_new(dataset_id: str, overwrite: bool) -> None:
    parse_dataset_id(dataset_id)  # a malformed id fails before any collection
    if get_dataset_path(dataset_id).exists() and not overwrite:
        raise FileExistsError(
            f"demonstrations dataset {dataset_id!r} already exists at {get_dataset_path(dataset_id)}; "
            "pass --overwrite (overwrite=True) to replace it, or choose another --dataset-id"
        )


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
        success_rate=float(np.mean([ep.success for ep in episodes])),
        task_success_rates=_task_success_rates(episodes),
        size_mb=_folder_size_mb(path),
        seconds=time.perf_counter() - start,
    )


# ----- loading ---------------------------------------------------------------------------------
def load_demonstrations(dataset_id: str, *, successful_only: bool = False) -> Demonstrations:
    """Load a dataset written by this module, flattened into steps.

    With ``successful_only`` the steps of episodes in which the expert never succeeded are left out
    (``success_rate`` still describes all the dataset's episodes).

    Raises:
        FileNotFoundError: no such dataset under ``MINARI_DATASETS_PATH`` (the message gives the
            command that collects it).
        ValueError: the dataset is unreadable, inconsistent, or not a cleanrl-lago demonstrations set.
    """
    path = get_dataset_path(dataset_id)
    if not (path / "data").is_dir():
        root = os.environ.get("MINARI_DATASETS_PATH", "~/.minari/datasets (MINARI_DATASETS_PATH is unset)")
        raise FileNotFoundError(
            f"no demonstrations dataset {dataset_id!r} under {root}. "
            f"Collect it with: {collection_command(dataset_id)}"
        )
    fix = f"delete it or collect it again with: {collection_command(dataset_id)} --overwrite"
    try:
        dataset = minari.load_dataset(dataset_id)
        meta = dataset.storage.metadata.get(METADATA_KEY)
        if meta is None:
            raise ValueError(
                f"Minari dataset {dataset_id!r} has no '{METADATA_KEY}' metadata: not collected by {__name__}"
            )
        episodes = list(dataset.iterate_episodes())
        return _flatten(dataset, meta, episodes, successful_only)
    except _NoSuccessfulEpisode:
        raise ValueError(
            f"demonstrations dataset {dataset_id!r} holds no successful episode (successful_only=True)"
        ) from None
    except (OSError, KeyError, ValueError, TypeError, AssertionError) as err:
        raise ValueError(
            f"demonstrations dataset {dataset_id!r} at {path} is unreadable or corrupt "
            f"({type(err).__name__}: {err}); {fix}"
        ) from err


class _NoSuccessfulEpisode(Exception):
    pass


def _flatten(
    dataset: minari.MinariDataset, meta: dict[str, Any], episodes: list, successful_only: bool
) -> Demonstrations:
    instructions, tasks = list(meta["instructions"]), list(meta["tasks"])
    if not episodes:
        raise ValueError("it holds no episodes")
    obs, actions, instruction_ids, task_ids, episode_ids = [], [], [], [], []
    successes: dict[str, list[bool]] = {}
    for ep in episodes:
        steps = len(ep.actions)
        infos = ep.infos or {}
        if len(ep.observations) != steps + 1 or any(
            len(infos.get(k, ())) != steps + 1 for k in ("instruction_id", "task_id", "success")
        ):
            raise ValueError(f"episode {ep.id} has inconsistent lengths")
        success = bool(np.any(infos["success"]))
        successes.setdefault(tasks[int(infos["task_id"][0])], []).append(success)
        if successful_only and not success:
            continue
        obs.append(np.asarray(ep.observations[:-1], dtype=np.float32))
        actions.append(np.asarray(ep.actions))
        instruction_ids.append(np.asarray(infos["instruction_id"][:-1], dtype=np.int64))
        task_ids.append(np.asarray(infos["task_id"][:-1], dtype=np.int64))
        episode_ids.append(np.full(steps, ep.id, dtype=np.int64))
    action_space = dataset.action_space
    discrete = isinstance(action_space, gym.spaces.Discrete)
    if not obs:
        raise _NoSuccessfulEpisode
    flat_instruction_ids, flat_task_ids = np.concatenate(instruction_ids), np.concatenate(task_ids)
    if np.any(flat_instruction_ids < 0) or np.any(flat_instruction_ids >= len(instructions)):
        raise ValueError("instruction ids out of range of the instruction table")
    if np.any(flat_task_ids < 0) or np.any(flat_task_ids >= len(tasks)):
        raise ValueError("task ids out of range of the task table")
    return Demonstrations(
        observations=np.concatenate(obs),
        actions=np.concatenate(actions).astype(np.int64 if discrete else np.float32),
        instructions=instructions,
        instruction_ids=flat_instruction_ids,
        episode_ids=np.concatenate(episode_ids),
        tasks=tasks,
        task_ids=flat_task_ids,
        env_id=str(meta["env_id"]),
        observation_space=dataset.observation_space,
        action_space=action_space,
        success_rate=float(np.mean([s for v in successes.values() for s in v])),
        task_success_rates={task: float(np.mean(v)) for task, v in successes.items()},
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

    from cleanrl_lago.envs.metaworld_tasks import resolve_tasks

    args = tyro.cli(Args, args=argv, description=__doc__.splitlines()[0])
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    command = "python -m priors.demonstrations " + shlex.join(sys.argv[1:] if argv is None else argv)
    with logging_redirect_tqdm():
        if args.env == "clevr":
            summary = collect_clevr(
                dataset_id=args.dataset_id or CLEVR_DATASET_ID,
                episodes=args.episodes,
                seed=args.seed,
                max_episode_steps=args.max_episode_steps,
                overwrite=args.overwrite,
                command=command,
            )
        else:
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
            )
    for task, rate in summary.task_success_rates.items():
        logger.info("expert success %-28s %6.1f%%", task, 100 * rate)
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
