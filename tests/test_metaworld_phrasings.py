"""Meta-World instructions in three splits (train / validation / test, ``"heldout"`` = ``"test"``) for
all 50 tasks, and noisy (DART) demonstrations: the noise moves the executed trajectory, while the
stored label stays the expert's clean action in each visited observation.

Minari reads ``MINARI_DATASETS_PATH`` on every call, so the fixture's monkeypatch keeps the datasets
in a temp folder.
"""

from __future__ import annotations

import re

import minari
import numpy as np
import pytest
from metaworld.policies import ENV_POLICY_MAP

from cleanrl_lago import demonstrations as demos
from cleanrl_lago.envs.metaworld_tasks import (
    ALL_TASKS,
    DESCRIPTION_TEMPLATES,
    MT10_TASKS,
    SPLITS,
    make_metaworld_env,
    task_instructions,
)
from cleanrl_lago.envs.splits import SPLIT_ALIASES
from priors.datasets import METADATA_KEY, load_demonstrations

THREE = ("train", "validation", "test")
MT10_COUNTS = {"train": 16, "validation": 4, "test": 6}
DESCRIBED_COUNTS = {"train": 12, "validation": 3, "test": 4}
# Each polite or framing opener belongs to one split, across all ten MT10 tasks.
MT10_FRAMES = {
    "Please ": "train",
    "Can you ": "train",
    "Your job is to ": "train",
    "Go ahead and ": "train",
    "Try to ": "train",
    "Let's ": "train",
    "Use the gripper to ": "train",
    "Would you ": "validation",
    "I'd like ": "validation",
    "Next up: ": "validation",
    "Could you ": "test",
    "I need ": "test",
    "How about ": "test",
}
# Synonyms that only MT10's test phrasings use.
TEST_ONLY_WORDS = ("claw", "end effector", "knob", "chest", "disk", "switch", "glass panel")
# Meta-World's own policies warn that their gains exceed the clipped action range.
pytestmark = pytest.mark.filterwarnings(r"ignore:Constant\(s\) may be too high")


def words(text: str) -> str:
    """Lower case, punctuation dropped: two phrasings that differ only there are one phrasing."""
    return " ".join(re.findall(r"[a-z0-9']+", text.lower()))


# ----- phrasings -------------------------------------------------------------------------------
def test_every_task_has_three_disjoint_splits_of_the_stated_sizes():
    assert SPLITS == ("train", "validation", "test", "heldout") and SPLIT_ALIASES == {"heldout": "test"}
    everything = []
    for task in ALL_TASKS:
        phrasings = {split: task_instructions(task, split) for split in THREE}
        counts = MT10_COUNTS if task in MT10_TASKS else DESCRIBED_COUNTS
        assert {split: len({words(p) for p in ps}) for split, ps in phrasings.items()} == counts, task
        for a, b in (("train", "validation"), ("train", "test"), ("validation", "test")):
            assert not {words(p) for p in phrasings[a]} & {words(p) for p in phrasings[b]}, (task, a, b)
        for phrasing in (p for ps in phrasings.values() for p in ps):
            assert phrasing[0].isupper() and phrasing[-1] in ".?" and "{" not in phrasing, phrasing
        everything += [p for ps in phrasings.values() for p in ps]
    # No phrasing names two tasks.
    assert len(set(everything)) == len(everything) == 10 * 26 + 40 * 19


def test_heldout_is_test_and_the_earlier_phrasings_kept_their_splits():
    for task in ALL_TASKS:
        assert task_instructions(task, "heldout") == task_instructions(task, "test"), task
    assert task_instructions("drawer-open-v3", "train")[:4] == [
        "Open the drawer.",
        "Pull the drawer out.",
        "Slide the drawer open.",
        "Grab the drawer handle and pull it open.",
    ]
    assert task_instructions("drawer-open-v3", "test")[:2] == [
        "Get the drawer open.",
        "Draw the drawer towards you until it is open.",
    ]
    assert task_instructions("sweep-into-v3", "train")[:3] == [
        "Sweep the puck into the hole.",
        "Please sweep the puck into the hole.",
        "Your job is to sweep the puck into the hole.",
    ]
    assert task_instructions("sweep-into-v3", "test")[:2] == [
        "Could you sweep the puck into the hole?",
        "I need you to sweep the puck into the hole.",
    ]
    # The second wording of a description, in some templates of each split.
    assert task_instructions("dial-turn-v3", "validation") == [
        "Would you turn the dial?",
        "I'd like you to rotate the knob.",
        "Next up: turn the dial.",
    ]


