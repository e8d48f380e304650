"""Gymnasium spaces as JSON: how a prior's ``config.json`` records the spaces it was built for."""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np


def _encode_floats(array: np.ndarray) -> list:
    """A float array as a JSON-safe nested list (infinities become the strings "inf"/"-inf")."""
    return [v if math.isfinite(v) else ("inf" if v > 0 else "-inf") for v in array.astype(float).ravel()]


def space_to_dict(space: gym.Space) -> dict[str, Any]:
    """Describe a ``Box`` or ``Discrete`` space as a JSON-safe dict."""
    if isinstance(space, gym.spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n)}
    if isinstance(space, gym.spaces.Box):
        return {
            "type": "Box",
            "shape": list(space.shape),
            "low": _encode_floats(space.low),
            "high": _encode_floats(space.high),
        }
    raise TypeError(f"Priors support Box and Discrete spaces, not {type(space).__name__}")


def space_from_dict(spec: dict[str, Any]) -> gym.spaces.Box | gym.spaces.Discrete:
    """Rebuild a space written by :func:`space_to_dict`."""
    if spec["type"] == "Discrete":
        return gym.spaces.Discrete(spec["n"])
    shape = tuple(spec["shape"])
    low = np.array([float(v) for v in spec["low"]], dtype=np.float32).reshape(shape)
    high = np.array([float(v) for v in spec["high"]], dtype=np.float32).reshape(shape)
    return gym.spaces.Box(low, high, shape, dtype=np.float32)
