"""A prior used directly as a policy: greedy (the most likely action, or the mean action) or sampled.

The library knows no environment: the caller passes a factory that makes the env of each
evaluation episode (:data:`EnvFactory`), and cleanrl-lago's commands pass theirs
(``cleanrl_lago/envs/prior_envs.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import gymnasium as gym
import numpy as np
import torch

from priors.modeling_base import Prior

InstructionSplit = Literal["train", "validation", "test", "heldout"]
"""The instruction phrasings a prior is trained on (``"train"``), selected on (``"validation"``), or
those held out for testing (``"test"``, or ``"heldout"`` in environments with two splits)."""


@dataclass(frozen=True)
class EvaluationEpisode:
    """What the env factory is told about the episode it makes an env for."""

    task: str | None
    """The task (one of ``tasks`` given to :func:`evaluate_as_policy`), or ``None`` when it has none."""
    split: InstructionSplit
    """Which instruction phrasings the episode's instruction comes from."""
    index: int
    """The episode's number among its task's episodes (0, 1, ...)."""
    seed: int
    """A seed for the env's construction, distinct per task and episode (the episode's reset seed is
    another: :func:`evaluate_as_policy` resets the ``i``-th env with ``seed + i``)."""
    max_episode_steps: int | None
    """The time limit to give the env (``None``: the env's own)."""


EnvFactory = Callable[[EvaluationEpisode], tuple[gym.Env, str | None]]
"""Makes the env of one evaluation episode and returns it with the episode's instruction, or with
``None`` when the env reports the instruction itself in ``info["instruction"]``. The env reports
success in ``info["success"]``."""


def evaluate_as_policy(
    prior: Prior,
    make_env: EnvFactory,
    *,
    tasks: Sequence[str] | None,
    split: InstructionSplit,
    episodes: int,
    seed: int,
    max_episode_steps: int | None = None,
    sample: bool = False,
) -> float:
    """Success rate of the prior acting greedily (argmax or mean action), or with actions sampled
    from it (``sample``: a torch generator seeded with ``seed``), ``episodes`` per task: the mean of
    :func:`episode_successes`."""
    return float(
        episode_successes(
            prior,
            make_env,
            tasks=tasks,
            split=split,
            episodes=episodes,
            seed=seed,
            max_episode_steps=max_episode_steps,
            sample=sample,
        ).mean()
    )


def episode_successes(
    prior: Prior,
    make_env: EnvFactory,
    *,
    tasks: Sequence[str] | None,
    split: InstructionSplit,
    episodes: int,
    seed: int,
    max_episode_steps: int | None = None,
    sample: bool = False,
) -> np.ndarray:
    """Whether each episode of :func:`evaluate_as_policy` succeeded, ``[n_tasks * episodes]`` bool,
    task by task (``episodes`` consecutive entries per task, in the order of ``tasks``).

    The episodes run together in one vector env, one env per episode, tasks in order. Episode
    ``e`` of the ``t``-th task gets the construction seed ``seed + 1000 * t + e``; the vector env is
    reset with ``seed`` (its ``i``-th env with ``seed + i``). ``tasks=None``: one task, ``None``.
    """
    factories, instructions = [], []
    for t, task in enumerate([None] if tasks is None else tasks):
        for e in range(episodes):
            env, instruction = make_env(
                EvaluationEpisode(task, split, e, seed + 1000 * t + e, max_episode_steps)
            )
            factories.append(lambda env=env: env)
            instructions.append(instruction)
    # Tasks may declare different observation bounds: observation_mode="different" lets them share a vector env.
    envs = gym.vector.SyncVectorEnv(
        factories, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP, observation_mode="different"
    )
    obs, infos = envs.reset(seed=seed)
    generator = torch.Generator(device=prior.device).manual_seed(seed)
    running = np.ones(envs.num_envs, dtype=bool)
    succeeded = np.zeros(envs.num_envs, dtype=bool)
    while running.any():
        current = [
            fixed if fixed is not None else infos["instruction"][i] for i, fixed in enumerate(instructions)
        ]
        with torch.no_grad():
            params = prior(obs, current)
            actions = _sampled(prior, params, generator) if sample else _greedy(prior, params)
        obs, _, terminations, truncations, infos = envs.step(actions)
        succeeded |= running & (infos.get("success", 0) > 0) & infos.get("_success", False)
        if "final_info" in infos:
            succeeded |= running & infos["_final_info"] & infos["final_info"]["success"].astype(bool)
        running &= ~(terminations | truncations)
    envs.close()
    return succeeded


def _greedy(prior: Prior, params: torch.Tensor) -> np.ndarray:
    actions = params.argmax(-1) if prior.config.is_discrete else params.chunk(2, dim=-1)[0]
    return actions.cpu().numpy()


def _sampled(prior: Prior, params: torch.Tensor, generator: torch.Generator) -> np.ndarray:
    if prior.config.is_discrete:
        actions = torch.multinomial(params.softmax(-1), 1, generator=generator).squeeze(-1)
    else:
        mean, log_std = params.chunk(2, dim=-1)
        actions = mean + log_std.exp() * torch.randn(mean.shape, generator=generator, device=mean.device)
    return actions.cpu().numpy()


def success_by_split(
    prior: Prior,
    make_env: EnvFactory,
    *,
    tasks: Sequence[str] | None,
    episodes: int,
    seed: int,
    max_episode_steps: int | None = None,
) -> dict[str, float]:
    """``{"policy_success_train": rate, "policy_success_heldout": rate}``: :func:`evaluate_as_policy`
    with each instruction split, on the evaluation episodes of a prior trained with ``seed``
    (evaluation seed ``seed + 1``)."""
    return {
        f"policy_success_{split}": evaluate_as_policy(
            prior,
            make_env,
            tasks=tasks,
            split=split,
            episodes=episodes,
            seed=seed + 1,
            max_episode_steps=max_episode_steps,
        )
        for split in ("train", "heldout")
    }
