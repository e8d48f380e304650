"""Save and restore the full state of a ``gym.vector.SyncVectorEnv`` so that a resumed run continues bit-identically.

``get_env_state(envs)`` returns a small picklable dict (``torch.save(..., weights_only=False)``); for a vector env
built the same way (same constructor arguments; stepped, reset or not), ``set_env_state(new, state)`` makes
``new.step`` return exactly what ``envs.step`` would have returned: observations, rewards, terminations,
truncations and infos, across autoresets. Only ``info["episode"]["t"]`` (wall-clock time) differs: the elapsed
time of the running episode is carried over. ``concat_env_states`` joins the states of several vector envs into
the state of one with all their sub-envs, ``slice_env_state`` cuts out some sub-envs (data-parallel ranks' shares).

What is captured, for the vector env and every layer (wrapper, then the unwrapped env) of every sub-env, is the
layer's ``__dict__`` with these rules:

* construction-time configuration is skipped: the wrapped env, callables (``TransformReward``'s ``func`` ...),
  ``EnvSpec``, ``RecordConstructorArgs``/``EzPickle`` arguments, renderers;
* ``gym.Space`` objects: their RNG state is restored in place (a space may be shared, e.g. the vector env's
  ``single_action_space`` is the sub-env's) where the space is equal, else the saved space replaces it
  (Meta-World caches ``sawyer_observation_space``, whose goal bounds change at the first ``set_task``);
  ``np.random.Generator`` objects are restored in place too;
* ``mujoco.MjData``: ``mj_getState(mjSTATE_INTEGRATION)`` (time, qpos, qvel, act, ctrl, applied forces, mocap
  pose, equality activations, user data, solver warm start), restored with ``mj_setState`` + ``mj_forward`` (the
  derived quantities) + ``mj_setState`` again (``mj_forward`` overwrites the warm start the next step starts from);
* ``mujoco.MjModel``: its per-element parameters (bodies, joints, geoms, sites, equality constraints, actuators,
  ... and ``opt``), which Meta-World edits at every reset (goal sites, object bodies, mocap weld data); meshes,
  textures and bounding-volume trees are taken as constant;
* arrays that are views into MuJoCo memory (Meta-World keeps e.g. ``init_left_pad = data.body("leftpad").xpos``,
  a live view) or into another saved array are re-created as the same views;
* ``RecordEpisodeStatistics.episode_start_time``: stored as the elapsed time of the running episode;
* everything else (counters, running statistics, observations, task lists, deques ...) is deep-copied.

``copy.deepcopy`` of a Meta-World env is not enough: ``SawyerXYZEnv.__setstate__`` reloads the model from its XML
file and restores only ``qpos``/``qvel``, losing the mocap pose (the hand's target), ctrl, time, the warm start
and the model edits (goal site, weld data).
"""

from __future__ import annotations

import copy
import pickle
import time
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

FORMAT = 1
_MJ_STATE = mujoco.mjtState.mjSTATE_INTEGRATION
# Configuration given at construction (and equal in a vector env built the same way), not state.
_CONFIG_KEYS = frozenset(
    {"env", "envs", "env_fns", "spec", "_cached_spec", "_saved_kwargs", "_ezpickle_args", "_ezpickle_kwargs"}
)
# MjModel arrays of per-element parameters (size ~30 kB for Meta-World); large constant data is left out.
_MODEL_PREFIXES = (
    "body_",
    "jnt_",
    "dof_",
    "geom_",
    "site_",
    "cam_",
    "light_",
    "mat_",
    "pair_",
    "exclude_",
    "eq_",
    "tendon_",
    "actuator_",
    "sensor_",
    "qpos0",
    "qpos_spring",
    "hfield_size",
    "numeric_data",
)
_field_cache: dict[type, tuple[str, ...]] = {}


# ----- public API --------------------------------------------------------------------------------------------
def get_env_state(envs: gym.vector.SyncVectorEnv) -> dict:
    """The full state of ``envs`` and its sub-envs as a picklable dict (no MuJoCo model, no renderer)."""
    if not isinstance(envs, gym.vector.SyncVectorEnv):
        raise TypeError(f"get_env_state takes a gym.vector.SyncVectorEnv, got {type(envs).__name__}")
    return {
        "format": FORMAT,
        "vector": _get_layers([envs])[0],
        "envs": [_get_layers(_layers(env)) for env in envs.envs],
    }


