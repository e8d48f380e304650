import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import cleanrl_lago.envs  # noqa: F401  (registers CLEVR-Robot-v0)
from cleanrl_lago.envs.clevr_expert import evaluate, expert_action
from cleanrl_lago.envs.clevr_robot import (
    COLORS,
    INSTRUCTION_TEMPLATES,
    NUM_ACTIONS,
    OBS_DIM,
    PUSH_DIRECTIONS,
    RELATION_DIRECTIONS,
    RELATIONS,
    ClevrRobotEnv,
    all_goals,
    all_instructions,
    instruction_text,
    relation_holds,
    sample_instruction,
)

# Red alone in the middle, the other balls far away in the corners: every push is unobstructed.
OPEN_SCENE = np.array([[0.0, 0.2], [-0.45, -0.15], [0.45, -0.15], [-0.45, 0.55], [0.45, 0.55]])


def test_check_env_passes():
    check_env(gym.make("CLEVR-Robot-v0").unwrapped, skip_render_check=True)
    check_env(gym.make("CLEVR-Robot-v0", render_mode="rgb_array").unwrapped)


def test_registered_with_50_step_limit_and_spaces():
    env = gym.make("CLEVR-Robot-v0")
    assert env.spec.max_episode_steps == 50
    assert env.action_space == gym.spaces.Discrete(40)
    obs, info = env.reset(seed=0)
    assert obs.shape == (OBS_DIM,) == (24,) and obs.dtype == np.float32
    assert isinstance(info["instruction"], str) and info["success"] is False


@pytest.mark.parametrize("direction", range(8))
def test_each_push_direction_moves_the_ball_that_way(direction):
    env = ClevrRobotEnv()
    env.reset(seed=0, options={"ball_positions": OPEN_SCENE, "goal": (1, 0, 2)})
    env.step(0 * 8 + direction)
    moved = env.ball_positions() - OPEN_SCENE
    unit = PUSH_DIRECTIONS[direction] / np.linalg.norm(PUSH_DIRECTIONS[direction])
    along = moved[0] @ unit
    across = np.linalg.norm(moved[0] - along * unit)
    # Measured: 0.232 (cardinal) and 0.263 (diagonal) on this open scene.
    assert 0.18 < along < 0.32 and across < 1e-6
    assert np.abs(moved[1:]).max() < 1e-9  # nothing else moved


def test_pushes_address_the_right_ball():
    env = ClevrRobotEnv()
    towards_centre = [1, 4, 5, 6, 7]  # red +y; the corner balls diagonally inwards
    for ball, direction in enumerate(towards_centre):
        env.reset(seed=0, options={"ball_positions": OPEN_SCENE, "goal": (0, 0, 1)})
        env.step(ball * 8 + direction)
        moved = np.linalg.norm(env.ball_positions() - OPEN_SCENE, axis=1)
        assert np.argmax(moved) == ball and moved[ball] > 0.18
        assert np.delete(moved, ball).max() < 1e-9


def test_walls_stop_balls_but_not_the_pusher():
    env = ClevrRobotEnv()
    env.reset(seed=0, options={"ball_positions": OPEN_SCENE, "goal": (0, 0, 1)})
    for _ in range(3):
        env.step(3 * 8 + 1)  # purple, already near the front wall (y = 0.7), pushed +y
    purple_y = env.ball_positions()[3, 1]
    assert 0.55 < purple_y <= 0.7 - 0.13 + 0.01
    # Pushing it back -y places the pusher inside the wall (y > 0.7): it must not collide there.
    env.step(3 * 8 + 3)
    assert env.data.qpos[env._pusher_qpos[1]] > 0.4  # the pusher's start was purple_y + 0.15
    assert 0.18 < purple_y - env.ball_positions()[3, 1] < 0.32


def _rotate(v, degrees):
    t = np.deg2rad(degrees)
    return np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]) @ v


@pytest.mark.parametrize("rel", range(4))
def test_relation_check_on_hand_built_scenes(rel):
    b_pos, d = np.array([0.0, 0.2]), RELATION_DIRECTIONS[rel]
    goal = (0, rel, 1)

    def holds(a_pos):
        positions = OPEN_SCENE.copy()
        positions[0], positions[1] = a_pos, b_pos
        return relation_holds(positions, goal)

    assert holds(b_pos + 0.3 * d)
    assert holds(b_pos + 0.3 * _rotate(d, 40)) and holds(b_pos + 0.3 * _rotate(d, -40))
    assert not holds(b_pos + 0.3 * _rotate(d, 50)) and not holds(b_pos + 0.3 * _rotate(d, -50))
    assert not holds(b_pos - 0.3 * d)  # the opposite side
    assert not holds(b_pos + 0.45 * d)  # too far: the limit is 0.39
    assert holds(b_pos + 0.38 * d)
    # Each side holds exactly one of the four relations.
    positions = OPEN_SCENE.copy()
    positions[0], positions[1] = b_pos + 0.3 * d, b_pos
    assert [relation_holds(positions, (0, r, 1)) for r in range(4)] == [r == rel for r in range(4)]


