"""The command line of the scripts: parse ``Args`` with tyro, refuse out-of-range options before any
work starts, and show every refusal as one line (``error: ...``, exit status 2), not a traceback.
Set ``CLEANRL_LAGO_TRACEBACK=1`` to see the traceback."""

from __future__ import annotations

import dataclasses
import math
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import tyro

T = TypeVar("T")

# The exceptions by which the scripts, priors/ and the environments refuse bad input. Anything else is
# a bug and keeps its traceback.
REFUSALS = (ValueError, FileNotFoundError, NotADirectoryError, PermissionError)

_positive = (lambda v: v > 0, "> 0")
_non_negative = (lambda v: v >= 0, ">= 0")
_at_least_one = (lambda v: v >= 1, ">= 1")
_fraction = (lambda v: 0 <= v <= 1, "in [0, 1]")
_open_fraction = (lambda v: 0 < v <= 1, "in (0, 1]")

# Valid ranges by option name, for whichever of them a script's Args has.
RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "total_timesteps": _positive,
    "learning_rate": _positive,
    "policy_lr": _positive,
    "q_lr": _positive,
    "num_envs": _at_least_one,
    "num_steps": _at_least_one,
    "num_minibatches": _at_least_one,
    "update_epochs": _at_least_one,
    "gamma": _fraction,
    "gae_lambda": _fraction,
    "clip_coef": _positive,
    "ent_coef": _non_negative,
    "vf_coef": _non_negative,
    "max_grad_norm": _positive,
    "target_kl": _positive,
    "eval_episodes": _non_negative,
    "checkpoint_every": _non_negative,
    "max_episode_steps": _at_least_one,
    "buffer_size": _at_least_one,
    "batch_size": _at_least_one,
    "tau": _open_fraction,
    "learning_starts": _non_negative,
    "policy_frequency": _at_least_one,
    "target_network_frequency": _at_least_one,
    "alpha": _non_negative,
    "kl_coef": _non_negative,
    "kl_target": _positive,
    "kl_coef_lr": _positive,
    "prior_batch_size": _at_least_one,
    "token_dropout": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "lm_layers": _at_least_one,
    "max_minutes": _positive,
}


def check_ranges(args: Any) -> None:
    """Raise ValueError naming the first option outside its valid range (NaN included). Defaults are
    trusted: a field left at its default (e.g. a size the script computes at run time) is not checked."""
    defaults = {f.name: f.default for f in dataclasses.fields(args)}
    for name, (valid, rule) in RANGES.items():
        value = getattr(args, name, None)
        if value is None or isinstance(value, bool) or value == defaults.get(name):
            continue
        if (isinstance(value, float) and not math.isfinite(value)) or not valid(value):
            raise ValueError(f"--{name.replace('_', '-')} {value} is out of range: it must be {rule}")


def check_budget(args: Any) -> None:
    """Raise ValueError when ``--total-timesteps`` is too small for any update to happen: less than one
    PPO rollout (``num_envs * num_steps``, times ``WORLD_SIZE`` under torchrun), or no more than SAC's
    ``learning_starts``; and when PPO's minibatches would be empty (more minibatches than a rank's samples)."""
    total = args.total_timesteps
    if hasattr(args, "num_steps"):
        rollout = args.num_envs * args.num_steps
        world = int(os.environ.get("WORLD_SIZE", "1"))
        ranks = f" x {world} ranks" if world > 1 else ""
        if total < rollout * world:
            raise ValueError(
                f"--total-timesteps {total} is less than one rollout (--num-envs {args.num_envs} x --num-steps "
                f"{args.num_steps}{ranks} = {rollout * world}): nothing would be trained; raise --total-timesteps "
                f"to at least {rollout * world}"
            )
        if args.num_minibatches > rollout:
            raise ValueError(
                f"--num-minibatches {args.num_minibatches} is more than the {rollout} samples of a rollout: "
                f"every minibatch would be empty; use at most {rollout}"
            )
    if hasattr(args, "learning_starts") and total <= args.learning_starts:
        raise ValueError(
            f"--total-timesteps {total} is not above --learning-starts {args.learning_starts}: nothing would be "
            "trained; raise --total-timesteps or lower --learning-starts"
        )


def _one_line_excepthook(exc_type, exc, tb):
    if issubclass(exc_type, REFUSALS) and not os.environ.get("CLEANRL_LAGO_TRACEBACK"):
        sys.stdout.flush()
        print(f"error: {exc}", file=sys.stderr)
        sys.stderr.flush()
        os._exit(2)  # the interpreter would exit 1 after an uncaught exception
    sys.__excepthook__(exc_type, exc, tb)


def cli(args_class: type[T], args: list[str] | None = None, description: str | None = None) -> T:
    """``tyro.cli(args_class)``, then the range and budget checks; from here on a refusal is one line on
    stderr."""
    sys.excepthook = _one_line_excepthook
    parsed = tyro.cli(args_class, args=args, description=description)
    check_ranges(parsed)
    if hasattr(parsed, "total_timesteps"):
        check_budget(parsed)
    return parsed
