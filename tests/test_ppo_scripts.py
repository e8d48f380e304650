"""The PPO scripts: the KL terms against torch.distributions, end-to-end runs with tiny budgets that
reach the update, the KL term, saving, evaluation, video and resuming, vanilla equivalence, bad input."""

import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from script_helpers import REPO, only_run, run_script, scalars, script_env, strip_lago
from torch.distributions import Categorical, Independent, Normal, kl_divergence

from cleanrl_lago.ppo_lago_clevr import categorical_kl
from cleanrl_lago.ppo_lago_metaworld import gaussian_kl

CLEVR = REPO / "cleanrl_lago" / "ppo_lago_clevr.py"
METAWORLD = REPO / "cleanrl_lago" / "ppo_lago_metaworld.py"
CLEVR_TINY = ["--num-envs", "2", "--num-steps", "16", "--num-minibatches", "2", "--update-epochs", "2"]
METAWORLD_TINY = [
    "--num-steps",
    "32",
    "--num-minibatches",
    "2",
    "--update-epochs",
    "2",
    "--max-episode-steps",
    "20",
]
PPO_TAGS = {
    "charts/episodic_return",
    "charts/episodic_length",
    "charts/learning_rate",
    "charts/SPS",
    "losses/value_loss",
    "losses/policy_loss",
    "losses/entropy",
    "losses/approx_kl",
    "losses/clipfrac",
    "losses/explained_variance",
}
LAGO_TAGS = {"losses/prior_kl", "charts/kl_coef", "charts/prior_time_fraction"}


# ----- the KL terms --------------------------------------------------------------------------------
def test_categorical_kl_matches_torch_and_its_gradient():
    torch.manual_seed(0)
    logits_pi = torch.randn(64, 40, requires_grad=True)
    logits_prior = torch.randn(64, 40) * 3
    ours = categorical_kl(logits_pi, logits_prior)
    ref = kl_divergence(Categorical(logits=logits_pi), Categorical(logits=logits_prior))
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)
    (grad_ours,) = torch.autograd.grad(ours.mean(), logits_pi)
    (grad_ref,) = torch.autograd.grad(ref.mean(), logits_pi)
    torch.testing.assert_close(grad_ours, grad_ref, rtol=1e-5, atol=1e-7)
    assert (ours >= 0).all() and categorical_kl(logits_prior, logits_prior).abs().max() < 1e-5


def test_gaussian_kl_matches_torch_and_its_gradient():
    torch.manual_seed(0)
    mean_pi, log_std_pi = torch.randn(64, 4, requires_grad=True), torch.randn(64, 4, requires_grad=True)
    mean_prior, log_std_prior = torch.randn(64, 4), torch.randn(64, 4).clamp(-2, 1)
    ours = gaussian_kl(mean_pi, log_std_pi, mean_prior, log_std_prior)
    ref = kl_divergence(
        Independent(Normal(mean_pi, log_std_pi.exp()), 1),
        Independent(Normal(mean_prior, log_std_prior.exp()), 1),
    )
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    grads_ours = torch.autograd.grad(ours.sum(), (mean_pi, log_std_pi))
    grads_ref = torch.autograd.grad(ref.sum(), (mean_pi, log_std_pi))
    for g_ours, g_ref in zip(grads_ours, grads_ref, strict=True):
        torch.testing.assert_close(g_ours, g_ref, rtol=1e-5, atol=1e-5)