def test_success_terminates_with_reward_and_encodes_goal():
    env = ClevrRobotEnv()
    scene = OPEN_SCENE.copy()
    obs, info = env.reset(seed=0, options={"ball_positions": scene, "goal": ("red", "right", "blue")})
    assert info["goal"] == (0, 1, 1) and not info["success"]
    assert obs[10 + 0] == 1 and obs[15 + 1] == 1 and obs[19 + 1] == 1 and obs[10:].sum() == 3
    np.testing.assert_allclose(obs[:10], scene.ravel(), atol=1e-6)
    for _ in range(20):
        obs, reward, terminated, truncated, info = env.step(expert_action(env))
        assert reward == float(info["success"]) == float(terminated)
        if terminated:
            break
    assert terminated and info["success"] and relation_holds(env.ball_positions(), (0, 1, 1))
    assert "red" in info["instruction"] and "blue" in info["instruction"]


def test_goals_sampled_among_false_ones_and_cover_all_80():
    env = ClevrRobotEnv()
    seen = set()
    for seed in range(400):
        _, info = env.reset(seed=seed)
        assert not info["success"]
        seen.add(info["goal"])
    assert len(all_goals()) == 80 and seen <= set(all_goals()) and len(seen) > 70


def test_simulate_predicts_step_exactly_and_leaves_scene_alone():
    env = ClevrRobotEnv()
    env.reset(seed=5)
    env.step(13)
    before = env.ball_positions()
    predicted = env.simulate(21)
    np.testing.assert_array_equal(env.ball_positions(), before)
    env.step(21)
    np.testing.assert_array_equal(env.ball_positions(), predicted)


def test_same_seed_same_episode():
    def rollout(seed):
        env = gym.make("CLEVR-Robot-v0")
        obs, info = env.reset(seed=seed)
        env.action_space.seed(seed)
        observations, instructions = [obs], [info["instruction"]]
        for _ in range(10):
            obs, *_, info = env.step(env.action_space.sample())
            observations.append(obs)
            instructions.append(info["instruction"])
        return np.array(observations), instructions

    obs_a, instr_a = rollout(7)
    obs_b, instr_b = rollout(7)
    np.testing.assert_array_equal(obs_a, obs_b)
    assert instr_a == instr_b and len(set(instr_a)) == 1
    assert not np.array_equal(rollout(8)[0], obs_a)


def test_three_splits_share_no_template_and_heldout_is_test():
    templates = {split: INSTRUCTION_TEMPLATES[split] for split in ("train", "validation", "test", "novel")}
    assert set(INSTRUCTION_TEMPLATES) == {"train", "validation", "test", "novel"}
    assert {k: len(v) for k, v in templates.items()} == {"train": 20, "validation": 6, "test": 8, "novel": 8}
    texts = {split: set(all_instructions(split)) for split in templates}
    for split, strings in texts.items():
        assert len(strings) == 80 * len(templates[split])  # every goal x template is a distinct string
    assert not texts["train"] & texts["validation"] and not texts["train"] & texts["test"]
    assert not texts["validation"] & texts["test"]
    for split in ("train", "validation", "test"):
        assert not texts[split] & texts["novel"]
    # the novel phrasings' nouns, verbs and fourth relation wording appear in no train phrasing
    train_words = {w.strip(".,?:;").lower() for text in texts["train"] for w in text.split()}
    for word in ("marble", "orb", "globe", "relocate", "shove", "farther", "closer", "camera", "than"):
        assert word not in train_words and any(word in text.lower() for text in texts["novel"])
    assert all_instructions("heldout") == all_instructions("test")
    for split, strings in [*texts.items(), ("heldout", texts["test"])]:
        env = ClevrRobotEnv(instruction_split=split)
        for seed in range(20):
            assert env.reset(seed=seed)[1]["instruction"] in strings
    # the same goal and template index across splits: the goal is drawn first, then the template
    goals = {split: ClevrRobotEnv(instruction_split=split).reset(seed=3)[1]["goal"] for split in texts}
    assert len(set(goals.values())) == 1


