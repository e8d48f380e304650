"""The kickstarting baseline (issue 25): the prior cloned into PPO's actor, and ``--init-model``."""

from __future__ import annotations

import pytest
import torch
from script_helpers import REPO, only_run, run_in_process

from cleanrl_lago import kickstart
from cleanrl_lago.ppo_lago_clevr import Agent
from cleanrl_lago.utils import runs


def test_kl_to_actor_is_torchs_kl_divergence():
    from torch.distributions import Categorical, kl_divergence

    generator = torch.Generator().manual_seed(0)
    prior, actor = torch.randn(5, 40, generator=generator) * 3, torch.randn(5, 40, generator=generator)
    expected = kl_divergence(Categorical(logits=prior), Categorical(logits=actor))
    torch.testing.assert_close(kl_to := kickstart.kl_to_actor(prior.log_softmax(-1), actor), expected)
    assert (kl_to > 0).all()


def test_load_weights_starts_from_the_saved_agent_and_refuses_others(tmp_path):
    torch.manual_seed(0)
    saved, fresh = Agent(24, 40), Agent(24, 40)
    path = tmp_path / "a.cleanrl_model"
    torch.save({"agent": saved.state_dict()}, path)
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    runs.load_weights(fresh, None)
    assert all(torch.equal(before[k], v) for k, v in fresh.state_dict().items())
    runs.load_weights(fresh, str(path))
    assert all(torch.equal(saved.state_dict()[k], v) for k, v in fresh.state_dict().items())
    torch.save({"agent": Agent(10, 40).state_dict()}, tmp_path / "other.cleanrl_model")
    (tmp_path / "corrupt.cleanrl_model").write_bytes(b"not a torch file")
    for name in ("other", "corrupt"):
        with pytest.raises(ValueError, match="is not a saved agent of this script's architecture"):
            runs.load_weights(fresh, str(tmp_path / f"{name}.cleanrl_model"))
    with pytest.raises(FileNotFoundError, match="no such file"):
        runs.load_weights(fresh, str(tmp_path / "missing.cleanrl_model"))


def test_kickstart_clones_the_prior_and_ppo_starts_from_it(tiny_priors, tmp_path, monkeypatch):
    """The cloned actor is much closer to the prior than before fitting; ``--init-model`` then gives PPO's
    agent (the one it trains) exactly the saved weights before its first step."""
    out = tmp_path / "kick.cleanrl_model"
    argv = ["--output", str(out), "--prior", str(tiny_priors["clevr"]), "--states", "320", "--num-envs", "4"]
    fit = kickstart.main([*argv, "--epochs", "40", "--seed", "3"])
    assert fit.heldout_kl < 0.5 * fit.initial_heldout_kl
    saved = torch.load(out, weights_only=True)
    assert saved["kickstart"]["heldout_kl"] == fit.heldout_kl and saved["obs_dim"] == 24

    loaded = []

    def load_and_record(agent, path, device="cpu"):
        load_weights(agent, path, device)
        loaded.append((agent, {k: v.clone() for k, v in agent.state_dict().items()}))

    load_weights = runs.load_weights
    monkeypatch.setattr(runs, "load_weights", load_and_record)
    args = ["--num-envs", "2", "--num-steps", "16", "--total-timesteps", "32", "--kl-coef", "0"]
    script = run_in_process(
        REPO / "cleanrl_lago" / "ppo_lago_clevr.py", [*args, "--init-model", str(out)], tmp_path, monkeypatch
    )
    ((agent, at_start),) = loaded
    assert agent is script["agent"] and only_run(tmp_path).is_dir()
    assert all(torch.equal(saved["agent"][k], v) for k, v in at_start.items())
    assert not all(
        torch.equal(saved["agent"][k], v) for k, v in agent.state_dict().items()
    )  # then PPO trained it
    with pytest.raises(ValueError, match="at least 10 states per env"):
        kickstart.main([*argv[:-4], "--states", "8"])
