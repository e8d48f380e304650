"""The second built-in LM, Gemma-3-270M (base model), from its four PyPI chunk packages.

The assembly is checked on fake chunks (order, published sha256, nothing left behind on a mismatch);
the real model is loaded end to end like SmolLM2 in test_priors_smollm2.py (the first run on a clean
machine assembles and converts it: about 60 s and 3.3 GB; later runs load the cached copy in seconds).
"""

import hashlib

import gymnasium as gym
import numpy as np
import pytest
import torch

import priors.lm
from priors import GEMMA_LM, build_prior, load_lm


@pytest.fixture
def fake_chunks(tmp_path, monkeypatch):
    monkeypatch.setenv("CLEANRL_LAGO_CACHE", str(tmp_path / "cache"))
    chunks = {f"pkg{i}": tmp_path / f"model.gguf.part{i:02d}" for i in range(3)}
    for i, path in enumerate(chunks.values()):
        path.write_bytes(bytes([i]) * (1000 + i))
    whole = b"".join(p.read_bytes() for p in chunks.values())
    entry = (
        "model.gguf",
        hashlib.sha256(whole).hexdigest(),
        tuple((pkg, p.name) for pkg, p in chunks.items()),
    )
    monkeypatch.setitem(priors.lm._CHUNKED_GGUF, "fake-lm", entry)
    monkeypatch.setattr(priors.lm, "_package_file", lambda name, package, filename: chunks[package])
    return whole


def test_chunks_assemble_in_order_once(fake_chunks):
    path = priors.lm.builtin_gguf_path("fake-lm")
    assert path.read_bytes() == fake_chunks
    assert priors.lm.builtin_gguf_path("fake-lm") == path  # the assembled file is reused
    assert [p.name for p in path.parent.iterdir()] == ["model.gguf"]


def test_a_chunk_that_does_not_match_the_published_hash_is_refused(fake_chunks, monkeypatch):
    filename, _, chunks = priors.lm._CHUNKED_GGUF["fake-lm"]
    monkeypatch.setitem(priors.lm._CHUNKED_GGUF, "fake-lm", (filename, "0" * 64, chunks))
    with pytest.raises(
        ValueError, match=r"assemble to sha256 [0-9a-f]{64}, not the published 0{64}: reinstall"
    ):
        priors.lm.builtin_gguf_path("fake-lm")
    assert not any((priors.lm.cache_dir() / "gguf-src").iterdir())  # nothing half-written stays


def test_gemma_lm_soft_token_prior_end_to_end():
    lm = load_lm(GEMMA_LM)
    config = lm.model.config
    assert (config.model_type, config.num_hidden_layers, config.hidden_size) == ("gemma3_text", 18, 640)
    assert lm.fingerprint == "a09677ebf64f82c7"  # the weights of the published GGUF, dequantised
    prior = build_prior(
        observation_space=gym.spaces.Box(-np.inf, np.inf, (39,), dtype=np.float64),
        action_space=gym.spaces.Box(-1.0, 1.0, (4,), dtype=np.float32),
        lm=lm,
        lm_layers=4,
    )
    obs = torch.from_numpy(np.random.default_rng(0).normal(size=(6, 39)).astype(np.float32))
    instructions = ["reach the red goal", "push the puck to the goal", "open the drawer"] * 2
    with torch.no_grad():
        normalized = prior.normalize(obs)
        cached = prior.features(normalized, instructions, use_cache=True)
        full = prior.features(normalized, instructions, use_cache=False)
    torch.testing.assert_close(cached, full, atol=2e-3, rtol=0)
    # Soft tokens start at the scale of the embeddings the first layer sees (sqrt(640) times the table's).
    embed = lm.model.get_input_embeddings()
    torch.testing.assert_close(
        prior.token_scale[0], embed.weight.float().pow(2).mean().sqrt() * 640**0.5, rtol=1e-3, atol=0
    )
