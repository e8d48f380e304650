"""MT10 in the Meta-World scripts (``--env-id MT10 --num-envs 10``) with a tiny MT10 prior: the envs hold
the ten tasks in MT10's order, the policy sees each env's task one-hot, the prior sees each env's own
observations with one train phrasing of that env's task, the saved agent names the tasks, and the
evaluation ran one episode per task, each equal to an episode replayed here on an env built from
scratch. (CLEVR-Robot has no tasks: ppo_lago_clevr.py has no MT10.)"""

import re

import gymnasium as gym
import numpy as np
import pytest
import torch
from priors_helpers import make_tiny_lm
from script_helpers import REPO, only_run, run_in_process, run_script, scalars

from cleanrl_lago.envs.metaworld_tasks import (
    MT10_TASKS,
    make_metaworld_env,
    observation_space,
    task_instructions,
)
from priors import build_prior, load_prior, save_prior

METAWORLD = REPO / "cleanrl_lago" / "ppo_lago_metaworld.py"
SAC = REPO / "cleanrl_lago" / "sac_lago.py"
RAW_OBS_DIM, N_TASKS = 39, len(MT10_TASKS)
EVAL_SEED = 1 + 10_000  # the scripts evaluate with --seed + 10_000, env i with that seed + i
EPISODE = 20  # --max-episode-steps
# What the prior's outputs at the same inputs may differ by between the script's batch and the test's:
# the LM's matrix products are summed in another order for another batch size (float32 rounding).
PRIOR_TOLERANCE = dict(rtol=1e-4, atol=1e-5)
# Likewise the policy's actions (a batch of ten envs there, one here) differ in float32's last bits; over a
# 20-step episode the return (up to about 200) moves by far less than 1e-6.
RETURN_TOLERANCE = dict(rtol=1e-6, atol=1e-6)


@pytest.fixture(scope="module")
def mt10_prior(tmp_path_factory):
    """An LM prior for the ten MT10 tasks on a tiny random Llama whose vocabulary holds every word of
    their phrasings, so that each phrasing has its own prompt (with the shared tiny LM several would
    be the same string of unknown words, and a swapped phrasing could pass unseen)."""
    root = tmp_path_factory.mktemp("mt10-prior")
    phrasings = [
        p for task in MT10_TASKS for split in ("train", "heldout") for p in task_instructions(task, split)
    ]
    words = sorted(
        {w for p in phrasings for w in re.findall(r"\w+|[^\w\s]+", p)} | {"Instruction", "Observation"}
    )
    lm = make_tiny_lm(root / "lm", words=words)
    prior = build_prior(
        observation_space=observation_space(list(MT10_TASKS)),
        action_space=gym.spaces.Box(-1.0, 1.0, (4,), dtype=np.float32),
        lm=str(lm),
        env_id="Meta-World/MT10",
        tasks=list(MT10_TASKS),
        n_obs_tokens=2,
        hidden_size=32,
    )
    prior.set_normalization(np.zeros(RAW_OBS_DIM), np.ones(RAW_OBS_DIM))
    return save_prior(prior, root / "prior")


def assert_each_env_prompts_one_train_phrasing_of_its_task(prior_path, raw_obs, prior_params):
    """``raw_obs[:, e]`` and ``prior_params[:, e]``: env e's states and the prior's outputs stored for them.
    Exactly one phrasing of env e's task reproduces them, and it is a train phrasing."""
    prior = load_prior(prior_path)
    chosen = []
    for env, task in enumerate(MT10_TASKS):
        obs = torch.as_tensor(raw_obs[:, env], dtype=torch.float32)
        stored = torch.as_tensor(prior_params[:, env])
        matches = []
        for split in ("train", "heldout"):
            for phrasing in task_instructions(task, split):
                with torch.no_grad():
                    expected = prior(obs, [phrasing] * len(obs))
                if torch.allclose(stored, expected, **PRIOR_TOLERANCE):
                    matches.append((split, phrasing))
        assert len(matches) == 1 and matches[0][0] == "train", (task, matches)
        chosen.append(matches[0][1])
    return chosen


def replay_episode(task, seed, act):
    """The return of one evaluation episode of ``task``: a fresh env, seeded as the scripts seed env i."""
    env = make_metaworld_env(task, seed=seed, max_episode_steps=EPISODE)
    obs, _ = env.reset(seed=seed)
    episodic_return, steps, done = 0.0, 0, False
    while not done:
        obs, reward, terminated, truncated, _ = env.step(act(obs))
        episodic_return, steps, done = episodic_return + float(reward), steps + 1, terminated or truncated
    env.close()
    assert steps == EPISODE
    return episodic_return


