import os

# Headless rendering for the tests: OSMesa works on any CPU machine (scripts/setup.sh installs it).
os.environ.setdefault("MUJOCO_GL", "osmesa")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])


import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory):
    """A 2-layer random Llama with a word-level tokenizer, saved once per session (priors_helpers)."""
    from priors_helpers import make_tiny_lm

    return str(make_tiny_lm(tmp_path_factory.mktemp("tiny-lm")))


@pytest.fixture
def lago_cache(tmp_path_factory, monkeypatch):
    """The library's conversion cache in the session's temporary folder, not the user's home."""
    monkeypatch.setenv("CLEANRL_LAGO_CACHE", str(tmp_path_factory.getbasetemp() / "lago-cache"))


@pytest.fixture(scope="module")
def tiny_priors(tmp_path_factory, tiny_lm):
    """LM priors on a tiny random Llama for the script tests: CLEVR-Robot and Meta-World reach-v3."""
    import cleanrl_lago.envs  # noqa: F401
    from cleanrl_lago.envs.metaworld_tasks import observation_space as metaworld_observation_space
    from priors import build_prior, save_prior

    root = tmp_path_factory.mktemp("tiny-priors")
    lm = tiny_lm
    clevr_env = gym.make("CLEVR-Robot-v0")
    clevr = build_prior(
        observation_space=clevr_env.observation_space,
        action_space=clevr_env.action_space,
        lm=lm,
        env_id="CLEVR-Robot-v0",
        observation_dims=10,
        n_obs_tokens=2,
        hidden_size=32,
    )
    reach = build_prior(
        observation_space=metaworld_observation_space(["reach-v3"]),
        action_space=gym.spaces.Box(-1.0, 1.0, (4,), dtype=np.float32),
        lm=lm,
        env_id="Meta-World/reach-v3",
        tasks=["reach-v3"],
        n_obs_tokens=2,
        hidden_size=32,
    )
    reach.set_normalization(np.zeros(39), np.ones(39))
    return {"clevr": save_prior(clevr, root / "clevr"), "reach": save_prior(reach, root / "reach"), "lm": lm}


# Tests that run a script end to end (a subprocess or in-process) or load the real default LM are marked
# `slow`: `pytest -m "not slow"` is the quick pass (unit tests on tiny models); CI runs everything.
_RUNS_A_SCRIPT = {"run_script", "run_torchrun", "run_in_process", "run_sac_capturing_first_updates", "Popen"}
_REAL_LM_MODULES = {"test_default_priors", "test_priors_smollm2"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        code = getattr(getattr(item, "function", None), "__code__", None)
        names = set(code.co_names) if code else set()
        if names & _RUNS_A_SCRIPT or item.module.__name__ in _REAL_LM_MODULES:
            item.add_marker(pytest.mark.slow)
