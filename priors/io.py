"""Saving, loading and publishing priors.

A saved prior is a folder with ``config.json`` (its kind's :class:`priors.configuration.PriorConfig`),
``model.safetensors`` (only the trainable parts and the normalisation statistics, never the frozen
LM) and a model card ``README.md``. Folders are written atomically. :func:`load_prior` checks
everything it can before building anything and refuses with a :class:`PriorLoadError` that names
the problem and the fix.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from safetensors.torch import load_file, save_file

from priors.atomic import write_folder_atomically
from priors.card import model_card
from priors.configuration import FORMAT_VERSION, PriorConfig
from priors.hub import upload_folder_to_hub
from priors.lm import LoadedLM, Quantization
from priors.modeling_base import Prior
from priors.registry import prior_type
from priors.spaces import space_from_dict, space_to_dict

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"

PRETRAINED_DIR = Path(__file__).parent / "pretrained"
"""Priors shipped with cleanrl-lago (trainable parts only), loadable by their folder name."""
DEFAULT_PRIORS: dict[str, str] = {
    "CLEVR-Robot-v0": "clevr-robot-smollm2",
    "Meta-World/MT10": "metaworld-mt10-smollm2",
}
"""The shipped prior each of cleanrl-lago's scripts uses by default, by the name of its benchmark (data:
the library itself does not branch on it)."""


def shipped_priors() -> list[str]:
    """Names of the priors that ship with cleanrl-lago."""
    return (
        sorted(p.name for p in PRETRAINED_DIR.iterdir() if (p / CONFIG_NAME).is_file())
        if PRETRAINED_DIR.is_dir()
        else []
    )


class PriorLoadError(ValueError):
    """A saved prior cannot be used as asked; the message says why and what to do."""


# Writing -----------------------------------------------------------------------------------------


def save_prior(
    prior: Prior,
    path: str | Path,
    *,
    metrics: dict[str, Any] | None = None,
    command: str | None = None,
    dataset: str | None = None,
    instruction_split: dict[str, Any] | None = None,
) -> Path:
    """Write ``prior`` to the folder ``path`` (atomically; an existing folder is replaced).

    The keyword arguments given replace those fields of the prior's :class:`~priors.configuration.Provenance`
    in the saved config and model card (``prior.config`` itself is left as it is): ``metrics``,
    ``command`` (the command that made it), ``dataset`` (its demonstrations) and ``instruction_split``
    (which instructions were used for training and held out).
    """
    updates: dict[str, Any] = {}
    if metrics is not None:
        updates["metrics"] = dict(metrics)
    if command is not None:
        updates["command"] = command
    if dataset is not None:
        updates["dataset"] = dataset
    if instruction_split is not None:
        updates["instruction_split"] = instruction_split
    provenance = dataclasses.replace(prior.config.provenance, **updates)
    config = dataclasses.replace(prior.config, provenance=provenance)
    tensors = {name: t.contiguous().cpu() for name, t in prior.trainable_state_dict().items()}

    def write(folder: Path) -> None:
        (folder / CONFIG_NAME).write_text(json.dumps(config.to_dict(), indent=2) + "\n")
        save_file(tensors, str(folder / WEIGHTS_NAME), metadata={"format": "pt", "kind": config.kind})
        (folder / CARD_NAME).write_text(model_card(config))

    target = write_folder_atomically(path, write)
    logger.info("Saved %s prior to %s", config.kind, target)
    return target


# Loading -----------------------------------------------------------------------------------------


def _resolve_folder(path_or_repo_id: str | Path, revision: str | None) -> Path:
    """A local folder as is, a shipped prior by name, else a Hub repo id fetched with ``snapshot_download``."""
    path = Path(path_or_repo_id)
    if path.is_dir():
        return path
    text = str(path_or_repo_id)
    if (PRETRAINED_DIR / text / CONFIG_NAME).is_file():
        return PRETRAINED_DIR / text
    if path.exists() or text.count("/") != 1 or text.startswith((".", "/")):
        raise PriorLoadError(
            f"No prior folder at {text!r}. Pass a folder written by save_prior, a Hub repo id, or the name "
            f"of a shipped prior ({', '.join(shipped_priors()) or 'none installed'})."
        )
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(text, revision=revision))
    except LocalEntryNotFoundError as err:
        raise PriorLoadError(
            f"Prior {text!r} is neither a local folder nor in the Hugging Face cache, and the Hub cannot be "
            "reached (HF_HUB_OFFLINE set or no network). Download it once while online, or pass a local folder."
        ) from err
    except HfHubHTTPError as err:
        raise PriorLoadError(
            f"No local folder {text!r}, and downloading it from the Hub failed: {err}. Check the path or the "
            "repo id (and your token for a private repo)."
        ) from err


def _read_config(folder: Path) -> PriorConfig:
    file = folder / CONFIG_NAME
    if not file.is_file():
        raise PriorLoadError(
            f"{folder} has no {CONFIG_NAME}: it is not a saved prior (or was copied partially)."
        )
    try:
        data = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise PriorLoadError(
            f"{file} is corrupt or truncated ({err}). Save or download the prior again."
        ) from err
    if not isinstance(data, dict):
        raise PriorLoadError(f"{file} does not hold a JSON object. Save or download the prior again.")
    version = data.get("format_version")
    if version not in range(1, FORMAT_VERSION + 1):
        raise PriorLoadError(
            f"{file} has format version {version!r}; this library reads versions 1 to {FORMAT_VERSION}. "
            "Use the cleanrl-lago version that wrote it, or re-save it."
        )
    try:
        return PriorConfig.from_dict(data)
    except (TypeError, KeyError) as err:
        raise PriorLoadError(
            f"{file} has unexpected fields ({err}). Save or download the prior again."
        ) from err
    except ValueError as err:  # an unknown kind
        raise PriorLoadError(f"{file}: {err}.") from err


def _read_weights(folder: Path) -> dict[str, torch.Tensor]:
    file = folder / WEIGHTS_NAME
    if not file.is_file():
        raise PriorLoadError(f"{folder} has no {WEIGHTS_NAME}. Save or download the prior again.")
    try:
        tensors = load_file(str(file))
    except Exception as err:  # safetensors raises several types for truncated or garbled files
        raise PriorLoadError(
            f"{file} is corrupt or truncated ({err}). Save or download the prior again."
        ) from err
    bad = [name for name, t in tensors.items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise PriorLoadError(
            f"{file} holds NaN or infinite values in {', '.join(sorted(bad))}: the training run that saved it "
            "diverged. Retrain (e.g. lower the learning rate) or use an earlier checkpoint."
        )
    return tensors


def _check_spaces(
    config: PriorConfig,
    expected_observation_space: gym.spaces.Box | None,
    expected_action_space: gym.spaces.Space | None,
    env_id: str | None,
    tasks: list[str] | None = None,
    allow_unseen_tasks: bool = False,
) -> None:
    if tasks is not None and config.tasks is not None:
        unknown = sorted(set(tasks) - set(config.tasks))
        if unknown and allow_unseen_tasks:
            warnings.warn(
                f"This prior was trained on the tasks {config.tasks}, not on {unknown}: it guides them from "
                "their instructions alone (allow_unseen_tasks=True, a transfer experiment).",
                stacklevel=3,
            )
        elif unknown:
            raise PriorLoadError(
                f"This prior was trained on the tasks {config.tasks}, not on {unknown}. Train a prior on "
                "demonstrations of those tasks, pick a task it knows, or opt in to guiding unseen tasks "
                "(load_prior(allow_unseen_tasks=True); the Meta-World scripts' --prior-allow-unseen-tasks)."
            )
    if env_id is not None and config.env_id is not None and env_id != config.env_id:
        raise PriorLoadError(
            f"This prior was trained on env {config.env_id!r}, not {env_id!r}. Load a prior made for "
            f"{env_id!r}, or pass env_id=None to skip this check."
        )
    if expected_observation_space is not None:
        saved = tuple(config.observation_space["shape"])
        if tuple(expected_observation_space.shape) != saved:
            raise PriorLoadError(
                f"Observation size mismatch: the prior expects observations of shape {saved}, the environment "
                f"gives {tuple(expected_observation_space.shape)}. Use a prior trained on this environment's "
                "observations (same env, same wrappers)."
            )
    if expected_action_space is not None:
        saved_spec = config.action_space
        given_spec = space_to_dict(expected_action_space)
        same = saved_spec["type"] == given_spec["type"]
        if same and saved_spec["type"] == "Discrete":
            same = saved_spec["n"] == given_spec["n"]
        elif same:
            saved_box = space_from_dict(saved_spec)
            same = (
                saved_spec["shape"] == given_spec["shape"]
                and np.allclose(saved_box.low, expected_action_space.low)
                and np.allclose(saved_box.high, expected_action_space.high)
            )
        if not same:
            raise PriorLoadError(
                f"Action space mismatch: the prior predicts actions of {space_from_dict(saved_spec)}, the "
                f"environment has {expected_action_space}. Use a prior trained for this action space."
            )


def load_prior(
    path_or_repo_id: str | Path,
    *,
    lm: str | LoadedLM | None = None,
    device: str | torch.device = "cpu",
    quantization: Quantization | None = None,
    expected_observation_space: gym.spaces.Box | None = None,
    expected_action_space: gym.spaces.Space | None = None,
    env_id: str | None = None,
    tasks: list[str] | None = None,
    allow_unseen_tasks: bool = False,
    revision: str | None = None,
) -> Prior:
    """Load a prior from a local folder or a Hugging Face Hub repo id.

    Args:
        path_or_repo_id: a folder written by :func:`save_prior`, or ``"org/name"`` on the Hub
            (standard HF cache; honours ``HF_HUB_OFFLINE``).
        lm: the language model to use instead of the one named in the config (a name or an
            already loaded :class:`LoadedLM`, e.g. when the original folder lives elsewhere); its
            fingerprint must match the one the prior was trained on.
        quantization: override the saved quantisation (same fingerprint, slightly different outputs).
        expected_observation_space, expected_action_space, env_id: if given, refuse a prior made
            for something else.
        tasks: if given, refuse a prior that was not trained on all of these tasks.
        allow_unseen_tasks: instead of refusing tasks the prior was not trained on, warn and load it (to
            test whether its language carries over to unseen tasks).

    Raises:
        PriorLoadError: with the reason and the fix; nothing is half-loaded.
    """
    folder = _resolve_folder(path_or_repo_id, revision)
    config = _read_config(folder)
    _check_spaces(
        config, expected_observation_space, expected_action_space, env_id, tasks, allow_unseen_tasks
    )
    tensors = _read_weights(folder)

    try:
        prior = prior_type(config.kind).prior_class.from_config(
            config, lm, device=device, quantization=quantization
        )
    except (OSError, ValueError) as err:  # the LM or tokenizer: missing, or not the one it was trained on
        raise PriorLoadError(str(err)) from err
    expected = set(prior.trainable_state_dict())
    missing, unexpected = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
    if missing or unexpected:
        raise PriorLoadError(
            f"{folder / WEIGHTS_NAME} does not match its config (missing: {missing[:5]}, unexpected: "
            f"{unexpected[:5]}). Save or download the prior again."
        )
    try:
        prior.load_state_dict(tensors, strict=False)
    except RuntimeError as err:  # shape mismatches
        raise PriorLoadError(
            f"{folder / WEIGHTS_NAME} does not match its config ({err}). Save or download the prior again."
        ) from err
    prior.to(device)
    prior.eval()
    logger.info("Loaded %s prior from %s", config.kind, folder)
    return prior


def push_prior_to_hub(
    path: str | Path,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool = False,
    commit_message: str = "Upload LaGO prior",
) -> str:
    """Upload a saved prior folder to the Hub (the repo is created if needed); return its URL."""
    folder = Path(path)
    _read_config(folder)  # refuse to publish something that is not a prior
    if not (folder / WEIGHTS_NAME).is_file():
        raise PriorLoadError(f"{folder} has no {WEIGHTS_NAME}; save the prior before pushing it.")
    return upload_folder_to_hub(
        folder,
        repo_id,
        token=token,
        private=private,
        commit_message=commit_message,
        allow_patterns=[CONFIG_NAME, WEIGHTS_NAME, CARD_NAME],
    )
