"""Running a trained prior's frozen LM at another precision, re-measured, as a new prior folder.

A prior is trained on its LM at one precision (``quantization`` in its config). Running the same
trained weights at another one (bf16 is 1.6-1.8x faster than fp32 on CPUs with AVX512-BF16)
changes its outputs slightly. :func:`convert` measures by how much, on the prior's own validation
split of its demonstrations, evaluates it again as a policy at the new precision (in environments
the caller's factory makes), and writes a new prior folder whose config names the new precision and
whose provenance holds the new metrics (the old ones under ``source_*``) and both commands.

cleanrl-lago's command line for its benchmarks is ``python -m cleanrl_lago.convert_prior``.
The prior's demonstrations must be available (``MINARI_DATASETS_PATH``), as for training.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass

import tyro

from priors.configuration import PriorConfig
from priors.datasets import load_demonstrations
from priors.evaluation import EnvFactory, success_by_split
from priors.io import load_prior, push_prior_to_hub, save_prior
from priors.lm import Quantization
from priors.modeling_base import Prior
from priors.training import split_by_episode, validate

logger = logging.getLogger(__name__)


@dataclass
class ConvertSettings:
    """How to convert a prior (the options of ``python -m cleanrl_lago.convert_prior``)."""

    source: tyro.conf.Positional[str]
    """the trained prior: a folder, a shipped prior's name or a Hub repo id"""
    output: tyro.conf.Positional[str]
    """folder the converted prior is written to (atomically)"""
    quantization: Quantization = "bf16"
    """the precision the converted prior runs its LM at"""
    dataset: str | None = None
    """demonstrations to validate on (default: the dataset the prior was trained on, from its config)"""
    val_fraction: float = 0.1
    """as in training: the validation split is the same episodes only with the same fraction and seed"""
    successful_only: bool = True
    """as in training"""
    seed: int | None = None
    """seed of the validation split and of the evaluation (default: the prior's training seed)"""
    eval_episodes: int = 50
    """episodes (per task, if the prior has tasks) of the prior as a policy, per instruction split; 0: skip"""
    eval_max_episode_steps: int | None = None
    """time limit of the evaluation episodes (default: the environment's)"""
    device: str = "cpu"
    """where to run it"""
    push_to_hub: str | None = None
    """also upload the converted prior to this Hugging Face Hub repo id"""


def convert(
    args: ConvertSettings,
    *,
    make_env: Callable[[PriorConfig], EnvFactory] | None = None,
    command: str | None = None,
) -> Prior:
    """Load, re-measure and save ``args.source`` at ``args.quantization``; return the converted prior.

    Args:
        make_env: given the source prior's config, the factory of its evaluation envs
            (:data:`priors.evaluation.EnvFactory`); needed unless ``args.eval_episodes`` is 0. The
            prior's recorded ``tasks`` are evaluated, ``args.eval_episodes`` episodes each.
        command: the command line, appended to the source's in the provenance.
    """
    if args.eval_episodes and make_env is None:
        raise ValueError("evaluating the prior as a policy (eval_episodes > 0) needs make_env")
    source = load_prior(args.source, device=args.device)
    config = source.config
    recorded = config.provenance
    if config.kind in ("mlp", "gru"):
        raise ValueError(f"a {config.kind.upper()} prior has no language model to run at another precision")
    if config.quantization == args.quantization:
        raise ValueError(f"{args.source} already runs its LM at {args.quantization!r}")
    dataset = args.dataset or recorded.dataset
    if dataset is None:
        raise ValueError(f"{args.source} does not record its demonstrations; pass --dataset")
    seed = config.seed if args.seed is None else args.seed
    demos = load_demonstrations(dataset, successful_only=args.successful_only)
    _, val_rows = split_by_episode(demos, args.val_fraction, seed)
    phrasings = demos.split_instruction_ids.get("validation")  # as in training
    before = validate(source, demos, val_rows, instruction_ids=phrasings)
    del source
    prior = load_prior(args.source, device=args.device, quantization=args.quantization)
    after = validate(prior, demos, val_rows, instruction_ids=phrasings)
    logger.info("validation at %s: %s; at %s: %s", config.quantization, before, args.quantization, after)

    policy = ("policy_success_train", "policy_success_heldout")
    metrics = {k: v for k, v in recorded.metrics.items() if k not in {*after, *policy}}
    # The source's validation as measured here, on the split the converted prior is validated on.
    metrics.update({f"source_{k}": round(float(v), 4) for k, v in before.items()})
    metrics.update({f"source_{k}": recorded.metrics[k] for k in policy if k in recorded.metrics})
    recorded_nll = recorded.metrics.get("val_nll")
    if recorded_nll is not None and abs(recorded_nll - before["val_nll"]) > 1e-3:
        logger.warning(
            "validation NLL at %s is %.4f here but %.4f in the prior's config: this split (dataset, "
            "--val-fraction, --seed, --successful-only) is not the one it was trained with",
            config.quantization,
            before["val_nll"],
            recorded_nll,
        )
    metrics.update({k: round(float(v), 4) for k, v in after.items()})
    metrics["source_quantization"] = config.quantization
    if args.eval_episodes:
        rates = success_by_split(
            prior,
            make_env(config),
            tasks=config.tasks,
            episodes=args.eval_episodes,
            seed=seed,
            max_episode_steps=args.eval_max_episode_steps,
        )
        metrics.update({name: round(rate, 4) for name, rate in rates.items()})
    commands = [c for c in (recorded.command, command) if c]
    provenance = dataclasses.replace(
        prior.config.provenance, metrics=metrics, command=" && ".join(commands) or None, dataset=dataset
    )
    prior.config = dataclasses.replace(prior.config, provenance=provenance)
    save_prior(prior, args.output)
    if args.push_to_hub:
        push_prior_to_hub(args.output, args.push_to_hub)
    return prior
