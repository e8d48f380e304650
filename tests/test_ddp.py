"""The data-parallel variant ppo_lago_metaworld_multigpu.py under torchrun (gloo, CPU): 2 ranks with half
the envs each train the very policy of ppo_lago_metaworld.py with all the envs, only rank 0 writes, a DDP
run resumes a single-process checkpoint exactly as one process does and refuses another number of envs in
all, a signal to any rank stops every rank after rank 0's checkpoint and the resumed run equals the run
left alone (under torchrun, and under plain python with all the envs in one process: checkpoints hold the
envs as one process would), and under plain python the variant is the single-process script weight for
weight. CLEVR-Robot has no data-parallel variant."""

import os
import shutil
import signal
import subprocess
import sys
import time

import gymnasium as gym
import numpy as np
import psutil
import pytest
import torch
from hub_server import LocalHub
from script_helpers import REPO, only_run, run_script, run_torchrun, scalars, script_env

METAWORLD = REPO / "cleanrl_lago" / "ppo_lago_metaworld.py"
MULTIGPU = REPO / "cleanrl_lago" / "ppo_lago_metaworld_multigpu.py"
# One minibatch: each rank's minibatch is then its whole batch, and the ranks' union is the one
# process's batch; the update is the same up to the order of float sums.
ONE_MINIBATCH = ["--num-steps", "16", "--num-minibatches", "1", "--update-epochs", "2", "--seed", "3"]
SHORT_EPISODES = ["--max-episode-steps", "20"]


def assert_same_agent(a, b, atol=1e-5):
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=atol, msg=name)


def vector_env(start, stop, gamma=0.99):
    """The script's envs [start, stop) of all ranks' (reach-v3, 20 steps an episode), as one rank builds them."""
    from cleanrl_lago.ppo_lago_metaworld_multigpu import make_env

    fns = [make_env("reach-v3", g, g, False, "test", gamma, 20) for g in range(start, stop)]
    return gym.vector.SyncVectorEnv(
        fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP, observation_mode="different"
    )


def test_env_states_of_ranks_join_into_one_and_slice_back():
    """2 ranks x 2 envs saved as 1 x 4 (concat_env_states) and 1 x 4 cut into rank 1's share (slice_env_state):
    the restored vector envs step exactly as the ones they were saved from, across autoresets."""
    from test_env_state import assert_same, round_trip

    from cleanrl_lago.utils.env_state import concat_env_states, get_env_state, set_env_state, slice_env_state

    whole, ranks = vector_env(0, 4), [vector_env(0, 2), vector_env(2, 4)]
    whole.reset(seed=0)
    ranks[0].reset(seed=0)
    ranks[1].reset(seed=2)  # the seeds a rank gives its envs: seed + global index
    rng = np.random.default_rng(0)
    for _ in range(27):  # past the first autoreset at step 20
        actions = rng.uniform(-1, 1, (4, 4))
        assert_same(
            whole.step(actions)[0],
            np.concatenate([ranks[0].step(actions[:2])[0], ranks[1].step(actions[2:])[0]]),
        )

    joined, sliced = vector_env(0, 4), vector_env(2, 4)
    joined.reset(seed=100)  # other episodes, then overwritten
    set_env_state(joined, round_trip(concat_env_states([get_env_state(rank) for rank in ranks]))[0])
    set_env_state(sliced, round_trip(slice_env_state(get_env_state(whole), 2, 4))[0])
    assert joined.num_envs == 4 and joined.action_space.shape == (4, 4) and sliced.num_envs == 2
    boundaries = 0
    for t in range(30):
        actions = rng.uniform(-1, 1, (4, 4))
        out_whole, out_rank_1 = whole.step(actions), ranks[1].step(actions[2:])
        assert_same(joined.step(actions), out_whole, f"joined, step {t}")
        assert_same(sliced.step(actions[2:]), out_rank_1, f"sliced, step {t}")
        boundaries += int(np.any(out_whole[3]))
    assert boundaries >= 1
    with pytest.raises(ValueError, match="pick a range inside it"):
        slice_env_state(get_env_state(whole), 2, 5)


