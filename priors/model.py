"""Action priors ``p(a | s, instruction)``: the language-model prior and its two baselines.

* :class:`LMPrior` (kinds ``"lm"`` and ``"random-lm"``): a frozen causal LM reads the tokens of
  the prompt (the instruction) followed by ``n_obs_tokens`` soft tokens that an observation
  projection makes from the normalised observation; an action head maps the LM's last hidden
  state to the parameters of the action distribution.
* :class:`MLPPrior` (kind ``"mlp"``): the same interface without a language model; the
  instruction is a hashed bag of words, blind to word order (the weakest reference).
* :class:`GRUPrior` (kind ``"gru"``): the fair no-LM baseline: a GRU reads the instruction's tokens
  (the LM's tokenizer) with embeddings trained from scratch; the observation joins after it.
* :class:`InstructionLMPrior` (kind ``"lm-instruction"``, the shipped priors): the GRU prior reading
  the frozen LM's hidden states of the instruction's prompt (cached per prompt) instead of embeddings
  trained from scratch.

Every prior returns raw distribution parameters from ``forward`` (logits for ``Discrete(n)``,
``cat(mean, log_std)`` for ``Box``), which RL scripts can store and turn back into a distribution
with :meth:`Prior.distribution_from_params`.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import math
import re
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, get_args

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical, Distribution, Independent, Normal
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from priors.lm import DEFAULT_LM, LoadedLM, Quantization, load_lm, load_tokenizer, tokenizer_fingerprint

logger = logging.getLogger(__name__)

FORMAT_VERSION = 2
"""Version of the ``config.json`` layout written here; :func:`priors.load_prior` also reads version 1."""
PriorKind = Literal["lm", "random-lm", "mlp", "gru", "lm-instruction"]
"""``"lm"``: a pretrained LM reading soft tokens (LaGO); ``"random-lm"``: the same architecture with random
weights; ``"mlp"``: no LM, a bag of words; ``"gru"``: no LM, a GRU trained from scratch on the LM tokenizer's
tokens; ``"lm-instruction"``: a GRU reading the frozen LM's states of the instruction."""
GRU_EMBEDDING_DIM = 64
"""Width of the GRU prior's token embeddings (a 49k-token vocabulary costs 3.1M parameters)."""
PRIOR_KINDS: tuple[str, ...] = get_args(PriorKind)
DEFAULT_PROMPT_FORMAT = "Instruction: {instruction}\nObservation:"
DEFAULT_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")

Observations = torch.Tensor | np.ndarray
Instructions = str | Sequence[str]


# Spaces <-> JSON ---------------------------------------------------------------------------------


def _encode_floats(array: np.ndarray) -> list:
    """A float array as a JSON-safe nested list (infinities become the strings "inf"/"-inf")."""
    return [v if math.isfinite(v) else ("inf" if v > 0 else "-inf") for v in array.astype(float).ravel()]


def space_to_dict(space: gym.Space) -> dict[str, Any]:
    """Describe a ``Box`` or ``Discrete`` space as a JSON-safe dict."""
    if isinstance(space, gym.spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n)}
    if isinstance(space, gym.spaces.Box):
        return {
            "type": "Box",
            "shape": list(space.shape),
            "low": _encode_floats(space.low),
            "high": _encode_floats(space.high),
        }
    raise TypeError(f"Priors support Box and Discrete spaces, not {type(space).__name__}")


def space_from_dict(spec: dict[str, Any]) -> gym.spaces.Box | gym.spaces.Discrete:
    """Rebuild a space written by :func:`space_to_dict`."""
    if spec["type"] == "Discrete":
        return gym.spaces.Discrete(spec["n"])
    shape = tuple(spec["shape"])
    low = np.array([float(v) for v in spec["low"]], dtype=np.float32).reshape(shape)
    high = np.array([float(v) for v in spec["high"]], dtype=np.float32).reshape(shape)
    return gym.spaces.Box(low, high, shape, dtype=np.float32)


