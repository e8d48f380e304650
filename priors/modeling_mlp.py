"""Kind ``"mlp"``, the weakest reference: :class:`MLPPrior`, an MLP over the observation and a hashed
bag of the instruction's words (blind to word order)."""

from __future__ import annotations

import hashlib
import re

import torch
from torch import nn

from priors.configuration import MLPPriorConfig
from priors.modeling_base import Prior, trunk_and_head


def _words(instruction: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", instruction.lower())


class MLPPrior(Prior):
    """The no-LM baseline: an MLP over the observation and a hashed bag of instruction words."""

    config: MLPPriorConfig

    def __init__(self, config: MLPPriorConfig):
        super().__init__(config)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.instruction_embedding = nn.EmbeddingBag(config.n_buckets, config.hidden_size, mode="mean")
            self.trunk, self.action_head = trunk_and_head(config)

    def word_buckets(self, instruction: str) -> list[int]:
        """Stable hash buckets (blake2b, independent of Python's hash seed) of the words."""
        return [
            int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "little")
            % self.config.n_buckets
            for w in _words(instruction)
        ]

    def features(self, obs_normalized: torch.Tensor, instructions: list[str]) -> torch.Tensor:
        buckets = [self.word_buckets(s) for s in instructions]
        flat = torch.tensor([b for bag in buckets for b in bag], dtype=torch.long, device=self.device)
        offsets = torch.tensor([0] + [len(bag) for bag in buckets[:-1]], device=self.device).cumsum(0)
        instruction = self.instruction_embedding(flat, offsets)
        return self.trunk(torch.cat([obs_normalized, instruction], dim=-1))
