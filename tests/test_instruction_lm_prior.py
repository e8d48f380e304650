"""The instruction-only LM prior (kind "lm-instruction"): the frozen LM summarises each prompt once,
exactly as a full unpadded pass would; it saves and loads; only its heads train."""

import gymnasium as gym
import torch
from priors_helpers import INSTRUCTIONS, observation_space, random_obs

from priors import build_prior, load_prior, save_prior

DISCRETE = gym.spaces.Discrete(5)


def test_summaries_equal_an_unpadded_pass_per_prompt_and_are_cached(tiny_lm):
    prior = build_prior(
        observation_space=observation_space(), action_space=DISCRETE, kind="lm-instruction", lm=tiny_lm
    )
    batch = prior.summaries(INSTRUCTIONS)  # prompts of different lengths, padded together
    for row, instruction in enumerate(INSTRUCTIONS):
        ids = torch.tensor([prior.tokenizer(prior.prompt(instruction))["input_ids"]])
        with torch.no_grad():
            hidden = prior.lm(input_ids=ids).last_hidden_state[0].float()
        expected = torch.cat([hidden[-1], hidden.mean(0)])
        torch.testing.assert_close(batch[row], expected, rtol=1e-5, atol=1e-5)
    calls = []
    handle = prior.lm.register_forward_hook(lambda *args: calls.append(1))
    prior.summaries(list(reversed(INSTRUCTIONS)))
    handle.remove()
    assert calls == []  # every prompt came from the cache


def test_only_heads_train_and_a_saved_prior_loads_identically(tiny_lm, tmp_path):
    prior = build_prior(
        observation_space=observation_space(), action_space=DISCRETE, kind="lm-instruction", lm=tiny_lm
    )
    trainable = {name for name, p in prior.named_parameters() if p.requires_grad}
    assert trainable and not any(name.startswith("lm.") for name in trainable)
    obs, instructions = random_obs(6), [INSTRUCTIONS[i % 4] for i in range(6)]
    loss = prior.nll(obs, instructions, torch.arange(6) % 5)
    loss.backward()
    assert all(p.grad is not None for p in prior.trainable_parameters())
    with torch.no_grad():
        for p in prior.trainable_parameters():
            p.add_(0.1 * torch.randn_like(p))
        expected = prior(obs, instructions)
    loaded = load_prior(save_prior(prior, tmp_path / "prior"))
    assert loaded.config.kind == "lm-instruction"
    with torch.no_grad():
        torch.testing.assert_close(loaded(obs, instructions), expected, rtol=1e-5, atol=1e-6)