def set_env_state(envs: gym.vector.SyncVectorEnv, state: dict) -> None:
    """Restore ``state`` (from :func:`get_env_state`) into ``envs``, a vector env built the same way."""
    if not isinstance(envs, gym.vector.SyncVectorEnv):
        raise TypeError(f"set_env_state takes a gym.vector.SyncVectorEnv, got {type(envs).__name__}")
    if state.get("format") != FORMAT:
        raise ValueError(f"unknown env state format {state.get('format')!r} (expected {FORMAT})")
    if len(state["envs"]) != len(envs.envs):
        raise ValueError(f"env state of {len(state['envs'])} envs, but the vector env has {len(envs.envs)}")
    state = copy.deepcopy(state)  # the restored envs must not share mutable objects with `state`
    for env, env_state in zip(envs.envs, state["envs"], strict=True):
        _set_layers(_layers(env), env_state)
    _set_layers([envs], [state["vector"]])


# SyncVectorEnv attributes that hold one row (or list item) per sub-env, in sub-env order.
_PER_ENV_VECTOR_KEYS = ("_env_obs", "_observations", "_rewards", "_terminations", "_truncations", "_autoreset_envs")


def concat_env_states(states: list[dict]) -> dict:
    """One state for the sub-envs of several vector envs together, in the order given: a vector env built
    with all those sub-envs (the same constructor arguments otherwise) restores it as if it had stepped them.

    So the states of 2 vector envs of 2 envs each (data-parallel ranks) make the state of 1 vector env of 4.
    The vector env's own batched spaces (``action_space`` ...) and single spaces are left as the restoring
    vector env built them: their shape depends on the number of envs, and nothing in a vector env draws from
    them (a sub-env's spaces, RNG included, are in its own state). One state is returned as it is."""
    if not states:
        raise ValueError("concat_env_states needs at least one env state")
    if len(states) == 1:
        return states[0]
    vectors = [_check_vector_state(state) for state in states]
    attrs = {}
    for name, (kind, value) in vectors[0]["attrs"].items():
        parts = [vector["attrs"][name][1] for vector in vectors]
        if name in _PER_ENV_VECTOR_KEYS:
            joined = [item for part in parts for item in part] if isinstance(value, list) else np.concatenate(parts)
            attrs[name] = (kind, joined)
        elif name == "num_envs":
            attrs[name] = (kind, sum(parts))
        elif kind in ("space", "config"):
            attrs[name] = ("config", None)
        elif kind == "value" and all(_equal(part, value) for part in parts):
            attrs[name] = (kind, value)
        else:
            raise ValueError(f"cannot join the env states: the vector envs differ in {name!r}; build them alike")
    vector = {"type": vectors[0]["type"], "attrs": attrs}
    return {"format": FORMAT, "vector": vector, "envs": [env for state in states for env in state["envs"]]}


def slice_env_state(state: dict, start: int, stop: int) -> dict:
    """The state of sub-envs ``[start, stop)`` of ``state``, for a vector env built with just those sub-envs:
    a data-parallel rank's share of the state of all envs (see :func:`concat_env_states`, which it undoes)."""
    vector = _check_vector_state(state)
    num_envs = len(state["envs"])
    if not 0 <= start < stop <= num_envs:
        raise ValueError(f"envs [{start}, {stop}) of an env state of {num_envs} envs; pick a range inside it")
    if (start, stop) == (0, num_envs):
        return state
    attrs = {}
    for name, (kind, value) in vector["attrs"].items():
        if name in _PER_ENV_VECTOR_KEYS:
            attrs[name] = (kind, value[start:stop])
        elif name == "num_envs":
            attrs[name] = (kind, stop - start)
        elif kind in ("space", "config"):
            attrs[name] = ("config", None)
        elif kind == "value":
            attrs[name] = (kind, value)
        else:
            raise ValueError(f"cannot slice the env state: its vector env's {name!r} is a {kind}")
    vector = {"type": vector["type"], "attrs": attrs}
    return {"format": FORMAT, "vector": vector, "envs": state["envs"][start:stop]}


def _check_vector_state(state: dict) -> dict:
    if state.get("format") != FORMAT:
        raise ValueError(f"unknown env state format {state.get('format')!r} (expected {FORMAT})")
    vector = state["vector"]
    if not vector["type"].endswith(".SyncVectorEnv"):
        raise ValueError(f"env state of a {vector['type']}; only SyncVectorEnv states can be joined or sliced")
    return vector


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(np.all(a == b)) if isinstance(a, np.ndarray) else bool(a == b)
    except Exception:
        return False


# ----- capture -----------------------------------------------------------------------------------------------
def _layers(env: gym.Env) -> list:
    """The wrappers of ``env`` from the outside in, then the unwrapped env."""
    out = [env]
    while isinstance(out[-1], gym.Wrapper):
        out.append(out[-1].env)
    return out


