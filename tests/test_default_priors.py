"""The priors that ship with cleanrl-lago, on the real default LM (SmolLM2-135M-Instruct), and the
README's main command with a tiny budget."""

import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from script_helpers import script_env

import cleanrl_lago.envs  # noqa: F401
from cleanrl_lago.envs.clevr_robot import all_instructions
from cleanrl_lago.envs.metaworld_tasks import MT10_TASKS, task_instructions
from priors import DEFAULT_LM, DEFAULT_PRIORS, PriorConfig, load_prior, shipped_priors

REPO = Path(__file__).resolve().parents[1]


def test_every_default_prior_ships_with_metrics_and_command():
    assert set(DEFAULT_PRIORS.values()) <= set(shipped_priors())
    for name in DEFAULT_PRIORS.values():
        folder = REPO / "priors" / "pretrained" / name
        config = json.loads((folder / "config.json").read_text())
        assert config["format_version"] == 2
        assert config["kind"] == "lm" and config["lm_name"] == DEFAULT_LM
        provenance, metrics = config["provenance"], config["provenance"]["metrics"]
        assert {"val_nll", "policy_success_train", "policy_success_heldout"} <= set(metrics)
        assert provenance["dataset"].startswith("cleanrl-lago/") and provenance["dataset"].endswith(
            "/expert-v0"
        )
        # Recorded as run (the commands' modules moved later; the notes say so).
        assert provenance["command"].startswith("python -m priors.train")
        assert any("python -m cleanrl_lago.train_prior" in note for note in provenance["notes"])
        # Trained with the LM in fp32, then converted to run it in bf16 (python -m priors.convert),
        # with the metrics re-measured at bf16 and the fp32 ones kept.
        assert config["quantization"] == "bf16" and metrics["source_quantization"] == "none"
        assert (
            "python -m priors.convert" in provenance["command"]
            and "--quantization bf16" in provenance["command"]
        )
        assert abs(metrics["val_nll"] - metrics["source_val_nll"]) < 0.1
        # Only the trainable parts ship: a few MB, never the LM.
        assert (folder / "model.safetensors").stat().st_size < 20 * 2**20


def test_clevr_prior_reads_the_instruction():
    prior = load_prior(DEFAULT_PRIORS["CLEVR-Robot-v0"], env_id="CLEVR-Robot-v0")
    env = gym.make("CLEVR-Robot-v0")
    obs, _ = env.reset(seed=0)
    instructions = all_instructions("train")[:3] + all_instructions("heldout")[:3]
    with torch.no_grad():
        logits = prior(np.repeat(obs[None], len(instructions), 0), instructions)
    assert logits.shape == (6, 40) and torch.isfinite(logits).all()
    # The prior sees only the ball positions: the goal reaches it through the language alone.
    assert prior.config.obs_dim == 10
    assert (logits[0] - logits[3]).abs().max() > 1e-3


def test_metaworld_prior_covers_mt10():
    prior = load_prior(DEFAULT_PRIORS["Meta-World/MT10"], tasks=list(MT10_TASKS))
    assert prior.config.env_id == "Meta-World/" + ",".join(MT10_TASKS) and prior.config.tasks == list(
        MT10_TASKS
    )
    obs = np.zeros((2, 39))
    with torch.no_grad():
        params = prior(obs, [task_instructions("reach-v3")[0], task_instructions("push-v3")[0]])
    assert params.shape == (2, 8) and torch.isfinite(params).all()


def test_readme_main_command_runs(tmp_path):
    budget = [
        "--total-timesteps",
        "128",
        "--num-steps",
        "64",
        "--num-minibatches",
        "2",
        "--update-epochs",
        "1",
    ]
    result = subprocess.run(
        [sys.executable, str(REPO / "cleanrl_lago" / "ppo_lago_metaworld.py"), "--kl-coef", "0.05", *budget],
        cwd=tmp_path,
        env=script_env(threads=None),  # this checkout on the path, not another installed copy
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("SPS:") == 2


def test_every_shipped_and_comparison_prior_loads_without_warnings():
    import warnings

    folders = sorted((REPO / "priors" / "pretrained").iterdir()) + sorted(
        (REPO / "benchmark" / "comparison_priors").iterdir()
    )
    assert len(folders) == 8
    for folder in folders:
        config = json.loads((folder / "config.json").read_text())
        assert config["format_version"] == 2 and set(config["provenance"]) == {
            "command",
            "metrics",
            "dataset",
            "instruction_split",
            "notes",
        }
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no unknown field
            assert PriorConfig.from_dict(config).to_dict() == config
        if config["kind"] in ("mlp", "gru"):  # the shipped LM priors load in the tests above
            assert load_prior(folder).config.provenance.metrics == config["provenance"]["metrics"]
