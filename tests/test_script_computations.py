"""What the PPO scripts compute, pinned against independent references: each script runs in this
process on a tiny budget, and at its first gradient step the test takes the script's own batch and
gradients (from the frame that calls ``clip_grad_norm_``) and recomputes the loss from scratch with
``torch.distributions``: PPO's clipped surrogate, the value loss, the entropy bonus and
``kl_coef * KL(pi || prior)``, the prior's parameters recomputed from the raw observations."""

import copy
import sys
import time

import numpy as np
import pytest
import script_helpers
import torch
from script_helpers import REPO
from torch.distributions import Categorical, Independent, Normal, kl_divergence

from cleanrl_lago.envs.metaworld_tasks import task_instructions
from priors import load_prior

CLEVR = REPO / "cleanrl_lago" / "ppo_lago_clevr.py"
METAWORLD = REPO / "cleanrl_lago" / "ppo_lago_metaworld.py"


def run_in_process(script, args, cwd, monkeypatch):
    """Run ``script`` as ``__main__`` here; return its globals and, for its first gradient step, the
    locals of the loop and every parameter's gradient before clipping."""
    captured = {}
    clip = torch.nn.utils.clip_grad_norm_

    def spy(parameters, max_norm, *a, **kw):
        parameters = list(parameters)
        if not captured:
            frame = sys._getframe(1)
            captured["locals"] = dict(frame.f_locals)
            captured["grads"] = [p.grad.clone() for p in parameters]
            captured["params"] = [p.detach().clone() for p in parameters]
        return clip(parameters, max_norm, *a, **kw)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)
    return script_helpers.run_in_process(script, args, cwd, monkeypatch), captured


def ppo_reference_loss(loc, new_dist, new_value, kl):
    """CleanRL's PPO loss, written again from its definition, plus ``kl_coef * kl``."""
    args, mb = loc["args"], loc["mb_inds"]
    actions = loc["b_actions"][mb]
    actions = actions.long() if isinstance(new_dist, Categorical) else actions
    logratio = new_dist.log_prob(actions) - loc["b_logprobs"][mb]
    ratio = logratio.exp()
    adv = loc["b_advantages"][mb]
    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    pg_loss = torch.maximum(-adv * ratio, -adv * ratio.clamp(1 - args.clip_coef, 1 + args.clip_coef)).mean()
    returns, old_values = loc["b_returns"][mb], loc["b_values"][mb]
    clipped = old_values + (new_value - old_values).clamp(-args.clip_coef, args.clip_coef)
    v_loss = 0.5 * torch.maximum((new_value - returns) ** 2, (clipped - returns) ** 2).mean()
    entropy = new_dist.entropy().mean()
    return pg_loss - args.ent_coef * entropy + args.vf_coef * v_loss + loc["kl_coef"] * kl.mean()


def assert_gradients_match(agent, params, grads, loss_fn):
    """Gradients of ``loss_fn(agent)`` at ``params`` equal the script's."""
    with torch.no_grad():
        for p, value in zip(agent.parameters(), params, strict=True):
            p.copy_(value)
    agent.zero_grad()
    loss_fn(agent).backward()
    for p, g in zip(agent.parameters(), grads, strict=True):
        torch.testing.assert_close(p.grad, g, rtol=1e-4, atol=1e-6)


def test_clevr_loss_and_gradients_equal_an_independent_reference(tiny_priors, tmp_path, monkeypatch):
    args = ["--num-envs", "2", "--num-steps", "16", "--num-minibatches", "2", "--update-epochs", "1"]
    args += ["--total-timesteps", "32", "--prior", str(tiny_priors["clevr"]), "--kl-coef", "0.7"]
    args += ["--ent-coef", "0.05"]
    result, captured = run_in_process(CLEVR, args, tmp_path, monkeypatch)
    loc = captured["locals"]
    assert loc["kl_coef"] == 0.7
    # The prior's logits for every collected state are those of the prior itself, on the observation
    # and the instruction the env gave: recomputed here from a freshly loaded prior.
    prior = load_prior(tiny_priors["clevr"])
    obs, instructions = loc["obs"].reshape(32, -1), loc["instructions"].reshape(-1).tolist()
    with torch.no_grad():
        expected_logits = prior(obs, instructions)
    torch.testing.assert_close(loc["prior_logits"], expected_logits, rtol=1e-5, atol=1e-5)
    assert len(set(instructions)) > 1  # the two envs' episodes carry their own goals

    mb = loc["mb_inds"]

    def loss(agent):
        logits = agent.actor(loc["b_obs"][mb])
        pi, prior_dist = Categorical(logits=logits), Categorical(logits=expected_logits[mb])
        kl = kl_divergence(pi, prior_dist)  # KL(pi || prior): the policy first
        return ppo_reference_loss(loc, pi, agent.critic(loc["b_obs"][mb]).view(-1), kl)

    assert_gradients_match(result["agent"], captured["params"], captured["grads"], loss)


