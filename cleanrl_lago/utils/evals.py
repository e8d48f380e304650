"""Saving a trained agent and evaluating it after loading, as CleanRL's ``cleanrl_utils/evals``. The three
``evaluate_*`` share CleanRL's signature, ``(model_path, make_env, env_id, eval_episodes, run_name, Model,
device, capture_video, *, seed)``: each rebuilds the agent from the saved file with the script's own ``Model``
and ``make_env`` (passed in, so this module knows no network), records videos under ``videos/{run_name}``,
and returns an :class:`Evaluation`. CLEVR-Robot's agent reads the instruction, so its evaluation also takes
the phrasings' ``split`` and ``greedy`` (keyword-only)."""

from __future__ import annotations

from typing import Any, NamedTuple

import gymnasium as gym
import torch

from cleanrl_lago.envs.metaworld_tasks import policy_input, task_one_hot
from cleanrl_lago.utils.monitoring import EpisodeStats
from cleanrl_lago.utils.runs import save_atomic


class Evaluation(NamedTuple):
    """The episodes of an evaluation, in the order they ended: their returns and successes (1.0 or 0.0)."""

    episodic_returns: list[float]
    successes: list[float]


def save_agent(model_path: str, args: Any, **state: Any) -> None:
    """Write the agent atomically: its state dicts, what is needed to rebuild it, and the plain arguments."""
    plain_args = {k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, bool, type(None)))}
    save_atomic({**state, "args": plain_args}, model_path)


def episode_records(envs: gym.vector.VectorEnv, act, eval_episodes: int, seed: int) -> list[tuple[float, int, float]]:
    """Step ``envs`` with ``act(obs) -> actions`` until at least ``eval_episodes`` episodes have ended
    (all that end at the last step count); (return, length, success) of each, in the order they ended."""
    obs, _ = envs.reset(seed=seed)
    stats, episodes = EpisodeStats(envs.num_envs), []
    while len(episodes) < eval_episodes:
        with torch.no_grad():
            obs, _, _, _, infos = envs.step(act(obs))
        episodes += stats.finished(infos)
    envs.close()
    return episodes


def run_episodes(envs: gym.vector.VectorEnv, act, eval_episodes: int, seed: int) -> Evaluation:
    """The returns and successes of :func:`episode_records`."""
    episodes = episode_records(envs, act, eval_episodes, seed)
    return Evaluation([r for r, _, _ in episodes], [s for _, _, s in episodes])