# Configuration -----------------------------------------------------------------------------------


@dataclass
class LoraSettings:
    """LoRA adapters on the frozen LM (peft); off unless given to :func:`build_prior`."""

    r: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_LORA_TARGETS))


@dataclass
class Provenance:
    """Where a prior comes from. Nothing here is needed to rebuild or run it."""

    command: str | None = None
    """The command(s) that produced the prior, as they were run."""
    metrics: dict[str, Any] = field(default_factory=dict)
    """Training and evaluation metrics."""
    dataset: str | None = None
    """The demonstrations it was trained on (a Minari dataset id)."""
    instruction_split: dict[str, Any] | None = None
    """Free-form record of the instructions used for training and held out."""
    notes: list[str] = field(default_factory=list)
    """Free-form remarks, e.g. how a recorded command is spelled in a later version."""


@dataclass
class PriorConfig:
    """A prior's ``config.json`` (see docs/priors.md): its architecture, everything needed to rebuild
    the network (spaces, LM identity and precision, tokens, sizes, prompt, tasks), and its
    :class:`Provenance` under ``provenance``."""

    kind: PriorKind
    observation_space: dict[str, Any]
    action_space: dict[str, Any]
    env_id: str | None = None
    lm_name: str | None = None
    lm_fingerprint: str | None = None
    lm_random_init_seed: int | None = None
    quantization: Quantization | None = None
    n_obs_tokens: int = 4
    prompt_format: str = DEFAULT_PROMPT_FORMAT
    lora: LoraSettings | None = None
    hidden_size: int = 256
    log_std_min: float = -5.0
    log_std_max: float = 2.0
    n_buckets: int = 4096
    seed: int = 0
    observation_dims: int | None = None
    tasks: list[str] | None = None
    lm_layers: int | None = None
    """``"lm-instruction"`` only: read the LM's hidden states after its first this many decoder layers
    (``None``: all of them; a weaker LM of the same family, measured in docs/priors.md)."""
    provenance: Provenance = field(default_factory=Provenance)
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        """The config as a JSON-safe dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PriorConfig:
        """Inverse of :meth:`to_dict`. Version 1's flat layout (``metrics``, ``command`` and
        ``instruction_split`` beside the architecture) is read too. Unknown keys, at the top level or
        in ``provenance`` (written by a newer version), are left out with a warning that names them."""
        data = dict(data)
        if data.get("format_version") == 1:
            data = _from_version_1(data)
        provenance = dict(data.get("provenance") or {})
        unknown = sorted(
            [k for k in data if k not in {f.name for f in fields(cls)}]
            + [f"provenance.{k}" for k in provenance if k not in {f.name for f in fields(Provenance)}]
        )
        if unknown:
            warnings.warn(
                f"prior config: ignoring unknown field(s) {', '.join(unknown)} (written by a newer version?)",
                stacklevel=2,
            )
        known = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        known["provenance"] = Provenance(
            **{f.name: provenance[f.name] for f in fields(Provenance) if f.name in provenance}
        )
        if known.get("lora") is not None:
            known["lora"] = LoraSettings(**known["lora"])
        return cls(**known)

    @property
    def full_obs_dim(self) -> int:
        """Size of the flattened environment observation."""
        return int(np.prod(self.observation_space["shape"]))

    @property
    def obs_dim(self) -> int:
        """How many leading entries of the flattened observation the prior reads."""
        return self.full_obs_dim if self.observation_dims is None else self.observation_dims

    @property
    def is_discrete(self) -> bool:
        return self.action_space["type"] == "Discrete"

    @property
    def n_action_params(self) -> int:
        """Logits for ``Discrete(n)``; mean and log-std for a ``Box``."""
        if self.is_discrete:
            return int(self.action_space["n"])
        return 2 * int(np.prod(self.action_space["shape"]))


def _from_version_1(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1's flat layout in version 2's: provenance fields move under ``provenance``, the
    dataset out of ``instruction_split``."""
    provenance = {key: data.pop(key) for key in ("metrics", "command", "instruction_split") if key in data}
    split = provenance.get("instruction_split")
    if isinstance(split, dict) and "dataset" in split:
        split = dict(split)
        provenance["dataset"] = split.pop("dataset")
        provenance["instruction_split"] = split
    if provenance.get("metrics") is None:
        provenance.pop("metrics", None)
    return {**data, "provenance": provenance, "format_version": FORMAT_VERSION}


