"""Run a trained prior's frozen LM at another precision, re-measured, as a new prior folder.

A prior is trained on its LM at one precision (``quantization`` in its config). Running the same
trained weights at another one (bf16 is 1.6-1.8x faster than fp32 on CPUs with AVX512-BF16)
changes its outputs slightly. This command measures by how much, on the prior's own validation
split of its demonstrations, evaluates it again as a policy at the new precision, and writes a
new prior folder whose config names the new precision and holds the new metrics (the old ones
under ``source_*``) and both commands::

    python -m priors.convert SOURCE OUTPUT --quantization bf16 [--eval-episodes 50]

``SOURCE`` is anything :func:`priors.load_prior` accepts (a folder, a shipped prior's name, a Hub
id); its demonstrations must be available (``MINARI_DATASETS_PATH``), as for training.
"""

from __future__ import annotations

import logging
import shlex
import sys
from dataclasses import dataclass

import tyro

from priors.demonstrations import load_demonstrations
from priors.io import load_prior, push_prior_to_hub, save_prior
from priors.lm import Quantization
from priors.model import Prior
from priors.train import policy_success_rates, split_by_episode, validate

logger = logging.getLogger(__name__)


@dataclass
class Args:
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
    """episodes (per task for Meta-World) of the prior as a policy, per instruction split; 0: skip"""
    eval_max_episode_steps: int | None = None
    """time limit of the evaluation episodes (default: the environment's)"""
    device: str = "cpu"
    """where to run it"""
    push_to_hub: str | None = None
    """also upload the converted prior to this Hugging Face Hub repo id"""


def convert(args: Args, command: str | None = None) -> Prior:
    """Load, re-measure and save ``args.source`` at ``args.quantization``; return the converted prior."""
    source = load_prior(args.source, device=args.device)
    config = source.config
    if config.kind == "mlp":
        raise ValueError("an MLP prior has no language model to run at another precision")
    if config.quantization == args.quantization:
        raise ValueError(f"{args.source} already runs its LM at {args.quantization!r}")
    dataset = args.dataset or (config.instruction_split or {}).get("dataset")
    if dataset is None:
        raise ValueError(f"{args.source} does not record its demonstrations; pass --dataset")
    seed = config.seed if args.seed is None else args.seed
    demos = load_demonstrations(dataset, successful_only=args.successful_only)
    _, val_rows = split_by_episode(demos, args.val_fraction, seed)
    before = validate(source, demos, val_rows)
    del source
    prior = load_prior(args.source, device=args.device, quantization=args.quantization)
    after = validate(prior, demos, val_rows)
    logger.info("validation at %s: %s; at %s: %s", config.quantization, before, args.quantization, after)

    policy = ("policy_success_train", "policy_success_heldout")
    metrics = {k: v for k, v in config.metrics.items() if k not in {*after, *policy}}
    # The source's validation as measured here, on the split the converted prior is validated on.
    metrics.update({f"source_{k}": round(float(v), 4) for k, v in before.items()})
    metrics.update({f"source_{k}": config.metrics[k] for k in policy if k in config.metrics})
    recorded = config.metrics.get("val_nll")
    if recorded is not None and abs(recorded - before["val_nll"]) > 1e-3:
        logger.warning(
            "validation NLL at %s is %.4f here but %.4f in the prior's config: this split (dataset, "
            "--val-fraction, --seed, --successful-only) is not the one it was trained with",
            config.quantization,
            before["val_nll"],
            recorded,
        )
    metrics.update({k: round(float(v), 4) for k, v in after.items()})
    metrics["source_quantization"] = config.quantization
    if args.eval_episodes:
        rates = policy_success_rates(prior, demos, args.eval_episodes, seed, args.eval_max_episode_steps)
        metrics.update({name: round(rate, 4) for name, rate in rates.items()})
    commands = [c for c in (config.command, command) if c]
    save_prior(prior, args.output, metrics=metrics, command=" && ".join(commands) or None)
    if args.push_to_hub:
        push_prior_to_hub(args.output, args.push_to_hub)
    return prior


def main(argv: list[str] | None = None) -> Prior:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    argv = sys.argv[1:] if argv is None else argv
    args = tyro.cli(Args, args=argv)
    prior = convert(args, command="python -m priors.convert " + " ".join(shlex.quote(a) for a in argv))
    print(f"prior written to {args.output}: {prior.config.metrics}")
    return prior


if __name__ == "__main__":
    main()
