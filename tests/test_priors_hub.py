"""Hub loading and publishing without network and without mocking the Hub client.

huggingface_hub reads ``HF_HUB_OFFLINE``, ``HF_HUB_CACHE`` and ``HF_ENDPOINT`` when it is imported,
so each scenario runs in a fresh Python process with those variables set, exactly as a user would.
"""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from hub_server import LocalHub
from priors_helpers import INSTRUCTIONS, make_tiny_lm, observation_space, random_obs

from priors import build_prior, save_prior

REPO_ROOT = Path(__file__).resolve().parents[1]
REPO_ID = "lago-tests/toy-prior"


@pytest.fixture(scope="module")
def saved_prior(tmp_path_factory):
    """A saved LM prior on a tiny local LM, and its expected output on fixed inputs."""
    root = tmp_path_factory.mktemp("hub")
    lm = make_tiny_lm(root / "tiny-lm")
    prior = build_prior(
        observation_space=observation_space(),
        action_space=gym.spaces.Discrete(5),
        lm=str(lm),
        env_id="Toy-v0",
    )
    obs = random_obs(20)
    prior.set_normalization(obs.mean(0), obs.std(0))
    path = save_prior(prior, root / "prior", metrics={"val_nll": 0.7})
    with torch.no_grad():
        expected = prior(random_obs(4, seed=3), INSTRUCTIONS).numpy()
    return path, expected, root


def run_python(code: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "HF_HUB_DISABLE_TELEMETRY": "1", **env}
    full_env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "tests")])
    return subprocess.run(
        [sys.executable, "-c", code],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO_ROOT,
    )


def fill_hub_cache(cache: Path, repo_id: str, folder: Path) -> str:
    """Lay ``folder`` out in ``cache`` as huggingface_hub stores a downloaded snapshot of ``repo_id``."""
    repo_dir = cache / f"models--{repo_id.replace('/', '--')}"
    commit = hashlib.sha1(repo_id.encode()).hexdigest()
    snapshot = repo_dir / "snapshots" / commit
    (repo_dir / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    for file in folder.iterdir():
        data = file.read_bytes()
        blob = hashlib.sha256(data).hexdigest()
        (repo_dir / "blobs" / blob).write_bytes(data)
        (snapshot / file.name).symlink_to(Path("..") / ".." / "blobs" / blob)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(commit)
    return commit


LOAD_AND_PRINT = f"""
import json, torch
from priors import load_prior
from priors_helpers import INSTRUCTIONS, random_obs
prior = load_prior({REPO_ID!r}, env_id="Toy-v0")
with torch.no_grad():
    print(json.dumps(prior(random_obs(4, seed=3), INSTRUCTIONS).tolist()))
"""


def test_load_from_hub_cache_offline(saved_prior, tmp_path):
    path, expected, root = saved_prior
    fill_hub_cache(tmp_path / "hub-cache", REPO_ID, path)
    env = {
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_CACHE": str(tmp_path / "hub-cache"),
        "CLEANRL_LAGO_CACHE": str(root / "lago-cache"),
    }
    result = run_python(LOAD_AND_PRINT, env)
    assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_allclose(
        np.array(json.loads(result.stdout.strip().splitlines()[-1])), expected, atol=1e-6
    )

    # The LM itself can come from the Hub cache too, by repo id (lm= overrides the recorded folder).
    fill_hub_cache(tmp_path / "hub-cache", "lago-tests/tiny-lm", root / "tiny-lm")
    result = run_python(
        LOAD_AND_PRINT.replace('env_id="Toy-v0"', 'env_id="Toy-v0", lm="lago-tests/tiny-lm"'), env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_allclose(
        np.array(json.loads(result.stdout.strip().splitlines()[-1])), expected, atol=1e-6
    )

    # A repo that is not in the cache: a clear refusal, not a network error.
    result = run_python(LOAD_AND_PRINT.replace(REPO_ID, "lago-tests/missing"), env)
    assert result.returncode != 0
    assert (
        "PriorLoadError" in result.stderr
        and "neither a local folder nor in the Hugging Face cache" in result.stderr
    )


def test_push_to_local_hub_then_load_back(saved_prior, tmp_path):
    path, expected, root = saved_prior
    push = f"""
from priors import push_prior_to_hub
print(push_prior_to_hub({str(path)!r}, {REPO_ID!r}, token="hf_local_test_token", private=True))
"""
    with LocalHub() as hub:
        env = {"HF_ENDPOINT": hub.url, "HF_HUB_CACHE": str(tmp_path / "hub-cache")}
        result = run_python(push, env, timeout=90)
    assert result.returncode == 0, result.stderr[-3000:]
    assert hub.unexpected == []
    assert hub.created and hub.created[0]["visibility"] == "private"
    uploaded = hub.repos[REPO_ID]
    assert sorted(uploaded) == ["README.md", "config.json", "model.safetensors"]
    for name, data in uploaded.items():
        assert data == (path / name).read_bytes(), name
    assert hub.commits[0]["summary"] == "Upload LaGO prior"
    assert hub.validated_cards and set(hub.validated_cards) == {(path / "README.md").read_text()}

    # What arrived is a loadable prior: put it in a Hub cache and load it offline.
    received = tmp_path / "received"
    received.mkdir()
    for name, data in uploaded.items():
        (received / name).write_bytes(data)
    fill_hub_cache(tmp_path / "offline-cache", REPO_ID, received)
    env = {
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_CACHE": str(tmp_path / "offline-cache"),
        "CLEANRL_LAGO_CACHE": str(root / "lago-cache"),
    }
    result = run_python(LOAD_AND_PRINT, env)
    assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_allclose(
        np.array(json.loads(result.stdout.strip().splitlines()[-1])), expected, atol=1e-6
    )
