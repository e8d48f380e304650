"""Quantised LMs on CPU: NF4 gradients must equal those of the dequantised model; int8 and bf16 work too."""

import bitsandbytes as bnb
import gymnasium as gym
import pytest
import torch
from bitsandbytes.functional import dequantize_4bit, has_avx512bf16
from priors_helpers import INSTRUCTIONS, observation_space, random_obs

from priors import build_prior, load_lm, load_prior, save_prior

DISCRETE = gym.spaces.Discrete(5)

pytestmark = pytest.mark.usefixtures("lago_cache")  # conftest: a temporary conversion cache


def dequantised_reference(nf4_lm, folder):
    """The fp32 model whose linear weights are exactly the NF4 model's dequantised weights."""
    reference = load_lm(folder, quantization="none")
    linears = dict(reference.model.named_modules())
    count = 0
    for name, module in nf4_lm.model.named_modules():
        if isinstance(module, bnb.nn.Linear4bit):
            weight = dequantize_4bit(module.weight.data, module.weight.quant_state).float()
            linears[name].weight.data.copy_(weight)
            count += 1
    assert count == 2 * 7  # q, k, v, o, gate, up, down in both layers
    return reference


def projection_grads(prior, obs, instructions, actions):
    prior.zero_grad()
    prior.nll(obs, instructions, actions).backward()
    return torch.cat([p.grad.flatten() for p in prior.projection.parameters()])


def test_nf4_gradients_match_dequantised_fp32(tiny_lm):
    nf4_lm = load_lm(tiny_lm, quantization="nf4")
    assert any(isinstance(m, bnb.nn.Linear4bit) for m in nf4_lm.model.modules())
    reference_lm = dequantised_reference(nf4_lm, tiny_lm)
    assert nf4_lm.fingerprint == reference_lm.fingerprint  # quantisation keeps the LM's identity

    nf4 = build_prior(observation_space=observation_space(), action_space=DISCRETE, lm=nf4_lm)
    reference = build_prior(observation_space=observation_space(), action_space=DISCRETE, lm=reference_lm)
    reference.load_state_dict(nf4.trainable_state_dict(), strict=False)
    obs, instructions = random_obs(8), [INSTRUCTIONS[i % 4] for i in range(8)]
    actions = torch.arange(8) % 5

    # The trap's trigger: an inference call in eval() mode without grad, then training.
    nf4.eval()
    with torch.no_grad():
        nf4(obs, instructions)
    nf4.train()
    for use_cache in (True, False):
        grads, expected = [], []
        for prior, out in ((nf4, grads), (reference, expected)):
            prior.zero_grad()
            features = prior.features(prior.normalize(obs), instructions, use_cache=use_cache)
            torch.nn.functional.cross_entropy(prior.action_head(features), actions).backward()
            out.append(torch.cat([p.grad.flatten() for p in prior.projection.parameters()]))
        relative = (grads[0] - expected[0]).norm() / expected[0].norm()
        assert relative < 1e-5, f"use_cache={use_cache}: relative gradient error {relative:.2e}"


@pytest.mark.skipif(not has_avx512bf16(), reason="the repacking trap exists only on CPUs with AVX512-BF16")
def test_the_guarded_trap_is_real(tiny_lm):
    """With bitsandbytes' CPU repacking left on, the same check fails: the guard is needed."""
    nf4_lm = load_lm(tiny_lm, quantization="nf4")
    reference_lm = dequantised_reference(nf4_lm, tiny_lm)
    for module in nf4_lm.model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            module.support_avx512bf16_for_cpu = True
    nf4 = build_prior(observation_space=observation_space(), action_space=DISCRETE, lm=nf4_lm)
    reference = build_prior(observation_space=observation_space(), action_space=DISCRETE, lm=reference_lm)
    reference.load_state_dict(nf4.trainable_state_dict(), strict=False)
    obs, instructions = random_obs(8), [INSTRUCTIONS[i % 4] for i in range(8)]
    actions = torch.arange(8) % 5
    nf4.eval()
    with torch.no_grad():
        nf4(obs, instructions)
    nf4.train()
    grads = projection_grads(nf4, obs, instructions, actions)
    expected = projection_grads(reference, obs, instructions, actions)
    assert (grads - expected).norm() / expected.norm() > 1e-2