def test_ppo_metaworld_mt10(mt10_prior, tmp_path, monkeypatch):
    args = ["--env-id", "MT10", "--num-envs", "10", "--num-steps", "4", "--num-minibatches", "2"]
    args += ["--update-epochs", "1", "--total-timesteps", "40", "--max-episode-steps", str(EPISODE)]
    args += ["--prior", str(mt10_prior), "--kl-coef", "0.1", "--save-model", "--eval-episodes", "10"]
    g = run_in_process(METAWORLD, args, tmp_path, monkeypatch)

    assert g["tasks"] == list(MT10_TASKS)
    # The policy's input: the normalised observation, then env e's one-hot at position e, at every step.
    one_hots = g["obs"][..., RAW_OBS_DIM:]
    assert one_hots.shape == (4, N_TASKS, N_TASKS)
    assert torch.equal(one_hots, torch.eye(N_TASKS).expand(4, -1, -1))
    chosen = assert_each_env_prompts_one_train_phrasing_of_its_task(
        mt10_prior, g["raw_obs"], g["prior_params"].reshape(4, N_TASKS, 8).numpy()
    )
    assert chosen == g["env_instructions"].tolist()

    saved = torch.load(only_run(tmp_path) / "ppo_lago_metaworld.cleanrl_model", weights_only=True)
    assert saved["tasks"] == list(MT10_TASKS) and saved["raw_obs_dim"] == RAW_OBS_DIM
    assert saved["agent"]["actor_mean.0.weight"].shape == (64, RAW_OBS_DIM + N_TASKS)
    assert saved["agent"]["critic.0.weight"].shape == (64, RAW_OBS_DIM + N_TASKS)

    # One evaluation episode per task, in MT10's order: the saved agent's mean action on the normalised
    # observation and its task's one-hot, raw rewards.
    agent = g["Agent"](RAW_OBS_DIM, N_TASKS, 4)
    agent.load_state_dict(saved["agent"])
    expected = []
    for i, task in enumerate(MT10_TASKS):

        def act(obs, i=i):
            with torch.no_grad():
                x = agent.obs_rms.normalize(torch.as_tensor(obs[None], dtype=torch.float64))
                return agent.actor_mean(torch.cat([x, torch.eye(N_TASKS)[i : i + 1]], dim=1))[0].numpy()

        expected.append(replay_episode(task, EVAL_SEED + i, lambda obs, act=act: np.clip(act(obs), -1, 1)))
    assert len(g["successes"]) == N_TASKS
    np.testing.assert_allclose(g["episodic_returns"], expected, **RETURN_TOLERANCE)


def test_sac_mt10(mt10_prior, tmp_path):
    args = ["--env-id", "MT10", "--num-envs", "10", "--learning-starts", "50", "--total-timesteps", "100"]
    args += ["--batch-size", "16", "--max-episode-steps", str(EPISODE), "--buffer-size", "1000"]
    args += ["--prior", str(mt10_prior), "--kl-coef", "0.1", "--prior-batch-size", "20", "--no-prior-async"]
    args += ["--save-model", "--eval-episodes", "10"]
    result = run_script(SAC, args, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run = only_run(tmp_path)

    buffer = torch.load(run / "checkpoint.pt", weights_only=False)["replay_buffer"]
    size = buffer["size"]
    assert size % N_TASKS == 0 and size >= 50  # whole steps of the ten envs, learning started
    # Each step stores the ten envs' transitions in env order; the networks' input carries env e's one-hot.
    observations = buffer["observations"][:size].reshape(-1, N_TASKS, RAW_OBS_DIM + N_TASKS)
    np.testing.assert_array_equal(
        observations[..., RAW_OBS_DIM:], np.broadcast_to(np.eye(N_TASKS), (size // N_TASKS, N_TASKS, N_TASKS))
    )
    next_raw_obs = buffer["next_observations"][:size].reshape(-1, N_TASKS, RAW_OBS_DIM + N_TASKS)[
        ..., :RAW_OBS_DIM
    ]
    prior_params = buffer["prior_params"][:size].reshape(-1, N_TASKS, 8)
    assert_each_env_prompts_one_train_phrasing_of_its_task(mt10_prior, next_raw_obs, prior_params)

    saved = torch.load(run / "sac_lago.cleanrl_model", weights_only=True)
    assert saved["tasks"] == list(MT10_TASKS) and saved["obs_dim"] == RAW_OBS_DIM + N_TASKS
    assert saved["actor"]["fc1.weight"].shape == (256, RAW_OBS_DIM + N_TASKS)
    assert saved["qf1"]["fc1.weight"].shape == (256, RAW_OBS_DIM + N_TASKS + 4)

    # One evaluation episode per task, in MT10's order: the saved actor's squashed mean action.
    from cleanrl_lago.sac_lago import Actor

    actor = Actor(RAW_OBS_DIM + N_TASKS, gym.spaces.Box(-1.0, 1.0, (4,), dtype=np.float32))
    actor.load_state_dict(saved["actor"])
    expected = []
    for i, task in enumerate(MT10_TASKS):

        def act(obs, i=i):
            x = torch.as_tensor(np.concatenate([obs, np.eye(N_TASKS)[i]])[None], dtype=torch.float32)
            with torch.no_grad():
                mean, _ = actor(x)
            return torch.tanh(mean)[0].numpy()

        expected.append(replay_episode(task, EVAL_SEED + i, act))
    logged = scalars(run)["eval/episodic_return"]
    assert [step for step, _ in logged] == list(range(N_TASKS))
    np.testing.assert_allclose([v for _, v in logged], np.float32(expected), **RETURN_TOLERANCE)
