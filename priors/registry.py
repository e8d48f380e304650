"""The prior kinds: from a kind's name to its configuration and its model class, used by
:func:`build_prior`, :func:`priors.save_prior` and :func:`priors.load_prior`."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import gymnasium as gym
import torch

from priors.configuration import (
    CONFIG_CLASSES,
    PRIOR_KINDS,
    GRUPriorConfig,
    InstructionLMPriorConfig,
    LMPriorConfig,
    MLPPriorConfig,
    PriorConfig,
    PriorKind,
)
from priors.lm import DEFAULT_LM, LoadedLM
from priors.modeling_base import Prior
from priors.modeling_gru import GRUPrior
from priors.modeling_instruction_lm import InstructionLMPrior
from priors.modeling_lm import LMPrior
from priors.modeling_mlp import MLPPrior
from priors.spaces import space_to_dict


@dataclass(frozen=True)
class PriorType:
    """A prior kind: its configuration and the model built from it."""

    config_class: type[PriorConfig]
    prior_class: type[Prior]

    @property
    def options(self) -> tuple[str, ...]:
        """The fields of the kind's config that :func:`build_prior` takes as options."""
        given_by_build = {"observation_space", "action_space", "provenance", "format_version"}
        recorded = {"lm_name", "lm_fingerprint"}  # read off the LM given as ``lm``
        return tuple(
            f.name for f in fields(self.config_class) if f.init and f.name not in given_by_build | recorded
        )


PRIOR_TYPES: dict[str, PriorType] = {
    "lm": PriorType(LMPriorConfig, LMPrior),
    "lm-instruction": PriorType(InstructionLMPriorConfig, InstructionLMPrior),
    "gru": PriorType(GRUPriorConfig, GRUPrior),
    "mlp": PriorType(MLPPriorConfig, MLPPrior),
}
assert tuple(PRIOR_TYPES) == PRIOR_KINDS
assert all(CONFIG_CLASSES[kind] is spec.config_class for kind, spec in PRIOR_TYPES.items())


def prior_type(kind: str) -> PriorType:
    """The :class:`PriorType` of ``kind``.

    Raises:
        ValueError: an unknown kind.
    """
    if kind not in PRIOR_TYPES:
        raise ValueError(f"kind must be one of {PRIOR_KINDS}, got {kind!r}")
    return PRIOR_TYPES[kind]


def build_prior(
    kind: PriorKind = "lm",
    *,
    observation_space: gym.spaces.Box,
    action_space: gym.spaces.Box | gym.spaces.Discrete,
    lm: str | LoadedLM = DEFAULT_LM,
    device: str | torch.device = "cpu",
    **options,
) -> Prior:
    """Build an untrained prior of ``kind``.

    Args:
        kind: ``"lm"`` (LaGO's soft tokens), ``"lm-instruction"`` (the LM reads the instruction only),
            ``"gru"`` or ``"mlp"`` (no LM); see :data:`priors.configuration.PriorKind`.
        observation_space: the environment's (flat or not) ``Box`` observation space.
        action_space: ``Discrete(n)`` (categorical prior) or ``Box`` (diagonal Gaussian prior).
        lm: the LM kinds' language model (a name understood by :func:`priors.lm.load_lm`, or an already
            loaded :class:`~priors.lm.LoadedLM` to share one LM between priors); ``"gru"``: the LM whose
            tokenizer it reads with; ``"mlp"``: not used.
        device: where the prior lives.
        options: fields of the kind's config (:mod:`priors.configuration`), e.g. ``env_id``, ``tasks``,
            ``observation_dims``, ``hidden_size``, ``seed``, ``log_std_min``; ``quantization``,
            ``prompt_format``, ``lora`` and ``lm_random_init_seed`` (the LM's architecture with fresh weights
            drawn with this seed; pass the LM's name) for the LM kinds; ``n_obs_tokens`` for ``"lm"``;
            ``lm_layers`` for ``"lm-instruction"``; ``n_buckets`` for ``"mlp"``.

    Raises:
        ValueError: an unknown kind, an option that does not apply to it, or an out-of-range value.
    """
    spec = prior_type(kind)
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        raise ValueError(
            f"{', '.join(unknown)}: not an option of kind {kind!r} (its options: {', '.join(spec.options)})"
        )
    if options.get("tasks") is not None:
        options["tasks"] = list(options["tasks"])
    config = spec.config_class(
        observation_space=space_to_dict(observation_space),
        action_space=space_to_dict(action_space),
        **options,
    )
    _check_options(config)
    return spec.prior_class.from_config(config, lm, device=device)


def _check_options(config: PriorConfig) -> None:
    if not (math.isfinite(config.log_std_min) and config.log_std_min < config.log_std_max):
        raise ValueError(
            f"log_std_min must be a number below log_std_max ({config.log_std_max}), got {config.log_std_min}"
        )
    if config.observation_dims is not None and not 0 < config.observation_dims <= config.full_obs_dim:
        raise ValueError(
            f"observation_dims must be in 1..{config.full_obs_dim}, got {config.observation_dims}"
        )
    prompt_format = getattr(config, "prompt_format", "{instruction}")
    if "{instruction}" not in prompt_format:
        raise ValueError("prompt_format must contain '{instruction}'")