def _load(model_path: str, device: torch.device) -> dict[str, Any]:
    try:
        return torch.load(model_path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as e:
        raise ValueError(f"{model_path} is not a saved cleanrl-lago agent ({type(e).__name__}: {e})") from e


def check_env_id(model_path: str, saved_env_id: str, env_id: str) -> None:
    """Refuse to evaluate an agent on an environment other than the one it was trained on."""
    if saved_env_id != env_id:
        raise ValueError(f"{model_path} holds an agent for {saved_env_id}, not for {env_id}: pass env_id={saved_env_id!r}")


def metaworld_eval_envs(make_env, tasks, max_episode_steps, run_name, capture_video, seed, **kwargs):
    """One env per distinct task, raw rewards (no normalisation), as in training otherwise."""
    return gym.vector.SyncVectorEnv(
        [
            make_env(task, seed + i, i, capture_video, run_name, **kwargs, max_episode_steps=max_episode_steps)
            for i, task in enumerate(dict.fromkeys(tasks))
        ],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
        observation_mode="different",  # MT10 tasks declare different goal bounds
    )


def load_ppo_metaworld_policy(model_path, Model, device):
    """The mean action of a saved ``ppo_lago_metaworld`` agent on raw observations (a batch, one row per
    env), normalised with the agent's saved statistics and told its task for MT10."""
    saved = _load(model_path, device)
    tasks = list(dict.fromkeys(saved["tasks"]))
    agent = Model(saved["raw_obs_dim"], len(tasks), saved["act_dim"]).to(device)
    agent.load_state_dict(saved["agent"])
    one_hot = task_one_hot(tasks)
    one_hot = None if one_hot is None else torch.as_tensor(one_hot, device=device)

    def act(obs):
        with torch.no_grad():
            x = agent.obs_rms.normalize(torch.as_tensor(obs, dtype=torch.float64, device=device))
            x = x if one_hot is None else torch.cat([x, one_hot], dim=1)
            return agent.actor_mean(x).cpu().numpy()

    return act


def evaluate_ppo_metaworld(
    model_path: str,
    make_env,
    env_id: str,
    eval_episodes: int,
    run_name: str,
    Model,
    device: torch.device | str = "cpu",
    capture_video: bool = True,
    *,
    seed: int = 0,
) -> Evaluation:
    """Mean-action episodes of a ``ppo_lago_metaworld`` agent, one env per task, raw rewards."""
    saved = _load(model_path, device)
    check_env_id(model_path, saved["args"]["env_id"], env_id)
    envs = metaworld_eval_envs(
        make_env, saved["tasks"], saved["args"]["max_episode_steps"], run_name, capture_video, seed, gamma=None
    )
    return run_episodes(envs, load_ppo_metaworld_policy(model_path, Model, device), eval_episodes, seed)


def evaluate_sac(
    model_path: str,
    make_env,
    env_id: str,
    eval_episodes: int,
    run_name: str,
    Model,
    device: torch.device | str = "cpu",
    capture_video: bool = True,
    *,
    seed: int = 0,
) -> Evaluation:
    """Deterministic (``tanh(mean)``) episodes of a ``sac_lago`` agent, one env per task."""
    saved = _load(model_path, device)
    check_env_id(model_path, saved["args"]["env_id"], env_id)
    tasks = list(dict.fromkeys(saved["tasks"]))
    envs = metaworld_eval_envs(make_env, tasks, saved["args"]["max_episode_steps"], run_name, capture_video, seed)
    actor = Model(saved["obs_dim"], envs.single_action_space).to(device)
    actor.load_state_dict(saved["actor"])
    one_hot = task_one_hot(tasks)

    def act(obs):
        _, _, mean = actor.get_action(torch.as_tensor(policy_input(obs, one_hot), device=device))
        return mean.cpu().numpy()

    return run_episodes(envs, act, eval_episodes, seed)


def evaluate_ppo_clevr(
    model_path: str,
    make_env,
    env_id: str,
    eval_episodes: int,
    run_name: str,
    Model,
    device: torch.device | str = "cpu",
    capture_video: bool = True,
    *,
    seed: int = 0,
    split: str = "train",
    greedy: bool = True,
) -> Evaluation:
    """Greedy (argmax) or sampled episodes of a ``ppo_lago_clevr`` agent, given the instruction ``split``'s
    phrasings."""
    saved = _load(model_path, device)
    agent = Model(saved["obs_dim"], saved["n_actions"]).to(device)
    agent.load_state_dict(saved["agent"])
    envs = gym.vector.SyncVectorEnv(
        [make_env(env_id, 0, capture_video, run_name, split)], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP
    )
    if saved["env_id"] != env_id or saved["obs_dim"] != envs.single_observation_space.shape[0]:
        raise ValueError(
            f"{model_path} holds an agent for {saved['env_id']} with {saved['obs_dim']}-dim observations, "
            f"not for {env_id} with {envs.single_observation_space.shape[0]}"
        )
    generator = torch.Generator(device=device).manual_seed(seed)

    def act(obs):
        logits = agent.actor(torch.as_tensor(obs, dtype=torch.float32, device=device))
        if greedy:
            return logits.argmax(dim=-1).cpu().numpy()
        return torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(-1).cpu().numpy()

    return run_episodes(envs, act, eval_episodes, seed)
