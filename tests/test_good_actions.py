"""Targets that carry the expert's intent, and states off its path (issue 12, parts 1 and 2):
CLEVR-Robot's set of good pushes, episodes of other behaviour policies labelled by the expert, their
storage and loading, and prior training on the likelihood of the set."""

from __future__ import annotations

import json

import gymnasium as gym
import minari
import numpy as np
import pytest
import torch

import cleanrl_lago.envs  # noqa: F401  (registers CLEVR-Robot-v0)
from cleanrl_lago import demonstrations as demos
from cleanrl_lago.envs.clevr_expert import (
    GOOD_TOLERANCE,
    expert_action,
    expert_labels,
    good_actions,
    push_outcomes,
)
from cleanrl_lago.envs.clevr_robot import INSTRUCTION_TEMPLATES, ClevrRobotEnv, all_goals, instruction_text
from cleanrl_lago.envs.prior_envs import clevr_env
from priors import build_prior
from priors.datasets import METADATA_KEY, Demonstrations, load_demonstrations
from priors.training import TrainSettings, train, validate

# red in the middle, blue and green behind it, purple and cyan in front
SCENE = np.array([[0.0, 0.2], [-0.3, -0.1], [0.3, -0.1], [-0.3, 0.45], [0.3, 0.45]])


def scene_env(goal) -> ClevrRobotEnv:
    env = ClevrRobotEnv()
    env.reset(seed=0, options={"ball_positions": SCENE, "goal": goal})
    return env


# ----- the set of good pushes -------------------------------------------------------------------
def test_pushes_that_make_the_goal_hold_are_the_set_whatever_ball_they_push():
    env = scene_env((0, 2, 1))  # red in front of blue: 0.42 apart, just too far
    good = good_actions(env)
    # red left (2) or down-left (7), blue right (8) or up-right (12), and cyan down-left (39), which
    # knocks red into place: the set is not limited to the two balls the expert considers.
    assert np.flatnonzero(good).tolist() == [2, 7, 8, 12, 39]
    for action in range(40):
        assert env.goal_holds(data=None) is False
        assert bool(good[action]) == env.goal_holds(env.goal, _after(env, action))
    assert expert_action(env) == 2  # the lowest index among the expert's 16 candidates


def _after(env: ClevrRobotEnv, action: int):
    env.simulate(action)
    return env._scratch


def test_without_a_winning_push_the_set_is_the_pushes_within_the_tolerance_of_the_best_cost():
    env = scene_env((0, 0, 1))  # red left of blue: no single push does it
    holds, costs = push_outcomes(env)
    assert not holds.any()
    order = np.argsort(costs, kind="stable")
    assert order[:2].tolist() == [8, 12] and costs[12] - costs[8] == pytest.approx(0.0437, abs=1e-4)
    assert GOOD_TOLERANCE == 0.02
    assert np.flatnonzero(good_actions(env)).tolist() == [8]
    assert np.flatnonzero(good_actions(env, tolerance=0.05)).tolist() == [8, 12]
    assert np.flatnonzero(good_actions(env, tolerance=0.0)).tolist() == [8]


def test_equally_good_pushes_are_all_in_the_set_not_just_the_experts_tie_break():
    env = scene_env((3, 3, 0))  # purple behind red: moving purple down or red up cost the same
    _, costs = push_outcomes(env)
    assert costs[1] == pytest.approx(costs[27], abs=1e-12)
    assert expert_action(env) == 27
    assert np.flatnonzero(good_actions(env)).tolist() == [1, 27]


def test_expert_labels_equal_expert_action_and_good_actions_along_random_play():
    env = gym.make("CLEVR-Robot-v0")
    rng = np.random.default_rng(0)
    sizes = []
    for seed in range(3):
        env.reset(seed=seed)
        for _ in range(5):
            action, good = expert_labels(env.unwrapped)
            assert action == expert_action(env.unwrapped)
            np.testing.assert_array_equal(good, good_actions(env.unwrapped))
            assert good[action] and good.dtype == bool and good.shape == (40,)
            sizes.append(int(good.sum()))
            if env.step(int(rng.integers(40)))[2]:
                break
    assert min(sizes) >= 1