# Priors ------------------------------------------------------------------------------------------


def _mlp(n_in: int, n_hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, n_hidden), nn.GELU(), nn.Linear(n_hidden, n_out))


class Prior(nn.Module):
    """Common interface of all priors: normalisation, distribution parameters, likelihoods."""

    def __init__(self, config: PriorConfig):
        super().__init__()
        self.config = config
        self.register_buffer("obs_mean", torch.zeros(config.obs_dim))
        self.register_buffer("obs_std", torch.ones(config.obs_dim))

    # -- to be provided by subclasses
    def features(self, obs_normalized: torch.Tensor, instructions: list[str]) -> torch.Tensor:
        """Map normalised observations ``[B, obs_dim]`` and instructions to features ``[B, F]``."""
        raise NotImplementedError

    action_head: nn.Module

    # -- shared
    @property
    def device(self) -> torch.device:
        return self.obs_mean.device

    def set_normalization(self, mean: Observations, std: Observations) -> None:
        """Set the observation statistics (from the demonstrations); ``std`` is floored at 1e-6."""
        mean_t = torch.as_tensor(np.asarray(mean, dtype=np.float32)).reshape(-1)
        std_t = torch.as_tensor(np.asarray(std, dtype=np.float32)).reshape(-1)
        if mean_t.numel() != self.config.obs_dim or std_t.numel() != self.config.obs_dim:
            raise ValueError(f"normalisation statistics must have {self.config.obs_dim} entries")
        self.obs_mean.copy_(mean_t)
        self.obs_std.copy_(std_t.clamp_min(1e-6))

    def normalize(self, obs: Observations) -> torch.Tensor:
        """Flatten raw environment observations, keep the first ``obs_dim`` entries, normalise them.

        Raises:
            ValueError: observations of another shape than the prior's observation space, or
                holding NaN or infinite values.
        """
        obs_t = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        shape = tuple(self.config.observation_space["shape"])
        if tuple(obs_t.shape[obs_t.ndim - len(shape) :]) != shape:
            got = tuple(obs_t.shape[1:]) if obs_t.ndim > len(shape) else tuple(obs_t.shape)
            expected, received = (shape, got) if len(shape) > 1 else (shape[0], got[-1] if got else 1)
            raise ValueError(
                f"observation width mismatch: the prior expects {expected}, received {received} (observations "
                f"of shape {tuple(obs_t.shape)}). This prior was built for another environment"
                f"{f' ({self.config.env_id})' if self.config.env_id else ''}: load one trained on this "
                "environment's observations (same env, same wrappers)."
            )
        obs_t = obs_t.reshape(-1, self.config.full_obs_dim)
        finite = torch.isfinite(obs_t).all(dim=1)
        if not bool(finite.all()):
            rows = torch.nonzero(~finite).flatten().tolist()
            listed = ", ".join(map(str, rows[:10])) + (
                f" and {len(rows) - 10} more" if len(rows) > 10 else ""
            )
            raise ValueError(
                f"non-finite observation: row(s) {listed} of {len(finite)} hold NaN or inf. The observation "
                "must be finite; check the environment, or the wrapper that normalises its observations."
            )
        obs_t = obs_t[:, : self.config.obs_dim]
        return ((obs_t - self.obs_mean) / self.obs_std).clamp(-10.0, 10.0)

    def _instruction_list(self, instructions: Instructions, batch: int) -> list[str]:
        if isinstance(instructions, str):
            return [instructions] * batch
        instructions = list(instructions)
        if len(instructions) != batch:
            raise ValueError(f"got {len(instructions)} instructions for {batch} observations")
        return instructions

    def forward(self, obs: Observations, instructions: Instructions) -> torch.Tensor:
        """Raw distribution parameters ``[B, P]``: logits, or ``cat(mean, log_std)`` for a Box.

        Args:
            obs: raw (unnormalised) observations, ``[B, *observation_shape]``.
            instructions: one instruction per observation, or one string for the whole batch.
        """
        obs_n = self.normalize(obs)
        features = self.features(obs_n, self._instruction_list(instructions, obs_n.shape[0]))
        params = self.action_head(features)
        if self.config.is_discrete:
            return params
        mean, raw_log_std = params.chunk(2, dim=-1)
        # A smooth squash keeps gradients alive at the bounds, unlike a hard clamp.
        lo, hi = self.config.log_std_min, self.config.log_std_max
        log_std = lo + 0.5 * (hi - lo) * (torch.tanh(raw_log_std) + 1.0)
        return torch.cat([mean, log_std], dim=-1)

    @torch.no_grad()
    def predict(self, obs: Observations, instructions: Instructions, batch_size: int = 1024) -> torch.Tensor:
        """:meth:`forward` without gradients, in batches of ``batch_size`` states: the frozen prior's
        parameters for many states at once (e.g. every state of an RL rollout)."""
        n = len(obs)
        if isinstance(instructions, str):
            instructions = [instructions] * n
        if len(instructions) != n:
            raise ValueError(
                f"{n} observations but {len(instructions)} instructions: pass one per observation"
            )
        chunks = [
            self(obs[i : i + batch_size], list(instructions[i : i + batch_size]))
            for i in range(0, n, batch_size)
        ]
        return torch.cat(chunks)

    def distribution_from_params(self, params: torch.Tensor) -> Distribution:
        """``Categorical`` (Discrete) or ``Independent(Normal)`` (Box) from :meth:`forward`'s output."""
        if self.config.is_discrete:
            return Categorical(logits=params)
        mean, log_std = params.chunk(2, dim=-1)
        shape = (*params.shape[:-1], *self.config.action_space["shape"])
        normal = Normal(mean.reshape(shape), log_std.exp().reshape(shape))
        return Independent(normal, len(self.config.action_space["shape"]))

    def distribution(self, obs: Observations, instructions: Instructions) -> Distribution:
        """The prior's action distribution for a batch of observations and instructions."""
        return self.distribution_from_params(self(obs, instructions))

    def log_prob(self, obs: Observations, instructions: Instructions, actions: torch.Tensor) -> torch.Tensor:
        """``log p(a | s, instruction)`` per sample, ``[B]``."""
        actions = torch.as_tensor(actions, device=self.device)
        actions = actions.long() if self.config.is_discrete else actions.float()
        return self.distribution(obs, instructions).log_prob(actions)

    def nll(self, obs: Observations, instructions: Instructions, actions: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood of a batch of demonstrations (the training loss)."""
        return -self.log_prob(obs, instructions, actions).mean()

    def set_log_prob(self, obs: Observations, instructions: Instructions, action_sets) -> torch.Tensor:
        """``log sum_{a in set} p(a | s, instruction)`` per sample, ``[B]``: the log-probability of
        choosing any action of the set, given as a ``[B, n]`` bool mask (discrete actions only)."""
        if not self.config.is_discrete:
            raise ValueError("action sets need a Discrete action space")
        sets = torch.as_tensor(action_sets, dtype=torch.bool, device=self.device)
        log_probs = torch.log_softmax(self(obs, instructions), dim=-1)
        return log_probs.masked_fill(~sets, float("-inf")).logsumexp(dim=-1)

    @property
    def has_lora(self) -> bool:
        return self.config.lora is not None

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Parameters to optimise: projection, head, LoRA adapters (never the frozen LM)."""
        return [p for p in self.parameters() if p.requires_grad]

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """What a saved prior stores: trainable parameters and the prior's own buffers."""
        return {
            name: tensor.detach()
            for name, tensor in self.state_dict().items()
            if not name.startswith("lm.") or "lora_" in name
        }


def _add_lora(lm: nn.Module, lora: LoraSettings, n_layers: int | None = None) -> None:
    """Inject LoRA adapters (peft) into the frozen LM, on its first ``n_layers`` decoder layers only
    (``None``: all of them); the adapters are the LM's only trainable weights."""
    from peft import LoraConfig, inject_adapter_in_model

    settings = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules),
        layers_to_transform=None if n_layers is None else list(range(n_layers)),
        layers_pattern=None if n_layers is None else "layers",
    )
    inject_adapter_in_model(settings, lm)
    for name, param in lm.named_parameters():
        param.requires_grad_("lora_" in name)