def test_int8_prior_is_close_to_fp32_and_trains(tiny_lm):
    int8_lm = load_lm(tiny_lm, quantization="int8")
    assert any(isinstance(m, bnb.nn.Linear8bitLt) for m in int8_lm.model.modules())
    int8 = build_prior(observation_space=observation_space(), action_space=DISCRETE, lm=int8_lm)
    reference = build_prior(observation_space=observation_space(), action_space=DISCRETE, lm=tiny_lm)
    assert (
        int8.config.lm_fingerprint == reference.config.lm_fingerprint and int8.config.quantization == "int8"
    )
    obs, instructions = random_obs(8), [INSTRUCTIONS[i % 4] for i in range(8)]
    with torch.no_grad():
        expected = reference(obs, instructions)
        assert (int8(obs, instructions) - expected).abs().max() < 0.02 * expected.abs().max()
        cached = int8.features(int8.normalize(obs), instructions, use_cache=True)
        full = int8.features(int8.normalize(obs), instructions, use_cache=False)
    torch.testing.assert_close(cached, full, atol=1e-4, rtol=0)
    int8.nll(obs, instructions, torch.zeros(8, dtype=torch.long)).backward()
    assert int8.projection[0].weight.grad.abs().sum() > 0


def test_bf16_prior_is_close_to_fp32_trains_and_reloads(tiny_lm, tmp_path):
    bf16_lm = load_lm(tiny_lm, quantization="bf16")
    assert {p.dtype for p in bf16_lm.model.parameters()} == {torch.bfloat16}
    bf16 = build_prior(observation_space=observation_space(), action_space=DISCRETE, lm=bf16_lm)
    reference = build_prior(observation_space=observation_space(), action_space=DISCRETE, lm=tiny_lm)
    assert bf16.config.lm_fingerprint == reference.config.lm_fingerprint
    assert bf16.config.quantization == "bf16"
    assert {p.dtype for p in bf16.trainable_parameters()} == {torch.float32}  # only the LM is bf16
    obs, instructions = random_obs(8), [INSTRUCTIONS[i % 4] for i in range(8)]
    actions = torch.arange(8) % 5
    with torch.no_grad():
        expected = reference(obs, instructions)
        got = bf16(obs, instructions)
        assert got.dtype == torch.float32
        assert (got - expected).abs().max() < 0.05 * expected.abs().max()
        cached = bf16.features(bf16.normalize(obs), instructions, use_cache=True)
        full = bf16.features(bf16.normalize(obs), instructions, use_cache=False)
    torch.testing.assert_close(cached, full, atol=0.05 * full.abs().max().item(), rtol=0)
    # Gradients through the bf16 LM reach the projection and point where the fp32 ones do.
    grads, expected_grads = (projection_grads(p, obs, instructions, actions) for p in (bf16, reference))
    assert torch.nn.functional.cosine_similarity(grads, expected_grads, dim=0) > 0.99

    save_prior(bf16, tmp_path / "prior")
    reloaded = load_prior(tmp_path / "prior")
    assert reloaded.config.quantization == "bf16"
    assert next(reloaded.lm.parameters()).dtype == torch.bfloat16
    with torch.no_grad():
        torch.testing.assert_close(reloaded(obs, instructions), got)
    # An fp32 prior can be run in bf16 (and back): same trained weights, slightly different outputs.
    save_prior(reference, tmp_path / "fp32")
    as_bf16 = load_prior(tmp_path / "fp32", quantization="bf16")
    assert next(as_bf16.lm.parameters()).dtype == torch.bfloat16
    assert as_bf16.config.quantization == "bf16"  # the precision it runs at
    with torch.no_grad():
        assert (as_bf16(obs, instructions) - expected).abs().max() < 0.05 * expected.abs().max()


def test_bf16_without_native_support_warns_and_names_the_fix(tiny_lm, monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    with pytest.warns(UserWarning, match="--prior-quantization none"):
        load_lm(tiny_lm, quantization="bf16")
