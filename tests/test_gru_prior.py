"""The fair no-LM baseline (issue 12, part 4): a GRU prior on the LM tokenizer's tokens, order-aware
where the bag-of-words MLP prior cannot be; its save/load and training through priors.training."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import torch
from priors_helpers import make_tiny_lm

from cleanrl_lago import demonstrations as demos
from cleanrl_lago.envs.prior_envs import clevr_env
from priors import GRUPrior, PriorLoadError, build_prior, load_prior, save_prior
from priors.lm import load_tokenizer, tokenizer_fingerprint
from priors.training import TrainSettings, train

OBS_SPACE = gym.spaces.Box(-1.0, 1.0, (3,), dtype=np.float32)
SWAPPED = ("push the red ball to the left of the blue ball", "push the blue ball to the left of the red ball")
KL_ABOVE = 1.0  # nats: what the GRU prior must reach between a goal and its swap after the training below


def order_prior(kind: str, tiny_lm: str):
    return build_prior(
        observation_space=OBS_SPACE,
        action_space=gym.spaces.Discrete(4),
        kind=kind,
        lm=tiny_lm,
        hidden_size=32,
        seed=0,
    )


def train_on_word_order(prior, steps: int = 150) -> None:
    """The goal is in the word order only: the red-then-blue instruction wants action 0, its swap action 1."""
    rng = np.random.default_rng(0)
    optimizer = torch.optim.Adam(prior.trainable_parameters(), lr=3e-3)
    for _ in range(steps):
        obs = torch.from_numpy(rng.uniform(-1, 1, (32, 3)).astype(np.float32))
        which = torch.from_numpy(rng.integers(2, size=32))
        loss = prior.nll(obs, [SWAPPED[i] for i in which], which)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def swap_kl(prior) -> float:
    obs = torch.from_numpy(np.random.default_rng(1).uniform(-1, 1, (64, 3)).astype(np.float32))
    with torch.no_grad():
        first, second = prior.distribution(obs, SWAPPED[0]), prior.distribution(obs, SWAPPED[1])
        return float(torch.distributions.kl_divergence(first, second).mean())


def test_gru_prior_tells_a_goal_from_its_swap_and_the_bag_of_words_cannot(tiny_lm):
    gru, mlp = order_prior("gru", tiny_lm), order_prior("mlp", tiny_lm)
    assert isinstance(gru, GRUPrior)
    train_on_word_order(gru)
    train_on_word_order(mlp)
    assert swap_kl(gru) > KL_ABOVE
    # the same words: the same distribution, whatever it learned (up to the order of a float sum)
    assert abs(swap_kl(mlp)) < 1e-6
    obs = torch.zeros(1, 3)
    assert (
        gru.distribution(obs, SWAPPED[0]).probs[0, 0] > 0.8
        and gru.distribution(obs, SWAPPED[1]).probs[0, 1] > 0.8
    )


def test_gru_reads_the_lm_tokenizers_tokens_and_each_instruction_once(tiny_lm):
    prior = order_prior("gru", tiny_lm)
    tokenizer = load_tokenizer(tiny_lm)
    assert prior.token_ids(SWAPPED[0]) == tokenizer(SWAPPED[0])["input_ids"]
    assert prior.token_embedding.num_embeddings == len(tokenizer)
    assert prior.config.lm_name == tiny_lm and prior.config.lm_fingerprint == tokenizer_fingerprint(tokenizer)
    # a batch mixing instructions of different lengths equals each row encoded alone (padding is packed away)
    instructions = [SWAPPED[0], "reach the goal", SWAPPED[1], "reach the goal"]
    batch = prior.encode(instructions)
    for row, instruction in enumerate(instructions):
        torch.testing.assert_close(batch[row], prior.encode([instruction])[0])
    assert not torch.allclose(batch[0], batch[2])
    calls = []
    prior.encoder.register_forward_hook(lambda module, args, out: calls.append(args[0].batch_sizes[0].item()))
    prior.encode(instructions)
    assert calls == [3]  # three distinct instructions of four, one pass


def test_gru_prior_round_trips_and_refuses_another_tokenizer(tiny_lm, tmp_path):
    prior = order_prior("gru", tiny_lm)
    train_on_word_order(prior, steps=5)
    prior.set_normalization(np.full(3, 0.1), np.full(3, 2.0))
    path = save_prior(prior, tmp_path / "gru")
    config = json.loads((path / "config.json").read_text())
    assert config["kind"] == "gru" and "quantization" not in config  # no LM runs: no precision
    card = (path / "README.md").read_text()  # the card names the tokenizer, not an LM it does not run
    assert f"| tokenizer | `{config['lm_name']}`'s" in card and "| language model |" not in card
    loaded = load_prior(path)
    obs = torch.rand(5, 3)
    with torch.no_grad():
        torch.testing.assert_close(loaded(obs, SWAPPED[1]), prior(obs, SWAPPED[1]))
        assert not torch.allclose(loaded(obs, SWAPPED[0]), loaded(obs, SWAPPED[1]))
    other = make_tiny_lm(tmp_path / "other-lm", words=["push", "pull"])
    with pytest.raises(PriorLoadError, match="Tokenizer fingerprint mismatch"):
        load_prior(path, lm=str(other))


def test_gru_prior_trains_through_the_training_command(tiny_lm, tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    demos.collect_clevr("t/clevr/expert-v0", episodes=6, seed=0)
    args = TrainSettings(
        dataset="t/clevr/expert-v0",
        output=str(tmp_path / "p"),
        kind="gru",
        lm=tiny_lm,
        observation_dims=10,
        hidden_size=16,
        epochs=2,
        batch_size=8,
        instructions_per_batch=2,
        val_fraction=0.34,
        eval_episodes=1,
        eval_max_episode_steps=2,
        runs_dir=str(tmp_path / "runs"),
    )
    prior = train(args, env_id="CLEVR-Robot-v0", make_env=clevr_env)
    metrics = prior.config.provenance.metrics
    assert prior.config.kind == "gru" and {"val_set_nll", "val_good_mass", "policy_success_heldout"} <= set(
        metrics
    )
    assert load_prior(tmp_path / "p").config.kind == "gru"