# ----- end to end ------------------------------------------------------------------------------------
def test_clevr_end_to_end_with_prior_saves_evaluates_and_records(tiny_priors, tmp_path):
    args = [*CLEVR_TINY, "--total-timesteps", "128", "--prior", str(tiny_priors["clevr"]), "--kl-coef", "0.5"]
    args += ["--save-model", "--eval-episodes", "2", "--capture-video", "--checkpoint-every", "2"]
    result = run_script(CLEVR, args, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run = only_run(tmp_path)
    logged = scalars(run)
    assert PPO_TAGS | LAGO_TAGS | {"charts/success_rate", "eval/success_rate_train"} <= set(logged)
    assert all(v > 0 for _, v in logged["losses/prior_kl"])  # a random prior disagrees with the policy
    assert [v for _, v in logged["charts/kl_coef"]] == pytest.approx([0.5] * 4)
    assert all(0 < v < 1 for _, v in logged["charts/prior_time_fraction"])
    saved = torch.load(run / "ppo_lago_clevr.cleanrl_model", weights_only=True)
    assert saved["env_id"] == "CLEVR-Robot-v0" and saved["obs_dim"] == 24 and saved["n_actions"] == 40
    checkpoint = torch.load(run / "checkpoint.pt", weights_only=False)
    assert checkpoint["global_step"] == 128 and checkpoint["iteration"] == 4
    videos = list((tmp_path / "videos").rglob("*.mp4"))
    assert any("eval-train" in str(v) for v in videos) and any("eval-heldout" in str(v) for v in videos)
    assert "eval (heldout phrasings): success rate" in result.stdout


def test_metaworld_end_to_end_with_prior_and_auto_coefficient(tiny_priors, tmp_path):
    args = [
        *METAWORLD_TINY,
        "--total-timesteps",
        "96",
        "--prior",
        str(tiny_priors["reach"]),
        "--kl-coef",
        "0.1",
    ]
    args += ["--kl-schedule", "auto", "--kl-target", "0.01", "--kl-coef-lr", "0.5", "--save-model"]
    args += ["--eval-episodes", "1", "--prior-quantization", "bf16"]
    result = run_script(METAWORLD, args, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"prior: {tiny_priors['reach']} (lm, LM {tiny_priors['lm']}, bf16)" in result.stdout
    run = only_run(tmp_path)
    logged = scalars(run)
    assert PPO_TAGS | LAGO_TAGS | {"charts/success_rate", "eval/success_rate"} <= set(logged)
    coefs = [v for _, v in logged["charts/kl_coef"]]
    # KL far above the target: the coefficient rises every iteration.
    assert len(coefs) == 3 and coefs[0] == pytest.approx(0.1) and coefs[0] < coefs[1] < coefs[2]
    saved = torch.load(run / "ppo_lago_metaworld.cleanrl_model", weights_only=True)
    # The observation statistics travel with the agent (CleanRL issue 425).
    assert saved["agent"]["obs_rms.count"] > 96 and saved["tasks"] == ["reach-v3"]
    assert "eval: success rate" in result.stdout


@pytest.mark.parametrize(
    "script, target, direction",
    [(CLEVR, 1e-6, 1.0), (METAWORLD, 1e3, -1.0)],
    ids=["clevr-kl-above-target", "metaworld-kl-below-target"],
)
def test_auto_coefficient_steps_toward_its_target(script, target, direction, tiny_priors, tmp_path):
    """`--kl-schedule auto` takes one Adam step on log(kl_coef) per iteration on -log(kl_coef) * (KL - target):
    Adam's first step moves it by exactly its learning rate, up when the KL is above the target, down below."""
    tiny = CLEVR_TINY if script == CLEVR else METAWORLD_TINY
    prior = tiny_priors["clevr" if script == CLEVR else "reach"]
    args = [*tiny, "--total-timesteps", "64", "--prior", str(prior), "--kl-coef", "0.1"]
    args += ["--kl-schedule", "auto", "--kl-target", str(target), "--kl-coef-lr", "0.3"]
    result = run_script(script, args, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    coefs = [v for _, v in scalars(only_run(tmp_path))["charts/kl_coef"]]
    assert coefs == pytest.approx([0.1, 0.1 * np.exp(direction * 0.3)], rel=1e-5)


def test_linear_schedule_anneals_the_coefficient(tiny_priors, tmp_path):
    args = [*CLEVR_TINY, "--total-timesteps", "128", "--prior", str(tiny_priors["clevr"])]
    args += ["--kl-coef", "0.4", "--kl-schedule", "linear"]
    result = run_script(CLEVR, args, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    coefs = [v for _, v in scalars(only_run(tmp_path))["charts/kl_coef"]]
    assert coefs == pytest.approx([0.4, 0.3, 0.2, 0.1])


@pytest.mark.parametrize("script", [CLEVR, METAWORLD], ids=["clevr", "metaworld"])
def test_kl_coef_zero_is_exactly_the_script_without_lago(script, tmp_path):
    vanilla_source = strip_lago(script.read_text())
    assert (
        "prior"
        not in vanilla_source.split("if __name__")[1].replace("DEFAULT_PRIORS", "").split("push_agent")[0]
    )
    (tmp_path / "vanilla").mkdir()
    vanilla = tmp_path / "vanilla" / script.name  # same name: same exp_name; imports via PYTHONPATH
    vanilla.write_text(vanilla_source)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    tiny = CLEVR_TINY if script == CLEVR else METAWORLD_TINY
    # --prior points nowhere: with --kl-coef 0 it must not even be loaded.
    lago = run_script(
        script, [*tiny, "--total-timesteps", "96", "--kl-coef", "0", "--prior", "/nowhere"], tmp_path / "a"
    )
    plain = run_script(vanilla, [*tiny, "--total-timesteps", "96"], tmp_path / "b")
    assert lago.returncode == 0, lago.stderr[-3000:]
    assert plain.returncode == 0, plain.stderr[-3000:]
    a = torch.load(only_run(tmp_path / "a") / "checkpoint.pt", weights_only=False)
    b = torch.load(only_run(tmp_path / "b") / "checkpoint.pt", weights_only=False)
    assert a["agent"].keys() == b["agent"].keys()
    for name in a["agent"]:
        assert torch.equal(a["agent"][name], b["agent"][name]), name
    la, lb = scalars(only_run(tmp_path / "a")), scalars(only_run(tmp_path / "b"))
    assert not LAGO_TAGS & set(la)
    for tag in ("losses/policy_loss", "losses/value_loss", "losses/entropy"):
        assert [v for _, v in la[tag]] == [v for _, v in lb[tag]], tag


def test_interrupted_run_resumes_from_its_checkpoint(tiny_priors, tmp_path):
    args = [
        *CLEVR_TINY,
        "--total-timesteps",
        "3200",
        "--prior",
        str(tiny_priors["clevr"]),
        "--checkpoint-every",
        "1",
    ]
    env = script_env()  # this checkout on the path, not another installed copy
    proc = subprocess.Popen(
        [sys.executable, str(CLEVR), *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.time() + 240
    while not list(tmp_path.glob("runs/*/checkpoint.pt")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out.decode()[-3000:]
    run = only_run(tmp_path)
    interrupted = torch.load(run / "checkpoint.pt", weights_only=False)
    assert 0 < interrupted["global_step"] < 3200 and b"--resume" in out

    result = run_script(CLEVR, [*args, "--resume", str(run.relative_to(tmp_path))], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert only_run(tmp_path) == run  # same run folder, same TensorBoard log
    final = torch.load(run / "checkpoint.pt", weights_only=False)
    assert final["global_step"] == 3200 and final["iteration"] == 100
    steps = [s for s, _ in scalars(run)["losses/policy_loss"]]
    # One point per iteration: the resumed part continues where the checkpoint stopped, nothing twice.
    assert steps == sorted(set(steps)) and steps[-1] == 3200 and min(steps) == 32


def assert_refused(result, message):
    """A refusal: exit status 2, one line on stderr naming the problem, no traceback, nothing trained."""
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert result.returncode == 2, result.stderr[-3000:]
    assert len(lines) == 1 and message in lines[0], result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "SPS" not in result.stdout


def test_bad_input_fails_before_training_with_one_line_errors(tiny_priors, tmp_path):
    wrong_env = run_script(METAWORLD, [*METAWORLD_TINY, "--prior", str(tiny_priors["clevr"])], tmp_path)
    assert_refused(wrong_env, "Observation size mismatch")
    assert_refused(
        run_script(METAWORLD, ["--env-id", "reach", "--kl-coef", "0"], tmp_path), "Did you mean 'reach-v3'"
    )
    other_task = run_script(
        METAWORLD, ["--env-id", "push-v3", "--prior", str(tiny_priors["reach"])], tmp_path
    )
    assert_refused(other_task, "trained on the tasks ['reach-v3']")
    assert_refused(run_script(CLEVR, ["--prior", str(tmp_path / "missing")], tmp_path), "No prior folder")
    assert_refused(
        run_script(CLEVR, ["--kl-coef", "-1"], tmp_path), "--kl-coef -1.0 is out of range: it must be >= 0"
    )
    assert_refused(run_script(METAWORLD, ["--gamma", "nan"], tmp_path), "--gamma nan is out of range")
    assert_refused(run_script(CLEVR, ["--num-envs", "0"], tmp_path), "--num-envs 0 is out of range")
    small = run_script(METAWORLD, ["--total-timesteps", "100", "--num-steps", "128"], tmp_path)
    assert_refused(small, "--total-timesteps 100 is less than one rollout")
    assert_refused(run_script(CLEVR, ["--resume", "runs/nothing"], tmp_path), "no checkpoint.pt there")
    (tmp_path / "runs" / "broken").mkdir(parents=True)
    (tmp_path / "runs" / "broken" / "checkpoint.pt").write_bytes(b"not a checkpoint")
    assert_refused(run_script(CLEVR, ["--resume", "runs/broken"], tmp_path), "checkpoint.pt is unreadable")


def test_clevr_evaluation_greedy_or_sampled(tmp_path):
    """A uniform policy: its argmax repeats push 0 (rarely a success), sampling plays at random (~32%)."""
    from cleanrl_lago.ppo_lago_clevr import Agent, make_env
    from cleanrl_lago.utils.evals import evaluate_ppo_clevr

    agent = Agent(24, 40)
    torch.nn.init.zeros_(agent.actor[-1].weight)
    torch.nn.init.zeros_(agent.actor[-1].bias)
    path = tmp_path / "agent.cleanrl_model"
    saved = {
        "agent": agent.state_dict(),
        "env_id": "CLEVR-Robot-v0",
        "obs_dim": 24,
        "n_actions": 40,
    }
    torch.save(saved, path)
    common = dict(
        eval_episodes=60, run_name="t", Model=Agent, device="cpu", capture_video=False, split="train"
    )
    (_, greedy), (_, sampled), (_, sampled_again) = (
        evaluate_ppo_clevr(path, make_env, "CLEVR-Robot-v0", seed=7, greedy=g, **common)
        for g in (True, False, False)
    )
    assert len(greedy) == len(sampled) == 60 and sampled == sampled_again  # seeded
    assert np.mean(greedy) < 0.15 and 0.2 < np.mean(sampled) < 0.45