def test_metaworld_loss_and_gradients_equal_an_independent_reference(tiny_priors, tmp_path, monkeypatch):
    args = [
        "--num-steps",
        "32",
        "--num-minibatches",
        "2",
        "--update-epochs",
        "1",
        "--max-episode-steps",
        "20",
    ]
    args += ["--total-timesteps", "32", "--prior", str(tiny_priors["reach"]), "--kl-coef", "0.3"]
    args += ["--ent-coef", "0.01", "--instruction-split", "heldout"]
    result, captured = run_in_process(METAWORLD, args, tmp_path, monkeypatch)
    loc = captured["locals"]
    assert set(loc["env_instructions"]) <= set(task_instructions("reach-v3", "heldout"))
    # The prior reads the raw observations (it normalises with its own statistics), never the
    # agent's normalised ones; recomputed here from a freshly loaded prior.
    prior = load_prior(tiny_priors["reach"])
    raw = loc["raw_obs"].reshape(32, -1)
    assert not torch.allclose(raw.float(), loc["b_obs"])  # the agent's input is normalised
    with torch.no_grad():
        expected = prior(raw, list(loc["env_instructions"]) * 32)
    prior_mean, prior_log_std = expected.chunk(2, dim=-1)
    torch.testing.assert_close(loc["b_prior_mean"], prior_mean, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(loc["b_prior_log_std"], prior_log_std, rtol=1e-5, atol=1e-5)

    mb = loc["mb_inds"]

    def loss(agent):
        x = loc["b_obs"][mb]
        mean = agent.actor_mean(x)
        std = agent.actor_logstd.expand_as(mean).exp()
        pi = Independent(Normal(mean, std), 1)
        prior_dist = Independent(Normal(prior_mean[mb], prior_log_std[mb].exp()), 1)
        return ppo_reference_loss(loc, pi, agent.critic(x).view(-1), kl_divergence(pi, prior_dist))

    assert_gradients_match(result["agent"], captured["params"], captured["grads"], loss)


def test_clevr_states_and_instructions_equal_a_replay_of_the_envs(tiny_priors, tmp_path, monkeypatch):
    """Each collected state carries the instruction of its own episode, from the phrasing split asked for:
    env e replayed here from ``reset(seed=1 + e)`` with the script's actions gives, step for step, the same
    observations and the same instructions, across episode ends (SAME_STEP autoreset)."""
    import gymnasium as gym

    from cleanrl_lago.envs.clevr_robot import all_instructions

    args = ["--num-envs", "2", "--num-steps", "64", "--num-minibatches", "2", "--update-epochs", "1"]
    args += ["--total-timesteps", "128", "--prior", str(tiny_priors["clevr"]), "--kl-coef", "0.5"]
    args += ["--instruction-split", "heldout"]
    _, captured = run_in_process(CLEVR, args, tmp_path, monkeypatch)
    loc = captured["locals"]
    obs, actions, instructions, dones = loc["obs"], loc["actions"], loc["instructions"], loc["dones"]
    assert dones[1:].sum() >= 2  # every env crossed an episode end (50 pushes at most)
    assert set(instructions.reshape(-1)) <= set(all_instructions("test"))
    assert not set(all_instructions("test")) & set(all_instructions("train"))
    for e in range(2):
        env = gym.make("CLEVR-Robot-v0", instruction_split="heldout")
        o, info = env.reset(seed=1 + e)
        for t in range(64):
            assert torch.equal(obs[t, e], torch.as_tensor(o, dtype=torch.float32)), (e, t)
            assert instructions[t, e] == info["instruction"], (e, t)
            o, _, terminated, truncated, info = env.step(int(actions[t, e]))
            if terminated or truncated:
                o, info = env.reset()
        env.close()


@pytest.mark.parametrize("script", [CLEVR, METAWORLD], ids=["clevr", "metaworld"])
def test_vanilla_gradients_have_no_kl_term(script, tmp_path, monkeypatch):
    """At --kl-coef 0 the gradient is PPO's alone (the reference with a zero KL)."""
    if script == CLEVR:
        args = ["--num-envs", "2", "--num-steps", "16", "--num-minibatches", "1", "--update-epochs", "1"]
    else:
        args = [
            "--num-steps",
            "32",
            "--num-minibatches",
            "1",
            "--update-epochs",
            "1",
            "--max-episode-steps",
            "20",
        ]
    args += ["--total-timesteps", "32", "--kl-coef", "0", "--prior", "/nowhere"]
    result, captured = run_in_process(script, args, tmp_path, monkeypatch)
    loc = dict(captured["locals"], kl_coef=0.0)
    mb = loc["mb_inds"]

    def loss(agent):
        x = loc["b_obs"][mb]
        if script == CLEVR:
            pi = Categorical(logits=agent.actor(x))
        else:
            mean = agent.actor_mean(x)
            pi = Independent(Normal(mean, agent.actor_logstd.expand_as(mean).exp()), 1)
        return ppo_reference_loss(loc, pi, agent.critic(x).view(-1), torch.zeros(1))

    assert_gradients_match(result["agent"], captured["params"], captured["grads"], loss)


def test_saved_metaworld_agent_acts_as_in_training(tiny_priors, tmp_path, monkeypatch):
    """The evaluation loads the saved agent with its observation statistics: on the same raw
    observations it takes exactly the actions (means) the trained agent takes."""
    from cleanrl_lago.utils.evals import load_ppo_metaworld_policy

    args = [
        "--num-steps",
        "32",
        "--num-minibatches",
        "2",
        "--update-epochs",
        "1",
        "--max-episode-steps",
        "20",
    ]
    args += ["--total-timesteps", "64", "--kl-coef", "0", "--save-model", "--eval-episodes", "1"]
    result, _ = run_in_process(METAWORLD, args, tmp_path, monkeypatch)
    agent = result["agent"]
    assert agent.obs_rms.count > 64  # trained statistics, far from the initial ones
    raw = np.random.default_rng(0).normal(size=(5, 39)) * 0.3 + agent.obs_rms.mean.numpy()
    with torch.no_grad():
        expected = agent.actor_mean(agent.obs_rms.normalize(torch.as_tensor(raw))).numpy()
    model_path = next((tmp_path / "runs").glob("*/ppo_lago_metaworld.cleanrl_model"))
    act = load_ppo_metaworld_policy(str(model_path), result["Agent"], "cpu")
    np.testing.assert_array_equal(act(raw), expected)


def logged(run_dir):
    """Every scalar of a run except wall-clock ones, as {tag: [(step, value), ...]}."""
    from script_helpers import scalars

    return {
        t: v for t, v in scalars(run_dir).items() if t not in ("charts/SPS", "charts/prior_time_fraction")
    }


@pytest.mark.parametrize("script", [CLEVR, METAWORLD], ids=["clevr", "metaworld"])
def test_resumed_run_equals_uninterrupted_run(script, tiny_priors, tmp_path, monkeypatch):
    """Stopped (the flag Ctrl-C/SIGTERM sets) after iteration 2 of 5 and resumed, a run ends with the very
    weights, optimiser state and logged values of the same run left alone: RNG streams, envs mid-episode,
    observation statistics and the auto-tuned coefficient all carry over."""
    from cleanrl_lago.utils import runs

    if script == CLEVR:
        args = ["--num-envs", "2", "--num-steps", "16", "--num-minibatches", "2", "--update-epochs", "2"]
        args += ["--total-timesteps", "160", "--prior", str(tiny_priors["clevr"])]
    else:
        args = [
            "--num-steps",
            "32",
            "--num-minibatches",
            "2",
            "--update-epochs",
            "2",
            "--max-episode-steps",
            "24",
        ]
        args += ["--total-timesteps", "160", "--prior", str(tiny_priors["reach"])]
    args += ["--kl-coef", "0.2", "--kl-schedule", "auto", "--checkpoint-every", "0"]
    (tmp_path / "whole").mkdir()
    (tmp_path / "parts").mkdir()
    run_in_process(script, args, tmp_path / "whole", monkeypatch)

    checks = []

    def stop_in_iteration_3(flag):  # the flag is read twice per iteration: stop right after iteration 2
        checks.append(1)
        return len(checks) >= 3

    with monkeypatch.context() as m:
        m.setattr(runs.StopFlag, "__bool__", stop_in_iteration_3)
        with pytest.raises(SystemExit) as stopped:
            run_in_process(script, args, tmp_path / "parts", monkeypatch)
    assert stopped.value.code == 130
    (run,) = (tmp_path / "parts" / "runs").iterdir()
    assert torch.load(run / "checkpoint.pt", weights_only=False)["iteration"] == 2
    time.sleep(1.1)  # a later event file name: TensorBoard orders files by their timestamp (one process here)
    run_in_process(script, [*args, "--resume", f"runs/{run.name}"], tmp_path / "parts", monkeypatch)

    (whole,) = (tmp_path / "whole" / "runs").iterdir()
    a = torch.load(whole / "checkpoint.pt", weights_only=False)
    b = torch.load(run / "checkpoint.pt", weights_only=False)
    assert a["iteration"] == b["iteration"] == 5
    for name in a["agent"]:
        assert torch.equal(a["agent"][name], b["agent"][name]), name
    assert a["log_kl_coef"].item() == b["log_kl_coef"].item()
    la, lb = logged(whole), logged(run)
    assert la.keys() == lb.keys() and "losses/prior_kl" in la and "charts/episodic_return" in la
    for tag in la:
        assert la[tag] == lb[tag], tag


SAC = REPO / "cleanrl_lago" / "sac_lago.py"
SAC_TINY = [
    "--learning-starts",
    "40",
    "--batch-size",
    "16",
    "--max-episode-steps",
    "20",
    "--prior-batch-size",
    "16",
]


def run_sac_capturing_first_updates(args, cwd, monkeypatch):
    """Run sac_lago.py here; at the first critic step and the first actor step keep the frame's locals and
    the gradients, and record the standard-normal noise of every reparameterised sample."""
    captured, noises = {}, []
    rsample, step = torch.distributions.Normal.rsample, torch.optim.Adam.step

    def recording_rsample(self, sample_shape=torch.Size()):  # noqa: B008
        x = rsample(self, sample_shape)
        noises.append(((x - self.loc) / self.scale).detach().clone())
        return x

    def spying_step(self, *a, **kw):
        frame = sys._getframe(1)
        while frame is not None and "actor_optimizer" not in frame.f_locals:  # past torch's step hooks
            frame = frame.f_back
        loc = frame.f_locals if frame is not None else {}
        for name in ("q_optimizer", "actor_optimizer"):
            if loc.get(name) is self and name not in captured:
                params = [p for group in self.param_groups for p in group["params"]]
                captured[name] = (
                    dict(loc),
                    [p.grad.clone() for p in params],
                    [p.detach().clone() for p in params],
                )
                captured[name + "_noise"] = noises[-1]
                captured[name + "_critics"] = copy.deepcopy((loc["qf1"], loc["qf2"]))  # trained on afterwards
        return step(self, *a, **kw)

    monkeypatch.setattr(torch.distributions.Normal, "rsample", recording_rsample)
    monkeypatch.setattr(torch.optim.Adam, "step", spying_step)
    result, _ = run_in_process(SAC, args, cwd, monkeypatch)
    return result, captured


def squashed_sample(actor, obs, noise):
    """A tanh-squashed Gaussian sample and its log-density, from the definition (the script's noise)."""
    mean, log_std = actor(obs)
    x = mean + log_std.exp() * noise
    action = torch.tanh(x) * actor.action_scale + actor.action_bias
    log_pi = Normal(mean, log_std.exp()).log_prob(x) - torch.log(
        actor.action_scale * (1 - torch.tanh(x) ** 2) + 1e-6
    )
    return action, log_pi.sum(1)


def test_sac_losses_equal_an_independent_reference(tiny_priors, tmp_path, monkeypatch):
    """The soft target subtracts kl_coef * (log pi - log prior) at s' and the actor minimises
    kl_coef * (log pi - log prior) - min Q with the temperature at 0: checked against a reference written
    from the definitions, the prior's parameters recomputed by a freshly loaded prior."""
    args = [*SAC_TINY, "--total-timesteps", "44", "--prior", str(tiny_priors["reach"]), "--kl-coef", "0.4"]
    args += ["--no-autotune"]
    result, captured = run_sac_capturing_first_updates(args, tmp_path, monkeypatch)
    prior = load_prior(tiny_priors["reach"])

    loc, _, _ = captured["q_optimizer"]
    data, kl_coef = loc["data"], loc["kl_coef"]
    assert kl_coef == pytest.approx(0.4) and loc["alpha"] == 0.0
    with torch.no_grad():
        expected = prior(data.next_observations[:, :39], list(result["env_instructions"]) * 16)
    torch.testing.assert_close(data.prior_params, expected, rtol=1e-5, atol=1e-5)
    prior_dist = Independent(Normal(expected[:, :4], expected[:, 4:].exp()), 1)
    a_next, log_pi_next = loc["next_state_actions"], loc["next_state_log_pi"].view(-1)
    with torch.no_grad():
        q_next = torch.min(loc["qf1_next_target"], loc["qf2_next_target"])  # (the critics train on later)
        kl_next = log_pi_next - prior_dist.log_prob(a_next)
        target = data.rewards.flatten() + (1 - data.dones.flatten()) * 0.99 * (
            q_next.view(-1) - 0.4 * kl_next
        )
    torch.testing.assert_close(loc["next_q_value"], target, rtol=1e-5, atol=1e-5)

    loc, grads, params = captured["actor_optimizer"]
    actor = result["actor"]
    with torch.no_grad():
        for p, value in zip(actor.parameters(), params, strict=True):
            p.copy_(value)
    actor.zero_grad()
    obs = loc["data"].next_observations  # with a prior the actor learns on s', where the prior is known
    with torch.no_grad():
        expected = prior(obs[:, :39], list(result["env_instructions"]) * 16)
    prior_dist = Independent(Normal(expected[:, :4], expected[:, 4:].exp()), 1)
    action, log_pi = squashed_sample(actor, obs, captured["actor_optimizer_noise"])
    kl = log_pi - prior_dist.log_prob(action)  # one-sample KL(pi || prior): pi's sample, pi first
    qf1, qf2 = captured["actor_optimizer_critics"]
    min_q = torch.min(qf1(obs, action), qf2(obs, action)).view(-1)
    (0.4 * kl - min_q).mean().backward()
    for p, g in zip(actor.parameters(), grads, strict=True):
        torch.testing.assert_close(p.grad, g, rtol=1e-4, atol=1e-6)


def test_sac_resumed_run_equals_uninterrupted_run(tiny_priors, tmp_path, monkeypatch):
    """Stopped after 120 env steps and resumed, SAC with a prior (in its thread, a batch in flight) ends
    with the weights, replay buffer and logged values of the same run left alone."""
    from cleanrl_lago.utils import runs

    args = [*SAC_TINY, "--total-timesteps", "210", "--prior", str(tiny_priors["reach"]), "--kl-coef", "0.2"]
    args += ["--checkpoint-every", "0", "--policy-frequency", "1"]
    (tmp_path / "whole").mkdir()
    (tmp_path / "parts").mkdir()
    run_in_process(SAC, args, tmp_path / "whole", monkeypatch)
    checks = []

    def stop_after_step_120(flag):  # read twice per step
        checks.append(1)
        return len(checks) >= 239

    with monkeypatch.context() as m:
        m.setattr(runs.StopFlag, "__bool__", stop_after_step_120)
        with pytest.raises(SystemExit):
            run_in_process(SAC, args, tmp_path / "parts", monkeypatch)
    (run,) = (tmp_path / "parts" / "runs").iterdir()
    assert torch.load(run / "checkpoint.pt", weights_only=False)["global_step"] == 120
    time.sleep(1.1)  # a later event file name: TensorBoard orders files by their timestamp (one process here)
    run_in_process(SAC, [*args, "--resume", f"runs/{run.name}"], tmp_path / "parts", monkeypatch)
    (whole,) = (tmp_path / "whole" / "runs").iterdir()
    a = torch.load(whole / "checkpoint.pt", weights_only=False)
    b = torch.load(run / "checkpoint.pt", weights_only=False)
    for net in ("actor", "qf1", "qf2", "qf1_target", "qf2_target"):
        for name in a[net]:
            assert torch.equal(a[net][name], b[net][name]), (net, name)
    for name in ("observations", "actions", "rewards", "prior_params"):
        assert np.array_equal(a["replay_buffer"][name], b["replay_buffer"][name]), name
    assert a["log_kl_coef"].item() == b["log_kl_coef"].item()
    la, lb = logged(whole), logged(run)
    assert la.keys() == lb.keys() and "losses/prior_kl" in la
    for tag in la:
        assert la[tag] == lb[tag], tag
