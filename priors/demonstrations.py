"""Demonstrations tagged with language instructions, stored as Minari datasets.

This module stores and loads them; it runs no environment. An environment's package records
episodes (:class:`EpisodeRecorder`), writes them with :func:`write_dataset` given the spaces, and
prior training reads them back with :func:`load_demonstrations`. (cleanrl-lago's collection command
for its benchmarks is described in ``docs/demonstrations.md``.)

Storage. Each episode is a Minari episode (observations float32 with the final one, actions,
rewards, terminations, truncations; the episode's seed in its metadata). Its infos hold, per
step (reset included), the integer ``instruction_id`` and ``task_id`` and the bool ``success``.
The tables these ids index, the collection settings and the command live under the key
``"cleanrl_lago"`` of the dataset's ``metadata.json`` (:data:`METADATA_KEY`; the name is part of the
stored format). (Minari's hdf5 backend would store strings in infos too, but reads them back as
bytes, and a string per step is wasteful.)

A dataset is written to a hidden temporary folder under ``MINARI_DATASETS_PATH`` and renamed
into place when complete, so an interrupted write never leaves a partial dataset.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import minari
import numpy as np
from minari.data_collector import EpisodeBuffer
from minari.dataset.minari_dataset import parse_dataset_id
from minari.dataset.minari_storage import MinariStorage
from minari.namespace import create_namespace, list_local_namespaces
from minari.storage import get_dataset_path

logger = logging.getLogger(__name__)

METADATA_KEY = "cleanrl_lago"
"""The key of the dataset's ``metadata.json`` this module's tables and settings live under."""
FORMAT_VERSION = 1


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
    """The distinct task names (an environment without tasks: one task, named as the writer chose)."""
    task_ids: np.ndarray
    """[N] int64 index into ``tasks``."""
    env_id: str
    """The environment id the writer recorded."""
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
    """One expert episode as recorded (:class:`EpisodeRecorder`), before it is stored."""

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


class EpisodeRecorder:
    """Builds an :class:`ExpertEpisode` step by step: the reset's observation and info, then
    :meth:`add` after each step, then :meth:`finish`. ``info["success"]`` marks successful steps."""

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


def write_dataset(
    dataset_id: str,
    episodes: list[ExpertEpisode],
    *,
    env_id: str,
    observation_space: gym.Space,
    action_space: gym.Space,
    settings: dict[str, Any],
    overwrite: bool = False,
    code_permalink: str | None = None,
) -> Path:
    """Store ``episodes`` as the Minari dataset ``dataset_id``, all or nothing; returns its folder.

    ``env_id`` and ``settings`` (how the episodes were collected, ``"command"`` included) go into the
    dataset's metadata; ``code_permalink`` names the code that collected them.
    """
    check_new_dataset(dataset_id, overwrite)
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
        "task_success_rates": task_success_rates(episodes),
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
                code_permalink=code_permalink,
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
        replaced = staging / "replaced"
        if final.exists():
            final.rename(replaced)
        try:
            (staging / dataset_id).rename(final)
        except BaseException:
            if replaced.exists():
                replaced.rename(final)  # put the previous dataset back before giving up
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def task_success_rates(episodes: list[ExpertEpisode]) -> dict[str, float]:
    """The share of successful episodes per task."""
    outcomes: dict[str, list[bool]] = {}
    for ep in episodes:
        outcomes.setdefault(ep.task, []).append(ep.success)
    return {task: float(np.mean(s)) for task, s in outcomes.items()}


def check_new_dataset(dataset_id: str, overwrite: bool) -> None:
    """Refuse a malformed ``dataset_id``, or an existing one unless ``overwrite`` (call it before
    collecting, so that nothing is collected in vain)."""
    parse_dataset_id(dataset_id)  # a malformed id fails before any collection
    if get_dataset_path(dataset_id).exists() and not overwrite:
        raise FileExistsError(
            f"demonstrations dataset {dataset_id!r} already exists at {get_dataset_path(dataset_id)}; "
            "pass --overwrite (overwrite=True) to replace it, or choose another --dataset-id"
        )


# ----- loading ---------------------------------------------------------------------------------
def _require_dataset(dataset_id: str, collect_command: str | None) -> Path:
    path = get_dataset_path(dataset_id)
    if not (path / "data").is_dir():
        root = os.environ.get("MINARI_DATASETS_PATH", "~/.minari/datasets (MINARI_DATASETS_PATH is unset)")
        raise FileNotFoundError(
            f"no demonstrations dataset {dataset_id!r} under {root}. "
            + (f"Collect it with: {collect_command}" if collect_command else "Collect it first.")
        )
    return path


def dataset_metadata(dataset_id: str, *, collect_command: str | None = None) -> dict[str, Any]:
    """The metadata :func:`write_dataset` stored (``env_id``, ``tasks``, ``instructions``, the
    collection settings), read without loading the steps.

    Raises:
        FileNotFoundError: as :func:`load_demonstrations`.
        ValueError: the dataset has no such metadata.
    """
    path = _require_dataset(dataset_id, collect_command)
    try:
        meta = MinariStorage.read_raw_metadata(path / "data").get(METADATA_KEY)
    except (OSError, ValueError) as err:
        raise ValueError(
            f"demonstrations dataset {dataset_id!r} at {path} has unreadable metadata ({err})"
        ) from err
    if not isinstance(meta, dict):
        raise ValueError(
            f"Minari dataset {dataset_id!r} has no '{METADATA_KEY}' metadata: not written by {__name__}"
        )
    return meta


def load_demonstrations(
    dataset_id: str, *, successful_only: bool = False, collect_command: str | None = None
) -> Demonstrations:
    """Load a dataset written by :func:`write_dataset`, flattened into steps.

    With ``successful_only`` the steps of episodes in which the expert never succeeded are left out
    (``success_rate`` still describes all the dataset's episodes). ``collect_command``, the command
    that collects ``dataset_id`` if the caller knows it, is named in the errors.

    Raises:
        FileNotFoundError: no such dataset under ``MINARI_DATASETS_PATH``.
        ValueError: the dataset is unreadable, inconsistent, or not a demonstrations set of this module.
    """
    path = _require_dataset(dataset_id, collect_command)
    fix = (
        f"delete it or collect it again with: {collect_command} --overwrite"
        if collect_command
        else "delete it or collect it again (overwriting it)"
    )
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
