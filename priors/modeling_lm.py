"""Kind ``"lm"``, LaGO's design: :class:`LMPrior`.

A frozen causal LM reads the tokens of the prompt (the instruction) followed by ``n_obs_tokens`` soft
tokens that an observation projection makes from the normalised observation; an action head maps the
LM's hidden state at the last soft token, after its first ``lm_layers`` layers (default: all, after the
final norm), to the parameters of the action distribution. The prompt's keys and values are
computed once per distinct instruction and cached, so a state costs a pass over its soft tokens only.
"""

from __future__ import annotations

import inspect
from collections import OrderedDict

import torch
from torch import nn
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from priors.configuration import LMPriorConfig
from priors.frozen_lm import add_lora, check_lm_layers, first_layers_output, frozen_lm_for, lora_version
from priors.lm import LoadedLM
from priors.modeling_base import Prior, mlp


class _PromptLayer(DynamicLayer):
    """One layer of the cache the prefix-cached pass hands to the LM.

    It holds the distinct prompts' keys and values, left-padded to a common length and followed by
    ``n_new`` free slots (``bank``: ``[distinct, 2, kv_heads, prompt_length + n_new, head_dim]``),
    and which prompt each row reads (``rows``). :meth:`update` copies each row's prompt out of the
    bank, writes the new keys and values into the free slots and returns them; it keeps nothing, so
    the per-row keys and values of only one layer exist at a time.
    """

    def __init__(self, bank: torch.Tensor, rows: torch.Tensor, prompt_length: int):
        super().__init__()
        self.bank, self.rows, self.prompt_length = bank, rows, prompt_length
        self.is_initialized = True

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        n = self.prompt_length
        if key_states.shape[-2] != self.bank.shape[-2] - n:
            raise ValueError("the prompt cache was built for another number of new tokens")
        keys = self.bank[:, 0].index_select(0, self.rows)
        values = self.bank[:, 1].index_select(0, self.rows)
        keys[:, :, n:] = key_states
        values[:, :, n:] = value_states
        return keys, values

    def get_seq_length(self) -> int:
        return self.prompt_length

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.prompt_length + query_length, 0


