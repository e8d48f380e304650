"""Expert demonstrations: Meta-World instructions, collection into Minari datasets, loading back.

Minari reads ``MINARI_DATASETS_PATH`` on every call (``minari.storage.get_dataset_path``), so
setting it with monkeypatch before the first collection keeps every dataset in a temp folder.
"""

from __future__ import annotations

import gymnasium as gym
import minari
import numpy as np
import pytest
from metaworld.policies import ENV_POLICY_MAP

import cleanrl_lago.envs  # noqa: F401  (registers CLEVR-Robot-v0)
from cleanrl_lago import demonstrations as demos
from cleanrl_lago.envs.clevr_expert import expert_action
from cleanrl_lago.envs.clevr_robot import all_instructions
from cleanrl_lago.envs.metaworld_tasks import (
    MT10_TASKS,
    check_task,
    make_metaworld_env,
    resolve_tasks,
    task_instructions,
)
from priors.datasets import METADATA_KEY, dataset_metadata, load_demonstrations

MW_TASKS = ["reach-v3", "push-v3"]
# Meta-World's own policies warn that their gains exceed the clipped action range.
pytestmark = pytest.mark.filterwarnings(r"ignore:Constant\(s\) may be too high")


@pytest.fixture(scope="module")
def datasets_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("minari")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(path))
        yield path


@pytest.fixture(scope="module")
def clevr_set(datasets_path):
    summary = demos.collect_clevr("t/clevr/expert-v0", episodes=3, seed=10)
    return summary, load_demonstrations("t/clevr/expert-v0")


@pytest.fixture(scope="module")
def metaworld_set(datasets_path):
    # With these seeds, reach first succeeds after the 70-step cap and push before it.
    summary = demos.collect_metaworld(
        MW_TASKS, "t/mw/expert-v0", episodes_per_task=1, seed=0, stop_after_success=3, max_episode_steps=70
    )
    return summary, load_demonstrations("t/mw/expert-v0")


# ----- tasks (their instructions: test_metaworld_phrasings.py) ---------------------------------
def test_unknown_task_errors():
    with pytest.raises(
        ValueError, match=r"unknown Meta-World task 'reach'.*'reach-v3'.*Valid tasks: assembly-v3"
    ):
        check_task("reach")
    with pytest.raises(ValueError, match="'push-v3'"):
        make_metaworld_env("push-v2", seed=0)
    assert resolve_tasks("MT10") == list(MT10_TASKS)
    assert resolve_tasks("reach-v3, push-v3") == MW_TASKS


def test_metaworld_reset_seed_reproduces_the_episode():
    env = make_metaworld_env("push-v3", seed=0)
    first, _ = env.reset(seed=3)
    env.reset(seed=4)
    again, _ = env.reset(seed=3)
    assert np.array_equal(first, again)
    assert env.observation_space.contains(first)  # the goal bounds are declared


# ----- CLEVR-Robot -----------------------------------------------------------------------------
def test_clevr_dataset_shapes_instructions_and_success(clevr_set):
    summary, d = clevr_set
    n = summary.steps
    assert summary.episodes == 3 and n >= 3
    assert d.observations.shape == (n, 24) and d.observations.dtype == np.float32
    assert d.actions.shape == (n,) and d.actions.dtype == np.int64
    for name in ("instruction_ids", "episode_ids", "task_ids"):
        assert getattr(d, name).shape == (n,) and getattr(d, name).dtype == np.int64
    assert set(d.episode_ids) == {0, 1, 2}
    assert d.tasks == ["CLEVR-Robot-v0"] and d.env_id == "CLEVR-Robot-v0"
    assert d.action_space == gym.spaces.Discrete(40) and d.observation_space.shape == (24,)
    assert {d.instructions[i] for i in d.instruction_ids} <= set(all_instructions("train"))
    for split in ("validation", "test"):  # the table also holds the other splits' phrasings, listed after
        assert {d.instructions[i] for i in d.split_instruction_ids[split]} <= set(all_instructions(split))
        assert d.split_instruction_ids[split].min() > d.instruction_ids.max()
    assert d.success_rate == 1.0 == summary.success_rate


def test_clevr_actions_are_the_experts_on_replay(clevr_set, datasets_path):
    _, d = clevr_set
    dataset = minari.load_dataset("t/clevr/expert-v0")
    env = gym.make("CLEVR-Robot-v0")
    for meta, episode in zip(
        dataset.storage.get_episode_metadata(range(3)), dataset.iterate_episodes(), strict=True
    ):
        assert meta["seed"] == 10 + episode.id
        obs, info = env.reset(seed=meta["seed"])
        rows = d.episode_ids == episode.id
        assert d.instructions[d.instruction_ids[rows][0]] == info["instruction"]
        for t, action in enumerate(d.actions[rows]):
            np.testing.assert_array_equal(d.observations[rows][t], obs)
            assert expert_action(env.unwrapped) == action
            obs, *_ = env.step(int(action))
        np.testing.assert_array_equal(episode.observations[-1], obs)
        assert episode.terminations[-1] and not episode.truncations.any()


