"""Action priors for LaGO: ``p(a | observation, instruction)`` from a frozen language model.

Build with :func:`build_prior` (a kind's name; :data:`PRIOR_TYPES` maps each kind to its config and
model class, one module per kind: ``priors/modeling_*.py``, configs in ``priors/configuration.py``), train with :meth:`Prior.nll` over :meth:`Prior.trainable_parameters`
(or :func:`priors.training.train` on :class:`Demonstrations`), save with :func:`save_prior`, load with
:func:`load_prior`, publish with :func:`push_prior_to_hub`, evaluate as a policy with
:func:`evaluate_as_policy` in envs of your own factory. The library knows no environment: what it
needs of one (spaces, an env id, an env factory) it takes as arguments. See docs/priors.md.
"""

from priors.configuration import (
    DEFAULT_PROMPT_FORMAT,
    GRUPriorConfig,
    InstructionLMPriorConfig,
    LMPriorConfig,
    LoraSettings,
    MLPPriorConfig,
    PriorConfig,
    PriorKind,
    Provenance,
)
from priors.datasets import Demonstrations, load_demonstrations
from priors.evaluation import (
    EnvFactory,
    EvaluationEpisode,
    InstructionSplit,
    episode_successes,
    evaluate_as_policy,
)
from priors.hub import upload_folder_to_hub
from priors.io import (
    DEFAULT_PRIORS,
    PriorLoadError,
    load_prior,
    push_prior_to_hub,
    save_prior,
    shipped_priors,
)
from priors.lm import BUILTIN_LMS, DEFAULT_LM, GEMMA_LM, LoadedLM, Quantization, load_lm
from priors.modeling_base import Prior
from priors.modeling_gru import GRUPrior
from priors.modeling_instruction_lm import InstructionLMPrior
from priors.modeling_lm import LMPrior
from priors.modeling_mlp import MLPPrior
from priors.registry import PRIOR_TYPES, PriorType, build_prior

__all__ = [
    "BUILTIN_LMS",
    "DEFAULT_LM",
    "DEFAULT_PRIORS",
    "DEFAULT_PROMPT_FORMAT",
    "Demonstrations",
    "EnvFactory",
    "EvaluationEpisode",
    "GEMMA_LM",
    "GRUPrior",
    "GRUPriorConfig",
    "InstructionLMPrior",
    "InstructionLMPriorConfig",
    "InstructionSplit",
    "LMPrior",
    "LMPriorConfig",
    "LoadedLM",
    "LoraSettings",
    "MLPPrior",
    "MLPPriorConfig",
    "Prior",
    "PRIOR_TYPES",
    "PriorConfig",
    "PriorKind",
    "PriorLoadError",
    "PriorType",
    "Provenance",
    "Quantization",
    "build_prior",
    "episode_successes",
    "evaluate_as_policy",
    "load_demonstrations",
    "load_lm",
    "load_prior",
    "push_prior_to_hub",
    "save_prior",
    "shipped_priors",
    "upload_folder_to_hub",
]