def test_splits_share_no_sentence_frame():
    frames = {split: {re.sub(r"\{\w+\}", "_", t) for t in DESCRIPTION_TEMPLATES[split]} for split in THREE}
    assert [len(frames[split]) for split in THREE] == [12, 3, 4]
    assert (
        not frames["train"] & frames["validation"]
        and not (frames["train"] | frames["validation"]) & frames["test"]
    )
    used_in: dict[str, set[str]] = {frame: set() for frame in MT10_FRAMES}
    for task in MT10_TASKS:
        for split in THREE:
            for phrasing in task_instructions(task, split):
                for frame in MT10_FRAMES:
                    if phrasing.startswith(frame):
                        used_in[frame].add(split)
                if phrasing.endswith(", please."):
                    assert split == "train", phrasing
    assert used_in == {frame: {split} for frame, split in MT10_FRAMES.items()}
    for word in TEST_ONLY_WORDS:
        splits = {s for t in MT10_TASKS for s in THREE for p in task_instructions(t, s) if word in words(p)}
        assert splits == {"test"}, word


def test_unknown_split_is_refused():
    with pytest.raises(
        ValueError,
        match=r"unknown instruction split 'tset': choose one of \['train', 'validation', 'test', 'heldout'\]",
    ):
        task_instructions("reach-v3", "tset")


# ----- noisy demonstrations (DART) -------------------------------------------------------------
SEED, STEPS = 0, 60


@pytest.fixture(scope="module")
def noisy(tmp_path_factory):
    """reach-v3, 4 episodes: two by the expert (seeds 0, 1), two with noise of std 0.5 (seeds 2, 3)."""
    path = tmp_path_factory.mktemp("minari")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINARI_DATASETS_PATH", str(path))
        summary = demos.collect_metaworld(
            ["reach-v3"],
            "t/reach/mixed-v0",
            episodes_per_task=4,
            seed=SEED,
            max_episode_steps=STEPS,
            behaviour=demos.parse_behaviours("expert,noise:0.5", env="metaworld"),
        )
        yield summary, minari.load_dataset("t/reach/mixed-v0"), load_demonstrations("t/reach/mixed-v0")


def test_behaviour_options_for_metaworld():
    assert demos.parse_behaviours("expert,noise:0.3", "1,3", env="metaworld") == {
        "expert": 0.25,
        "noise:0.3": 0.75,
    }
    for bad in ("random", "epsilon:0.3", "noise", "noise:-1", "noise:x"):
        with pytest.raises(
            ValueError, match=f"unknown behaviour '{bad}' for metaworld: use expert or noise:S"
        ):
            demos.parse_behaviours(bad, env="metaworld")
    with pytest.raises(ValueError, match="unknown behaviour 'noise:0.3' for clevr"):
        demos.parse_behaviours("noise:0.3")
    with pytest.raises(ValueError, match="unknown behaviour 'epsilon:0.3' for metaworld"):
        demos.main(["--env", "metaworld", "--tasks", "reach-v3", "--behaviour", "epsilon:0.3"])


