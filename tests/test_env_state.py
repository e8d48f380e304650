"""get_env_state/set_env_state: a vector env restored into a freshly built one steps bit-identically."""

import functools
import io

import gymnasium as gym
import metaworld
import numpy as np
import pytest
import torch

import cleanrl_lago.envs  # noqa: F401  (registers CLEVR-Robot-v0)
from cleanrl_lago.envs.metaworld_tasks import MT10_TASKS, make_metaworld_env
from cleanrl_lago.utils.env_state import get_env_state, set_env_state

MAX_STEPS = 20  # Meta-World time limit: short, so that the runs cross episode boundaries


def make_metaworld(tasks, ppo_wrappers=True):
    """Meta-World envs as the PPO (ClipAction, NormalizeReward, TransformReward) and SAC scripts build them."""

    def thunk(task, i):
        def make():
            env = make_metaworld_env(task, seed=i, render_mode=None, max_episode_steps=MAX_STEPS)
            env = gym.wrappers.ClipAction(env)
            if ppo_wrappers:
                env = gym.wrappers.NormalizeReward(env, gamma=0.99)
                env = gym.wrappers.TransformReward(env, lambda r: np.clip(r, -10, 10))
            return env

        return make

    return gym.vector.SyncVectorEnv(
        [thunk(task, i) for i, task in enumerate(tasks)],
        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
        observation_mode="different",
    )


def make_clevr(num_envs=2):
    def make():
        return gym.wrappers.RecordEpisodeStatistics(gym.make("CLEVR-Robot-v0", instruction_split="train"))

    return gym.vector.SyncVectorEnv([make] * num_envs, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


def assert_same(a, b, path="out"):
    """Exact equality of step outputs; only the wall-clock episode time info["episode"]["t"] may differ."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{path}: keys {a.keys()} != {b.keys()}"
        for k in a:
            if not (k == "t" and path.endswith("episode']")):
                assert_same(a[k], b[k], f"{path}['{k}']")
    elif isinstance(a, np.ndarray) and a.dtype == object:
        assert isinstance(b, np.ndarray) and a.shape == b.shape, path
        for i, (x, y) in enumerate(zip(a.ravel(), b.ravel(), strict=True)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, np.ndarray | np.generic):
        assert isinstance(b, np.ndarray | np.generic) and a.dtype == b.dtype, f"{path}: {a!r} vs {b!r}"
        assert np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"), f"{path}: {a!r} != {b!r}"
    elif isinstance(a, list | tuple):
        assert type(a) is type(b) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{path}[{i}]")
    else:
        assert type(a) is type(b) and a == b, f"{path}: {a!r} != {b!r}"


def assert_no_mujoco_objects(obj, path="state"):
    """The state holds plain data: no MjModel, MjData or renderer."""
    assert not type(obj).__module__.startswith("mujoco"), f"{path}: {type(obj)}"
    if isinstance(obj, dict):
        for k, v in obj.items():
            assert_no_mujoco_objects(v, f"{path}[{k!r}]")
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            assert_no_mujoco_objects(v, f"{path}[{i}]")


def round_trip(state):
    buf = io.BytesIO()
    torch.save(state, buf)
    size = buf.tell()
    buf.seek(0)
    return torch.load(buf, weights_only=False), size


def check_resume(make, steps_before, steps_after, fresh_reset, seed=0, max_bytes_per_env=1_000_000):
    rng = np.random.default_rng(seed)
    old = make()
    old.action_space.seed(seed)
    old.reset(seed=seed)
    for _ in range(steps_before):
        old.step(old.action_space.sample())

    state = get_env_state(old)
    assert_no_mujoco_objects(state)
    state, size = round_trip(state)
    print(f"env state: {size} bytes for {old.num_envs} envs ({size // old.num_envs} per env)")
    assert size < max_bytes_per_env * old.num_envs

    new = make()
    if fresh_reset:
        new.action_space.seed(seed + 1)
        new.reset(seed=seed + 1000)
        new.step(new.action_space.sample())
    set_env_state(new, state)

    # The vector env's action_space RNG is restored: both sample the same actions.
    assert_same(old.action_space.sample(), new.action_space.sample(), "action_space.sample()")
    boundaries = 0
    for t in range(steps_after):
        action, new_action = old.action_space.sample(), new.action_space.sample()
        assert_same(action, new_action, f"step {t}: action_space.sample()")
        if t % 2 and isinstance(old.action_space, gym.spaces.Box):
            action = rng.uniform(-1.5, 1.5, old.action_space.shape)  # out of bounds: ClipAction clips
        out_old, out_new = old.step(action), new.step(action)
        assert_same(out_old, out_new, f"step {t}")
        boundaries += int(np.any(out_old[2] | out_old[3]))
    old.close()
    new.close()
    return boundaries


@pytest.mark.parametrize("fresh_reset", [True, False], ids=["reset-other-seed", "not-reset"])
def test_metaworld_reach_ppo_wrappers(fresh_reset):
    steps_before = int(np.random.default_rng(1).integers(MAX_STEPS + 3, 2 * MAX_STEPS))
    boundaries = check_resume(
        lambda: make_metaworld(["reach-v3"]), steps_before, 2 * MAX_STEPS + 5, fresh_reset
    )
    assert boundaries >= 2


def test_metaworld_pick_place_sac_wrappers():
    # pick-place keeps views into MuJoCo memory (init_left_pad = data.body("leftpad").xpos): re-created as views.
    boundaries = check_resume(
        lambda: make_metaworld(["pick-place-v3"], ppo_wrappers=False), 27, 45, True, seed=3
    )
    assert boundaries >= 2


def test_metaworld_mt10(monkeypatch):
    # Meta-World builds each task's 50 object/goal variants with a scratch env reset 50 times (1 s a task): 5
    # variants, built once for both vector envs, keep the test fast; the envs are otherwise the scripts' own.
    monkeypatch.setattr(metaworld, "_N_GOALS", 5)
    monkeypatch.setattr(metaworld, "MT1", functools.cache(metaworld.MT1))
    boundaries = check_resume(
        lambda: make_metaworld(list(MT10_TASKS)), MAX_STEPS + 4, 2 * MAX_STEPS + 2, True, seed=5
    )
    assert boundaries >= 2


def test_clevr():
    # Random pushes rarely succeed: the 50-step time limit gives the episode boundaries.
    boundaries = check_resume(make_clevr, 61, 110, True, seed=7)
    assert boundaries >= 2


def test_wrong_env_is_refused():
    clevr, reach = make_clevr(1), make_metaworld(["reach-v3"])
    with pytest.raises(ValueError):
        set_env_state(reach, get_env_state(clevr))
    with pytest.raises(ValueError):
        set_env_state(make_clevr(2), get_env_state(clevr))