# ----- behaviours -------------------------------------------------------------------------------
def test_behaviour_options():
    assert demos.parse_behaviours("expert") == {"expert": 1.0}
    assert demos.parse_behaviours("expert,random,epsilon:0.3", "2,1,1") == {
        "expert": 0.5,
        "random": 0.25,
        "epsilon:0.3": 0.25,
    }
    assert demos.episode_policies({"expert": 0.5, "random": 0.25, "epsilon:0.3": 0.25}, 6) == [
        "expert",
        "expert",
        "expert",
        "random",
        "random",  # equal remainders: the policy listed first
        "epsilon:0.3",
    ]
    assert demos.episode_policies({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}, 4) == ["a", "a", "b", "c"]
    for bad in ("greedy", "epsilon:1.5", "epsilon:x", "random:2", "expert,expert"):
        with pytest.raises(ValueError, match="behaviour"):
            demos.parse_behaviours(bad)
    with pytest.raises(ValueError, match="2 non-negative numbers"):
        demos.parse_behaviours("expert,random", "1,2,3")


def test_wall_contact_on_hand_built_observations():
    inside = SCENE.ravel()
    at_left = SCENE.copy()
    at_left[2] = (-0.465, 0.1)  # 0.135 from the left wall: within radius + 0.01
    at_front = SCENE.copy()
    at_front[4] = (0.3, 0.56)  # 0.14 from the front wall
    near = SCENE.copy()
    near[1] = (-0.3, -0.155)  # 0.145 from the back wall: not touching
    obs = np.stack([inside, at_left.ravel(), at_front.ravel(), near.ravel()])
    touching = demos.balls_touching_wall(obs)
    assert touching.sum(axis=1).tolist() == [0, 1, 1, 0] and touching[1, 2] and touching[2, 4]
    assert demos.wall_contact_share(obs) == 0.5


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    path = tmp_path_factory.mktemp("minari")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(path))
        summary = demos.main(
            "--env clevr --episodes 4 --seed 3 --behaviour expert,random,epsilon:0.5 --behaviour-shares 2,1,1 "
            "--max-episode-steps 6 --dataset-id t/clevr/mixed-v0".split()
        )
        yield summary, minari.load_dataset("t/clevr/mixed-v0"), load_demonstrations("t/clevr/mixed-v0")


def test_other_behaviours_act_and_the_expert_labels_every_step(mixed):
    summary, dataset, d = mixed
    meta = dataset.storage.metadata[METADATA_KEY]
    assert meta["policies"] == ["expert", "random", "epsilon:0.5"] and meta["behaviours"] == [
        "expert",
        "random",
    ]
    assert meta["behaviour_shares"] == {"expert": 0.5, "random": 0.25, "epsilon:0.5": 0.25}
    assert meta["good_action_tolerance"] == GOOD_TOLERANCE
    env = gym.make("CLEVR-Robot-v0", max_episode_steps=6)
    acted_by = {"expert": 0, "random": 0}
    for episode in dataset.iterate_episodes():
        infos = episode.infos
        n = len(episode.actions)
        assert infos["good_actions"].shape == (n + 1, 40) and infos["good_actions"].dtype == bool
        assert infos["behaviour_id"][-1] == -1 and len(infos["expert_action"]) == n + 1
        policy = meta["policies"][infos["policy_id"][0]]
        assert policy == ["expert", "expert", "random", "epsilon:0.5"][episode.id]
        env.reset(seed=3 + int(episode.id))
        for t in range(n + 1):  # replay the actions taken; the labels are the expert's in each state
            label, good = expert_labels(env.unwrapped)
            assert infos["expert_action"][t] == label
            np.testing.assert_array_equal(infos["good_actions"][t], good)
            if t == n:
                break
            behaviour = meta["behaviours"][infos["behaviour_id"][t]]
            acted_by[behaviour] += 1
            if behaviour == "expert":
                assert episode.actions[t] == label
            if policy != "epsilon:0.5":
                assert behaviour == policy
            env.step(int(episode.actions[t]))
    assert acted_by["random"] >= 6 and acted_by["expert"] >= 2
    # Flattened for training: the labels, not the actions taken; every episode kept (successful_only
    # drops only the expert's own failures).
    assert len(d) == summary.steps == sum(len(e.actions) for e in dataset.iterate_episodes())
    assert d.action_sets.shape == (len(d), 40) and d.action_sets[np.arange(len(d)), d.actions].all()
    assert d.behaviours == ["expert", "random"] and d.policies == meta["policies"]
    assert np.bincount(d.behaviour_ids).sum() == len(d) and set(d.policy_ids) == {0, 1, 2}
    assert d.success_rate == 1.0 and d.policy_success_rates["expert"] == 1.0
    assert set(summary.wall_contact_shares) == {"expert", "random", "epsilon:0.5", "all"}
    # each step also carries a validation and a test phrasing of its own goal
    assert meta["instruction_splits"] == ["test", "validation"]
    for i in range(len(d)):
        train_text = d.instructions[d.instruction_ids[i]]
        goal = next(
            g
            for g in all_goals()
            if train_text in {instruction_text(g, t) for t in INSTRUCTION_TEMPLATES["train"]}
        )
        for split in ("validation", "test"):
            text = d.instructions[d.split_instruction_ids[split][i]]
            assert text in {instruction_text(goal, t) for t in INSTRUCTION_TEMPLATES[split]}


