"""Kind ``"gru"``, the fair no-LM baseline: :class:`GRUPrior`, and the GRU reader it shares with
kind ``"lm-instruction"`` (:class:`GRUReaderPrior`).

Token embeddings and a one-layer GRU, trained from scratch, read the instruction's tokens (the LM's
tokenizer); the GRU's last hidden state and the normalised observation go through an MLP trunk, then
the action head.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from priors.configuration import GRUPriorConfig, PriorConfig
from priors.lm import DEFAULT_LM, LoadedLM, load_tokenizer, tokenizer_fingerprint
from priors.modeling_base import Prior, trunk_and_head

GRU_EMBEDDING_DIM = 64
"""Width of the GRU prior's token embeddings (a 49k-token vocabulary costs 3.1M parameters)."""


class GRUReaderPrior(Prior):
    """A one-layer GRU reads one vector per token of each distinct instruction (:meth:`token_vectors`, given
    by the subclass); its last hidden state joins the normalised observation in the MLP trunk, then the
    action head. ``token_dropout`` > 0 (set by the trainer, not saved) removes each token with that
    probability while training (word dropout; one token at least stays), so the prior cannot lean on the
    words of its training phrasings."""

    token_dropout: float = 0.0

    def _build_reader(self, config: PriorConfig) -> None:
        """The GRU, trunk and head, created after the subclass's token layers (same seeded RNG stream)."""
        self.encoder = nn.GRU(GRU_EMBEDDING_DIM, config.hidden_size, batch_first=True)
        self.trunk, self.action_head = trunk_and_head(config)

    def token_vectors(self, instructions: list[str]) -> list[torch.Tensor]:
        """``[length, GRU_EMBEDDING_DIM]`` per instruction."""
        raise NotImplementedError

    def encode(self, instructions: list[str]) -> torch.Tensor:
        """``[len(instructions), hidden_size]``: the GRU's last hidden state, each distinct instruction run once."""
        unique = list(dict.fromkeys(instructions))
        tokens = self.token_vectors(unique)
        if self.training and self.token_dropout > 0:
            kept = []
            for row in tokens:
                keep = torch.rand(len(row), device=row.device) >= self.token_dropout
                keep[torch.randint(len(row), (1,), device=row.device)] = True
                kept.append(row[keep])
            tokens = kept
        lengths = torch.tensor([len(t) for t in tokens])
        packed = nn.utils.rnn.pack_padded_sequence(
            nn.utils.rnn.pad_sequence(tokens, batch_first=True),
            lengths,
            batch_first=True,
            enforce_sorted=False,
        )
        _, hidden = self.encoder(packed)
        index = {s: i for i, s in enumerate(unique)}
        rows = torch.tensor([index[s] for s in instructions], device=hidden.device)
        return hidden[-1].index_select(0, rows)

    def features(self, obs_normalized: torch.Tensor, instructions: list[str]) -> torch.Tensor:
        return self.trunk(torch.cat([obs_normalized, self.encode(instructions)], dim=-1))


class GRUPrior(GRUReaderPrior):
    """The order-aware no-LM baseline: token embeddings and a one-layer GRU, trained from scratch, read
    the instruction's tokens (the LM's tokenizer); the GRU's last hidden state and the normalised
    observation go through the same MLP trunk as :class:`MLPPrior`'s, then the action head."""

    config: GRUPriorConfig

    @classmethod
    def from_config(cls, config, lm=None, *, device="cpu", quantization=None) -> GRUPrior:
        """A GRU prior on the tokenizer of ``lm`` (default: the LM named in the config), checked by
        fingerprint when the config records one (a saved prior); ``quantization`` does not apply."""
        name = lm.name if isinstance(lm, LoadedLM) else lm or config.lm_name or DEFAULT_LM
        saved = config.lm_fingerprint is not None
        try:
            tokenizer = lm.tokenizer if isinstance(lm, LoadedLM) else load_tokenizer(name)
        except (OSError, ValueError) as err:
            if not saved:
                raise
            raise ValueError(
                f"Could not load the tokenizer of {name!r} this GRU prior reads its instructions with ({err}). "
                "Pass lm=<local folder or Hub id of that model> to load_prior."
            ) from err
        fingerprint = tokenizer_fingerprint(tokenizer)
        if saved and fingerprint != config.lm_fingerprint:
            raise ValueError(
                f"Tokenizer fingerprint mismatch: this GRU prior was built on the tokenizer of {config.lm_name!r} "
                f"(fingerprint {config.lm_fingerprint}), but {name!r} has {fingerprint}. "
                "Pass lm=<the model whose tokenizer the prior was trained with>."
            )
        if not saved:
            config = dataclasses.replace(config, lm_name=name, lm_fingerprint=fingerprint)
        return cls(config, tokenizer).to(device)

    def __init__(self, config: GRUPriorConfig, tokenizer):
        super().__init__(config)
        self.tokenizer = tokenizer
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.token_embedding = nn.Embedding(len(tokenizer), GRU_EMBEDDING_DIM)
            self._build_reader(config)
        self._token_ids: dict[str, list[int]] = {}

    def token_ids(self, instruction: str) -> list[int]:
        """The instruction's token ids (memoised); an empty instruction reads as the pad token."""
        ids = self._token_ids.get(instruction)
        if ids is None:
            ids = self.tokenizer(instruction)["input_ids"] or [self.tokenizer.pad_token_id or 0]
            self._token_ids[instruction] = ids
        return ids

    def token_vectors(self, instructions: list[str]) -> list[torch.Tensor]:
        return [
            self.token_embedding(torch.tensor(self.token_ids(s), device=self.device)) for s in instructions
        ]
