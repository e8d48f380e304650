"""Publishing a trained agent (``--save-model --upload-model``) against a local stand-in for the Hub
(tests/hub_server.py): each RL script runs as a subprocess with ``HF_ENDPOINT`` pointing at it, and the
test checks exactly what arrived: the repo id, the saved model's and the script's bytes, the TensorBoard
log, the replay video and the model card, written out here in full, naming the prior (or vanilla) and
the exact command."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hub_server import LocalHub
from script_helpers import REPO, only_run, scalars, script_env

CLEVR = REPO / "cleanrl_lago" / "ppo_lago_clevr.py"
METAWORLD = REPO / "cleanrl_lago" / "ppo_lago_metaworld.py"
SAC = REPO / "cleanrl_lago" / "sac_lago.py"
UPLOAD = ["--save-model", "--upload-model", "--hf-entity", "test-org"]
TOKEN = "hf_local_test_token"


def hub_env(hub: LocalHub, home: Path) -> dict[str, str]:
    """The scripts' environment with the Hub client pointed at ``hub`` and a token of its own (never
    the user's: ``HF_HOME`` is a fresh folder)."""
    return {
        **script_env(),
        "HF_ENDPOINT": hub.url,
        "HF_TOKEN": TOKEN,
        "HF_HOME": str(home),
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }


def run_and_upload(script: Path, args: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess, LocalHub]:
    with LocalHub() as hub:
        result = subprocess.run(
            [sys.executable, str(script), *args],
            cwd=cwd,
            env=hub_env(hub, cwd / "hf-home"),
            capture_output=True,
            text=True,
            timeout=600,
        )
    return result, hub


def expected_card(algorithm: str, env_id: str, guidance: str, metrics: dict[str, float], command: str) -> str:
    """The model card, spelled out: front matter the Hub accepts, the prior, the metrics, the command."""
    rows = "".join(f"| {name} | {value} |\n" for name, value in metrics.items())
    metrics_section = f"## Evaluation\n\n| metric | value |\n| --- | --- |\n{rows}\n" if metrics else ""
    return (
        "---\n"
        "library_name: cleanrl-lago\n"
        "tags:\n"
        '- "reinforcement-learning"\n'
        '- "lago"\n'
        '- "cleanrl-lago"\n'
        '- "custom-implementation"\n'
        f'- "{env_id}"\n'
        "---\n"
        "\n"
        f"# {algorithm} on {env_id}\n"
        "\n"
        f"A policy trained by cleanrl-lago's `{algorithm}`, {guidance}. The file `{algorithm}.cleanrl_model` "
        "is a `torch.save` dict with the agent's state dict and everything needed to rebuild it (spaces, "
        "observation normalisation statistics, arguments); load it with `torch.load(path, weights_only=True)`.\n"
        "\n"
        f"{metrics_section}"
        "## Command\n"
        "\n"
        "```bash\n"
        f"{command}\n"
        "```\n"
    )


def assert_agent_published(result, hub, cwd, script, args, env_id, prior, kl_coef, metric_tags, video=None):
    """Everything the Hub received, byte for byte; returns the uploaded files."""
    assert result.returncode == 0, result.stderr[-3000:]
    assert hub.unexpected == []
    algorithm = script.stem
    repo_id = f"test-org/{env_id}-{algorithm}-seed1"
    assert list(hub.repos) == [repo_id]
    ((created),) = hub.created
    assert (created["organization"], created["name"]) == ("test-org", f"{env_id}-{algorithm}-seed1")
    assert [c["summary"] for c in hub.commits] == [f"Upload {algorithm} agent"]

    run = only_run(cwd)
    (events,) = run.glob("events.out.tfevents.*")
    uploaded = hub.repos[repo_id]
    expected_files = {f"{algorithm}.cleanrl_model", script.name, events.name, "README.md"}
    assert set(uploaded) == expected_files | ({"replay.mp4"} if video else set())
    assert uploaded[f"{algorithm}.cleanrl_model"] == (run / f"{algorithm}.cleanrl_model").read_bytes()
    assert uploaded[script.name] == script.read_bytes()
    if video:
        assert uploaded["replay.mp4"] == video.read_bytes()

    # The script logs nothing after the upload: the uploaded log holds every scalar of the local one
    # (training curves and evaluation), and is the local file as it was then.
    assert events.read_bytes().startswith(uploaded[events.name])
    (cwd / "uploaded").mkdir()
    (cwd / "uploaded" / events.name).write_bytes(uploaded[events.name])
    local, received = scalars(run), scalars(cwd / "uploaded")
    assert {*metric_tags, "losses/value_loss" if "ppo" in algorithm else "losses/qf_loss"} <= set(local)
    assert received == local

    # Metrics: the evaluation's success rates as logged, rounded to 4 digits.
    metrics = {tag: round(local[tag][-1][1], 4) for tag in metric_tags}
    guidance = (
        f"guided by the LaGO prior `{prior}` with `kl_coef = {kl_coef}`"
        if prior
        else "without a prior (vanilla)"
    )
    command = "python " + " ".join([str(script), *args])
    card = expected_card(algorithm, env_id, guidance, metrics, command)
    assert uploaded["README.md"].decode() == card
    assert hub.validated_cards == [card]  # the Hub checked the front matter and accepted it
    return uploaded


