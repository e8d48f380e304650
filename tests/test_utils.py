"""The scripts' plumbing (cleanrl_lago/utils): the progress bar, episode success, option ranges."""

import io
import sys
from dataclasses import dataclass

import numpy as np
import pytest

from cleanrl_lago.utils.cli import check_budget, check_ranges
from cleanrl_lago.utils.monitoring import EpisodeStats, Progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("stream", [Terminal(), io.StringIO()], ids=["terminal", "pipe"])
def test_progress_bar_shows_sps_and_success_on_a_terminal_only(stream, monkeypatch):
    monkeypatch.setattr(sys, "stderr", stream)
    bar = Progress(total=100, initial=20)
    bar.update(60, success_rate=0.25)
    bar.update(100)
    bar.close()
    out = stream.getvalue()
    if isinstance(stream, Terminal):
        assert "100/100" in out and "success=0.25" in out and "SPS=" in out
    else:
        assert out == ""


def test_episode_success_counts_any_successful_step_of_the_episode():
    stats = EpisodeStats(num_envs=2)
    step = {"success": np.array([1.0, 0.0]), "_success": np.array([True, True])}
    assert stats.finished(step) == []
    # env 0 ends without success at its last step (it succeeded earlier); env 1 ends on a success
    final = {
        "success": np.array([0.0, 0.0]),
        "_success": np.array([True, True]),
        "final_info": {
            "_episode": np.array([True, True]),
            "episode": {"r": np.array([1.5, 2.0]), "l": np.array([7, 9])},
            "success": np.array([0.0, 1.0]),
        },
    }
    assert stats.finished(final) == [(1.5, 7, 1.0), (2.0, 9, 1.0)]
    again = {**final, "final_info": {**final["final_info"], "success": np.array([0.0, 0.0])}}
    assert stats.finished(again) == [(1.5, 7, 0.0), (2.0, 9, 0.0)]  # the flags were reset


@dataclass
class Options:
    kl_coef: float = 0.05
    gamma: float = 0.99
    num_envs: int = 1
    batch_size: int = 0  # computed at run time: left at its default, not checked


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("kl_coef", -1.0, "--kl-coef -1.0 is out of range: it must be >= 0"),
        ("kl_coef", float("nan"), "--kl-coef nan is out of range"),
        ("gamma", 1.5, "--gamma 1.5 is out of range: it must be in [0, 1]"),
        ("num_envs", 0, "--num-envs 0 is out of range: it must be >= 1"),
    ],
)
def test_out_of_range_options_are_refused_by_name(field, value, message):
    check_ranges(Options())
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        check_ranges(Options(**{field: value}))


@dataclass
class PPOBudget:
    total_timesteps: int = 512
    num_envs: int = 4
    num_steps: int = 128
    num_minibatches: int = 4


@dataclass
class SACBudget:
    total_timesteps: int = 101
    learning_starts: int = 100


def test_a_budget_that_trains_nothing_is_refused(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    check_budget(PPOBudget())  # exactly one rollout, one minibatch per 128 samples
    check_budget(SACBudget())  # one update
    with pytest.raises(ValueError, match=r"--total-timesteps 511 is less than one rollout .* = 512\)"):
        check_budget(PPOBudget(total_timesteps=511))
    with pytest.raises(ValueError, match="--num-minibatches 513 is more than the 512 samples"):
        check_budget(PPOBudget(num_minibatches=513))
    check_budget(PPOBudget(num_minibatches=512))
    with pytest.raises(ValueError, match="--total-timesteps 100 is not above --learning-starts 100"):
        check_budget(SACBudget(total_timesteps=100))
    monkeypatch.setenv("WORLD_SIZE", "2")  # under torchrun a rollout is every rank's
    with pytest.raises(ValueError, match=r"x 2 ranks = 1024\)"):
        check_budget(PPOBudget(total_timesteps=1023))
    check_budget(PPOBudget(total_timesteps=1024))


def test_stop_flag_sets_on_the_first_signal_and_interrupts_on_a_second_ctrl_c():
    import signal

    from cleanrl_lago.utils.runs import StopFlag

    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        flag = StopFlag()
        assert not flag
        signal.raise_signal(signal.SIGTERM)
        assert flag and flag.signals == [signal.SIGTERM]
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
