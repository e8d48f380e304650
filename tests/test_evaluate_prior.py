"""`python -m cleanrl_lago.evaluate_prior`: a prior acting on its own, greedy and sampled, with intervals."""

import json

import numpy as np
import pytest
import torch

from cleanrl_lago.envs.prior_envs import clevr_env
from cleanrl_lago.evaluate_prior import main, wilson_interval
from priors import evaluate_as_policy, load_prior


def test_wilson_interval_matches_the_formula_worked_by_hand():
    # p = 0.25, n = 20, z = 1.96: centre 0.2903, half-width 0.1784
    low, high = wilson_interval(5, 20)
    assert low == pytest.approx(0.1119, abs=1e-4) and high == pytest.approx(0.4687, abs=1e-4)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == pytest.approx(1.0)


def test_command_reports_what_the_library_measures(tiny_priors, tmp_path):
    out = tmp_path / "eval.json"
    args = [
        str(tiny_priors["clevr"]),
        "--episodes",
        "6",
        "--splits",
        "train",
        "test",
        "--seeds",
        "3",
        "--json",
        str(out),
    ]
    results = main(args)
    prior = load_prior(tiny_priors["clevr"])
    for split in ("train", "test"):
        for mode in ("greedy", "sampled"):
            rate = evaluate_as_policy(
                prior, clevr_env, tasks=None, split=split, episodes=6, seed=3, sample=mode == "sampled"
            )
            assert results[f"{split}/{mode}"]["success"] == pytest.approx(rate)
            assert results[f"{split}/{mode}"]["episodes"] == 6
    assert json.loads(out.read_text())["train/greedy"] == results["train/greedy"]


def test_sampled_actions_follow_the_prior_and_greedy_ones_its_argmax(tiny_priors):
    from priors.evaluation import _greedy, _sampled

    prior = load_prior(tiny_priors["clevr"])
    params = torch.tensor([[0.0, 2.0, 1.0] + [-30.0] * 37, [5.0] + [0.0] * 39])
    assert _greedy(prior, params).tolist() == [1, 0]
    generator = torch.Generator().manual_seed(0)
    draws = np.stack([_sampled(prior, params, generator) for _ in range(4000)])
    probs = params.softmax(-1).numpy()
    for row in range(2):
        counts = np.bincount(draws[:, row], minlength=40) / 4000
        assert np.abs(counts - probs[row]).max() < 0.03  # 4000 draws: standard error below 0.008


def test_per_task_rates_are_each_tasks_own_episodes(tmp_path):
    """Meta-World: the per-task figure of a task is its own block of episodes. The first task's episodes
    get the same seeds as an evaluation of that task alone, so (greedy is deterministic) its rate equals
    that evaluation's; the pooled rate is the mean of the per-task ones."""
    import gymnasium as gym

    from cleanrl_lago.envs.metaworld_tasks import observation_space as metaworld_observation_space
    from cleanrl_lago.envs.prior_envs import prior_environment
    from priors import build_prior, save_prior

    tasks = ["reach-v3", "push-v3"]
    prior = build_prior(
        observation_space=metaworld_observation_space(tasks),
        action_space=gym.spaces.Box(-1.0, 1.0, (4,), dtype=np.float32),
        kind="mlp",
        env_id="Meta-World/" + ",".join(tasks),
        tasks=tasks,
        hidden_size=16,
    )
    prior.set_normalization(np.zeros(39), np.ones(39))
    with torch.no_grad():
        prior.action_head.bias[:4] = torch.tensor([0.0, 1.0, 0.0, 0.0])  # some episodes succeed, not all
    folder = save_prior(prior, tmp_path / "prior")
    args = [
        str(folder),
        "--episodes",
        "3",
        "--splits",
        "train",
        "--modes",
        "greedy",
        "--max-episode-steps",
        "40",
    ]
    cell = main(args)["train/greedy"]
    assert set(cell["per_task"]) == set(tasks)
    assert cell["success"] == pytest.approx(np.mean(list(cell["per_task"].values())))
    alone = evaluate_as_policy(
        load_prior(folder),
        prior_environment(prior.config.env_id, ["reach-v3"]).make_env,
        tasks=["reach-v3"],
        split="train",
        episodes=3,
        seed=10_000,
        max_episode_steps=40,
    )
    assert cell["per_task"]["reach-v3"] == pytest.approx(alone)
    # --tasks: a task the prior never saw (a transfer check) is evaluated as that task's own episodes
    cell = main([*args, "--tasks", "window-open-v3"])["train/greedy"]
    assert set(cell["per_task"]) == {"window-open-v3"}
    unseen = evaluate_as_policy(
        load_prior(folder),
        prior_environment(prior.config.env_id, ["window-open-v3"]).make_env,
        tasks=["window-open-v3"],
        split="train",
        episodes=3,
        seed=10_000,
        max_episode_steps=40,
    )
    assert cell["success"] == pytest.approx(unseen)