# ----- Meta-World ------------------------------------------------------------------------------
def test_metaworld_dataset_shapes_instructions_and_early_stop(metaworld_set):
    summary, d = metaworld_set
    n = summary.steps
    assert d.observations.shape == (n, 39) and d.observations.dtype == np.float32
    assert d.actions.shape == (n, 4) and d.actions.dtype == np.float32 and np.abs(d.actions).max() <= 1.0
    assert d.tasks == MW_TASKS and d.env_id == "Meta-World/MT1"
    for task_id, task in enumerate(d.tasks):
        used = {d.instructions[i] for i in d.instruction_ids[d.task_ids == task_id]}
        assert len(used) == 1 and used <= set(task_instructions(task, "train"))
    dataset = minari.load_dataset("t/mw/expert-v0")
    ends = []
    for episode in dataset.iterate_episodes():
        success = episode.infos["success"]  # reset included: index t is after action t
        end = min(70, int(np.argmax(success)) + 3) if success.any() else 70
        assert len(episode.actions) == end and episode.truncations[-1] and not episode.terminations.any()
        ends.append("stopped" if success.any() and end < 70 else "time limit")
    assert sorted(ends) == ["stopped", "time limit"]
    assert (
        d.task_success_rates == {"reach-v3": 0.0, "push-v3": 1.0}
        and d.success_rate == summary.success_rate == 0.5
    )


def test_metaworld_actions_are_the_experts_on_the_stored_observations(metaworld_set):
    _, d = metaworld_set
    for task_id, task in enumerate(d.tasks):
        policy = ENV_POLICY_MAP[task]()
        rows = d.task_ids == task_id
        replayed = np.stack(
            [np.clip(policy.get_action(o.astype(np.float64)), -1, 1) for o in d.observations[rows]]
        )
        # Stored observations are float32; the policy acted on float64 ones.
        np.testing.assert_allclose(replayed, d.actions[rows], atol=1e-4)


# ----- storage ---------------------------------------------------------------------------------
def test_existing_dataset_needs_overwrite(clevr_set, datasets_path):
    with pytest.raises(FileExistsError, match="--overwrite"):
        demos.collect_clevr("t/clevr/expert-v0", episodes=1)
    demos.collect_clevr("t/clevr/overwritten-v0", episodes=1)
    demos.collect_clevr("t/clevr/overwritten-v0", episodes=2, overwrite=True)
    assert load_demonstrations("t/clevr/overwritten-v0").episode_ids.max() == 1
    assert not list(datasets_path.glob(".incomplete-*"))