def _lora_version(lm: nn.Module) -> int:
    """Changes whenever a LoRA weight is modified in place (optimiser step, load)."""
    return sum(p._version for n, p in lm.named_parameters() if "lora_" in n)


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

    def __init__(
        self,
        config: PriorConfig,
        lm: LoadedLM,
        max_cached_prefixes: int = 1024,
        max_tokens_per_call: int = 512,
    ):
        super().__init__(config)
        self.lm = lm.model
        self.tokenizer = lm.tokenizer
        embeddings = self.lm.get_input_embeddings().weight
        width = embeddings.shape[1]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.projection = _mlp(config.obs_dim, config.hidden_size, config.n_obs_tokens * width)
            # LM hidden states carry a few huge outlier dimensions: normalise before the head.
            self.action_head = nn.Sequential(
                nn.LayerNorm(width), _mlp(width, config.hidden_size, config.n_action_params)
            )
            if config.lora is not None:
                _add_lora(self.lm, config.lora)
        # Soft tokens start at the scale of real token embeddings.
        self.register_buffer("token_scale", embeddings.detach().float().pow(2).mean().sqrt().reshape(1))
        # transformers 5.2x renamed the cache argument `past_key_values` to `cache`; accept both.
        forward_args = inspect.signature(type(self.lm).forward).parameters
        self._cache_arg = "cache" if "cache" in forward_args else "past_key_values"
        self.max_cached_prefixes = max_cached_prefixes
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

    def _features_full(self, soft: torch.Tensor, instructions: list[str]) -> torch.Tensor:
        """One pass over the whole sequence; prompts of different lengths are left-padded."""
        batch, n_soft = soft.shape[:2]
        ids = [self.token_ids(s) for s in instructions]
        longest = max(len(i) for i in ids)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        input_ids = torch.full((batch, longest), pad, dtype=torch.long, device=soft.device)
        mask = torch.zeros(batch, longest + n_soft, dtype=torch.long, device=soft.device)
        for row, row_ids in enumerate(ids):
            input_ids[row, longest - len(row_ids) :] = torch.tensor(row_ids, device=soft.device)
            mask[row, longest - len(row_ids) :] = 1
        embed = self.lm.get_input_embeddings()
        inputs = torch.cat([embed(input_ids), soft.to(embed.weight.dtype)], dim=1)
        positions = (mask.cumsum(-1) - 1).clamp_min(0)
        out = self.lm(inputs_embeds=inputs, attention_mask=mask, position_ids=positions)
        return out.last_hidden_state[:, -1].float()

    def _prefix_kv(self, instruction: str) -> torch.Tensor:
        """Keys and values of the prompt, ``[layers, 2, kv_heads, prompt_length, head_dim]``, from an LRU cache."""
        key = (instruction, _lora_version(self.lm) if self.has_lora else 0)
        kv = self._prefix_cache.get(key)
        if kv is not None:
            self._prefix_cache.move_to_end(key)
            return kv
        ids = torch.tensor([self.token_ids(instruction)], device=self.device)
        with torch.no_grad():
            out = self.lm(input_ids=ids, use_cache=True)
        layers = out[self._cache_arg].layers
        kv = torch.stack([torch.stack([layer.keys[0], layer.values[0]]) for layer in layers])
        self._prefix_cache[key] = kv
        if len(self._prefix_cache) > self.max_cached_prefixes:
            self._prefix_cache.popitem(last=False)
        return kv

    def _features_cached(self, soft: torch.Tensor, instructions: list[str]) -> torch.Tensor:
        """Run only the soft tokens, on top of each row's cached prompt: one LM call per
        :attr:`max_tokens_per_call` soft tokens (one call for batches up to 128 states of 4 tokens).

        The distinct prompts are left-padded to the longest one in a small bank (one slot per distinct
        prompt); each layer copies its rows out of the bank only when the LM reaches it (see
        :class:`_PromptLayer`). The attention mask hides the padding and each row's soft tokens get
        the positions that follow its own prompt.
        """
        unique = list(dict.fromkeys(instructions))
        prefixes = [self._prefix_kv(instruction) for instruction in unique]
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
            out = self.lm(
                inputs_embeds=soft[part],
                attention_mask=mask,
                position_ids=positions,
                use_cache=True,
                **{self._cache_arg: cache},
            )
            features.append(out.last_hidden_state[:, -1])
        return torch.cat(features).float()

    def clear_prefix_cache(self) -> None:
        """Drop cached instruction prefixes (never needed for correctness; frees memory)."""
        self._prefix_cache.clear()