def _is_config(value: Any) -> bool:
    module = type(value).__module__
    if module.startswith("mujoco") or module == "gymnasium.envs.mujoco.mujoco_rendering":
        return True  # renderers, MjModel/MjData views; MjModel and MjData themselves are handled before
    return (
        callable(value)
        or isinstance(value, gym.Env | gym.vector.VectorEnv | gym.envs.registration.EnvSpec)
        or (isinstance(value, list | tuple) and len(value) > 0 and all(callable(v) for v in value))
    )


def _array_fields(obj: Any) -> tuple[str, ...]:
    """Names of the ndarray attributes of an MjModel/MjData (the same for every model: cached per type)."""
    key = type(obj)
    if key not in _field_cache:
        names = []
        for name in dir(obj):
            if name.startswith("_"):
                continue
            try:
                value = getattr(obj, name)
            except Exception:
                continue
            if isinstance(value, np.ndarray):
                names.append(name)
        _field_cache[key] = tuple(names)
    return _field_cache[key]


def _model_fields(model: mujoco.MjModel) -> dict[str, np.ndarray]:
    return {n: getattr(model, n).copy() for n in _array_fields(model) if n.startswith(_MODEL_PREFIXES)}


def _opt_fields(model: mujoco.MjModel) -> dict[str, Any]:
    out = {}
    for name in dir(model.opt):
        if name.startswith("_"):
            continue
        value = getattr(model.opt, name)
        if isinstance(value, np.ndarray):
            out[name] = value.copy()
        elif isinstance(value, int | float):
            out[name] = value
    return out


def _address(array: np.ndarray) -> int:
    return array.__array_interface__["data"][0]


def _span(array: np.ndarray) -> tuple[int, int]:
    """Lowest and one-past-highest byte address that ``array`` touches."""
    start = end = _address(array)
    for n, s in zip(array.shape, array.strides, strict=True):
        if n == 0:
            return start, start
        if s < 0:
            start += s * (n - 1)
        else:
            end += s * (n - 1)
    return start, end + array.itemsize


def _owners(layers: list, states: list[dict]) -> list[tuple[tuple, np.ndarray]]:
    """Memory an array attribute may be a view of: MjData/MjModel fields and the layers' own arrays."""
    owners = []
    for i, layer in enumerate(layers):
        for name, value in vars(layer).items():
            if isinstance(value, mujoco.MjData | mujoco.MjModel):
                kind = "mjdata" if isinstance(value, mujoco.MjData) else "mjmodel"
                owners += [((kind, i, name, f), getattr(value, f)) for f in _array_fields(value)]
            elif isinstance(value, np.ndarray) and value.base is None and states[i]["attrs"][name][0] == "value":
                owners.append((("array", i, name), value))
    return owners


def _find_owner(view: np.ndarray, owners: list) -> tuple | None:
    lo, hi = _span(view)
    for ref, owner in owners:
        if owner is view or owner.nbytes == 0 or not owner.flags.c_contiguous:
            continue
        start = _address(owner)
        if start <= lo and hi <= start + owner.nbytes:
            return (ref, _address(view) - start, view.shape, view.strides, view.dtype.str)
    return None


def _get_layers(layers: list) -> list[dict]:
    memo: dict = {}  # one memo for the whole env: objects shared between attributes stay shared
    states = []
    for layer in layers:
        attrs: dict[str, tuple] = {}
        models = [v for v in vars(layer).values() if isinstance(v, mujoco.MjModel)]
        for name, value in vars(layer).items():
            if name in _CONFIG_KEYS:
                attrs[name] = ("config", None)
            elif isinstance(value, mujoco.MjModel):
                attrs[name] = ("mjmodel", {"arrays": _model_fields(value), "opt": _opt_fields(value)})
            elif isinstance(value, mujoco.MjData):
                if len(models) != 1:
                    raise TypeError(f"{type(layer).__name__}.{name}: an MjData needs exactly one MjModel beside it")
                buf = np.empty(mujoco.mj_stateSize(models[0], _MJ_STATE))
                mujoco.mj_getState(models[0], value, buf, _MJ_STATE)
                model_name = next(k for k, v in vars(layer).items() if v is models[0])
                attrs[name] = ("mjdata", {"state": buf, "model": model_name})
            elif isinstance(value, gym.Space):
                attrs[name] = ("space", copy.deepcopy(value, memo))
            elif isinstance(value, np.random.Generator):
                attrs[name] = ("generator", copy.deepcopy(value, memo))
            elif name == "episode_start_time" and isinstance(layer, gym.wrappers.RecordEpisodeStatistics):
                attrs[name] = ("elapsed", time.perf_counter() - value)
            elif _is_config(value):
                attrs[name] = ("config", None)
            else:
                try:
                    pickle.dumps(value)
                except Exception as err:
                    raise TypeError(f"cannot save {type(layer).__name__}.{name} ({type(value).__name__}): {err}") from err
                attrs[name] = ("value", copy.deepcopy(value, memo))
        states.append({"type": f"{type(layer).__module__}.{type(layer).__qualname__}", "attrs": attrs})
    # Arrays that are views (of MuJoCo memory or of another saved array) are saved as views.
    owners = None
    for layer, layer_state in zip(layers, states, strict=True):
        for name, value in vars(layer).items():
            if isinstance(value, np.ndarray) and value.base is not None and layer_state["attrs"][name][0] == "value":
                owners = _owners(layers, states) if owners is None else owners
                found = _find_owner(value, owners)
                if found is not None:
                    layer_state["attrs"][name] = ("view", found)
    return states