def test_interrupted_write_leaves_no_dataset(datasets_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(minari, "create_dataset_from_buffers", interrupted)
    with pytest.raises(KeyboardInterrupt):
        demos.collect_clevr("t/clevr/interrupted-v0", episodes=1)
    assert not (datasets_path / "t/clevr/interrupted-v0").exists()
    assert not list(datasets_path.glob(".incomplete-*"))


def test_missing_and_corrupt_datasets(clevr_set, datasets_path):
    missing = "cleanrl-lago/metaworld-mt10/expert-v0"
    with pytest.raises(FileNotFoundError, match=r"'cleanrl-lago/metaworld-mt10/expert-v0'.*Collect it first"):
        load_demonstrations(missing)
    with pytest.raises(
        FileNotFoundError,
        match=r"Collect it with: python -m cleanrl_lago.demonstrations --env metaworld --tasks mt10",
    ):
        dataset_metadata(missing, collect_command=demos.collection_command(missing))
    demos.collect_clevr("t/clevr/corrupt-v0", episodes=1)
    data_file = datasets_path / "t/clevr/corrupt-v0/data/main_data.hdf5"
    data_file.write_bytes(data_file.read_bytes()[:100])
    with pytest.raises(
        ValueError, match="unreadable or corrupt.*collect it again with: python -m cleanrl_lago.*--overwrite"
    ):
        load_demonstrations(
            "t/clevr/corrupt-v0", collect_command=demos.collection_command("t/clevr/corrupt-v0")
        )
    # The metadata alone is still readable: what a command needs to pick the environment.
    assert dataset_metadata("t/clevr/corrupt-v0")["env_id"] == "CLEVR-Robot-v0"


def test_command_line(datasets_path):
    summary = demos.main(
        ["--env", "clevr", "--episodes", "2", "--seed", "5", "--dataset-id", "t/cli/expert-v0"]
    )
    assert summary.episodes == 2 and summary.path.is_dir()
    meta = minari.load_dataset("t/cli/expert-v0").storage.metadata[METADATA_KEY]
    assert meta["command"] == (
        "python -m cleanrl_lago.demonstrations --env clevr --episodes 2 --seed 5 --dataset-id t/cli/expert-v0"
    )
    assert dataset_metadata("t/cli/expert-v0") == meta
    with pytest.raises(SystemExit):
        demos.main(["--env", "atari"])


def _pursued_goal(observation: np.ndarray) -> tuple[int, int, int]:
    """The goal the expert pursues, read from a CLEVR-Robot observation's goal encoding (after the 10 ball
    coordinates: ball A one-hot, relation one-hot, ball B one-hot)."""
    from cleanrl_lago.envs.clevr_robot import NUM_BALLS, RELATIONS

    code = observation[10:]
    a, rel = code[:NUM_BALLS].argmax(), code[NUM_BALLS : NUM_BALLS + len(RELATIONS)].argmax()
    return int(a), int(rel), int(code[NUM_BALLS + len(RELATIONS) :].argmax())


def _assert_every_phrasing_names(episode, goal: tuple[int, int, int]) -> None:
    from cleanrl_lago.envs.clevr_robot import instruction_text, split_templates

    for split, text in {"train": episode.instruction, **episode.split_instructions}.items():
        assert text in [instruction_text(goal, t) for t in split_templates(split)], (split, text)


def test_mislabelled_goals_name_the_opposite_relation():
    """The wrong-prior control: the same episodes (observations, actions, labels), but every phrasing names
    the goal with the opposite relation of the one the expert pursues (read from the observation's goal
    encoding)."""
    from cleanrl_lago.envs.clevr_robot import RELATIONS, instruction_text, split_templates

    opposite = {"left": "right", "right": "left", "front": "behind", "behind": "front"}
    true = list(demos.clevr_episodes(4, seed=3))
    wrong = list(demos.clevr_episodes(4, seed=3, mislabel_goals=True))
    for ep, bad in zip(true, wrong, strict=True):
        np.testing.assert_array_equal(ep.observations, bad.observations)
        np.testing.assert_array_equal(ep.expert_actions, bad.expert_actions)
        a, rel, b = _pursued_goal(ep.observations[0])
        _assert_every_phrasing_names(bad, (a, RELATIONS.index(opposite[RELATIONS[rel]]), b))
        assert ep.instruction in [instruction_text((a, rel, b), t) for t in split_templates("train")]
    with pytest.raises(ValueError, match="CLEVR-Robot only"):
        demos.main(["--env", "metaworld", "--tasks", "reach-v3", "--mislabel-goals"])


def test_shuffled_goals_name_one_other_goal_drawn_at_random(datasets_path):
    """The uninformative-prior control: the same episodes, but every phrasing of an episode names one goal, never
    the one the expert pursues (read from the observation's goal encoding), drawn with the episode's own generator
    (``default_rng((seed + i, 3))``: an independent reference of which goal)."""
    from cleanrl_lago.envs.clevr_robot import all_goals

    true = list(demos.clevr_episodes(6, seed=3))
    shuffled = list(demos.clevr_episodes(6, seed=3, shuffle_goals=True))
    both_flags = ["--mislabel-goals", "--shuffle-goals"]
    named_goals = []
    for i, (ep, bad) in enumerate(zip(true, shuffled, strict=True)):
        np.testing.assert_array_equal(ep.observations, bad.observations)
        np.testing.assert_array_equal(ep.expert_actions, bad.expert_actions)
        others = [g for g in all_goals() if g != _pursued_goal(ep.observations[0])]
        named = others[int(np.random.default_rng((3 + i, 3)).integers(79))]
        _assert_every_phrasing_names(bad, named)
        named_goals.append(named)
    assert len(set(named_goals)) > 1
    with pytest.raises(ValueError, match="choose one"):
        next(demos.clevr_episodes(1, mislabel_goals=True, shuffle_goals=True))
    with pytest.raises(ValueError, match="choose one"):  # before anything is written
        demos.main(["--env", "clevr", "--episodes", "1", "--dataset-id", "t/wrong/both-v0"] + both_flags)
    assert not (datasets_path / "t" / "wrong").exists()
    with pytest.raises(ValueError, match="CLEVR-Robot only"):
        demos.main(["--env", "metaworld", "--tasks", "reach-v3", "--shuffle-goals"])