def _trunk_and_head(config: PriorConfig) -> tuple[nn.Sequential, nn.Linear]:
    """The no-LM and instruction-LM priors' MLP over ``cat(observation, instruction features)`` and their
    linear action head (created in this order: it fixes their initialisation under the prior's seed)."""
    trunk = nn.Sequential(
        nn.Linear(config.obs_dim + config.hidden_size, config.hidden_size),
        nn.GELU(),
        nn.Linear(config.hidden_size, config.hidden_size),
        nn.GELU(),
    )
    return trunk, nn.Linear(config.hidden_size, config.n_action_params)


def _words(instruction: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", instruction.lower())


class MLPPrior(Prior):
    """The no-LM baseline: an MLP over the observation and a hashed bag of instruction words."""

    def __init__(self, config: PriorConfig):
        super().__init__(config)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.instruction_embedding = nn.EmbeddingBag(config.n_buckets, config.hidden_size, mode="mean")
            self.trunk, self.action_head = _trunk_and_head(config)

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


class _GRUReaderPrior(Prior):
    """A one-layer GRU reads one vector per token of each distinct instruction (:meth:`token_vectors`, given
    by the subclass); its last hidden state joins the normalised observation in the MLP trunk, then the
    action head. ``token_dropout`` > 0 (set by the trainer, not saved) removes each token with that
    probability while training (word dropout; one token at least stays), so the prior cannot lean on the
    words of its training phrasings."""

    token_dropout: float = 0.0

    def _build_reader(self, config: PriorConfig) -> None:
        """The GRU, trunk and head, created after the subclass's token layers (same seeded RNG stream)."""
        self.encoder = nn.GRU(GRU_EMBEDDING_DIM, config.hidden_size, batch_first=True)
        self.trunk, self.action_head = _trunk_and_head(config)

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


class GRUPrior(_GRUReaderPrior):
    """The order-aware no-LM baseline: token embeddings and a one-layer GRU, trained from scratch, read
    the instruction's tokens (the LM's tokenizer); the GRU's last hidden state and the normalised
    observation go through the same MLP trunk as :class:`MLPPrior`'s, then the action head."""

    def __init__(self, config: PriorConfig, tokenizer):
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


class _StopPass(Exception):
    """Raised by a forward hook to end an LM pass at the layer whose output is wanted."""


class InstructionLMPrior(_GRUReaderPrior):
    """The frozen LM reads the instruction only; the observation joins in the head. A departure from
    LaGO's soft tokens, measured beside them (issue 12): the LM runs once per distinct instruction
    prompt (its token states are cached), so in RL the prior costs a small GRU and an MLP per state.

    It is :class:`GRUPrior` with the token embeddings trained from scratch replaced by the frozen LM's
    hidden states of the prompt's tokens (layer ``config.lm_layers``, the last one by default; a
    LayerNorm and a linear map take them to the GRU's input width): the same GRU, trunk and head, so
    the two priors differ only in what reads the words."""

    def __init__(self, config: PriorConfig, lm: LoadedLM, max_cached: int = 8192):
        super().__init__(config)
        self.lm = lm.model
        self.tokenizer = lm.tokenizer
        width = self.lm.get_input_embeddings().weight.shape[1]
        n_layers = self.lm.config.num_hidden_layers
        if config.lm_layers is not None and not 1 <= config.lm_layers <= n_layers:
            raise ValueError(f"lm_layers must be in 1..{n_layers} for {lm.name}, got {config.lm_layers}")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            # LM hidden states carry a few huge outlier dimensions: normalise before the map.
            self.token_projection = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, GRU_EMBEDDING_DIM))
            self._build_reader(config)
            if config.lora is not None:  # only the layers the pass runs get adapters
                _add_lora(self.lm, config.lora, n_layers=config.lm_layers)
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
        if self.has_lora and self._states_version != (version := _lora_version(self.lm)):
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
        """The LM's hidden states after layer ``config.lm_layers``: the layers above it never run (a hook on
        that layer stops the pass), so reading layer 4 of 30 costs 4 layers."""
        if self.config.lm_layers is None or self.config.lm_layers == self.lm.config.num_hidden_layers:
            return self.lm(input_ids=input_ids, attention_mask=mask).last_hidden_state
        captured: list[torch.Tensor] = []

        def stop(module, args, output):
            captured.append(output[0] if isinstance(output, tuple) else output)
            raise _StopPass

        handle = self.lm.layers[self.config.lm_layers - 1].register_forward_hook(stop)
        try:
            self.lm(input_ids=input_ids, attention_mask=mask)
        except _StopPass:
            pass
        finally:
            handle.remove()
        return captured[0]

    def token_vectors(self, instructions: list[str]) -> list[torch.Tensor]:
        if self.has_lora and torch.is_grad_enabled():  # training the adapters: the pass runs with grad
            states = self._compute_states(list(instructions)) if instructions else []
        else:
            states = self.token_states(instructions)
        return [self.token_projection(s) for s in states]


