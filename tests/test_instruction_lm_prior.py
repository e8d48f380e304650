"""The instruction-only LM prior (kind "lm-instruction"): the frozen LM reads each prompt once, exactly as
a full unpadded pass would; a GRU reads those token states as the GRU baseline reads its embeddings; it saves
and loads; only its heads train."""

import gymnasium as gym
import pytest
import torch
from priors_helpers import INSTRUCTIONS, observation_space, random_obs

from priors import build_prior, load_lm, load_prior, save_prior

DISCRETE = gym.spaces.Discrete(5)


def small_prior(lm, kind="lm-instruction", **options):
    """A prior of ``kind`` (default: the instruction-LM prior) on the helpers' observation space, Discrete(5) actions."""
    return build_prior(
        observation_space=observation_space(), action_space=DISCRETE, kind=kind, lm=lm, **options
    )


def unpadded_states(prior, instruction, layer=None):
    ids = torch.tensor([prior.tokenizer(prior.prompt(instruction))["input_ids"]])
    with torch.no_grad():
        out = prior.lm(input_ids=ids, output_hidden_states=True)
    return (out.last_hidden_state if layer is None else out.hidden_states[layer])[0].float()


@pytest.mark.parametrize("layers", [None, 1, 2])
def test_token_states_equal_an_unpadded_pass_per_prompt_and_are_cached(tiny_lm, layers):
    prior = small_prior(tiny_lm, lm_layers=layers)
    assert (
        prior.lm.config.num_hidden_layers == 2
    )  # lm_layers=2: every layer, read after the final norm as None
    reference_layer = 1 if layers == 1 else None
    batch = prior.token_states(INSTRUCTIONS)  # prompts of different lengths, padded together
    for states, instruction in zip(batch, INSTRUCTIONS, strict=True):
        torch.testing.assert_close(
            states, unpadded_states(prior, instruction, reference_layer), rtol=1e-5, atol=1e-5
        )
    if layers == 1:  # an inner layer, not the final norm's output, and the layers above it never run
        assert not torch.allclose(batch[0], unpadded_states(prior, INSTRUCTIONS[0]))
        above = []
        handle = prior.lm.layers[layers].register_forward_hook(lambda *args: above.append(1))
        prior.token_states(["a prompt not seen before"])
        handle.remove()
        assert above == [] and len(prior.token_states(["a prompt not seen before"])[0]) > 0
    calls = []
    handle = prior.lm.register_forward_hook(lambda *args: calls.append(1))
    prior.token_states(list(reversed(INSTRUCTIONS)))
    handle.remove()
    assert calls == []  # every prompt came from the cache


def test_encoding_is_the_gru_over_each_prompt_alone(tiny_lm):
    """Batched, padded and de-duplicated encoding equals the GRU run on one unpadded prompt at a time."""
    prior = small_prior(tiny_lm)
    instructions = [INSTRUCTIONS[i] for i in (2, 0, 2, 1, 3, 0)]
    with torch.no_grad():
        encoded = prior.encode(instructions)
        for row, instruction in enumerate(instructions):
            tokens = prior.token_projection(unpadded_states(prior, instruction))
            _, hidden = prior.encoder(tokens[None])
            torch.testing.assert_close(encoded[row], hidden[-1, 0], rtol=1e-5, atol=1e-5)


def test_word_order_reaches_the_output(tiny_lm):
    prior = small_prior(tiny_lm)
    obs = random_obs(2)
    with torch.no_grad():
        a = prior(obs, ["move the red ball left of the blue ball"] * 2)
        b = prior(obs, ["move the blue ball left of the red ball"] * 2)
    assert (a - b).abs().max() > 1e-4


def test_lm_layers_and_random_lm_are_checked(tiny_lm):
    with pytest.raises(ValueError, match="lm_layers must be in 1..2"):
        small_prior(tiny_lm, lm_layers=3)
    with pytest.raises(ValueError, match="lm_layers: not an option of kind 'gru'"):
        small_prior(tiny_lm, kind="gru", lm_layers=1)
    with pytest.raises(ValueError, match="needs the LM's name"):
        small_prior(load_lm(tiny_lm), lm_random_init_seed=0)
    random = small_prior(tiny_lm, lm_random_init_seed=0)
    pretrained = load_lm(tiny_lm)
    assert random.config.lm_random_init_seed == 0 and pretrained.random_init_seed is None
    assert not torch.equal(
        random.lm.get_input_embeddings().weight, pretrained.model.get_input_embeddings().weight
    )


def test_only_heads_train_and_a_saved_prior_loads_identically(tiny_lm, tmp_path):
    prior = small_prior(tiny_lm, lm_layers=1)
    trainable = {name for name, p in prior.named_parameters() if p.requires_grad}
    assert trainable and not any(name.startswith("lm.") for name in trainable)
    obs, instructions = random_obs(6), [INSTRUCTIONS[i % 4] for i in range(6)]
    loss = prior.nll(obs, instructions, torch.arange(6) % 5)
    loss.backward()
    assert all(p.grad is not None for p in prior.trainable_parameters())
    # the LM is frozen where it is loaded: no weight of it asks for or received a gradient
    assert not any(p.requires_grad for p in load_lm(tiny_lm).model.parameters())
    assert all(not p.requires_grad and p.grad is None for p in prior.lm.parameters())
    with torch.no_grad():
        for p in prior.trainable_parameters():
            p.add_(0.1 * torch.randn_like(p))
        expected = prior(obs, instructions)
    folder = save_prior(prior, tmp_path / "prior")
    card = (folder / "README.md").read_text()
    assert (
        "| LM layers read | 1 (the LM reads the instruction only) |" in card
        and "soft observation tokens" not in card
    )
    loaded = load_prior(folder)
    assert (loaded.config.kind, loaded.config.lm_layers) == ("lm-instruction", 1)
    with torch.no_grad():
        torch.testing.assert_close(loaded(obs, instructions), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["gru", "lm-instruction"])
def test_word_dropout_removes_tokens_while_training_only(tiny_lm, kind):
    """With word dropout, a training pass reads each distinct instruction's tokens minus the dropped ones
    (replayed from the same RNG state); in eval mode it reads every token."""
    prior = small_prior(tiny_lm, kind=kind)
    prior.token_dropout = 0.5
    instructions = [INSTRUCTIONS[0], INSTRUCTIONS[1], INSTRUCTIONS[0]]

    def token_vectors(instruction):
        if kind == "gru":
            return prior.token_embedding(torch.tensor(prior.token_ids(instruction)))
        return prior.token_projection(prior.token_states([instruction])[0])

    with torch.no_grad():
        prior.eval()
        full = prior.encode(instructions)
        prior.train()
        torch.manual_seed(3)
        dropped = prior.encode(instructions)
        torch.manual_seed(3)
        expected = []
        for instruction in INSTRUCTIONS[:2]:
            row = token_vectors(instruction)
            keep = torch.rand(len(row)) >= 0.5
            keep[torch.randint(len(row), (1,))] = True
            assert 0 < keep.sum() < len(row)  # this seed drops some tokens of both
            _, hidden = prior.encoder(row[keep][None])
            expected.append(hidden[-1, 0])
        torch.testing.assert_close(
            dropped, torch.stack([expected[0], expected[1], expected[0]]), rtol=1e-5, atol=1e-5
        )
        for row, instruction in enumerate(instructions):
            _, hidden = prior.encoder(token_vectors(instruction)[None])
            torch.testing.assert_close(full[row], hidden[-1, 0], rtol=1e-5, atol=1e-5)
