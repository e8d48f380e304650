"""The interface every prior kind shares: :class:`Prior`.

A prior maps raw observations and instructions to the raw parameters of an action distribution
(:meth:`Prior.forward`: logits for ``Discrete(n)``, ``cat(mean, log_std)`` for ``Box``), which RL
scripts can store and turn back into a distribution with :meth:`Prior.distribution_from_params`.
Each kind supplies :meth:`Prior.features` and an ``action_head`` (one module per kind:
``priors/modeling_*.py``), and :meth:`Prior.from_config` (what it needs besides its config: an LM,
a tokenizer).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical, Distribution, Independent, Normal

from priors.configuration import PriorConfig
from priors.lm import LoadedLM, Quantization

Observations = torch.Tensor | np.ndarray
Instructions = str | Sequence[str]


def mlp(n_in: int, n_hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, n_hidden), nn.GELU(), nn.Linear(n_hidden, n_out))


class Prior(nn.Module):
    """Common interface of all priors: normalisation, distribution parameters, likelihoods."""

    def __init__(self, config: PriorConfig):
        super().__init__()
        self.config = config
        self.register_buffer("obs_mean", torch.zeros(config.obs_dim))
        self.register_buffer("obs_std", torch.ones(config.obs_dim))

    # -- to be provided by subclasses
    @classmethod
    def from_config(
        cls,
        config: PriorConfig,
        lm: str | LoadedLM | None = None,
        *,
        device: str | torch.device = "cpu",
        quantization: Quantization | None = None,
    ) -> Prior:
        """The untrained prior of ``config``, with what it reads the instruction with.

        ``lm`` (a name or a loaded LM; default: the one the config names) and ``quantization`` concern
        the kinds built on an LM or its tokenizer. A config that records an LM's fingerprint (a saved
        prior's) is checked against the LM given; one that records none (a new prior's) records it.

        Raises:
            ValueError: the LM cannot be loaded or is not the one the config records.
        """
        return cls(config).to(device)

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
        """One instruction per observation; refuses a missing or empty one (the prior would guess)."""
        instructions = [instructions] * batch if isinstance(instructions, str) else list(instructions)
        if len(instructions) != batch:
            raise ValueError(f"got {len(instructions)} instructions for {batch} observations")
        for s in set(instructions):
            if not isinstance(s, str) or not s.strip():
                raise ValueError(
                    f"empty instruction ({s!r}): a prior needs the task's language instruction for every "
                    "observation; pass the instruction the environment gives (info['instruction'])."
                )
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
        """Whether LoRA adapters on a frozen LM train with the prior (LM kinds only)."""
        return getattr(self.config, "lora", None) is not None

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


def trunk_and_head(config: PriorConfig) -> tuple[nn.Sequential, nn.Linear]:
    """The no-LM and instruction-LM priors' MLP over ``cat(observation, instruction features)`` and their
    linear action head (created in this order: it fixes their initialisation under the prior's seed)."""
    trunk = nn.Sequential(
        nn.Linear(config.obs_dim + config.hidden_size, config.hidden_size),
        nn.GELU(),
        nn.Linear(config.hidden_size, config.hidden_size),
        nn.GELU(),
    )
    return trunk, nn.Linear(config.hidden_size, config.n_action_params)
