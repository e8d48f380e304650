"""Action priors for LaGO: ``p(a | observation, instruction)`` from a frozen language model.

Build with :func:`build_prior`, train with :meth:`Prior.nll` over :meth:`Prior.trainable_parameters`,
save with :func:`save_prior`, load with :func:`load_prior`, publish with :func:`push_prior_to_hub`.
Demonstrations: :mod:`priors.demonstrations`; the training command: :mod:`priors.train`.
See docs/priors.md.
"""

from priors.hub import upload_folder_to_hub
from priors.io import (
    DEFAULT_PRIORS,
    PriorLoadError,
    load_prior,
    push_prior_to_hub,
    save_prior,
    shipped_priors,
)
from priors.lm import DEFAULT_LM, LoadedLM, Quantization, default_quantization, lm_fingerprint, load_lm
from priors.model import (
    DEFAULT_PROMPT_FORMAT,
    LMPrior,
    LoraSettings,
    MLPPrior,
    Prior,
    PriorConfig,
    build_prior,
)

__all__ = [
    "DEFAULT_LM",
    "DEFAULT_PRIORS",
    "DEFAULT_PROMPT_FORMAT",
    "LMPrior",
    "LoadedLM",
    "LoraSettings",
    "MLPPrior",
    "Prior",
    "PriorConfig",
    "PriorLoadError",
    "Quantization",
    "build_prior",
    "default_quantization",
    "lm_fingerprint",
    "load_lm",
    "load_prior",
    "push_prior_to_hub",
    "save_prior",
    "shipped_priors",
    "upload_folder_to_hub",
]
