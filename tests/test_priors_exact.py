"""priors/model.py's exact values, each against a reference written here: the training loss (NLL) and
log-likelihoods against ``torch.distributions``, the Box squash of ``log_std``, batched distributions,
normalisation refusals, Box spaces through the config, the LoRA settings a prior records, the MLP
prior's word hashing (part of its file format) and configs of format version 1 without a split.
Written to kill the mutants that survived the other tests (docs/mutation.md)."""

import hashlib

import gymnasium as gym
import numpy as np
import pytest
import torch
from priors_helpers import INSTRUCTIONS, observation_space, random_obs, trained_like
from torch.distributions import Categorical, Normal

from priors import LoraSettings, PriorConfig, Provenance, build_prior
from priors.model import space_from_dict, space_to_dict

BOX = gym.spaces.Box(-1.0, 1.0, (3,), dtype=np.float32)
DISCRETE = gym.spaces.Discrete(5)


def mlp_prior(action_space):
    return trained_like(
        build_prior(observation_space=observation_space(), action_space=action_space, kind="mlp")
    )


def test_box_likelihood_and_nll_equal_a_diagonal_gaussian():
    prior = mlp_prior(BOX)
    obs, instructions = random_obs(8), [INSTRUCTIONS[i % 4] for i in range(8)]
    actions = torch.linspace(-0.9, 0.9, 24).reshape(8, 3)  # not integers: a cast to long would show
    with torch.no_grad():
        raw = prior.action_head(prior.features(prior.normalize(obs), instructions))
        mean, raw_log_std = raw.chunk(2, dim=-1)
        log_std = -5.0 + 0.5 * (2.0 - -5.0) * (torch.tanh(raw_log_std) + 1.0)  # squashed into [-5, 2]
        torch.testing.assert_close(prior(obs, instructions), torch.cat([mean, log_std], dim=-1))
        expected = Normal(mean, log_std.exp()).log_prob(actions).sum(-1)
        torch.testing.assert_close(prior.log_prob(obs, instructions, actions.numpy()), expected)
        torch.testing.assert_close(prior.nll(obs, instructions, actions), -expected.mean())


def test_discrete_likelihood_and_nll_equal_a_categorical():
    prior = mlp_prior(DISCRETE)
    obs, instructions = random_obs(8), [INSTRUCTIONS[i % 4] for i in range(8)]
    actions = torch.arange(8) % 5
    with torch.no_grad():
        expected = Categorical(logits=prior(obs, instructions)).log_prob(actions)
        torch.testing.assert_close(prior.log_prob(obs, instructions, actions), expected)
        torch.testing.assert_close(prior.nll(obs, instructions, actions), -expected.mean())


def test_distribution_from_params_keeps_every_batch_dimension():
    prior = mlp_prior(BOX)
    params = torch.randn(2, 4, 6)  # (steps, envs, mean and log_std of 3 dims)
    dist = prior.distribution_from_params(params)
    assert dist.batch_shape == (2, 4) and dist.event_shape == (3,)
    torch.testing.assert_close(dist.mean, params[..., :3])
    torch.testing.assert_close(dist.stddev, params[..., 3:].exp())


def test_set_normalization_refuses_either_wrong_size_and_floors_std():
    prior = mlp_prior(BOX)
    with pytest.raises(ValueError, match="normalisation statistics must have 7 entries"):
        prior.set_normalization(np.zeros(7), np.ones(6))
    with pytest.raises(ValueError, match="normalisation statistics must have 7 entries"):
        prior.set_normalization(np.zeros(6), np.ones(7))
    prior.set_normalization(np.arange(7.0), np.array([0.0, 1e-9, 1, 2, 3, 4, 5]))
    assert prior.obs_std.tolist()[:3] == pytest.approx([1e-6, 1e-6, 1.0])
    assert prior.obs_mean.tolist() == list(np.arange(7.0))


def test_box_space_survives_the_config():
    space = gym.spaces.Box(
        low=np.array([[-1.0, 0.0], [-np.inf, -3.5]]),
        high=np.array([[1.0, 2.0], [np.inf, 4.0]]),
        dtype=np.float64,
    )
    back = space_from_dict(space_to_dict(space))
    assert back.shape == (2, 2) and back.dtype == np.float32
    np.testing.assert_array_equal(back.low, space.low.astype(np.float32))
    np.testing.assert_array_equal(back.high, space.high.astype(np.float32))
    assert space_from_dict({"type": "Discrete", "n": 7}) == gym.spaces.Discrete(7)


def test_lora_adapters_are_those_the_config_records(tiny_lm):
    settings = LoraSettings(r=4, alpha=12, dropout=0.25, target_modules=["q_proj", "v_proj"])
    prior = build_prior(observation_space=observation_space(), action_space=BOX, lm=tiny_lm, lora=settings)
    adapted = {name.rsplit(".", 1)[-1]: m for name, m in prior.lm.named_modules() if hasattr(m, "lora_A")}
    assert set(adapted) == {"q_proj", "v_proj"}
    for module in adapted.values():
        assert module.r["default"] == 4 and module.lora_A["default"].weight.shape[0] == 4
        assert module.scaling["default"] == 12 / 4
        assert module.lora_dropout["default"].p == 0.25


def test_mlp_word_buckets_are_the_documented_stable_hash():
    """A saved MLP prior's embedding rows are indexed by these buckets: they must never change."""
    prior = mlp_prior(BOX)

    def bucket(word):
        return int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little") % 4096

    assert prior.word_buckets("Open the drawer, 2x!") == [bucket(w) for w in ("open", "the", "drawer", "2x")]
    assert bucket("drawer") == 30  # the value itself, independent of this formula


def test_version_1_config_without_split_or_metrics():
    current = build_prior(
        observation_space=observation_space(), action_space=BOX, kind="mlp"
    ).config.to_dict()
    del current["provenance"]
    version_1 = {**current, "format_version": 1, "command": "python train.py", "metrics": None}
    config = PriorConfig.from_dict(version_1)
    assert config.format_version == 2
    assert config.provenance == Provenance(command="python train.py")  # no metrics: an empty table
    version_1 = {**current, "format_version": 1, "metrics": {"val_nll": 1.5}}
    assert PriorConfig.from_dict(version_1).provenance == Provenance(metrics={"val_nll": 1.5})
