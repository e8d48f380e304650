"""Recording demonstrations and writing them as a Minari dataset (all or nothing), for
:func:`priors.datasets.load_demonstrations` to read back; the stored format is described in
:mod:`priors.datasets`.

An environment's package records episodes (:class:`EpisodeRecorder`) and writes them with
:func:`write_dataset` given the spaces. A dataset is written to a hidden temporary folder under
``MINARI_DATASETS_PATH`` and renamed into place when complete, so an interrupted write never leaves a
partial dataset.
"""

from __future__ import annotations

import contextlib
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
from minari.namespace import create_namespace, list_local_namespaces
from minari.storage import get_dataset_path

from priors.datasets import DEMONSTRATOR, FORMAT_VERSION, METADATA_KEY


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
    policy: str = DEMONSTRATOR  # who acted in the episode
    behaviours: list[str] | None = None  # [T] who took each action (None: all the policy's)
    expert_actions: np.ndarray | None = None  # [T + 1] the demonstrator's action in each observation
    action_sets: np.ndarray | None = None  # [T + 1, n] bool, the good actions in each observation
    split_instructions: dict[str, str] = field(default_factory=dict)  # other splits' phrasings

    @property
    def success(self) -> bool:
        return bool(self.successes.any())


class EpisodeRecorder:
    """Builds an :class:`ExpertEpisode` step by step: the reset's observation and info, then
    :meth:`add` after each step, then :meth:`finish`. ``info["success"]`` marks successful steps.

    Episodes where another policy acts and the demonstrator labels every observation call
    :meth:`label` once per observation (before each :meth:`add`, and once for the final one)."""

    def __init__(self, obs: np.ndarray, info: dict[str, Any]):
        self.observations = [np.asarray(obs, dtype=np.float32)]
        self.successes = [bool(info.get("success", False))]
        self.actions: list[Any] = []
        self.rewards: list[float] = []
        self.terminations: list[bool] = []
        self.truncations: list[bool] = []
        self.behaviours: list[str] = []
        self.expert_actions: list[Any] = []
        self.action_sets: list[np.ndarray] = []

    def label(self, expert_action, action_set: np.ndarray | None = None) -> None:
        """The demonstrator's action in the latest observation, and optionally the set of actions
        as good as it (a bool mask over a discrete action space)."""
        if len(self.expert_actions) != len(self.observations) - 1:
            raise RuntimeError("label() once per observation: before each add(), and once after the last")
        self.expert_actions.append(expert_action)
        if action_set is not None:
            self.action_sets.append(np.asarray(action_set, dtype=bool))

    def add(self, action, obs, reward, terminated, truncated, info, behaviour: str = DEMONSTRATOR) -> None:
        """Record a step; ``behaviour`` names who took ``action``."""
        self.behaviours.append(behaviour)
        self.actions.append(action)
        self.observations.append(np.asarray(obs, dtype=np.float32))
        self.rewards.append(float(reward))
        self.terminations.append(bool(terminated))
        self.truncations.append(bool(truncated))
        self.successes.append(bool(info.get("success", False)))

    def finish(
        self,
        seed: int,
        task: str,
        instruction: str,
        action_dtype: type,
        *,
        policy: str = DEMONSTRATOR,
        split_instructions: dict[str, str] | None = None,
    ) -> ExpertEpisode:
        """The episode; ``policy`` names who acted, ``split_instructions`` other splits' phrasings."""
        labelled = bool(self.expert_actions)
        if labelled and len(self.expert_actions) != len(self.observations):
            raise RuntimeError(
                f"{len(self.expert_actions)} labels for {len(self.observations)} observations: label the final one too"
            )
        if self.action_sets and len(self.action_sets) != len(self.observations):
            raise RuntimeError("give an action set with every label, or none")
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
            policy=policy,
            behaviours=list(self.behaviours),
            expert_actions=np.asarray(self.expert_actions, dtype=action_dtype) if labelled else None,
            action_sets=np.stack(self.action_sets) if self.action_sets else None,
            split_instructions=dict(split_instructions or {}),
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
    if not episodes:
        raise ValueError("no episodes to write")
    for what, has in (
        ("demonstrator labels (expert_actions)", lambda ep: ep.expert_actions is not None),
        ("action sets", lambda ep: ep.action_sets is not None),
        ("instruction splits", lambda ep: sorted(ep.split_instructions)),
    ):
        if len({str(has(ep)) for ep in episodes}) > 1:
            raise ValueError(f"some episodes have {what} and others not (or other ones): all or none")
    splits = sorted(episodes[0].split_instructions)
    instructions = list(dict.fromkeys(ep.instruction for ep in episodes))
    for split in splits:  # after the train phrasings, so their ids stay what they were
        instructions += [
            s for s in dict.fromkeys(ep.split_instructions[split] for ep in episodes) if s not in instructions
        ]
    tasks = list(dict.fromkeys(ep.task for ep in episodes))
    policies = list(dict.fromkeys([DEMONSTRATOR] + [ep.policy for ep in episodes]))
    behaviours = list(dict.fromkeys([DEMONSTRATOR] + [b for ep in episodes for b in ep.behaviours or ()]))
    instruction_index = {s: i for i, s in enumerate(instructions)}
    task_index = {s: i for i, s in enumerate(tasks)}

    def infos(ep: ExpertEpisode) -> dict[str, np.ndarray]:
        n = len(ep.successes)
        acted = ep.behaviours or [DEMONSTRATOR] * (n - 1)
        out = {
            "instruction_id": np.full(n, instruction_index[ep.instruction], dtype=np.int64),
            "task_id": np.full(n, task_index[ep.task], dtype=np.int64),
            "success": ep.successes,
            "policy_id": np.full(n, policies.index(ep.policy), dtype=np.int64),
            # who acts in each observation; -1 in the final one, where nobody does
            "behaviour_id": np.array([behaviours.index(b) for b in acted] + [-1], dtype=np.int64),
        }
        for split in splits:
            out[f"{split}_instruction_id"] = np.full(
                n, instruction_index[ep.split_instructions[split]], dtype=np.int64
            )
        if ep.expert_actions is not None:
            out["expert_action"] = ep.expert_actions
        if ep.action_sets is not None:
            out["good_actions"] = ep.action_sets
        return out

    buffers = [
        EpisodeBuffer(
            id=i,
            seed=ep.seed,
            observations=ep.observations,
            actions=ep.actions,
            rewards=ep.rewards.tolist(),
            terminations=ep.terminations.tolist(),
            truncations=ep.truncations.tolist(),
            infos=infos(ep),
        )
        for i, ep in enumerate(episodes)
    ]
    metadata = {
        "format_version": FORMAT_VERSION,
        "env_id": env_id,
        "tasks": tasks,
        "instructions": instructions,
        "instruction_split": "train",
        "instruction_splits": splits,
        "policies": policies,
        "behaviours": behaviours,
        "task_success_rates": task_success_rates(episodes),
        "policy_success_rates": policy_success_rates(episodes),
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
                    f"language instructions. Per-step infos: instruction_id, task_id, policy_id, behaviour_id "
                    f"(indices into metadata['{METADATA_KEY}']['instructions'/'tasks'/'policies'/'behaviours']), "
                    "success, and where present expert_action, good_actions and <split>_instruction_id."
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
    """The share of successful episodes per task, among the demonstrator's own episodes."""
    outcomes: dict[str, list[bool]] = {}
    for ep in episodes:
        if ep.policy == DEMONSTRATOR:
            outcomes.setdefault(ep.task, []).append(ep.success)
    return {task: float(np.mean(s)) for task, s in outcomes.items()}


def policy_success_rates(episodes: list[ExpertEpisode]) -> dict[str, float]:
    """The share of successful episodes per acting policy."""
    outcomes: dict[str, list[bool]] = {}
    for ep in episodes:
        outcomes.setdefault(ep.policy, []).append(ep.success)
    return {policy: float(np.mean(s)) for policy, s in outcomes.items()}


def check_new_dataset(dataset_id: str, overwrite: bool) -> None:
    """Refuse a malformed ``dataset_id``, or an existing one unless ``overwrite`` (call it before
    collecting, so that nothing is collected in vain)."""
    parse_dataset_id(dataset_id)  # a malformed id fails before any collection
    if get_dataset_path(dataset_id).exists() and not overwrite:
        raise FileExistsError(
            f"demonstrations dataset {dataset_id!r} already exists at {get_dataset_path(dataset_id)}; "
            "pass --overwrite (overwrite=True) to replace it, or choose another --dataset-id"
        )
