"""cleanrl_lago/utils/runs.py, in process: checkpoints restore every object and RNG stream exactly, resume
refusals name the option, episode success is counted as Meta-World reports it, the stop flag's exit, and the
atomic writer's layout (priors/atomic.py: hidden sibling, missing parents, fsync before rename, replace=False).
Written to kill the mutants that survived the end-to-end tests (docs/mutation.md)."""

import random
import signal
from pathlib import Path
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import torch

import priors.atomic
from cleanrl_lago.utils import monitoring, runs
from priors.atomic import write_file_atomically, write_folder_atomically


# ----- RNG streams and checkpoints ------------------------------------------------------------------
def draws():
    """One draw from each global stream the scripts use (NumPy's legacy global RNG included, as CleanRL)."""
    return random.random(), np.random.rand(3).tolist(), torch.rand(3).tolist()  # noqa: NPY002


def test_rng_state_restores_every_stream():
    random.seed(1), np.random.seed(2), torch.manual_seed(3)  # noqa: NPY002
    state = runs.rng_state()
    assert set(state) == {"python", "numpy", "torch"} | ({"cuda"} if torch.cuda.is_available() else set())
    expected = draws()
    draws()  # move every stream on
    runs.set_rng_state(state)
    assert draws() == expected


def make_objects():
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(net.parameters(), lr=0.1)
    net(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    envs = gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1")] * 2)
    envs.reset(seed=5)
    episodes = monitoring.EpisodeStats(2)
    episodes.ever_success[:] = [True, False]
    return dict(
        net=net,
        optimizer=optimizer,
        envs=envs,
        episodes=episodes,
        log_kl_coef=torch.tensor([0.25]),
        carry=(1, 2),
    )


def test_checkpoint_restores_every_object_exactly(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    saved = make_objects()
    args = SimpleNamespace(num_envs=2, seed=9)
    random.seed(4), np.random.seed(5), torch.manual_seed(6)  # noqa: NPY002
    monkeypatch.setattr(runs, "time", SimpleNamespace(time=lambda: 1_765_000_000.5))
    runs.save_checkpoint("run-a", args, 7, 1400, **saved)
    expected_draws = draws()
    expected_obs = saved["envs"].step(np.array([0, 1]))[0]

    checkpoint = runs.load_checkpoint(tmp_path / "runs" / "run-a", args, same=("num_envs",))
    assert (checkpoint["run_name"], checkpoint["args"], checkpoint["iteration"]) == ("run-a", vars(args), 7)
    assert checkpoint["carry"] == (1, 2) and checkpoint["saved_at"] == 1_765_000_000.5
    assert torch.equal(checkpoint["log_kl_coef"], torch.tensor([0.25]))

    fresh = make_objects()  # other values everywhere, then restored
    with torch.no_grad():
        fresh["net"].weight.add_(1.0)
        fresh["log_kl_coef"].fill_(-3.0)
    fresh["optimizer"].step()
    fresh["envs"].reset(seed=123)
    fresh["episodes"].ever_success[:] = [False, True]
    del fresh["carry"]
    assert runs.restore(checkpoint, **fresh) == (1400, 8)  # global step, next iteration
    for name, value in saved["net"].state_dict().items():
        assert torch.equal(fresh["net"].state_dict()[name], value)
    saved_adam, fresh_adam = (
        saved["optimizer"].state_dict()["state"][0],
        fresh["optimizer"].state_dict()["state"][0],
    )
    assert all(torch.equal(saved_adam[k], fresh_adam[k]) for k in saved_adam)
    assert torch.equal(fresh["log_kl_coef"], torch.tensor([0.25]))
    assert fresh["episodes"].ever_success.tolist() == [True, False]
    np.testing.assert_array_equal(fresh["envs"].step(np.array([0, 1]))[0], expected_obs)
    assert draws() == expected_draws


def test_checkpoint_holds_copies_not_live_references(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    coef = torch.tensor([0.5])
    runs.save_checkpoint("run-b", SimpleNamespace(), 1, 10, coef=coef)
    coef.fill_(2.0)
    assert torch.equal(runs.load_checkpoint("runs/run-b")["coef"], torch.tensor([0.5]))


def test_load_checkpoint_refusals_name_the_cause_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError) as missing:
        runs.load_checkpoint(tmp_path)
    assert str(missing.value) == f"--resume {tmp_path}: no checkpoint.pt there; pass a folder runs/<run_name>"
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError) as garbled:
        runs.load_checkpoint(tmp_path)
    assert str(garbled.value).startswith(
        f"--resume {tmp_path}: checkpoint.pt is unreadable (UnpicklingError)"
    )
    assert str(garbled.value).endswith("it was not written by this project or was damaged: start a new run")

    checkpoint = {"args": {"num_envs": 4, "num_steps": 32}}
    runs.check_resume(checkpoint, SimpleNamespace(num_envs=4, num_steps=64), same=("num_envs",))
    with pytest.raises(ValueError) as changed:
        runs.check_resume(
            checkpoint, SimpleNamespace(num_envs=4, num_steps=64), same=("num_envs", "num_steps")
        )
    assert str(changed.value) == "--resume: the run used --num-steps 32, not 64; resume with the same value"


# ----- episodes and success -------------------------------------------------------------------------
def final(mask, returns, lengths, success=None):
    info = {"_episode": np.array(mask), "episode": {"r": np.array(returns), "l": np.array(lengths)}}
    if success is not None:
        info["success"], info["_success"] = np.array(success), np.array(mask)
    return info


def test_episode_success_is_any_step_of_the_episode():
    stats = monitoring.EpisodeStats(3)
    # Step 1: env 0 succeeds; env 2 reports a success value that does not count (masked: just reset).
    infos = {"success": np.array([1.0, 0.0, 1.0]), "_success": np.array([True, True, False])}
    assert stats.finished(infos) == []
    # Step 2: envs 0 and 1 end; env 0 had succeeded before, env 1 never did.
    infos = {"success": np.array([0.0, 0.0, 0.0]), "_success": np.array([True, True, True])}
    infos["final_info"] = final([True, True, False], [4.5, -1.0, 0.0], [2, 2, 0], [0.0, 0.0, 0.0])
    assert stats.finished(infos) == [(4.5, 2, 1.0), (-1.0, 2, 0.0)]
    # Step 3: env 0's new episode ends without success (the flag was reset); env 2's ends too, and the
    # success value it reported while masked at step 1 does not count.
    infos = {"final_info": final([True, False, True], [0.5, 0.0, 7.0], [1, 0, 3], [0.0, 0.0, 0.0])}
    assert stats.finished(infos) == [(0.5, 1, 0.0), (7.0, 3, 0.0)]
    # Step 4: no mask given: every env's success counts; env 1 also succeeds at its last step.
    assert stats.finished({"success": np.array([0.0, 1.0, 1.0])}) == []
    infos = {"final_info": final([True, True, True], [1.0, 2.0, 3.0], [1, 4, 1], [0.0, 1.0, 0.0])}
    assert stats.finished(infos) == [(1.0, 1, 0.0), (2.0, 4, 1.0), (3.0, 1, 1.0)]
    assert stats.ever_success.tolist() == [False, False, False]


def test_episodes_without_success_info_and_state_round_trip():
    stats = monitoring.EpisodeStats(2)
    assert stats.finished({"final_info": final([False, True], [0.0, 3.0], [0, 9])}) == [(3.0, 9, 0.0)]
    stats.ever_success[:] = [True, False]
    state = stats.state_dict()
    stats.ever_success[:] = [False, True]  # the saved state is a copy
    other = monitoring.EpisodeStats(2)
    other.load_state_dict(state)
    state["ever_success"][:] = [False, False]  # and so is the loaded one
    assert other.ever_success.tolist() == [True, False]


# ----- the stop flag (its signals: tests/test_utils.py) ---------------------------------------------
def test_stop_flag_exit_names_the_checkpoint_and_exits_130(capsys, monkeypatch):
    monkeypatch.setattr(runs.signal, "signal", lambda signum, handler: None)  # leave pytest's handlers
    with pytest.raises(SystemExit) as stopped:
        runs.StopFlag().exit("runs/x", "iteration 3")
    assert stopped.value.code == 130
    assert (
        capsys.readouterr().out
        == "interrupted: checkpoint at iteration 3 in runs/x; resume with --resume runs/x\n"
    )


def test_a_first_ctrl_c_only_sets_the_stop_flag():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        flag = runs.StopFlag()
        signal.raise_signal(signal.SIGINT)  # no KeyboardInterrupt: the loop stops at its next clean point
        assert flag.signals == [signal.SIGINT]
        signal.raise_signal(signal.SIGTERM)  # a scheduler's SIGTERM after it: still no interruption
        assert flag.signals == [signal.SIGINT, signal.SIGTERM]
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


# ----- priors/atomic.py: where and how the new version is staged -----------------------------------
def test_file_write_stages_a_hidden_sibling_and_creates_missing_parents(tmp_path):
    target = tmp_path / "a" / "b" / "agent.pt"
    seen = []

    def write(f):
        seen.append(sorted(p.name for p in target.parent.iterdir()))
        f.write(b"new")

    assert write_file_atomically(target, write) == target
    ((staged,),) = seen  # during the write: one hidden temporary file beside the target, nothing else
    assert staged.startswith(".agent.pt.tmp-")
    assert target.read_bytes() == b"new" and [p.name for p in target.parent.iterdir()] == ["agent.pt"]


def test_folder_write_fsyncs_every_file_before_the_rename(tmp_path, monkeypatch):
    target = tmp_path / "x" / "prior"
    synced, staged = [], []
    fsync = priors.atomic._fsync
    monkeypatch.setattr(priors.atomic, "_fsync", lambda path: (synced.append(Path(path)), fsync(path)))

    def write(tmp):
        staged.append(tmp)
        assert [p.name for p in target.parent.iterdir()] == [tmp.name] and tmp.name.startswith(".prior.tmp-")
        (tmp / "config.json").write_text("{}")
        (tmp / "sub").mkdir()
        (tmp / "sub" / "model.bin").write_bytes(b"w")

    assert write_folder_atomically(target, write) == target.resolve()
    (tmp,) = staged
    files = {tmp / "config.json", tmp / "sub", tmp / "sub" / "model.bin"}
    assert set(synced[:3]) == files and synced[3:] == [tmp, target.parent]
    assert sorted(p.name for p in target.parent.iterdir()) == ["prior"]


def test_folder_write_without_replace_keeps_the_existing_folder(tmp_path):
    target = tmp_path / "cache"
    write_folder_atomically(target, lambda tmp: (tmp / "v").write_text("first"))
    result = write_folder_atomically(target, lambda tmp: (tmp / "v").write_text("second"), replace=False)
    assert result == target.resolve() and (target / "v").read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["cache"]  # the new copy is gone
