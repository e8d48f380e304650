"""Shared helpers for the priors tests: a tiny random Llama with a word-level tokenizer."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

WORDS = (
    "Instruction Observation : push pick place the a red blue green ball cube to left right of "
    "front behind open close drawer door reach goal and"
).split()

INSTRUCTIONS = [
    "push the red ball to the left of the blue cube",
    "open the drawer",
    "reach the goal",
    "pick the green cube and place the cube behind the red ball",
]


def make_tiny_lm(folder: Path, seed: int = 0, words: Iterable[str] = WORDS) -> Path:
    """Save a 2-layer, 32-wide random Llama and its tokenizer (a vocabulary of ``words``) to ``folder``."""
    vocab = {"[PAD]": 0, "[UNK]": 1}
    for word in words:
        vocab.setdefault(word, len(vocab))
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]")
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=0,
        bos_token_id=None,
        eos_token_id=None,
        tie_word_embeddings=True,  # no separate lm_head: AutoModel then loads every saved tensor
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # the default init (std 0.02) makes a 2-layer model nearly ignore its prompt
        model.model.embed_tokens.weight.mul_(20.0)
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def observation_space(dim: int = 7) -> gym.spaces.Box:
    return gym.spaces.Box(-np.inf, np.inf, (dim,), dtype=np.float64)


def random_obs(batch: int, dim: int = 7, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).normal(3.0, 2.0, (batch, dim)).astype(np.float32))


def trained_like(prior, seed=0):
    """Perturb every saved tensor so a round trip that silently kept the initial weights would fail."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in prior.trainable_parameters():
            param.add_(0.1 * torch.randn(param.shape, generator=generator))
    obs = random_obs(50, seed=seed + 1)
    prior.set_normalization(obs.mean(0), obs.std(0))
    return prior


def make_tiny_gemma(folder: Path, seed: int = 0, sliding_window: int = 3) -> Path:
    """A 2-layer random Gemma-3 (a sliding-window layer, then a full-attention one; embeddings scaled by
    sqrt(width) inside the model) with the same word-level tokenizer as :func:`make_tiny_lm`."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    make_tiny_lm(folder, seed=seed)  # the tokenizer (the Llama weights are overwritten below)
    vocab = len(PreTrainedTokenizerFast.from_pretrained(folder))
    config = Gemma3TextConfig(
        vocab_size=vocab,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=1,
        head_dim=16,
        query_pre_attn_scalar=16,
        sliding_window=sliding_window,
        layer_types=["sliding_attention", "full_attention"],
        max_position_embeddings=256,
        pad_token_id=0,
        bos_token_id=None,
        eos_token_id=None,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    Gemma3ForCausalLM(config).save_pretrained(folder)
    return folder