@pytest.mark.slow
def test_clevr_agent_upload_with_prior_and_replay_video(tiny_priors, tmp_path):
    args = ["--num-envs", "2", "--num-steps", "16", "--num-minibatches", "2", "--update-epochs", "1"]
    args += ["--total-timesteps", "32", "--prior", str(tiny_priors["clevr"]), "--kl-coef", "0.5"]
    args += ["--eval-episodes", "2", "--capture-video", *UPLOAD]
    result, hub = run_and_upload(CLEVR, args, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run = only_run(tmp_path)
    # The replay is the newest video of the evaluation on the training phrasings.
    train_videos = sorted(
        (tmp_path / "videos" / f"{run.name}-eval-train").glob("*.mp4"), key=os.path.getmtime
    )
    assert train_videos
    assert_agent_published(
        result,
        hub,
        tmp_path,
        CLEVR,
        args,
        "CLEVR-Robot-v0",
        str(tiny_priors["clevr"]),
        0.5,
        ["eval/success_rate_train", "eval/success_rate_heldout"],
        video=train_videos[-1],
    )


@pytest.mark.slow
def test_metaworld_vanilla_agent_upload(tmp_path):
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
    args += [
        "--total-timesteps",
        "32",
        "--kl-coef",
        "0",
        "--prior",
        "/nowhere",
        "--eval-episodes",
        "1",
        *UPLOAD,
    ]
    result, hub = run_and_upload(METAWORLD, args, tmp_path)
    assert_agent_published(
        result, hub, tmp_path, METAWORLD, args, "reach-v3", None, 0.0, ["eval/success_rate"]
    )


@pytest.mark.slow
def test_sac_agent_upload_with_prior(tiny_priors, tmp_path):
    args = ["--learning-starts", "50", "--total-timesteps", "110", "--batch-size", "16"]
    args += ["--max-episode-steps", "20", "--buffer-size", "1000", "--eval-episodes", "1"]
    args += ["--prior", str(tiny_priors["reach"]), "--kl-coef", "0.2", "--prior-batch-size", "16", *UPLOAD]
    result, hub = run_and_upload(SAC, args, tmp_path)
    assert_agent_published(
        result, hub, tmp_path, SAC, args, "reach-v3", str(tiny_priors["reach"]), 0.2, ["eval/success_rate"]
    )


# ----- push_agent_to_hub itself --------------------------------------------------------------------
PUSH = """
import json, sys
from types import SimpleNamespace
from cleanrl_lago.utils.huggingface import push_agent_to_hub
spec = json.loads(sys.argv[1])
url = push_agent_to_hub(SimpleNamespace(**spec.pop("args")), **spec)
print(url)
"""


def push(spec: dict, cwd: Path) -> tuple[subprocess.CompletedProcess, LocalHub]:
    with LocalHub() as hub:
        result = subprocess.run(
            [sys.executable, "-c", PUSH, json.dumps(spec)],
            cwd=cwd,
            env=hub_env(hub, cwd / "hf-home"),
            capture_output=True,
            text=True,
            timeout=120,
        )
    return result, hub


@pytest.fixture
def agent_files(tmp_path):
    """A model file, a script, a run folder with two event files and an unrelated file, and two videos
    of which the second is the newer."""
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "agent.cleanrl_model").write_bytes(bytes(range(256)) * 3)
    (tmp_path / "run" / "events.out.tfevents.1.host").write_bytes(b"first log")
    (tmp_path / "run" / "events.out.tfevents.2.host").write_bytes(b"second log")
    (tmp_path / "run" / "checkpoint.pt").write_bytes(b"not uploaded")
    (tmp_path / "script.py").write_text("print('the script')\n")
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "rl-video-episode-9.mp4").write_bytes(b"newest video")
    (tmp_path / "videos" / "rl-video-episode-0.mp4").write_bytes(b"older video")
    os.utime(tmp_path / "videos" / "rl-video-episode-0.mp4", (1_000_000, 1_000_000))
    os.utime(tmp_path / "videos" / "rl-video-episode-9.mp4", (2_000_000, 2_000_000))
    return tmp_path


