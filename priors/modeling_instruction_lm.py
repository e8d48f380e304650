"""Kind ``"lm-instruction"``, the shipped design: :class:`InstructionLMPrior`.

The frozen LM reads the instruction's prompt only (once per distinct prompt; its token states are
cached), a GRU reads those states, and the observation joins after it in an MLP trunk and the action
head: :class:`priors.modeling_gru.GRUPrior` with the from-scratch token embeddings replaced by the LM.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from priors.configuration import InstructionLMPriorConfig
from priors.frozen_lm import add_lora, check_lm_layers, first_layers_output, frozen_lm_for, lora_version
from priors.lm import LoadedLM
from priors.modeling_gru import GRU_EMBEDDING_DIM, GRUReaderPrior


class InstructionLMPrior(GRUReaderPrior):
    """The frozen LM reads the instruction only; the observation joins in the head. A departure from
    LaGO's soft tokens, measured beside them (issue 12): the LM runs once per distinct instruction
    prompt (its token states are cached), so in RL the prior costs a small GRU and an MLP per state.

    It is :class:`GRUPrior` with the token embeddings trained from scratch replaced by the frozen LM's
    hidden states of the prompt's tokens (layer ``config.lm_layers``, the last one by default; a
    LayerNorm and a linear map take them to the GRU's input width): the same GRU, trunk and head, so
    the two priors differ only in what reads the words."""

    config: InstructionLMPriorConfig

    @classmethod
    def from_config(cls, config, lm=None, *, device="cpu", quantization=None) -> InstructionLMPrior:
        config, loaded = frozen_lm_for(config, lm, device=device, quantization=quantization)
        return cls(config, loaded)

    def __init__(self, config: InstructionLMPriorConfig, lm: LoadedLM, max_cached: int = 8192):
        super().__init__(config)
        self.lm = lm.model
        self.tokenizer = lm.tokenizer
        width = self.lm.get_input_embeddings().weight.shape[1]
        check_lm_layers(config, lm)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            # LM hidden states carry a few huge outlier dimensions: normalise before the map.
            self.token_projection = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, GRU_EMBEDDING_DIM))
            self._build_reader(config)
            if config.lora is not None:  # only the layers the pass runs get adapters
                add_lora(self.lm, config.lora, n_layers=config.lm_layers)
        self.max_cached = max_cached
        self._states: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._states_version = 0
        self.to(self.lm.get_input_embeddings().weight.device)

    def _apply(self, fn, *args, **kwargs):
        self._states.clear()  # cached states would stay on the old device
        return super()._apply(fn, *args, **kwargs)

    def prompt(self, instruction: str) -> str:
        return self.config.prompt_format.format(instruction=instruction)

    @torch.no_grad()
    def token_states(self, instructions: list[str]) -> list[torch.Tensor]:
        """Per instruction, ``[prompt_tokens, width]`` float32: the frozen LM's hidden states of its prompt
        at layer ``config.lm_layers`` (after the final norm when that is the last layer), computed once
        per distinct prompt (right-padded batches of the new ones) and cached. With LoRA the cache is
        dropped whenever an adapter weight changes (optimiser step, load)."""
        if self.has_lora and self._states_version != (version := lora_version(self.lm)):
            self._states.clear()
            self._states_version = version
        new = [s for s in dict.fromkeys(instructions) if s not in self._states]
        for start in range(0, len(new), 64):
            chunk = new[start : start + 64]
            for s, states in zip(chunk, self._compute_states(chunk), strict=True):
                self._states[s] = states.clone()
        for s in instructions:
            self._states.move_to_end(s)
        out = [self._states[s] for s in instructions]
        while len(self._states) > self.max_cached:
            self._states.popitem(last=False)
        return out

    def _compute_states(self, instructions: list[str]) -> list[torch.Tensor]:
        """The LM's states of each instruction's prompt, one right-padded batch, no cache (with gradients
        into the LoRA adapters when grad is enabled)."""
        ids = [self.tokenizer(self.prompt(s))["input_ids"] for s in instructions]
        lengths = [len(i) for i in ids]
        input_ids = torch.zeros(len(ids), max(lengths), dtype=torch.long, device=self.device)
        for row, row_ids in enumerate(ids):
            input_ids[row, : len(row_ids)] = torch.tensor(row_ids, device=self.device)
        columns = torch.arange(input_ids.shape[1], device=self.device)
        mask = (columns[None] < torch.tensor(lengths, device=self.device)[:, None]).long()
        hidden = self._lm_states(input_ids, mask).float()
        return [hidden[row, :length] for row, length in enumerate(lengths)]

    def _lm_states(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The LM's hidden states after layer ``config.lm_layers`` (the layers above it never run)."""
        return first_layers_output(self.lm, self.config.lm_layers, input_ids=input_ids, attention_mask=mask)

    def token_vectors(self, instructions: list[str]) -> list[torch.Tensor]:
        if self.has_lora and torch.is_grad_enabled():  # training the adapters: the pass runs with grad
            states = self._compute_states(list(instructions)) if instructions else []
        else:
            states = self.token_states(instructions)
        return [self.token_projection(s) for s in states]