def build_prior(
    *,
    observation_space: gym.spaces.Box,
    action_space: gym.spaces.Box | gym.spaces.Discrete,
    kind: PriorKind = "lm",
    lm: str | LoadedLM = DEFAULT_LM,
    quantization: Quantization | None = None,
    n_obs_tokens: int = 4,
    lora: LoraSettings | None = None,
    env_id: str | None = None,
    prompt_format: str = DEFAULT_PROMPT_FORMAT,
    hidden_size: int = 256,
    random_lm_seed: int = 0,
    seed: int = 0,
    observation_dims: int | None = None,
    tasks: list[str] | None = None,
    lm_layers: int | None = None,
    random_lm: bool = False,
    log_std_min: float = -5.0,
    device: str | torch.device = "cpu",
) -> Prior:
    """Build an untrained prior.

    Args:
        observation_space: the environment's (flat or not) ``Box`` observation space.
        action_space: ``Discrete(n)`` (categorical prior) or ``Box`` (diagonal Gaussian prior).
        kind: ``"lm"`` (pretrained LM), ``"random-lm"`` (same architecture, fresh weights drawn with
            ``random_lm_seed``), ``"mlp"`` (no LM; ``lm`` and ``quantization`` are ignored) or ``"gru"``
            (no LM: ``lm`` names the tokenizer only; ``quantization`` is ignored) or ``"lm-instruction"`` (the
            frozen LM reads the instruction only, once per distinct prompt; the observation joins in the head).
        lm: a name understood by :func:`priors.lm.load_lm`, or an already loaded :class:`LoadedLM`
            (to share one LM between priors; for ``"random-lm"`` pass a name).
        quantization: ``"none"`` (fp32), ``"bf16"``, ``"nf4"``, ``"int8"``; default NF4 on CUDA, none on CPU.
        n_obs_tokens: number of soft tokens the observation becomes.
        lora: LoRA settings, or ``None`` (default) for a fully frozen LM (LM kinds only; with
            ``"lm-instruction"`` on the layers the pass runs, the first ``lm_layers``).
        seed: seed of the trainable parts' initialisation.
        observation_dims: read only the first this many observation entries (e.g. CLEVR-Robot's
            ball positions without its numeric goal, so the goal must come from the instruction).
        tasks: the tasks the prior was trained on, if the environment has tasks; checked by :func:`load_prior`.
        lm_layers: ``"lm-instruction"`` only: read the LM's states after its first this many layers (default all).
        random_lm: ``"lm-instruction"`` only: the LM with fresh weights drawn with ``random_lm_seed`` (pass a name).
        log_std_min: ``Box`` actions: the floor of the Gaussian's log standard deviation.
    """
    if kind not in PRIOR_KINDS:
        raise ValueError(f"kind must be one of {PRIOR_KINDS}, got {kind!r}")
    config = PriorConfig(
        kind=kind,
        observation_space=space_to_dict(observation_space),
        action_space=space_to_dict(action_space),
        env_id=env_id,
        n_obs_tokens=n_obs_tokens,
        prompt_format=prompt_format,
        lora=lora,
        hidden_size=hidden_size,
        seed=seed,
        observation_dims=observation_dims,
        tasks=None if tasks is None else list(tasks),
        lm_layers=lm_layers,
        log_std_min=log_std_min,
    )
    if not (math.isfinite(log_std_min) and log_std_min < config.log_std_max):
        raise ValueError(
            f"log_std_min must be a number below log_std_max ({config.log_std_max}), got {log_std_min}"
        )
    if lora is not None and kind in ("mlp", "gru"):
        raise ValueError(
            f"lora applies to the LM priors (kind 'lm', 'random-lm', 'lm-instruction'), not {kind!r}"
        )
    if (lm_layers is not None or random_lm) and kind != "lm-instruction":
        raise ValueError(f"lm_layers and random_lm apply to kind='lm-instruction' only, not {kind!r}")
    if observation_dims is not None and not 0 < observation_dims <= config.full_obs_dim:
        raise ValueError(f"observation_dims must be in 1..{config.full_obs_dim}, got {observation_dims}")
    if "{instruction}" not in prompt_format:
        raise ValueError("prompt_format must contain '{instruction}'")
    if kind == "mlp":
        return MLPPrior(config).to(device)
    if kind == "gru":  # the LM's tokenizer only
        tokenizer = lm.tokenizer if isinstance(lm, LoadedLM) else load_tokenizer(lm)
        config.lm_name = lm.name if isinstance(lm, LoadedLM) else lm
        config.lm_fingerprint = tokenizer_fingerprint(tokenizer)
        return GRUPrior(config, tokenizer).to(device)
    if (kind == "random-lm" or random_lm) and isinstance(lm, LoadedLM):
        raise ValueError(
            "a random-init LM (kind='random-lm' or random_lm=True) needs the LM's name, not a loaded LM"
        )
    if not isinstance(lm, LoadedLM):
        seed_arg = random_lm_seed if kind == "random-lm" or random_lm else None
        lm = load_lm(lm, quantization=quantization, device=device, random_init_seed=seed_arg)
    config.lm_name = lm.name
    config.lm_fingerprint = lm.fingerprint
    config.lm_random_init_seed = lm.random_init_seed
    config.quantization = lm.quantization
    return (InstructionLMPrior if kind == "lm-instruction" else LMPrior)(config, lm)
