"""NF4 and int8 priors saved and loaded on CPU (bitsandbytes): the folder records the quantisation and
holds no LM weight, and the loaded prior gives bit-identical outputs, since it re-quantises the same
fp32 weights with the same deterministic kernels. Gradients through NF4 layers are pinned in
tests/test_priors_quantization.py; here it is the save/load path."""

import json

import bitsandbytes as bnb
import gymnasium as gym
import numpy as np
import pytest
import torch
from bitsandbytes import functional as bnb_functional
from priors_helpers import INSTRUCTIONS, observation_space, random_obs, trained_like
from safetensors.torch import load_file

from priors import LoraSettings, build_prior, load_lm, load_prior, save_prior

BOX = gym.spaces.Box(-1.0, 1.0, (3,), dtype=np.float32)
QUANTIZED_LINEAR = {"nf4": bnb.nn.Linear4bit, "int8": bnb.nn.Linear8bitLt}
LINEARS_PER_LM = 2 * 7  # q, k, v, o, gate, up, down in each of the tiny LM's two layers

pytestmark = pytest.mark.usefixtures("lago_cache")  # conftest: a temporary conversion cache


def require_cpu_kernels(quantization: str) -> None:
    """Skip only if bitsandbytes itself says it cannot quantise on this CPU (NotImplementedError is how
    its dispatcher reports a missing backend kernel); any other failure is a bug and fails the test."""
    weight = torch.randn(64, 64)
    try:
        if quantization == "nf4":
            bnb_functional.quantize_4bit(weight, quant_type="nf4")
        else:
            bnb_functional.int8_vectorwise_quant(weight)
    except NotImplementedError as err:
        pytest.skip(f"bitsandbytes {bnb.__version__} reports no CPU {quantization} kernel here: {err}")


def outputs(prior):
    """The prior's action parameters on fixed inputs, by both feature paths (prefix cache and full)."""
    obs, instructions = random_obs(6, seed=5), [INSTRUCTIONS[i % 4] for i in range(6)]
    with torch.no_grad():
        cached = prior(obs, instructions)
        full = prior.action_head(prior.features(prior.normalize(obs), instructions, use_cache=False))
    return cached, full


def quantized_layers(prior, quantization):
    return sum(isinstance(m, QUANTIZED_LINEAR[quantization]) for m in prior.lm.modules())


@pytest.mark.parametrize(
    "quantization,lora",
    [("nf4", None), ("nf4", LoraSettings(r=4, alpha=8)), ("int8", None)],
    ids=["nf4", "nf4-lora", "int8"],
)
def test_quantized_prior_round_trip_gives_identical_outputs(tiny_lm, tmp_path, quantization, lora):
    require_cpu_kernels(quantization)
    lm = load_lm(tiny_lm, quantization=quantization)
    prior = trained_like(
        build_prior(
            observation_space=observation_space(), action_space=BOX, lm=lm, lora=lora, env_id="Toy-v0"
        )
    )
    prior.eval()  # as load_prior leaves it
    path = save_prior(prior, tmp_path / "prior")

    config = json.loads((path / "config.json").read_text())
    assert config["quantization"] == quantization and config["lm_name"] == tiny_lm
    assert config["lm_fingerprint"] == load_lm(tiny_lm, quantization="none").fingerprint
    assert f"| quantization | {quantization} |" in (path / "README.md").read_text()
    # Only the trainable parts (LoRA included) and the statistics: never a quantised LM weight.
    trainable = {name for name, p in prior.named_parameters() if p.requires_grad}
    assert set(load_file(path / "model.safetensors")) == trainable | {"obs_mean", "obs_std", "token_scale"}
    assert any("lora_" in name for name in trainable) == (lora is not None)

    loaded = load_prior(path)
    assert loaded.config == prior.config and loaded.config.quantization == quantization
    assert quantized_layers(loaded, quantization) == LINEARS_PER_LM
    for got, expected in zip(outputs(loaded), outputs(prior), strict=True):
        torch.testing.assert_close(got, expected, atol=0, rtol=0)


@pytest.mark.parametrize("saved_as,loaded_as", [("none", "nf4"), ("nf4", "none"), ("none", "int8")])
def test_quantization_override_at_load_runs_the_saved_heads_on_that_lm(
    tiny_lm, tmp_path, saved_as, loaded_as
):
    """``load_prior(..., quantization=q)`` is the saved trainable parts on the LM loaded at ``q``: equal,
    bit for bit, to a prior built on that LM with the same trainable weights; the config records ``q``."""
    for quantization in {saved_as, loaded_as} - {"none"}:
        require_cpu_kernels(quantization)
    saved = trained_like(
        build_prior(
            observation_space=observation_space(),
            action_space=BOX,
            lm=load_lm(tiny_lm, quantization=saved_as),
        )
    )
    path = save_prior(saved, tmp_path / "prior")
    loaded = load_prior(path, quantization=loaded_as)
    assert loaded.config.quantization == loaded_as
    assert json.loads((path / "config.json").read_text())["quantization"] == saved_as  # the file is unchanged

    reference = build_prior(
        observation_space=observation_space(), action_space=BOX, lm=load_lm(tiny_lm, quantization=loaded_as)
    )
    reference.load_state_dict(saved.trainable_state_dict(), strict=False)
    reference.eval()
    if loaded_as != "none":
        assert quantized_layers(loaded, loaded_as) == LINEARS_PER_LM
    for got, expected in zip(outputs(loaded), outputs(reference), strict=True):
        torch.testing.assert_close(got, expected, atol=0, rtol=0)
    # And it is not the saved prior's LM in disguise: the precision changes the outputs.
    assert not torch.equal(outputs(loaded)[0], outputs(saved)[0])
