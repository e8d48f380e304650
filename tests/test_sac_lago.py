"""sac_lago.py: the KL estimator against numerical integration, an end-to-end run that reaches every
update (target, actor, tuned coefficient), saving, evaluation and video, vanilla equivalence, resuming
after SIGTERM without losing a transition, bad input."""

import math
import signal
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch
from script_helpers import REPO, only_run, run_script, scalars, script_env, strip_lago

from cleanrl_lago.envs.metaworld_tasks import make_metaworld_env, task_instructions
from cleanrl_lago.sac_lago import Actor, prior_kl_estimate
from priors import load_prior

SAC = REPO / "cleanrl_lago" / "sac_lago.py"
TINY = [
    "--learning-starts",
    "64",
    "--batch-size",
    "32",
    "--max-episode-steps",
    "20",
    "--buffer-size",
    "10000",
]
SAC_TAGS = {
    "losses/qf1_values",
    "losses/qf2_values",
    "losses/qf1_loss",
    "losses/qf2_loss",
    "losses/qf_loss",
    "losses/actor_loss",
    "charts/SPS",
    "charts/episodic_return",
    "charts/episodic_length",
    "charts/success_rate",
}
VANILLA_TAGS = {"losses/alpha", "losses/alpha_loss"}  # SAC's temperature: 0 and untuned with a prior
LAGO_TAGS = {"losses/prior_kl", "charts/kl_coef", "losses/kl_coef_loss", "charts/prior_time_fraction"}


# ----- the KL estimator ----------------------------------------------------------------------------
def reference_kl_1d(mean, log_std, prior_mean, prior_log_std, scale, bias, n=400_001):
    """KL(pi || prior) on one action dimension by quadrature over the action interval, in float64.

    pi's density at a = tanh(u) * scale + bias is N(u; mean, std) / (scale * (1 - tanh(u)^2)).
    """
    y = np.linspace(-1.0, 1.0, n)[1:-1]
    a = y * scale + bias
    u = np.arctanh(y)
    std, prior_std = math.exp(log_std), math.exp(prior_log_std)
    log_pi = (
        -0.5 * ((u - mean) / std) ** 2 - log_std - 0.5 * math.log(2 * math.pi) - np.log(scale * (1 - y**2))
    )
    log_prior = -0.5 * ((a - prior_mean) / prior_std) ** 2 - prior_log_std - 0.5 * math.log(2 * math.pi)
    return np.trapezoid(np.exp(log_pi) * (log_pi - log_prior), a)


@pytest.mark.parametrize(
    "pi, prior, scale, bias",
    [
        ((0.0, -0.7), (0.0, -0.7), 1.0, 0.0),  # same Gaussian: the squashing alone makes them differ
        ((0.5, -1.2), (-0.2, -0.2), 1.0, 0.0),
        ((-0.8, 0.0), (0.3, -1.2), 2.0, 0.5),  # scaled, shifted box
        ((0.2, -0.9), (3.0, -0.7), 1.0, 0.0),  # prior mean outside the box
        ((0.0, -0.5), (0.0, 1.5), 1.0, 0.0),  # prior wider than the box: its mass there is < 1
    ],
)
def test_prior_kl_estimate_is_unbiased_against_quadrature(pi, prior, scale, bias):
    torch.manual_seed(0)
    n, dims = 200_000, 2  # two independent dimensions: the KL is the sum of the 1-D ones
    mean = torch.tensor([[pi[0], -pi[0]]]).expand(n, dims)
    log_std = torch.full((n, dims), pi[1])
    prior_mean = torch.tensor([[prior[0], -prior[0]]]).expand(n, dims)
    prior_log_std = torch.full((n, dims), prior[1])
    action_bias = torch.tensor([bias, -bias])
    box = gym.spaces.Box(low=(action_bias - scale).numpy(), high=(action_bias + scale).numpy())
    actor = Actor(1, box)  # the script's own sampling and squashed log-density, at the given mean and log_std
    actor.forward = lambda x: (mean, log_std)
    action, log_pi, _ = actor.get_action(torch.zeros(n, 1))
    assert log_pi.shape == (n, 1)
    assert ((action - action_bias).abs() <= scale).all()
    estimate = prior_kl_estimate(log_pi, action, prior_mean, prior_log_std).double()
    reference = reference_kl_1d(pi[0], pi[1], prior[0], prior[1], scale, bias) + reference_kl_1d(
        -pi[0], pi[1], -prior[0], prior[1], scale, -bias
    )
    standard_error = estimate.std().item() / math.sqrt(n)
    assert reference >= 0 and estimate.mean().item() >= 0
    assert estimate.mean().item() == pytest.approx(reference, abs=4 * standard_error + 0.01)