def test_push_agent_to_hub_uploads_the_agent_and_a_card_naming_the_prior(agent_files):
    spec = {
        "args": {"exp_name": "sac_lago", "env_id": "MT10", "kl_coef": 0.25},
        "repo_id": "test-org/MT10-sac_lago-seed3",
        "model_path": str(agent_files / "run" / "agent.cleanrl_model"),
        "script_path": str(agent_files / "script.py"),
        "run_dir": str(agent_files / "run"),
        "video_folder": str(agent_files / "videos"),
        "metrics": {"eval/success_rate": 0.35, "eval/episodic_return": 812.5},
        "prior": "org/metaworld-prior",
        "command": "python cleanrl_lago/sac_lago.py --env-id MT10 --num-envs 10",
        "private": True,
    }
    result, hub = push(spec, agent_files)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == f"{hub.url}/test-org/MT10-sac_lago-seed3"
    assert hub.unexpected == [] and [c["visibility"] for c in hub.created] == ["private"]
    uploaded = hub.repos["test-org/MT10-sac_lago-seed3"]
    assert uploaded == {
        "agent.cleanrl_model": bytes(range(256)) * 3,
        "script.py": b"print('the script')\n",
        "events.out.tfevents.1.host": b"first log",
        "events.out.tfevents.2.host": b"second log",
        "replay.mp4": b"newest video",  # the newest by modification time, not by name
        "README.md": uploaded["README.md"],
    }
    card = expected_card(
        "sac_lago",
        "MT10",
        "guided by the LaGO prior `org/metaworld-prior` with `kl_coef = 0.25`",
        {"eval/success_rate": 0.35, "eval/episodic_return": 812.5},
        "python cleanrl_lago/sac_lago.py --env-id MT10 --num-envs 10",
    )
    assert uploaded["README.md"].decode() == card
    assert [c["summary"] for c in hub.commits] == ["Upload sac_lago agent"]
    assert not any(agent_files.glob("lago-upload-*"))


def test_push_agent_to_hub_vanilla_without_video_or_metrics_records_this_command(agent_files):
    """No prior: the card says vanilla; no video folder, no metrics: neither appears; no command given:
    the card holds ``python`` and the process's own arguments."""
    code = textwrap.dedent(
        f"""
        import sys
        from types import SimpleNamespace
        from cleanrl_lago.utils.huggingface import push_agent_to_hub
        sys.argv = ["cleanrl_lago/ppo_lago_clevr.py", "--kl-coef", "0", "--seed", "7"]
        args = SimpleNamespace(exp_name="ppo_lago_clevr", env_id="CLEVR-Robot-v0", kl_coef=0.0)
        push_agent_to_hub(args, "test-org/CLEVR-Robot-v0-ppo_lago_clevr-seed7", {str(agent_files / "run" / "agent.cleanrl_model")!r},
                          {str(agent_files / "script.py")!r}, {str(agent_files / "run")!r})
        """
    )
    with LocalHub() as hub:
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=agent_files,
            env=hub_env(hub, agent_files / "hf-home"),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 0, result.stderr[-3000:]
    assert hub.unexpected == [] and [c["visibility"] for c in hub.created] == ["public"]
    assert list(hub.repos) == ["test-org/CLEVR-Robot-v0-ppo_lago_clevr-seed7"]
    uploaded = hub.repos["test-org/CLEVR-Robot-v0-ppo_lago_clevr-seed7"]
    assert set(uploaded) == {
        "agent.cleanrl_model",
        "script.py",
        "events.out.tfevents.1.host",
        "events.out.tfevents.2.host",
        "README.md",
    }
    assert uploaded["README.md"].decode() == expected_card(
        "ppo_lago_clevr",
        "CLEVR-Robot-v0",
        "without a prior (vanilla)",
        {},
        "python cleanrl_lago/ppo_lago_clevr.py --kl-coef 0 --seed 7",
    )
