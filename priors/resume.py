"""Resuming an interrupted prior training (``train_prior --resume``).

At the end of every epoch :func:`priors.training.train` writes its whole state, atomically, to
:func:`checkpoint_path` beside the output folder: the trainable weights, the optimiser, the batch
sampler's and torch's random streams, the epoch, the best epoch so far and its weights, and the
settings. A resumed run continues after the last finished epoch and ends with the prior an
uninterrupted run would have saved, bit for bit. The file is removed once the prior is saved.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from priors.atomic import write_file_atomically
from priors.modeling_base import Prior

# Settings that may differ between the interrupted run and its resumption: where it runs and what it does
# after training; ``output`` (a state moved or copied with ``<output>.training.pt`` resumes there); and
# ``max_minutes``: a time budget set on resumption cuts a long training short (it stops after the next
# epoch, keeping the best so far, and the prior's metrics say ``stopped_by_time_budget``).
_MAY_CHANGE = (
    "resume",
    "device",
    "push_to_hub",
    "eval_episodes",
    "eval_max_episode_steps",
    "output",
    "max_minutes",
)


@dataclasses.dataclass
class LoopState:
    """Where the epoch loop stands after ``epoch`` finished epochs."""

    epoch: int = 0
    step: int = 0
    best: float = float("inf")
    best_state: dict[str, torch.Tensor] | None = None
    best_metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    stale: int = 0
    elapsed: float = 0.0
    run_name: str = ""


def checkpoint_path(output: str | os.PathLike) -> Path:
    """Where the training of ``output`` keeps its state: ``<output>.training.pt`` beside the folder."""
    output = Path(output)
    return output.with_name(output.name + ".training.pt")


def _compared(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings a resumption must repeat (a state written when fewer settings could change still
    holds them: they are left out of its comparison too)."""
    return {k: v for k, v in settings.items() if k not in _MAY_CHANGE}


def save_state(
    path: Path,
    settings: Any,
    prior: Prior,
    optimizer: torch.optim.Optimizer,
    rng: np.random.Generator,
    loop: LoopState,
) -> None:
    """Write the training's state after ``loop.epoch`` epochs (atomically: a crash keeps the last one)."""
    state = {
        "settings": _compared(dataclasses.asdict(settings)),
        "weights": prior.trainable_state_dict(),
        "optimizer": optimizer.state_dict(),
        "numpy_rng": rng.bit_generator.state,
        "torch_rng": torch.get_rng_state(),
        "loop": dataclasses.asdict(loop),
    }
    write_file_atomically(path, lambda f: torch.save(state, f))


def load_state(
    path: Path,
    settings: Any,
    prior: Prior,
    optimizer: torch.optim.Optimizer,
    rng: np.random.Generator,
) -> LoopState:
    """Restore the state :func:`save_state` wrote into ``prior``, ``optimizer`` and ``rng``; refuse a
    missing or unreadable file, or one written with other settings."""
    if not path.is_file():
        raise FileNotFoundError(
            f"--resume: no training state at {path} (it is written after each epoch and removed once the "
            "prior is saved); run without --resume to start over"
        )
    try:
        state = torch.load(path, map_location=prior.device, weights_only=True)
        loop = LoopState(**state["loop"])
    except Exception as e:  # a truncated or foreign file
        raise ValueError(
            f"--resume: {path} is unreadable ({type(e).__name__}); delete it to start over"
        ) from e
    saved, now = _compared(state["settings"]), _compared(dataclasses.asdict(settings))
    changed = sorted(k for k in saved.keys() | now.keys() if saved.get(k) != now.get(k))
    if changed:
        options = ", ".join("--" + k.replace("_", "-") for k in changed)
        raise ValueError(
            f"--resume: {path} was written with other settings ({options}); resume with the same options, "
            "or run without --resume to start over"
        )
    prior.load_state_dict(state["weights"], strict=False)
    optimizer.load_state_dict(state["optimizer"])
    rng.bit_generator.state = state["numpy_rng"]
    torch.set_rng_state(state["torch_rng"])
    return loop
