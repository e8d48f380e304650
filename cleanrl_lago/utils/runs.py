"""A run's life: atomic saves, resumable checkpoints with every RNG stream, and a stop flag for Ctrl-C/SIGTERM.
None of it is the algorithm. What a run reports of itself as it goes is in :mod:`cleanrl_lago.utils.monitoring`."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from priors.atomic import write_file_atomically

from cleanrl_lago.utils.env_state import get_env_state, set_env_state

CHECKPOINT_NAME = "checkpoint.pt"


def save_atomic(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` through a temporary file, fsync and a rename (``priors.atomic``): a crash never
    leaves half a file, and the previous version stays whole until the new one is complete."""
    write_file_atomically(path, lambda f: torch.save(obj, f))


def rng_state() -> dict[str, Any]:
    """Every global random stream a script draws from: Python's, NumPy's and torch's (CPU and CUDA)."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _state(obj: Any) -> Any:
    if isinstance(obj, gym.vector.SyncVectorEnv):
        return get_env_state(obj)
    if hasattr(obj, "state_dict"):
        return obj.state_dict()
    return obj.detach().clone() if isinstance(obj, torch.Tensor) else obj


def save_checkpoint(run_name: str, args: Any, iteration: int, global_step: int, **objects: Any) -> None:
    """Write ``runs/{run_name}/checkpoint.pt`` atomically: the state of each object (modules, optimizers,
    buffers: their state dict; vector envs: their full state, so a resume continues their episodes
    exactly; tensors and plain values as they are), the arguments, every RNG stream and the time of saving
    (``saved_at``, Unix seconds: a harness that resumes runs counts the wall time the checkpoint kept)."""
    state = {name: _state(obj) for name, obj in objects.items()}
    state.update(run_name=run_name, args=vars(args), iteration=iteration, global_step=global_step, rng=rng_state())
    state.update(saved_at=time.time())
    save_atomic(state, Path("runs") / run_name / CHECKPOINT_NAME)


def restore(checkpoint: dict[str, Any], **objects: Any) -> tuple[int, int]:
    """Load each object's state from ``checkpoint`` and every RNG stream; return (global_step, next iteration)."""
    for name, obj in objects.items():
        if isinstance(obj, gym.vector.SyncVectorEnv):
            set_env_state(obj, checkpoint[name])
        elif hasattr(obj, "load_state_dict"):
            obj.load_state_dict(checkpoint[name])
        else:
            obj.data.copy_(torch.as_tensor(checkpoint[name]))
    set_rng_state(checkpoint["rng"])
    return checkpoint["global_step"], checkpoint["iteration"] + 1


def load_weights(agent: torch.nn.Module, model_path: str | None, device: torch.device | str = "cpu") -> None:
    """Start ``agent`` from the weights of a saved agent (``--init-model``; ``None`` leaves it as initialised),
    refusing a file that is not a saved agent or holds another architecture, in one line."""
    if model_path is None:
        return
    try:
        saved = torch.load(model_path, map_location=device, weights_only=True)
        agent.load_state_dict(saved["agent"])
    except FileNotFoundError:
        raise FileNotFoundError(f"--init-model {model_path}: no such file") from None
    except Exception as e:
        raise ValueError(
            f"--init-model {model_path} is not a saved agent of this script's architecture "
            f"({type(e).__name__}: {str(e).splitlines()[0]})"
        ) from None


def load_checkpoint(run_dir: str | os.PathLike, args: Any = None, same: tuple[str, ...] = ()) -> dict[str, Any]:
    """The checkpoint of ``run_dir`` (``--resume``), with a clear error if it is missing or unreadable, or
    if ``args`` differ from the run's in any option of ``same`` (those that change what a step means)."""
    path = Path(run_dir) / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"--resume {run_dir}: no {CHECKPOINT_NAME} there; pass a folder runs/<run_name>")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise ValueError(
            f"--resume {run_dir}: {CHECKPOINT_NAME} is unreadable ({type(e).__name__}); it was not written by "
            "this project or was damaged: start a new run"
        ) from e
    check_resume(checkpoint, args, same)
    return checkpoint


def check_resume(checkpoint: dict[str, Any], args: Any, same: tuple[str, ...]) -> None:
    """Refuse to resume with other values of the options in ``same`` (those that change what a step means)."""
    for key in same:
        saved, now = checkpoint["args"].get(key), getattr(args, key)
        if saved != now:
            flag = "--" + key.replace("_", "-")
            raise ValueError(f"--resume: the run used {flag} {saved}, not {now}; resume with the same value")


class StopFlag:
    """Ctrl-C and SIGTERM (a scheduler's pre-emption) set this flag instead of raising; the loop checks
    it where stopping is clean (PPO: between iterations; SAC: between steps), writes a checkpoint there
    and exits with status 130. A second Ctrl-C interrupts at once (e.g. during the final evaluation)."""

    def __init__(self) -> None:
        self.signals: list[int] = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signals and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signals.append(signum)

    def __bool__(self) -> bool:
        return bool(self.signals)

    def exit(self, run_dir: str | os.PathLike, where: str) -> None:
        print(f"interrupted: checkpoint at {where} in {run_dir}; resume with --resume {run_dir}")
        raise SystemExit(130)