# ----- restore -----------------------------------------------------------------------------------------------
def _set_rng(target: Any, name: str, saved: np.random.Generator | None) -> None:
    """Set ``target.<name>`` to the RNG ``saved``: in place where ``target`` already holds a Generator of that kind."""
    current = getattr(target, name, None)
    if (
        saved is not None
        and isinstance(current, np.random.Generator)
        and type(current.bit_generator) is type(saved.bit_generator)
    ):
        current.bit_generator.state = saved.bit_generator.state
    else:
        setattr(target, name, saved)


def _subspaces(space: gym.Space) -> list[gym.Space]:
    inner = getattr(space, "spaces", None)
    if isinstance(inner, dict):
        return list(inner.values())
    if isinstance(inner, tuple | list):
        return list(inner)
    return [s for s in (getattr(space, n, None) for n in ("feature_space", "node_space", "edge_space")) if s is not None]


def _set_space_rng(space: gym.Space, saved: gym.Space) -> None:
    _set_rng(space, "_np_random", saved._np_random)
    for sub, saved_sub in zip(_subspaces(space), _subspaces(saved), strict=True):
        _set_space_rng(sub, saved_sub)


def _set_layers(layers: list, states: list[dict]) -> None:
    if len(layers) != len(states):
        raise ValueError(f"env state has {len(states)} layers (wrappers + env), the env has {len(layers)}")
    for layer, layer_state in zip(layers, states, strict=True):
        kind = f"{type(layer).__module__}.{type(layer).__qualname__}"
        if kind != layer_state["type"]:
            raise ValueError(f"env state of a {layer_state['type']}, restored into a {kind}")
    views = []
    for i, (layer, layer_state) in enumerate(zip(layers, states, strict=True)):
        attrs = layer_state["attrs"]
        for name in [k for k in vars(layer) if k not in attrs]:
            delattr(layer, name)  # e.g. a cached property the saved env had not computed yet
        for name, (kind, saved) in attrs.items():
            current = vars(layer).get(name)
            if kind == "value":
                setattr(layer, name, saved)
            elif kind == "generator":
                _set_rng(layer, name, saved)
            elif kind == "space":
                if isinstance(current, gym.Space) and type(current) is type(saved) and current == saved:
                    _set_space_rng(current, saved)
                else:
                    setattr(layer, name, saved)
            elif kind == "elapsed":
                setattr(layer, name, time.perf_counter() - saved)
            elif kind == "view":
                views.append((i, name, saved))
            elif kind == "mjmodel":
                for field, value in saved["arrays"].items():
                    getattr(current, field)[...] = value
                for field, value in saved["opt"].items():
                    if isinstance(value, np.ndarray):
                        getattr(current.opt, field)[...] = value
                    else:
                        setattr(current.opt, field, value)
    # MjData after the models they are simulated with.
    for layer, layer_state in zip(layers, states, strict=True):
        for name, (kind, saved) in layer_state["attrs"].items():
            if kind == "mjdata":
                model, data = getattr(layer, saved["model"]), getattr(layer, name)
                if saved["state"].size != mujoco.mj_stateSize(model, _MJ_STATE):
                    raise ValueError(f"{type(layer).__name__}.{name}: MuJoCo state of another model")
                mujoco.mj_setState(model, data, saved["state"], _MJ_STATE)
                # Derived quantities (positions, contacts ...) of the restored state; mj_forward also overwrites the
                # solver's warm start (qacc_warmstart = qacc), which the next mj_step starts from: set it back.
                mujoco.mj_forward(model, data)
                mujoco.mj_setState(model, data, saved["state"], _MJ_STATE)
    for i, name, (ref, offset, shape, strides, dtype) in views:
        if ref[0] == "array":
            owner = getattr(layers[ref[1]], ref[2])
        else:
            owner = getattr(getattr(layers[ref[1]], ref[2]), ref[3])
        view = np.ndarray(shape, dtype=np.dtype(dtype), buffer=owner, offset=offset, strides=strides)
        setattr(layers[i], name, view)