def test_two_ranks_train_the_one_process_policy_and_only_rank_0_writes(tiny_priors, tmp_path, monkeypatch):
    args = [*ONE_MINIBATCH, *SHORT_EPISODES, "--total-timesteps", "128"]
    args += ["--save-model", "--eval-episodes", "1", "--prior", str(tiny_priors["reach"])]
    args += ["--kl-coef", "0.1", "--kl-schedule", "auto", "--kl-target", "0.01", "--kl-coef-lr", "0.5"]
    (tmp_path / "one").mkdir()
    (tmp_path / "ddp").mkdir()
    one = run_script(METAWORLD, ["--num-envs", "4", *args], tmp_path / "one")
    assert one.returncode == 0, one.stderr[-3000:]
    upload = ["--upload-model", "--hf-entity", "lago-tests"]
    with LocalHub() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_TOKEN", "hf_local_test_token")
        ddp = run_torchrun(MULTIGPU, ["--num-envs", "2", *args, *upload], tmp_path / "ddp")
    assert ddp.returncode == 0, ddp.stderr[-3000:]

    # Rank 0 alone logs, prints, checkpoints, saves, evaluates and uploads.
    run = only_run(tmp_path / "ddp")
    assert len(list(run.glob("events.out.tfevents.*"))) == 1
    assert {p.name for p in run.iterdir() if not p.name.startswith("events")} == {
        "checkpoint.pt",
        "ppo_lago_metaworld_multigpu.cleanrl_model",
    }
    assert ddp.stdout.count("SPS:") == 2 and ddp.stdout.count("eval: success rate") == 1
    assert len(hub.commits) == 1
    (uploaded,) = hub.repos.values()
    card = uploaded["README.md"].decode()
    assert f"torchrun --nproc_per_node 2 {MULTIGPU} --num-envs 2" in card
    assert uploaded["ppo_lago_metaworld_multigpu.py"] == MULTIGPU.read_bytes()

    # 2 ranks x 2 envs == 1 process x 4 envs: weights (observation statistics included), the
    # auto-tuned coefficient, the RNG streams and the global step count.
    saved_one = torch.load(only_run(tmp_path / "one") / "ppo_lago_metaworld.cleanrl_model", weights_only=True)
    saved_ddp = torch.load(run / "ppo_lago_metaworld_multigpu.cleanrl_model", weights_only=True)
    assert_same_agent(saved_one["agent"], saved_ddp["agent"])
    assert saved_ddp["tasks"] == ["reach-v3"] * 4 and saved_ddp["args"]["global_batch_size"] == 64
    ckpt_one = torch.load(only_run(tmp_path / "one") / "checkpoint.pt", weights_only=False)
    ckpt_ddp = torch.load(run / "checkpoint.pt", weights_only=False)
    assert abs(ckpt_one["log_kl_coef"] - ckpt_ddp["log_kl_coef"]) < 1e-5
    assert torch.equal(ckpt_one["rng"]["torch"], ckpt_ddp["rng"]["torch"])
    logged_one, logged_ddp = scalars(only_run(tmp_path / "one")), scalars(run)
    assert [s for s, _ in logged_ddp["losses/policy_loss"]] == [64, 128]
    assert [s for s, _ in logged_one["charts/kl_coef"]] == [s for s, _ in logged_ddp["charts/kl_coef"]]


def test_under_plain_python_the_variant_trains_the_single_process_weights(tiny_priors, tmp_path):
    # Several minibatches and a linear schedule: world size 1 leaves no collective and no reordering,
    # and the rollout's mean + std * noise draws the numbers Normal.sample draws.
    args = ["--num-envs", "2", "--num-steps", "32", "--num-minibatches", "4", "--update-epochs", "2"]
    args += [*SHORT_EPISODES, "--total-timesteps", "128", "--seed", "5", "--prior", str(tiny_priors["reach"])]
    args += ["--kl-coef", "0.2", "--kl-schedule", "linear"]
    (tmp_path / "one").mkdir()
    (tmp_path / "variant").mkdir()
    one = run_script(METAWORLD, args, tmp_path / "one")
    variant = run_script(MULTIGPU, args, tmp_path / "variant")
    assert one.returncode == 0, one.stderr[-3000:]
    assert variant.returncode == 0, variant.stderr[-3000:]
    ckpt_one = torch.load(only_run(tmp_path / "one") / "checkpoint.pt", weights_only=False)
    ckpt_variant = torch.load(only_run(tmp_path / "variant") / "checkpoint.pt", weights_only=False)
    assert_same_agent(ckpt_one["agent"], ckpt_variant["agent"], atol=0)
    assert torch.equal(ckpt_one["rng"]["torch"], ckpt_variant["rng"]["torch"])
    assert ckpt_variant["args"]["world_size"] == 1
    assert ckpt_variant["global_step"] == ckpt_one["global_step"] == 128


def test_two_ranks_resume_a_checkpoint_as_one_process_does_and_refuse_other_env_counts(tiny_priors, tmp_path):
    args = [*ONE_MINIBATCH, *SHORT_EPISODES, "--prior", str(tiny_priors["reach"]), "--kl-coef", "0.5"]
    (tmp_path / "one").mkdir()
    first = run_script(METAWORLD, [*args, "--num-envs", "4", "--total-timesteps", "64"], tmp_path / "one")
    assert first.returncode == 0, first.stderr[-3000:]
    run = only_run(tmp_path / "one")
    shutil.copytree(run, tmp_path / "ddp" / "runs" / run.name)
    resume = ["--resume", f"runs/{run.name}", "--total-timesteps", "192"]

    # 2 ranks x 1 env: 2 envs in all, not the run's 4; refused before any rank trains.
    refused = run_torchrun(MULTIGPU, [*args, "--num-envs", "1", *resume], tmp_path / "ddp")
    assert refused.returncode != 0
    assert "the run stepped 4 envs in all (processes x --num-envs), not 2" in refused.stderr
    assert "SPS:" not in refused.stdout

    one = run_script(METAWORLD, [*args, "--num-envs", "4", *resume], tmp_path / "one")
    ddp = run_torchrun(MULTIGPU, [*args, "--num-envs", "2", *resume], tmp_path / "ddp")
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
    assert torch.equal(ckpt_one["rng"]["torch"], ckpt_ddp["rng"]["torch"])


