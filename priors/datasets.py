"""Demonstrations tagged with language instructions, stored as Minari datasets.

This module loads them; it runs no environment. An environment's package records episodes
(:class:`priors.recording.EpisodeRecorder`), writes them with :func:`priors.recording.write_dataset`
given the spaces, and prior training reads them back with :func:`load_demonstrations`. (cleanrl-lago's collection command
for its benchmarks is described in ``docs/demonstrations.md``.)

Storage. Each episode is a Minari episode (observations float32 with the final one, actions,
rewards, terminations, truncations; the episode's seed in its metadata). Its infos hold, per
step (reset included), the integer ``instruction_id``, ``task_id``, ``policy_id`` and
``behaviour_id`` and the bool ``success``; episodes relabelled by a demonstrator also hold
``expert_action`` (its action in each observation, the training label), episodes with action sets
``good_actions`` (``[T + 1, n]`` bool, discrete actions), and episodes with phrasings of other
instruction splits ``<split>_instruction_id``.
The tables these ids index, the collection settings and the command live under the key
``"cleanrl_lago"`` of the dataset's ``metadata.json`` (:data:`METADATA_KEY`; the name is part of the
stored format). (Minari's hdf5 backend would store strings in infos too, but reads them back as
bytes, and a string per step is wasteful.)
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import minari
import numpy as np
from minari.dataset.minari_storage import MinariStorage
from minari.storage import get_dataset_path

logger = logging.getLogger(__name__)

METADATA_KEY = "cleanrl_lago"
"""The key of the dataset's ``metadata.json`` this module's tables and settings live under."""
FORMAT_VERSION = 1
DEMONSTRATOR = "expert"
"""The name of the policy whose actions label every step (and the default acting policy)."""


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
    action_sets: np.ndarray | None = None
    """[N, n] bool, discrete actions only: the set of actions as good as the label in each step's
    observation (``None``: the dataset has no sets)."""
    behaviours: list[str] = field(default_factory=lambda: [DEMONSTRATOR])
    """Who can act in the dataset's episodes (:data:`DEMONSTRATOR`, or a behaviour policy such as
    ``"random"``); every step is labelled by the demonstrator whoever acted."""
    behaviour_ids: np.ndarray | None = None
    """[N] int64 index into ``behaviours``: who took the step's action (``None``: the demonstrator)."""
    policies: list[str] = field(default_factory=lambda: [DEMONSTRATOR])
    """The episodes' acting policies (e.g. ``"expert"``, ``"random"``, ``"epsilon:0.3"``)."""
    policy_ids: np.ndarray | None = None
    """[N] int64 index into ``policies``: the policy of the step's episode (``None``: the demonstrator)."""
    split_instruction_ids: dict[str, np.ndarray] = field(default_factory=dict)
    """Other instruction splits' phrasings of each step's task, e.g. ``{"validation": [N] int64}``
    (indices into ``instructions``); empty when the dataset records none."""
    policy_success_rates: dict[str, float] = field(default_factory=dict)
    """Success rate of the episodes of each acting policy."""

    def __len__(self) -> int:
        return len(self.actions)


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
    policies = list(meta.get("policies", [DEMONSTRATOR]))
    behaviours = list(meta.get("behaviours", [DEMONSTRATOR]))
    splits = list(meta.get("instruction_splits", []))
    if not episodes:
        raise ValueError("it holds no episodes")
    action_space = dataset.action_space
    discrete = isinstance(action_space, gym.spaces.Discrete)
    per_step = ["instruction_id", "task_id", "success"] + [f"{split}_instruction_id" for split in splits]
    optional = [
        k
        for k in ("policy_id", "behaviour_id", "expert_action", "good_actions")
        if k in (episodes[0].infos or {})
    ]
    if "good_actions" in optional and not discrete:
        raise ValueError("action sets (good_actions) need a Discrete action space")
    columns: dict[str, list[np.ndarray]] = {
        k: [] for k in ["obs", "actions", "episode_ids", *per_step, *optional]
    }
    successes: dict[str, list[bool]] = {}
    policy_outcomes: dict[str, list[bool]] = {}
    for ep in episodes:
        steps = len(ep.actions)
        infos = ep.infos or {}
        if len(ep.observations) != steps + 1 or any(
            len(infos.get(k, ())) != steps + 1 for k in per_step + optional
        ):
            raise ValueError(f"episode {ep.id} has inconsistent lengths")
        success = bool(np.any(infos["success"]))
        policy = policies[int(infos["policy_id"][0])] if "policy_id" in infos else DEMONSTRATOR
        policy_outcomes.setdefault(policy, []).append(success)
        if policy == DEMONSTRATOR:
            successes.setdefault(tasks[int(infos["task_id"][0])], []).append(success)
        # Another policy's episode is labelled by the demonstrator step by step: kept even if it failed.
        if successful_only and not success and policy == DEMONSTRATOR:
            continue
        columns["obs"].append(np.asarray(ep.observations[:-1], dtype=np.float32))
        labels = infos["expert_action"] if "expert_action" in infos else ep.actions
        columns["actions"].append(np.asarray(labels[:steps]))
        columns["episode_ids"].append(np.full(steps, ep.id, dtype=np.int64))
        for key in per_step + optional:
            if key not in ("success", "expert_action"):
                columns[key].append(np.asarray(infos[key][:-1]))
    if not columns["obs"]:
        raise _NoSuccessfulEpisode

    def ids(key: str, table: list) -> np.ndarray:
        values = np.concatenate(columns[key]).astype(np.int64)
        if np.any(values < 0) or np.any(values >= len(table)):
            raise ValueError(f"{key} out of range of its table")
        return values

    action_sets = None
    if "good_actions" in optional:
        action_sets = np.concatenate(columns["good_actions"]).astype(bool)
        if action_sets.shape[1:] != (action_space.n,):
            raise ValueError(f"good_actions of shape {action_sets.shape[1:]}, not ({action_space.n},)")
        if not action_sets.any(axis=1).all():
            raise ValueError("some steps have an empty action set (good_actions)")
    if successes:
        success_rate = float(np.mean([s for v in successes.values() for s in v]))
    else:
        success_rate = float(np.mean([s for v in policy_outcomes.values() for s in v]))
    return Demonstrations(
        observations=np.concatenate(columns["obs"]),
        actions=np.concatenate(columns["actions"]).astype(np.int64 if discrete else np.float32),
        instructions=instructions,
        instruction_ids=ids("instruction_id", instructions),
        episode_ids=np.concatenate(columns["episode_ids"]),
        tasks=tasks,
        task_ids=ids("task_id", tasks),
        env_id=str(meta["env_id"]),
        observation_space=dataset.observation_space,
        action_space=action_space,
        success_rate=success_rate,
        task_success_rates={task: float(np.mean(v)) for task, v in successes.items()},
        action_sets=action_sets,
        behaviours=behaviours,
        behaviour_ids=ids("behaviour_id", behaviours) if "behaviour_id" in optional else None,
        policies=policies,
        policy_ids=ids("policy_id", policies) if "policy_id" in optional else None,
        split_instruction_ids={split: ids(f"{split}_instruction_id", instructions) for split in splits},
        policy_success_rates={policy: float(np.mean(v)) for policy, v in policy_outcomes.items()},
    )
