"""LaGO's soft-token prior through a truncated LM (``kind="lm"``, ``lm_layers=k``), on Llama and Gemma-3.

The reference is the LM's own ``output_hidden_states`` over the whole sequence (prompt tokens, then the
soft tokens), one instruction at a time without padding: ``hidden_states[k]`` at the last soft token
for ``k`` layers, ``last_hidden_state`` (after the final norm) for all of them."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from priors_helpers import INSTRUCTIONS, make_tiny_gemma, observation_space, random_obs, trained_like

from priors import LoraSettings, build_prior

BOX = gym.spaces.Box(-1.0, 1.0, (3,), dtype=np.float32)

pytestmark = pytest.mark.usefixtures("lago_cache")


@pytest.fixture(scope="module")
def tiny_gemma(tmp_path_factory):
    return str(make_tiny_gemma(tmp_path_factory.mktemp("tiny-gemma")))


def reference_features(prior, obs, instructions, layers):
    """Each row's state after ``layers`` layers at its last soft token, from one unpadded full pass."""
    rows = []
    embed = prior.lm.get_input_embeddings()
    with torch.no_grad():
        soft = prior.soft_tokens(prior.normalize(obs))
        for row, instruction in enumerate(instructions):
            ids = torch.tensor([prior.token_ids(instruction)])
            inputs = torch.cat([embed(ids), soft[row : row + 1]], dim=1)
            out = prior.lm(inputs_embeds=inputs, output_hidden_states=True)
            hidden = out.last_hidden_state if layers is None else out.hidden_states[layers]
            rows.append(hidden[0, -1])
    return torch.stack(rows)


@pytest.mark.parametrize("lm_name", ["tiny_lm", "tiny_gemma"])
@pytest.mark.parametrize("layers", [1, None])
def test_truncated_soft_token_pass_equals_the_lms_own_hidden_states(request, lm_name, layers):
    lm = request.getfixturevalue(lm_name)
    prior = trained_like(
        build_prior(observation_space=observation_space(), action_space=BOX, lm=lm, lm_layers=layers)
    )
    # Prompts of 5-14 tokens: longer than the tiny Gemma's sliding window of 3, so the cached pass must keep
    # every prompt key and let the mask apply the window.
    obs, instructions = random_obs(6), [INSTRUCTIONS[i % 4] for i in range(6)]
    expected = reference_features(prior, obs, instructions, layers)
    with torch.no_grad():
        normalized = prior.normalize(obs)
        cached = prior.features(normalized, instructions, use_cache=True)
        full = prior.features(normalized, instructions, use_cache=False)
    torch.testing.assert_close(cached, expected, atol=1e-4, rtol=0)
    torch.testing.assert_close(full, expected, atol=1e-4, rtol=0)
    # Layer 1 and the final output differ: the truncation is real, not the same number twice.
    other = reference_features(prior, obs, instructions, None if layers == 1 else 1)
    assert (other - expected).abs().max() > 1e-2


def test_the_layers_above_lm_layers_never_run(tiny_lm):
    prior = build_prior(observation_space=observation_space(), action_space=BOX, lm=tiny_lm, lm_layers=1)
    calls = []
    handle = prior.lm.layers[1].register_forward_hook(lambda *args: calls.append(1))
    try:
        with torch.no_grad():
            prior(random_obs(4), INSTRUCTIONS)
            prior.features(prior.normalize(random_obs(4)), INSTRUCTIONS, use_cache=False)
    finally:
        handle.remove()
    assert calls == [] and all(kv.shape[0] == 1 for kv in prior._prefix_cache.values())


def test_all_layers_is_the_untruncated_prior(tiny_lm):
    obs = random_obs(5)
    untruncated = build_prior(observation_space=observation_space(), action_space=BOX, lm=tiny_lm)
    every_layer = build_prior(
        observation_space=observation_space(), action_space=BOX, lm=tiny_lm, lm_layers=2
    )
    with torch.no_grad():
        torch.testing.assert_close(
            every_layer(obs, INSTRUCTIONS[1]), untruncated(obs, INSTRUCTIONS[1]), atol=0, rtol=0
        )
    with pytest.raises(ValueError, match="lm_layers must be in 1..2"):
        build_prior(observation_space=observation_space(), action_space=BOX, lm=tiny_lm, lm_layers=3)


def test_lora_sits_on_the_layers_the_truncated_pass_runs(tiny_lm):
    prior = build_prior(
        observation_space=observation_space(),
        action_space=BOX,
        lm=tiny_lm,
        lm_layers=1,
        lora=LoraSettings(r=2),
    )
    adapted = {name.split(".")[1] for name, _ in prior.lm.named_parameters() if "lora_" in name}
    assert adapted == {"0"}


def test_soft_tokens_start_at_the_scale_the_first_layer_sees(tiny_lm, tiny_gemma):
    """Gemma multiplies token embeddings by sqrt(width) inside its embedding module, which inputs_embeds skip:
    the soft tokens' scale is that of the scaled embeddings, on both families."""
    for lm in (tiny_lm, tiny_gemma):
        prior = build_prior(observation_space=observation_space(), action_space=BOX, lm=lm)
        embed = prior.lm.get_input_embeddings()
        ids = torch.arange(embed.weight.shape[0])
        with torch.no_grad():
            real = embed(ids).float().pow(2).mean().sqrt()
        torch.testing.assert_close(prior.token_scale[0], real, rtol=1e-5, atol=0)