# Fields of a staged transition (obs, next_obs, actions, rewards, dones) and of the batch in the prior's
# hands (the same, then None for the infos and the prior's parameters).
REWARDS, NEXT_OBS, PRIOR_PARAMS = 3, 1, -1


def stored_transitions(checkpoint) -> int:
    """Transitions in the replay buffer plus those waiting for the prior or in its hands."""
    buffer = checkpoint["replay_buffer"]
    staged = sum(len(t[REWARDS]) for t in buffer["staging"])
    return buffer["size"] + staged + (0 if buffer["pending"] is None else len(buffer["pending"][REWARDS]))


# ----- end to end ------------------------------------------------------------------------------------
def test_end_to_end_with_prior_and_tuned_coefficient(tiny_priors, tmp_path):
    args = [
        *TINY,
        "--total-timesteps",
        "240",
        "--prior",
        str(tiny_priors["reach"]),
        "--prior-batch-size",
        "48",
    ]
    args += ["--kl-coef", "0.1"]
    args += ["--kl-target", "0.001", "--save-model", "--eval-episodes", "1", "--capture-video"]
    result = run_script(SAC, args, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run = only_run(tmp_path)
    logged = scalars(run)
    assert SAC_TAGS | LAGO_TAGS | {"eval/success_rate"} <= set(logged) and "losses/alpha_loss" not in logged
    assert [v for _, v in logged["losses/alpha"]] == [0.0] * len(logged["losses/alpha"])  # the KL replaces it
    assert all(math.isfinite(v) for _, v in logged["losses/prior_kl"] + logged["losses/kl_coef_loss"])
    coefs = [v for _, v in logged["charts/kl_coef"]]
    # KL far above a target of 0.001 nats: the coefficient only rises from 0.1.
    assert 0.1 < coefs[0] < coefs[1]
    assert all(0 < v < 1 for _, v in logged["charts/prior_time_fraction"])
    checkpoint = torch.load(run / "checkpoint.pt", weights_only=False)
    assert checkpoint["global_step"] == 240 and stored_transitions(checkpoint) == 240
    assert checkpoint["replay_buffer"]["prior_params"].shape == (checkpoint["replay_buffer"]["size"], 8)
    saved = torch.load(run / "sac_lago.cleanrl_model", weights_only=True)
    assert {"actor", "qf1", "qf2"} <= set(saved) and saved["tasks"] == ["reach-v3"] and saved["obs_dim"] == 39
    videos = list((tmp_path / "videos").rglob("*.mp4"))
    assert any(v.parent.name == run.name for v in videos) and any(
        v.parent.name.endswith("-eval") for v in videos
    )
    assert "eval: success rate" in result.stdout


@pytest.mark.parametrize("mode", ["--prior-async", "--no-prior-async"])
def test_stored_prior_parameters_belong_to_their_transitions(tiny_priors, tmp_path, mode):
    """Whether the prior runs in its thread or inline, each transition in the buffer carries the prior's
    parameters at its own next observation (a batch never pairs with another batch's outputs)."""
    args = [
        *TINY,
        "--total-timesteps",
        "200",
        "--prior",
        str(tiny_priors["reach"]),
        "--prior-batch-size",
        "24",
    ]
    result = run_script(SAC, [*args, "--kl-coef", "0.1", "--instruction-split", "heldout", mode], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = torch.load(only_run(tmp_path) / "checkpoint.pt", weights_only=False)
    assert stored_transitions(checkpoint) == 200
    # Everything is flushed when learning starts (step 65), then a batch goes every 24 steps: at the end
    # the prior's thread still holds the batch of steps 162-185 (it would enter the buffer at the next
    # handover), and steps 186-200 wait in `staging`. Inline, nothing is held.
    buffer = checkpoint["replay_buffer"]
    pending = buffer["pending"]
    assert (pending is not None and len(pending[REWARDS]) == 24) == (mode == "--prior-async")
    later = [pending] if pending is not None else []
    next_obs = np.concatenate([buffer["next_observations"], *(p[NEXT_OBS] for p in later)])
    stored = np.concatenate([buffer["prior_params"], *(p[PRIOR_PARAMS] for p in later)])
    assert len(next_obs) == 185
    prior = load_prior(str(tiny_priors["reach"]))
    (instruction,) = task_instructions("reach-v3", "heldout")[:1]  # env 0 keeps the split's first phrasing
    with torch.no_grad():
        expected = prior(torch.as_tensor(next_obs[:, :39]), [instruction] * len(next_obs))
        train = prior(
            torch.as_tensor(next_obs[:, :39]), task_instructions("reach-v3", "train")[:1] * len(next_obs)
        )
    torch.testing.assert_close(torch.as_tensor(stored), expected, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(expected, train, rtol=1e-3, atol=1e-3)  # the phrasing split is visible here

    # Every transition (s, a, s') is the env's own, s' the true next observation also where an episode
    # ends (the vector env's `final_obs`, not the next episode's first observation): the env replayed here.
    pending_and_staged = ([pending] if pending is not None else []) + [
        tuple(np.asarray(x) for x in t) for t in buffer["staging"]
    ]
    transitions = {
        name: np.concatenate(
            [buffer[name], *(np.reshape(t[i], (len(t[REWARDS]), -1)) for t in pending_and_staged)]
        )
        for name, i in (("observations", 0), ("next_observations", NEXT_OBS), ("actions", 2))
    }
    assert len(transitions["actions"]) == 200
    env = make_metaworld_env("reach-v3", seed=1, max_episode_steps=20)
    obs, _ = env.reset(seed=1)
    for t in range(200):
        np.testing.assert_array_equal(transitions["observations"][t], np.float32(obs), err_msg=f"step {t}")
        obs, _, terminated, truncated, _ = env.step(transitions["actions"][t])
        np.testing.assert_array_equal(
            transitions["next_observations"][t], np.float32(obs), err_msg=f"step {t}"
        )
        if terminated or truncated:
            obs, _ = env.reset()


def test_kl_coef_zero_is_exactly_the_script_without_lago(tmp_path):
    vanilla_source = strip_lago(SAC.read_text())
    assert (
        "prior"
        not in vanilla_source.split("if __name__")[1].replace("DEFAULT_PRIORS", "").split("push_agent")[0]
    )
    (tmp_path / "vanilla").mkdir()
    vanilla = tmp_path / "vanilla" / SAC.name  # same name: same exp_name; imports via PYTHONPATH
    vanilla.write_text(vanilla_source)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    # --prior points nowhere: with --kl-coef 0 it must not even be loaded.
    args = [*TINY, "--total-timesteps", "220"]
    lago = run_script(SAC, [*args, "--kl-coef", "0", "--prior", "/nowhere"], tmp_path / "a")
    plain = run_script(vanilla, args, tmp_path / "b")
    assert lago.returncode == 0, lago.stderr[-3000:]
    assert plain.returncode == 0, plain.stderr[-3000:]
    a = torch.load(only_run(tmp_path / "a") / "checkpoint.pt", weights_only=False)
    b = torch.load(only_run(tmp_path / "b") / "checkpoint.pt", weights_only=False)
    for net in ("actor", "qf1", "qf2", "qf1_target", "qf2_target"):
        assert a[net].keys() == b[net].keys()
        for name in a[net]:
            assert torch.equal(a[net][name], b[net][name]), f"{net}.{name}"
    assert torch.equal(a["log_alpha"], b["log_alpha"]) and a["replay_buffer"]["size"] == 220
    la, lb = scalars(only_run(tmp_path / "a")), scalars(only_run(tmp_path / "b"))
    assert not LAGO_TAGS & set(la) and VANILLA_TAGS <= set(la)
    for tag in ("losses/qf_loss", "losses/actor_loss", "losses/alpha", "losses/alpha_loss"):
        assert la[tag] and [v for _, v in la[tag]] == [v for _, v in lb[tag]], tag


def test_interrupted_run_resumes_without_losing_transitions(tiny_priors, tmp_path):
    args = [
        *TINY,
        "--total-timesteps",
        "1200",
        "--prior",
        str(tiny_priors["reach"]),
        "--prior-batch-size",
        "48",
    ]
    args += ["--kl-coef", "0.3", "--no-autotune", "--checkpoint-every", "0"]
    args += ["--max-episode-steps", "500"]  # Meta-World's own time limit: episodes end as in real runs
    proc = subprocess.Popen(
        [sys.executable, str(SAC), *args],
        cwd=tmp_path,
        env=script_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out = []
    for line in proc.stdout:  # learning has started once the first losses are logged
        out.append(line)
        if line.startswith("SPS:"):
            proc.send_signal(signal.SIGTERM)
            break
    out.append(proc.communicate(timeout=120)[0])
    out = "".join(out)
    assert proc.returncode == 130, out[-3000:]
    run = only_run(tmp_path)
    interrupted = torch.load(run / "checkpoint.pt", weights_only=False)
    assert 100 <= interrupted["global_step"] < 1200 and "--resume" in out
    assert stored_transitions(interrupted) == interrupted["global_step"]

    result = run_script(SAC, [*args, "--resume", str(run.relative_to(tmp_path))], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert only_run(tmp_path) == run  # same run folder, same TensorBoard log
    final = torch.load(run / "checkpoint.pt", weights_only=False)
    assert final["global_step"] == 1200 and stored_transitions(final) == 1200
    kept = interrupted["replay_buffer"]["size"]
    for field in ("observations", "actions", "rewards", "prior_params"):
        np.testing.assert_array_equal(
            final["replay_buffer"][field][:kept], interrupted["replay_buffer"][field]
        )
    logged = scalars(run)
    steps = [s for s, _ in logged["losses/qf_loss"]]
    # One point per 100 steps: the resumed part continues where the checkpoint stopped, nothing twice.
    assert steps == list(range(100, 1201, 100))
    assert [v for _, v in logged["charts/kl_coef"]] == pytest.approx([0.3] * len(steps))  # fixed coefficient
    lengths = [v for _, v in logged["charts/episodic_length"]]
    assert lengths and all(v == 500 for v in lengths)


def test_bad_input_fails_before_training_with_clear_errors(tiny_priors, tmp_path):
    wrong_env = run_script(SAC, [*TINY, "--prior", str(tiny_priors["clevr"])], tmp_path)
    assert wrong_env.returncode != 0 and "Observation size mismatch" in wrong_env.stderr
    unknown_task = run_script(SAC, ["--env-id", "reach", "--kl-coef", "0"], tmp_path)
    assert unknown_task.returncode != 0 and "Did you mean 'reach-v3'" in unknown_task.stderr
    other_task = run_script(SAC, ["--env-id", "push-v3", "--prior", str(tiny_priors["reach"])], tmp_path)
    assert other_task.returncode != 0 and "trained on the tasks ['reach-v3']" in other_task.stderr
    for result in (wrong_env, unknown_task, other_task):
        assert "SPS" not in result.stdout  # nothing was trained