def test_a_dataset_without_sets_loads_as_before(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    demos.collect_metaworld(["reach-v3"], "t/reach/expert-v0", episodes_per_task=1, max_episode_steps=5)
    d = load_demonstrations("t/reach/expert-v0")
    assert d.action_sets is None and set(d.split_instruction_ids) == {"validation", "test"}
    assert d.behaviours == ["expert"]
    assert d.behaviour_ids.tolist() == [0] * 5 and d.policies == ["expert"]


# ----- training on the set ----------------------------------------------------------------------
def tiny_mlp_prior(n_actions: int = 4, seed: int = 0):
    return build_prior(
        observation_space=gym.spaces.Box(-1.0, 1.0, (3,), dtype=np.float32),
        action_space=gym.spaces.Discrete(n_actions),
        kind="mlp",
        hidden_size=8,
        seed=seed,
    )


def test_set_log_prob_is_the_log_of_the_probability_mass_of_the_set():
    prior = tiny_mlp_prior()
    obs = torch.tensor([[0.1, -0.2, 0.3], [0.5, 0.5, -0.5], [0.0, 0.9, 0.2]])
    sets = torch.tensor([[True, False, True, False], [False, True, False, False], [True, True, True, True]])
    probs = prior.distribution(obs, "push").probs
    expected = torch.log(torch.stack([probs[0, 0] + probs[0, 2], probs[1, 1], probs[2].sum()]))
    got = prior.set_log_prob(obs, "push", sets)
    torch.testing.assert_close(got, expected)
    assert got[2].item() == pytest.approx(0.0, abs=1e-6)
    torch.testing.assert_close(got[1], prior.log_prob(obs[1:2], "push", torch.tensor([1]))[0])
    got.sum().backward()  # differentiable
    with pytest.raises(ValueError, match="Discrete"):
        build_prior(
            observation_space=gym.spaces.Box(-1.0, 1.0, (3,)),
            action_space=gym.spaces.Box(-1.0, 1.0, (2,)),
            kind="mlp",
        ).set_log_prob(obs, "push", sets)


def test_validation_counts_mass_and_argmax_on_good_actions():
    prior = tiny_mlp_prior()
    obs = np.array([[0.1, -0.2, 0.3], [0.5, 0.5, -0.5], [0.0, 0.9, 0.2]], dtype=np.float32)
    probs = prior.distribution(torch.from_numpy(obs), "push").probs.detach().numpy()
    argmax = probs.argmax(1)
    sets = np.zeros((3, 4), dtype=bool)
    sets[0, argmax[0]] = True  # argmax good, label elsewhere
    sets[1, (argmax[1] + 1) % 4] = sets[1, (argmax[1] + 2) % 4] = True  # argmax not good
    sets[2] = True
    labels = np.array([(argmax[0] + 1) % 4, (argmax[1] + 1) % 4, argmax[2]])
    data = Demonstrations(
        observations=obs,
        actions=labels,
        instructions=["push", "pull"],
        instruction_ids=np.zeros(3, dtype=np.int64),
        episode_ids=np.arange(3),
        tasks=["t"],
        task_ids=np.zeros(3, dtype=np.int64),
        env_id="toy",
        observation_space=gym.spaces.Box(-1.0, 1.0, (3,), dtype=np.float32),
        action_space=gym.spaces.Discrete(4),
        success_rate=1.0,
        action_sets=sets,
    )
    m = validate(prior, data, np.arange(3))
    mass = (probs * sets).sum(1)
    assert m["val_good_argmax"] == pytest.approx(2 / 3) and m["val_accuracy"] == pytest.approx(1 / 3)
    assert m["val_good_mass"] == pytest.approx(mass.mean(), abs=1e-6)
    assert m["val_set_nll"] == pytest.approx(-np.log(mass).mean(), abs=1e-5)
    assert m["val_nll"] == pytest.approx(-np.log(probs[np.arange(3), labels]).mean(), abs=1e-5)
    # the other phrasing: a different instruction gives the MLP other words, so other numbers
    other = validate(prior, data, np.arange(3), instruction_ids=np.ones(3, dtype=np.int64))
    assert other["val_nll"] != pytest.approx(m["val_nll"], abs=1e-6)
    data.action_sets = None
    assert set(validate(prior, data, np.arange(3))) == {"val_nll", "val_accuracy"}


def test_training_with_sets_selects_on_the_set_loss_and_stops_without_a_step_cap(
    mixed, tmp_path, monkeypatch
):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(mixed[0].path.parents[2]))
    seen = []
    args = TrainSettings(
        dataset="t/clevr/mixed-v0",
        output=str(tmp_path / "p"),
        kind="mlp",
        observation_dims=10,
        hidden_size=16,
        batch_size=8,
        instructions_per_batch=2,
        val_fraction=0.25,
        patience=2,
        eval_episodes=1,
        eval_max_episode_steps=3,
        runs_dir=str(tmp_path / "runs"),
    )
    assert args.epochs is None  # no cap: early stopping ends training
    args.learning_rate = 0.03  # a quick plateau
    train(args, env_id="CLEVR-Robot-v0", make_env=clevr_env, on_epoch=lambda e, m: seen.append(m))
    best_value, best_epoch = np.inf, 0
    for epoch, m in enumerate(seen, 1):
        if m["val_set_nll"] < best_value - 1e-4:
            best_value, best_epoch = m["val_set_nll"], epoch
    assert len(seen) == best_epoch + 2  # stopped after `patience` epochs without a better set loss
    metrics = json.loads((tmp_path / "p" / "config.json").read_text())["provenance"]["metrics"]
    assert metrics["epoch"] == best_epoch and metrics["val_set_nll"] == pytest.approx(best_value, abs=1e-4)
    assert 0 < metrics["val_good_mass"] <= 1 and 0 <= metrics["val_good_argmax"] <= 1
    assert metrics["val_good_argmax"] >= metrics["val_accuracy"]  # the label is one of the good pushes
    assert metrics["val_set_nll"] <= metrics["val_nll"]
    # selected on the validation phrasings; the test phrasings are reported beside them, not used
    assert {"test_set_nll", "test_good_mass", "test_good_argmax", "test_nll", "test_accuracy"} <= set(metrics)
    assert metrics["test_set_nll"] != metrics["val_set_nll"]
    split = json.loads((tmp_path / "p" / "config.json").read_text())["provenance"]["instruction_split"]
    assert split == {"trained_on": "train", "selected_on": "validation", "held_out": "heldout"}
    assert list((tmp_path / "runs").iterdir())
