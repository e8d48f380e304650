"""Fault injection for every atomic write: a checkpoint (and a saved agent: the same writer), a result
record, a prior folder and a demonstrations dataset. A successful write is replayed once per step that
can fail (each call of ``os.fsync``, ``os.replace``/``rename`` and folder removal, in order), with that
one step raising. After each failure the target must be whole and loadable: the previous version if the
failure came before the write's commit (the rename that puts the new version in place), the new one
after it, never a mix, and no temporary file may be left behind. The writer itself failing half way
leaves the previous version."""

import copy
import json
import os
import shutil
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from script_helpers import REPO

import priors.atomic
from cleanrl_lago.utils.runs import save_atomic

sys.path.insert(0, str(REPO / "benchmark"))


class Injected(OSError):
    pass


class StepCounter:
    """Wrap the functions a write may call; count them, and make call number ``fail_at`` raise."""

    NAMES = (("os", "replace"), ("os", "fsync"), ("os", "rename"), ("shutil", "rmtree"), ("Path", "rename"))

    def __init__(self, monkeypatch, fail_at=None):
        self.calls, self.fail_at = [], fail_at
        modules = {"os": os, "shutil": shutil, "Path": Path}
        for module_name, name in self.NAMES:
            original = getattr(modules[module_name], name)
            monkeypatch.setattr(modules[module_name], name, self._wrap(f"{module_name}.{name}", original))

    def _wrap(self, label, original):
        def step(*args, **kwargs):
            if kwargs.get("ignore_errors"):  # a best-effort clean-up cannot fail the write
                return original(*args, **kwargs)
            self.calls.append(label)
            if len(self.calls) == self.fail_at:
                raise Injected(f"injected failure at step {len(self.calls)} ({label})")
            return original(*args, **kwargs)

        return step


def count_steps(monkeypatch, write):
    with monkeypatch.context() as m:
        counter = StepCounter(m)
        write()
    return len(counter.calls)


def assert_every_step_is_safe(monkeypatch, write, state, folder):
    """Fail each step of ``write`` in turn. ``state()`` says which whole version the target holds
    ("previous" or "new"; it raises if neither). Returns the number of steps."""
    steps = count_steps(monkeypatch, write)
    assert steps >= 2 and state() == "new"  # (state() puts the previous version back each time)
    seen = []
    for fail_at in range(1, steps + 1):
        with monkeypatch.context() as m:
            StepCounter(m, fail_at)
            with pytest.raises(Injected):
                write()
        seen.append(state())
        temporary = [p.name for p in Path(folder).iterdir() if ".tmp" in p.name or ".incomplete" in p.name]
        assert not temporary, (fail_at, temporary)
    commit = seen.count("previous")
    assert seen == ["previous"] * commit + ["new"] * (steps - commit), seen
    assert commit >= 2, seen  # at least the first steps leave the previous version
    return steps


def failing_writer(monkeypatch, write):
    """The write itself raising half way (a full disk, a crash in torch.save)."""

    def half_then_fail(f):
        f.write(b"partial")
        raise Injected("injected failure inside the writer")

    with pytest.raises(Injected):
        write(half_then_fail)


def test_checkpoint_write_is_atomic_at_every_step(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    previous = {"agent": {"w": torch.arange(5.0)}, "global_step": 7}
    save_atomic(previous, path)

    def state():
        loaded = torch.load(path, weights_only=False)
        version = {7: "previous", 8: "new"}[loaded["global_step"]]
        assert torch.equal(
            loaded["agent"]["w"], torch.arange(5.0) if version == "previous" else torch.zeros(5)
        )
        save_atomic(previous, path)  # back to the previous version for the next step
        return version

    new = {"agent": {"w": torch.zeros(5)}, "global_step": 8}
    steps = assert_every_step_is_safe(monkeypatch, lambda: save_atomic(new, path), state, tmp_path)
    assert steps >= 3  # fsync of the file, the rename, fsync of the folder
    failing_writer(monkeypatch, lambda w: priors.atomic.write_file_atomically(path, w))
    assert state() == "previous"


def test_result_record_write_is_atomic_at_every_step(tmp_path, monkeypatch):
    from results import write_atomic

    path = tmp_path / "run.json"
    write_atomic(path, {"run": 1, "eval": {"success_rate": 0.5}})

    def state():
        version = {1: "previous", 2: "new"}[json.loads(path.read_text())["run"]]
        write_atomic(path, {"run": 1, "eval": {"success_rate": 0.5}})
        return version

    assert_every_step_is_safe(monkeypatch, lambda: write_atomic(path, {"run": 2}), state, tmp_path)


def test_prior_folder_write_is_atomic_at_every_step(tiny_lm, tmp_path, monkeypatch):
    from priors import build_prior, load_prior, save_prior

    space = gym.spaces.Box(-1.0, 1.0, (3,), dtype=np.float32)
    prior = build_prior(
        observation_space=space, action_space=gym.spaces.Discrete(4), lm=tiny_lm, env_id="Toy-v0"
    )
    folder = save_prior(prior, tmp_path / "prior", command="first")
    obs = np.zeros((2, 3), dtype=np.float32)
    with torch.no_grad():
        expected = prior(obs, ["reach the goal"] * 2)

    first = copy.deepcopy(prior)
    with torch.no_grad():
        for p in prior.trainable_parameters():
            p.add_(1.0)
        expected_new = prior(obs, ["reach the goal"] * 2)

    def state():
        loaded = load_prior(folder)
        version = {"first": "previous", "second": "new"}[loaded.config.provenance.command]
        with torch.no_grad():
            out = loaded(obs, ["reach the goal"] * 2)
        torch.testing.assert_close(out, expected if version == "previous" else expected_new)
        save_prior(first, folder, command="first")
        return version

    steps = assert_every_step_is_safe(
        monkeypatch, lambda: save_prior(prior, folder, command="second"), state, tmp_path
    )
    assert steps >= 4  # fsyncs, the old folder aside, the new one in, the old one removed


def test_dataset_write_is_atomic_at_every_step(tmp_path, monkeypatch):
    from priors.datasets import load_demonstrations
    from priors.recording import ExpertEpisode, write_dataset

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    obs_space = gym.spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)

    def episode(value, seed):
        n = 3
        return ExpertEpisode(
            observations=np.full((n + 1, 2), value, dtype=np.float32),
            actions=np.zeros(n, dtype=np.int64),
            rewards=np.zeros(n),
            terminations=np.array([False, False, True]),
            truncations=np.zeros(n, dtype=bool),
            successes=np.array([False, False, False, True]),
            seed=seed,
            task="toy",
            instruction="reach the goal",
        )

    def write(value, overwrite):
        return write_dataset(
            "t/toy/expert-v0",
            [episode(value, 0), episode(value, 1)],
            env_id="Toy-v0",
            observation_space=obs_space,
            action_space=gym.spaces.Discrete(2),
            settings={"command": f"value {value}"},
            overwrite=overwrite,
        )

    write(0.25, overwrite=False)

    def state():
        demos = load_demonstrations("t/toy/expert-v0")
        assert len(demos) == 6 and len(set(demos.observations.ravel().tolist())) == 1
        version = {0.25: "previous", 0.75: "new"}[float(demos.observations[0, 0])]
        write(0.25, overwrite=True)
        return version

    root = tmp_path / "datasets" if (tmp_path / "datasets").exists() else tmp_path
    assert_every_step_is_safe(monkeypatch, lambda: write(0.75, overwrite=True), state, root)