def test_noisy_steps_execute_expert_plus_noise_and_store_the_experts_label(noisy):
    summary, dataset, d = noisy
    meta = dataset.storage.metadata[METADATA_KEY]
    assert meta["policies"] == meta["behaviours"] == ["expert", "noise:0.5"]
    assert meta["behaviour_shares"] == {"expert": 0.5, "noise:0.5": 0.5}
    assert meta["command"] == (
        "python -m cleanrl_lago.demonstrations --env metaworld --tasks reach-v3 --episodes-per-task 4 --seed 0 "
        "--max-episode-steps 60 --behaviour expert,noise:0.5 --behaviour-shares 0.5,0.5"
    )
    assert set(summary.policy_success_rates) == {"expert", "noise:0.5"}
    policy = ENV_POLICY_MAP["reach-v3"]()
    env = make_metaworld_env("reach-v3", seed=SEED, max_episode_steps=STEPS)
    noise_moved = []
    for episode in dataset.iterate_episodes():
        infos, n = episode.infos, len(episode.actions)
        acting = ["expert", "expert", "noise:0.5", "noise:0.5"][episode.id]
        assert meta["policies"][infos["policy_id"][0]] == acting
        assert [meta["behaviours"][b] for b in infos["behaviour_id"][:-1]] == [acting] * n
        assert infos["behaviour_id"][-1] == -1
        # Replay the executed actions from the episode's seed: the label in each visited observation is
        # the expert's clean action there, and a noisy action is that label plus the episode's noise.
        seed = SEED + int(episode.id)
        noise = np.random.default_rng((seed, 1))
        obs, _ = env.reset(seed=seed)
        for t in range(n + 1):
            np.testing.assert_array_equal(episode.observations[t], obs.astype(np.float32))
            label = np.clip(policy.get_action(obs), -1.0, 1.0).astype(np.float32)
            np.testing.assert_array_equal(infos["expert_action"][t], label)
            if t == n:
                break
            executed = label
            if acting == "noise:0.5":
                executed = np.clip(label + noise.normal(0.0, 0.5, 4), -1.0, 1.0).astype(np.float32)
            np.testing.assert_array_equal(episode.actions[t], executed)
            obs, _, _, _, info = env.step(episode.actions[t])
        noise_moved.append(not np.array_equal(episode.actions, infos["expert_action"][:-1]))
    assert noise_moved == [False, False, True, True]
    # Flattened for training: the labels, whoever acted.
    labels = np.concatenate([e.infos["expert_action"][:-1] for e in dataset.iterate_episodes()])
    np.testing.assert_array_equal(d.actions, labels)
    assert d.policies == ["expert", "noise:0.5"] and d.policy_ids.tolist() == d.behaviour_ids.tolist()


def test_noise_moves_the_trajectory_and_the_experts_episodes_stay_as_without_noise(noisy):
    _, dataset, _ = noisy
    clean = list(demos.metaworld_episodes(["reach-v3"], 4, seed=SEED, max_episode_steps=STEPS))
    assert [ep.policy for ep in clean] == ["expert"] * 4 and all(ep.expert_actions is None for ep in clean)
    for episode, reference in zip(dataset.iterate_episodes(), clean, strict=True):
        same_start = np.array_equal(episode.observations[0], reference.observations[0])
        same_path = len(episode.actions) == len(reference.actions) and np.array_equal(
            episode.observations, reference.observations
        )
        assert (same_start, same_path) == (True, episode.id < 2), episode.id
        if episode.id < 2:
            np.testing.assert_array_equal(episode.actions, reference.actions)


def test_every_episode_records_a_validation_and_a_test_phrasing(noisy):
    _, dataset, d = noisy
    train, validation, test = (task_instructions("reach-v3", split) for split in THREE)
    assert set(d.split_instruction_ids) == {"validation", "test"}
    for episode in dataset.iterate_episodes():
        seed = SEED + int(episode.id)
        rows = d.episode_ids == episode.id
        phrasings = np.random.default_rng((seed, 2))
        expected = {
            "train": train[np.random.default_rng(seed).integers(len(train))],
            "validation": validation[phrasings.integers(len(validation))],
            "test": test[phrasings.integers(len(test))],
        }
        stored = {
            "train": {d.instructions[i] for i in d.instruction_ids[rows]},
            **{
                split: {d.instructions[i] for i in d.split_instruction_ids[split][rows]}
                for split in ("validation", "test")
            },
        }
        assert stored == {split: {text} for split, text in expected.items()}, episode.id
