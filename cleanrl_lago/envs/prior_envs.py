"""The environments of cleanrl-lago as the ``priors`` library takes them: the env id and tasks a
prior records, and the factory of the envs it is evaluated in as a policy
(:data:`priors.evaluation.EnvFactory`).

A prior's environment is named by an env id and its tasks: ``"CLEVR-Robot-v0"`` without tasks, or
a Meta-World id (``"Meta-World/..."``) with its task names, as in a prior's config and, with the id
``"Meta-World/MT1"``, in a demonstrations dataset's metadata.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import gymnasium as gym
from priors.evaluation import EnvFactory, EvaluationEpisode

import cleanrl_lago.envs  # noqa: F401  (registers CLEVR-Robot-v0)
from cleanrl_lago.envs.metaworld_tasks import check_task, make_metaworld_env, task_instructions

CLEVR_ENV_ID = "CLEVR-Robot-v0"
METAWORLD_NAMESPACE = "Meta-World"


@dataclass(frozen=True)
class PriorEnvironment:
    """What prior training records about an environment and how it evaluates a prior in it."""

    env_id: str
    """The id a prior records (``load_prior(env_id=...)`` checks it)."""
    tasks: list[str] | None
    """The tasks a prior records and is evaluated on; ``None`` for CLEVR-Robot."""
    make_env: EnvFactory


def clevr_env(episode: EvaluationEpisode) -> tuple[gym.Env, None]:
    """A CLEVR-Robot env drawing its goals' instructions from the episode's split; it reports the
    instruction in ``info["instruction"]``. The construction seed is unused (the reset seeds the goal)."""
    kwargs = {} if episode.max_episode_steps is None else {"max_episode_steps": episode.max_episode_steps}
    return gym.make(CLEVR_ENV_ID, instruction_split=episode.split, **kwargs), None


def metaworld_env(episode: EvaluationEpisode) -> tuple[gym.Env, str]:
    """The episode's Meta-World task, ending at its first success, made with the construction seed;
    its instruction cycles through the task's phrasings of the split by episode number."""
    phrasings = task_instructions(episode.task, episode.split)
    env = make_metaworld_env(
        episode.task,
        seed=episode.seed,
        max_episode_steps=episode.max_episode_steps,
        terminate_on_success=True,
    )
    return env, phrasings[episode.index % len(phrasings)]


def prior_environment(env_id: str, tasks: Sequence[str] | None = None) -> PriorEnvironment:
    """The environment named by ``env_id`` and ``tasks`` (a prior's config, or a dataset's metadata)."""
    if env_id == CLEVR_ENV_ID:
        return PriorEnvironment(CLEVR_ENV_ID, None, clevr_env)
    if env_id.startswith(METAWORLD_NAMESPACE + "/"):
        if not tasks:
            raise ValueError(f"a Meta-World environment ({env_id!r}) needs its task names")
        tasks = [check_task(task) for task in tasks]
        return PriorEnvironment(f"{METAWORLD_NAMESPACE}/{','.join(tasks)}", tasks, metaworld_env)
    raise ValueError(
        f"unknown environment {env_id!r}: cleanrl-lago evaluates priors on {CLEVR_ENV_ID!r} and "
        f"'{METAWORLD_NAMESPACE}/<tasks>'. For another environment, call priors.training.train with your own "
        "env_id, tasks and make_env."
    )