def rank_process(torchrun: subprocess.Popen, rank: int) -> psutil.Process | None:
    """The process torchrun started for ``rank``, once it runs."""
    for child in psutil.Process(torchrun.pid).children(recursive=True):
        try:
            if child.environ().get("RANK") == str(rank) and "TORCHELASTIC_RUN_ID" in child.environ():
                return child
        except psutil.Error:  # it ended meanwhile
            continue
    return None


def test_sigterm_to_one_rank_stops_every_rank_and_the_resumed_run_equals_the_run_left_alone(
    tiny_priors, tmp_path
):
    """Rank 0 checkpoints the iteration in which rank 1 got SIGTERM, every rank stops; resumed, by 2 ranks or by
    one process with both envs, the run ends where the same run left alone ends (episodes cross the stop: the
    envs, episode bookkeeping and rollout carry of both ranks are in the checkpoint)."""
    # No learning-rate annealing: the stopped run may then be resumed with a shorter --total-timesteps.
    args = [*ONE_MINIBATCH, *SHORT_EPISODES, "--no-anneal-lr", "--checkpoint-every", "1"]
    args += ["--prior", str(tiny_priors["reach"]), "--kl-coef", "0.2", "--kl-schedule", "auto"]
    (tmp_path / "ddp").mkdir()
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    proc = subprocess.Popen(
        [*launcher, str(MULTIGPU), "--num-envs", "1", *args, "--total-timesteps", "32000"],
        cwd=tmp_path / "ddp",
        env=script_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # so that a failure below can stop torchrun and both ranks at once
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None and not list(tmp_path.glob("ddp/runs/*/*.pt")):
            time.sleep(0.2)
        rank_1 = rank_process(proc, 1)
        assert rank_1 is not None, "rank 1 is not running"
        rank_1.send_signal(signal.SIGTERM)  # rank 1 alone: rank 0 learns of it at the end of the iteration
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert b"interrupted: checkpoint at iteration" in out, (out + err).decode()[-3000:]
    assert proc.returncode != 0  # torchrun reports the ranks' exit status 130
    run = only_run(tmp_path / "ddp")
    checkpoint = torch.load(run / "checkpoint.pt", weights_only=False)
    stopped = checkpoint["iteration"]
    assert 0 < checkpoint["global_step"] == 32 * stopped < 32000
    assert f"iteration {stopped} " in out.decode()
    assert len(checkpoint["envs"]["envs"]) == 2 and checkpoint["carry"][1].shape == (
        2,
        39,
    )  # both ranks' envs

    # Resumed to 2 iterations past the stop: by 2 ranks, and by one process with both envs.
    shutil.copytree(run, tmp_path / "one" / "runs" / run.name)
    total = ["--total-timesteps", str(32 * (stopped + 2))]
    resume = ["--resume", f"runs/{run.name}", *total]
    resumed = run_torchrun(MULTIGPU, ["--num-envs", "1", *args, *resume], tmp_path / "ddp")
    one = run_script(MULTIGPU, ["--num-envs", "2", *args, *resume], tmp_path / "one")
    (tmp_path / "alone").mkdir()
    alone = run_torchrun(MULTIGPU, ["--num-envs", "1", *args, *total], tmp_path / "alone")
    for result in (resumed, one, alone):
        assert result.returncode == 0, result.stderr[-3000:]

    ckpt_alone = torch.load(only_run(tmp_path / "alone") / "checkpoint.pt", weights_only=False)
    ckpt_resumed = torch.load(run / "checkpoint.pt", weights_only=False)
    ckpt_one = torch.load(only_run(tmp_path / "one") / "checkpoint.pt", weights_only=False)
    assert ckpt_alone["iteration"] == ckpt_resumed["iteration"] == ckpt_one["iteration"] == stopped + 2
    assert_same_agent(ckpt_alone["agent"], ckpt_resumed["agent"], atol=0)
    assert ckpt_alone["log_kl_coef"].item() == ckpt_resumed["log_kl_coef"].item()
    assert_same_agent(ckpt_alone["agent"], ckpt_one["agent"])
    assert abs(ckpt_alone["log_kl_coef"] - ckpt_one["log_kl_coef"]) < 1e-5
    logged_alone, logged_resumed = scalars(only_run(tmp_path / "alone")), scalars(run)
    for tag in ("charts/episodic_return", "losses/value_loss", "losses/prior_kl", "charts/kl_coef"):
        assert logged_alone[tag] == logged_resumed[tag], tag
