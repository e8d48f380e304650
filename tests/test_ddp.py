"""Data-parallel training under torchrun (gloo, CPU): 2 ranks with half the envs each train the very
policy of one process with all the envs, only rank 0 writes, a DDP run resumes a checkpoint as one
process does, and SIGTERM stops every rank after rank 0's checkpoint."""

import os
import shutil
import signal
import subprocess
import sys
import time

import torch
from script_helpers import REPO, only_run, run_script, run_torchrun, scalars, script_env

CLEVR = REPO / "cleanrl_lago" / "ppo_lago_clevr.py"
METAWORLD = REPO / "cleanrl_lago" / "ppo_lago_metaworld.py"
# One minibatch: each rank's minibatch is then its whole batch, and the ranks' union is the one
# process's batch; the update is the same up to the order of float sums.
ONE_MINIBATCH = ["--num-steps", "16", "--num-minibatches", "1", "--update-epochs", "2", "--seed", "3"]


def assert_same_agent(a, b):
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-5, msg=name)


def test_metaworld_two_ranks_train_the_one_process_policy_and_only_rank_0_writes(tiny_priors, tmp_path):
    args = [*ONE_MINIBATCH, "--max-episode-steps", "20", "--total-timesteps", "128"]
    args += ["--prior", str(tiny_priors["reach"]), "--kl-coef", "0.1", "--kl-schedule", "auto"]
    args += ["--kl-target", "0.01", "--kl-coef-lr", "0.5", "--save-model", "--eval-episodes", "1"]
    (tmp_path / "one").mkdir()
    (tmp_path / "ddp").mkdir()
    one = run_script(METAWORLD, ["--num-envs", "4", *args], tmp_path / "one")
    ddp = run_torchrun(METAWORLD, ["--num-envs", "2", *args], tmp_path / "ddp")
    assert one.returncode == 0, one.stderr[-3000:]
    assert ddp.returncode == 0, ddp.stderr[-3000:]

    # Rank 0 alone logs, prints, checkpoints, saves and evaluates.
    run = only_run(tmp_path / "ddp")
    assert len(list(run.glob("events.out.tfevents.*"))) == 1
    assert {p.name for p in run.iterdir() if not p.name.startswith("events")} == {
        "checkpoint.pt",
        "ppo_lago_metaworld.cleanrl_model",
    }
    assert ddp.stdout.count("SPS:") == 2 and ddp.stdout.count("eval: success rate") == 1

    # 2 ranks x 2 envs == 1 process x 4 envs: weights (observation statistics included), the
    # auto-tuned coefficient, the RNG stream and the global step count.
    saved_one = torch.load(only_run(tmp_path / "one") / "ppo_lago_metaworld.cleanrl_model", weights_only=True)
    saved_ddp = torch.load(run / "ppo_lago_metaworld.cleanrl_model", weights_only=True)
    assert_same_agent(saved_one["agent"], saved_ddp["agent"])
    assert saved_ddp["tasks"] == ["reach-v3"] * 4 and saved_ddp["args"]["global_batch_size"] == 64
    ckpt_one = torch.load(only_run(tmp_path / "one") / "checkpoint.pt", weights_only=False)
    ckpt_ddp = torch.load(run / "checkpoint.pt", weights_only=False)
    assert abs(ckpt_one["log_kl_coef"] - ckpt_ddp["log_kl_coef"]) < 1e-5
    assert torch.equal(ckpt_one["torch_rng"], ckpt_ddp["torch_rng"])
    logged_one, logged_ddp = scalars(only_run(tmp_path / "one")), scalars(run)
    assert [s for s, _ in logged_ddp["losses/policy_loss"]] == [64, 128]
    assert [s for s, _ in logged_one["charts/kl_coef"]] == [s for s, _ in logged_ddp["charts/kl_coef"]]


def test_clevr_two_ranks_resume_a_checkpoint_as_one_process_does(tiny_priors, tmp_path):
    args = [*ONE_MINIBATCH, "--prior", str(tiny_priors["clevr"]), "--kl-coef", "0.5"]
    (tmp_path / "one").mkdir()
    first = run_script(CLEVR, [*args, "--num-envs", "4", "--total-timesteps", "64"], tmp_path / "one")
    assert first.returncode == 0, first.stderr[-3000:]
    run = only_run(tmp_path / "one")
    shutil.copytree(run, tmp_path / "ddp" / "runs" / run.name)
    resume = ["--resume", f"runs/{run.name}", "--total-timesteps", "192"]
    one = run_script(CLEVR, [*args, "--num-envs", "4", *resume], tmp_path / "one")
    ddp = run_torchrun(CLEVR, [*args, "--num-envs", "2", *resume], tmp_path / "ddp")
    assert one.returncode == 0, one.stderr[-3000:]
    assert ddp.returncode == 0, ddp.stderr[-3000:]

    ddp_run = only_run(tmp_path / "ddp")
    assert len(list(ddp_run.glob("events.out.tfevents.*"))) == 2  # the first run's and rank 0's
    assert ddp.stdout.count("SPS:") == 2
    ckpt_one = torch.load(run / "checkpoint.pt", weights_only=False)
    ckpt_ddp = torch.load(ddp_run / "checkpoint.pt", weights_only=False)
    assert ckpt_one["iteration"] == ckpt_ddp["iteration"] == 3
    assert ckpt_one["global_step"] == ckpt_ddp["global_step"] == 192
    assert_same_agent(ckpt_one["agent"], ckpt_ddp["agent"])
    assert torch.equal(ckpt_one["torch_rng"], ckpt_ddp["torch_rng"])


def test_sigterm_checkpoints_on_rank_0_and_stops_every_rank(tiny_priors, tmp_path):
    args = ["--num-envs", "1", "--num-steps", "16", "--num-minibatches", "2", "--update-epochs", "2"]
    args += ["--total-timesteps", "32000", "--prior", str(tiny_priors["clevr"]), "--checkpoint-every", "1"]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    proc = subprocess.Popen(
        [*launcher, str(CLEVR), *args],
        cwd=tmp_path,
        env=script_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # so that a failure below can stop torchrun and both ranks at once
    )
    try:
        deadline = time.time() + 120
        while (
            not list(tmp_path.glob("runs/*/checkpoint.pt")) and time.time() < deadline and proc.poll() is None
        ):
            time.sleep(0.2)
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)  # as a scheduler does: torchrun passes it on to every rank
        out, err = proc.communicate(timeout=25)  # torchrun would SIGKILL the ranks after 30 s
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert b"interrupted: checkpoint of iteration" in out, (out + err).decode()[-3000:]
    checkpoint = torch.load(only_run(tmp_path) / "checkpoint.pt", weights_only=False)
    assert 0 < checkpoint["global_step"] < 32000 and checkpoint["global_step"] % 32 == 0