def test_relation_wordings_and_template_syntax():
    goal = (0, 3, 1)  # red behind blue
    rendered = [instruction_text(goal, t) for t in INSTRUCTION_TEMPLATES["train"]]
    assert rendered[0] == "Move the red ball behind the blue ball."
    assert rendered[6] == "Move the red ball so that it ends up in back of the blue ball."
    assert rendered[17] == "Taking the blue ball as the anchor, put the red ball behind it."
    assert instruction_text((2, 2, 4), INSTRUCTION_TEMPLATES["test"][3]) == (
        "Please make sure the green ball ends up on the front side of the cyan ball."
    )
    assert instruction_text((3, 0, 2), INSTRUCTION_TEMPLATES["validation"][1]) == (
        "Go and push the purple sphere left of the green sphere."
    )
    assert instruction_text((1, 1, 0), INSTRUCTION_TEMPLATES["novel"][4]) == (
        "Tap the blue orb until it rests farther right than the red orb."
    )
    for split in ("train", "validation", "test", "novel"):
        for text in all_instructions(split):
            assert "{" not in text and text[0].isupper() and text[-1] in ".?"
    rng = np.random.default_rng(0)
    assert sample_instruction(goal, "heldout", rng) in set(all_instructions("test"))


def test_bad_input_gets_clear_errors():
    env = ClevrRobotEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"outside 0\.\.39"):
        env.step(NUM_ACTIONS)
    with pytest.raises(ValueError, match=r"outside 0\.\.39"):
        env.step(-1)
    with pytest.raises(TypeError, match="integer action"):
        env.step(3.0)
    with pytest.raises(TypeError, match="integer action"):
        env.step(np.array([1, 2]))
    env.step(np.int64(3))
    env.step(np.array(4))
    with pytest.raises(ValueError, match="unknown instruction split 'valid'"):
        ClevrRobotEnv(instruction_split="valid")
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(options={"goals": (0, 0, 1)})
    with pytest.raises(ValueError, match="unknown goal part 'pink'"):
        env.reset(options={"goal": ("pink", "left", "red")})
    with pytest.raises(ValueError, match="itself"):
        env.reset(options={"goal": (1, 0, 1)})
    with pytest.raises(ValueError, match=r"\(5, 2\)"):
        env.reset(options={"ball_positions": np.zeros((4, 2))})


def test_render_shows_each_ball_colour_top_down():
    env = ClevrRobotEnv(render_mode="rgb_array", width=128, height=128)
    env.reset(seed=0, options={"ball_positions": OPEN_SCENE, "goal": (0, 0, 1)})
    frame = env.render()
    assert frame.shape == (128, 128, 3) and frame.dtype == np.uint8
    # The camera looks down with +x to the right and +y (front) up: red is in the centre,
    # blue (-x, -y) bottom-left, green (+x, -y) bottom-right, purple top-left, cyan top-right.
    rgb = frame.astype(int)
    red = (rgb[..., 0] > 150) & (rgb[..., 1] < 80) & (rgb[..., 2] < 80)
    ys, xs = np.nonzero(red)
    assert len(xs) > 50 and abs(xs.mean() - 64) < 8
    blue = (rgb[..., 2] > 150) & (rgb[..., 0] < 80) & (rgb[..., 1] < 120)
    ys_b, xs_b = np.nonzero(blue)
    assert len(xs_b) > 50 and xs_b.mean() < 50 and ys_b.mean() > 78  # image rows grow downwards
    green = (rgb[..., 1] > 120) & (rgb[..., 0] < 80) & (rgb[..., 2] < 100)
    ys_g, xs_g = np.nonzero(green)
    assert len(xs_g) > 50 and xs_g.mean() > 78 and ys_g.mean() > 78
    env.close()


def test_record_video_writes_an_mp4(tmp_path):
    env = gym.wrappers.RecordVideo(
        gym.make("CLEVR-Robot-v0", render_mode="rgb_array", width=64, height=64), str(tmp_path / "videos")
    )
    env.reset(seed=0)
    for _ in range(5):
        env.step(env.action_space.sample())
    env.close()
    videos = list((tmp_path / "videos").glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 1000


def test_scripted_expert_solves_most_goals():
    rate, length, _ = evaluate(episodes=30, seed=1000)
    assert rate >= 0.9 and length < 10


def test_colours_and_relations_named_in_order():
    assert COLORS == ("red", "blue", "green", "purple", "cyan")
    assert RELATIONS == ("left", "right", "front", "behind")