class LMPrior(Prior):
    """A frozen LM between an observation projection (soft tokens) and an action head."""

    @classmethod
    def from_config(cls, config, lm=None, *, device="cpu", quantization=None) -> LMPrior:
        config, loaded = frozen_lm_for(config, lm, device=device, quantization=quantization)
        return cls(config, loaded)

    config: LMPriorConfig

    def __init__(
        self,
        config: LMPriorConfig,
        lm: LoadedLM,
        max_cached_bytes: int = 2**30,
        max_tokens_per_call: int = 512,
    ):
        super().__init__(config)
        self.lm = lm.model
        self.tokenizer = lm.tokenizer
        embeddings = self.lm.get_input_embeddings().weight
        width = embeddings.shape[1]
        check_lm_layers(config, lm)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.projection = mlp(config.obs_dim, config.hidden_size, config.n_obs_tokens * width)
            # LM hidden states carry a few huge outlier dimensions: normalise before the head.
            self.action_head = nn.Sequential(
                nn.LayerNorm(width), mlp(width, config.hidden_size, config.n_action_params)
            )
            if config.lora is not None:  # only the layers the pass runs get adapters
                add_lora(self.lm, config.lora, n_layers=config.lm_layers)
        # Soft tokens start at the scale of real token embeddings as the LM's first layer sees them (Gemma
        # multiplies its embeddings by sqrt(width) inside the embedding module; inputs_embeds skip it).
        embed_scale = float(getattr(self.lm.get_input_embeddings(), "embed_scale", 1.0))
        rms = embeddings.detach().float().pow(2).mean().sqrt().reshape(1)
        self.register_buffer("token_scale", rms * embed_scale)
        # transformers 5.2x renamed the cache argument `past_key_values` to `cache`; accept both.
        forward_args = inspect.signature(type(self.lm).forward).parameters
        self._cache_arg = "cache" if "cache" in forward_args else "past_key_values"
        self.max_cached_bytes = max_cached_bytes
        """Bytes the cached prompts may hold, least recently used dropped first (SmolLM2's 1,600 CLEVR-Robot
        train prompts take 0.2 GB at layer 4, 1.5 GB through all 30 layers)."""
        self.max_tokens_per_call = max_tokens_per_call
        """The prefix-cached pass runs at most this many soft tokens (states x n_obs_tokens) per LM call."""
        self._prefix_cache: OrderedDict[tuple[str, int], torch.Tensor] = OrderedDict()
        self._prefix_ids: dict[str, list[int]] = {}
        self.to(embeddings.device)

    def _apply(self, fn, *args, **kwargs):
        self._prefix_cache.clear()  # cached keys/values would stay on the old device or dtype
        return super()._apply(fn, *args, **kwargs)

    def prompt(self, instruction: str) -> str:
        """The text placed before the soft tokens."""
        return self.config.prompt_format.format(instruction=instruction)

    def token_ids(self, instruction: str) -> list[int]:
        """Token ids of the prompt (memoised per instruction)."""
        ids = self._prefix_ids.get(instruction)
        if ids is None:
            ids = self.tokenizer(self.prompt(instruction))["input_ids"]
            self._prefix_ids[instruction] = ids
        return ids

    def soft_tokens(self, obs_normalized: torch.Tensor) -> torch.Tensor:
        """The observation as ``[B, n_obs_tokens, width]`` vectors in the LM's embedding space."""
        width = self.lm.get_input_embeddings().weight.shape[1]
        tokens = self.projection(obs_normalized) * self.token_scale
        return tokens.reshape(obs_normalized.shape[0], self.config.n_obs_tokens, width)

    def features(
        self, obs_normalized: torch.Tensor, instructions: list[str], use_cache: bool | None = None
    ) -> torch.Tensor:
        """The LM's last hidden state after the soft tokens, ``[B, width]`` float32.

        ``use_cache=None`` reuses cached instruction prefixes whenever that is exact: always without
        LoRA (the prefix does not depend on trainable weights), and with LoRA only without grad.
        """
        if use_cache is None:
            use_cache = not (self.has_lora and torch.is_grad_enabled())
        soft = self.soft_tokens(obs_normalized)
        if use_cache:
            return self._features_cached(soft, instructions)
        return self._features_full(soft, instructions)

    def _padded(
        self, ids: list[list[int]], left: bool, n_after: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompts' token ids padded to the longest (on the left or the right), ``[B, longest]``, and the
        attention mask of them followed by ``n_after`` attended positions, ``[B, longest + n_after]``."""
        longest = max(len(i) for i in ids)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        input_ids = torch.full((len(ids), longest), pad, dtype=torch.long, device=self.device)
        mask = torch.zeros(len(ids), longest + n_after, dtype=torch.long, device=self.device)
        for row, row_ids in enumerate(ids):
            real = slice(longest - len(row_ids), longest) if left else slice(0, len(row_ids))
            input_ids[row, real] = torch.tensor(row_ids, device=self.device)
            mask[row, real] = 1
        mask[:, longest:] = 1
        return input_ids, mask

    def _features_full(self, soft: torch.Tensor, instructions: list[str]) -> torch.Tensor:
        """One pass over the whole sequence; prompts of different lengths are left-padded."""
        input_ids, mask = self._padded(
            [self.token_ids(s) for s in instructions], left=True, n_after=soft.shape[1]
        )
        embed = self.lm.get_input_embeddings()
        inputs = torch.cat([embed(input_ids), soft.to(embed.weight.dtype)], dim=1)
        positions = (mask.cumsum(-1) - 1).clamp_min(0)
        hidden = first_layers_output(
            self.lm, self.config.lm_layers, inputs_embeds=inputs, attention_mask=mask, position_ids=positions
        )
        return hidden[:, -1].float()

    def _prefix_kvs(self, instructions: list[str], chunk: int = 64) -> list[torch.Tensor]:
        """Keys and values of each prompt, ``[layers, 2, kv_heads, prompt_length, head_dim]``, from an LRU
        cache. The prompts not cached run together, ``chunk`` prompts per LM call (one call per prompt cost
        about 35 ms on a CPU core, mostly the call's own overhead), right-padded: a prompt's keys and values
        are then the same to the last bit whichever prompts share its call (left-padded, the real LM's
        differed by up to 5e-6 with the padding), so a resumed run, whose cache starts empty, computes what
        an uninterrupted one computed."""
        version = lora_version(self.lm) if self.has_lora else 0
        missing = list(dict.fromkeys(s for s in instructions if (s, version) not in self._prefix_cache))
        for start in range(0, len(missing), chunk):
            part = missing[start : start + chunk]
            ids = [self.token_ids(s) for s in part]
            input_ids, mask = self._padded(ids, left=False)
            columns = torch.arange(input_ids.shape[1], device=self.device)
            # A plain cache keeps every key: the LM's own would keep only a sliding window's (Gemma, 512).
            cache = DynamicCache()
            with torch.no_grad():
                first_layers_output(
                    self.lm,
                    self.config.lm_layers,
                    input_ids=input_ids,
                    attention_mask=mask,
                    position_ids=columns.expand(len(ids), -1),
                    use_cache=True,
                    **{self._cache_arg: cache},
                )
            layers = cache.layers[: self.config.lm_layers]  # the layers above lm_layers never run
            for row, (instruction, row_ids) in enumerate(zip(part, ids, strict=True)):
                real = slice(0, len(row_ids))  # the prompt's own positions, padding cut off
                kv = [torch.stack([layer.keys[row, :, real], layer.values[row, :, real]]) for layer in layers]
                self._prefix_cache[instruction, version] = torch.stack(kv)
        prefixes = []
        for instruction in instructions:
            self._prefix_cache.move_to_end((instruction, version))
            prefixes.append(self._prefix_cache[instruction, version])
        size = sum(kv.numel() * kv.element_size() for kv in self._prefix_cache.values())
        while size > self.max_cached_bytes and len(self._prefix_cache) > len(prefixes):
            _, evicted = self._prefix_cache.popitem(last=False)  # the least recently used, never this call's
            size -= evicted.numel() * evicted.element_size()
        return prefixes

    def _features_cached(self, soft: torch.Tensor, instructions: list[str]) -> torch.Tensor:
        """Run only the soft tokens, on top of each row's cached prompt: one LM call per
        :attr:`max_tokens_per_call` soft tokens (one call for batches up to 128 states of 4 tokens).

        The distinct prompts are left-padded to the longest one in a small bank (one slot per distinct
        prompt); each layer copies its rows out of the bank only when the LM reaches it (see
        :class:`_PromptLayer`). The attention mask hides the padding and each row's soft tokens get
        the positions that follow its own prompt.
        """
        unique = list(dict.fromkeys(instructions))
        prefixes = self._prefix_kvs(unique)
        lengths = [kv.shape[-2] for kv in prefixes]
        longest = max(lengths)
        batch, n_soft = soft.shape[:2]
        device = soft.device
        n_layers, _, kv_heads, _, head_dim = prefixes[0].shape
        bank = prefixes[0].new_zeros(len(unique), n_layers, 2, kv_heads, longest + n_soft, head_dim)
        for slot, (kv, n) in enumerate(zip(prefixes, lengths, strict=True)):
            bank[slot, :, :, :, longest - n : longest] = kv
        index = {instruction: slot for slot, instruction in enumerate(unique)}
        rows = torch.tensor([index[s] for s in instructions], device=device)
        row_lengths = torch.tensor(lengths, device=device).index_select(0, rows)

        dtype = self.lm.get_input_embeddings().weight.dtype
        soft = soft.to(dtype)
        # Rows of soft tokens per LM call: past about 512 the MLP's activations leave the CPU's caches
        # and throughput drops (batch 2048 with 4 soft tokens: 58 states/s in one call, 90 in chunks).
        chunk = max(1, self.max_tokens_per_call // n_soft)
        features = []
        for start in range(0, batch, chunk):
            part = slice(start, start + chunk)
            cache = DynamicCache()
            cache.layers = [_PromptLayer(bank[:, layer], rows[part], longest) for layer in range(n_layers)]
            columns = torch.arange(longest + n_soft, device=device)
            mask = (columns >= (longest - row_lengths[part])[:, None]).long()
            positions = row_lengths[part, None] + torch.arange(n_soft, device=device)
            hidden = first_layers_output(
                self.lm,
                self.config.lm_layers,
                inputs_embeds=soft[part],
                attention_mask=mask,
                position_ids=positions,
                use_cache=True,
                **{self._cache_arg: cache},
            )
            features.append(hidden[:, -1])
        return torch.cat(features).float()

    def clear_prefix_cache(self) -> None:
        """Drop cached instruction prefixes (never needed for correctness; frees memory)."""
        self._prefix_cache.clear()
