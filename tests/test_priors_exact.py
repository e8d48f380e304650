"""the priors library's exact values, each against a reference written here: the training loss (NLL) and
log-likelihoods against ``torch.distributions``, the Box squash of ``log_std``, batched distributions,
normalisation refusals, Box spaces through the config, the LoRA settings a prior records, the MLP
prior's word hashing (part of its file format) and configs of format version 1 without a split.
Written to kill the mutants that survived the other tests (docs/mutation.md)."""

import hashlib
import json

import gymnasium as gym
import numpy as np
import pytest
import torch
from priors_helpers import INSTRUCTIONS, observation_space, random_obs, trained_like
from torch.distributions import Categorical, Normal

from priors import LoraSettings, PriorConfig, Provenance, build_prior, load_lm
from priors.spaces import space_from_dict, space_to_dict

BOX = gym.spaces.Box(-1.0, 1.0, (3,), dtype=np.float32)
DISCRETE = gym.spaces.Discrete(5)


def mlp_prior(action_space):
    return trained_like(
        build_prior(observation_space=observation_space(), action_space=action_space, kind="mlp")
    )


def test_box_likelihood_and_nll_equal_a_diagonal_gaussian():
    prior = mlp_prior(BOX)
    obs, instructions = random_obs(8), [INSTRUCTIONS[i % 4] for i in range(8)]
    actions = torch.linspace(-0.9, 0.9, 24).reshape(8, 3)  # not integers: a cast to long would show
    with torch.no_grad():
        raw = prior.action_head(prior.features(prior.normalize(obs), instructions))
        mean, raw_log_std = raw.chunk(2, dim=-1)
        log_std = -5.0 + 0.5 * (2.0 - -5.0) * (torch.tanh(raw_log_std) + 1.0)  # squashed into [-5, 2]
        torch.testing.assert_close(prior(obs, instructions), torch.cat([mean, log_std], dim=-1))
        expected = Normal(mean, log_std.exp()).log_prob(actions).sum(-1)
        torch.testing.assert_close(prior.log_prob(obs, instructions, actions.numpy()), expected)
        torch.testing.assert_close(prior.nll(obs, instructions, actions), -expected.mean())


def test_discrete_likelihood_and_nll_equal_a_categorical():
    prior = mlp_prior(DISCRETE)
    obs, instructions = random_obs(8), [INSTRUCTIONS[i % 4] for i in range(8)]
    actions = torch.arange(8) % 5
    with torch.no_grad():
        expected = Categorical(logits=prior(obs, instructions)).log_prob(actions)
        torch.testing.assert_close(prior.log_prob(obs, instructions, actions), expected)
        torch.testing.assert_close(prior.nll(obs, instructions, actions), -expected.mean())


def test_distribution_from_params_keeps_every_batch_dimension():
    prior = mlp_prior(BOX)
    params = torch.randn(2, 4, 6)  # (steps, envs, mean and log_std of 3 dims)
    dist = prior.distribution_from_params(params)
    assert dist.batch_shape == (2, 4) and dist.event_shape == (3,)
    torch.testing.assert_close(dist.mean, params[..., :3])
    torch.testing.assert_close(dist.stddev, params[..., 3:].exp())


def test_set_normalization_refuses_either_wrong_size_and_floors_std():
    prior = mlp_prior(BOX)
    with pytest.raises(ValueError, match="normalisation statistics must have 7 entries"):
        prior.set_normalization(np.zeros(7), np.ones(6))
    with pytest.raises(ValueError, match="normalisation statistics must have 7 entries"):
        prior.set_normalization(np.zeros(6), np.ones(7))
    prior.set_normalization(np.arange(7.0), np.array([0.0, 1e-9, 1, 2, 3, 4, 5]))
    assert prior.obs_std.tolist()[:3] == pytest.approx([1e-6, 1e-6, 1.0])
    assert prior.obs_mean.tolist() == list(np.arange(7.0))


def test_box_space_survives_the_config():
    space = gym.spaces.Box(
        low=np.array([[-1.0, 0.0], [-np.inf, -3.5]]),
        high=np.array([[1.0, 2.0], [np.inf, 4.0]]),
        dtype=np.float64,
    )
    back = space_from_dict(space_to_dict(space))
    assert back.shape == (2, 2) and back.dtype == np.float32
    np.testing.assert_array_equal(back.low, space.low.astype(np.float32))
    np.testing.assert_array_equal(back.high, space.high.astype(np.float32))
    assert space_from_dict({"type": "Discrete", "n": 7}) == gym.spaces.Discrete(7)


def test_lora_adapters_are_those_the_config_records(tiny_lm):
    settings = LoraSettings(
        r=4, alpha=12, dropout=0.25, target_modules=["q_proj", "o_proj"]
    )  # not peft's default
    prior = build_prior(observation_space=observation_space(), action_space=BOX, lm=tiny_lm, lora=settings)
    adapted = {name.rsplit(".", 1)[-1]: m for name, m in prior.lm.named_modules() if hasattr(m, "lora_A")}
    assert set(adapted) == {"q_proj", "o_proj"}
    for module in adapted.values():
        assert module.r["default"] == 4 and module.lora_A["default"].weight.shape[0] == 4
        assert module.scaling["default"] == 12 / 4
        assert module.lora_dropout["default"].p == 0.25


def test_mlp_word_buckets_are_the_documented_stable_hash():
    """A saved MLP prior's embedding rows are indexed by these buckets: they must never change."""
    prior = mlp_prior(BOX)

    def bucket(word):
        return int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little") % 4096

    assert prior.word_buckets("Open the drawer, 2x!") == [bucket(w) for w in ("open", "the", "drawer", "2x")]
    assert bucket("drawer") == 30  # the value itself, independent of this formula


def test_version_1_config_without_split_or_metrics():
    current = build_prior(
        observation_space=observation_space(), action_space=BOX, kind="mlp"
    ).config.to_dict()
    del current["provenance"]
    version_1 = {**current, "format_version": 1, "command": "python train.py", "metrics": None}
    config = PriorConfig.from_dict(version_1)
    assert config.format_version == 3
    assert config.provenance == Provenance(command="python train.py")  # no metrics: an empty table
    version_1 = {**current, "format_version": 1, "metrics": {"val_nll": 1.5}}
    assert PriorConfig.from_dict(version_1).provenance == Provenance(metrics={"val_nll": 1.5})
    assert (
        PriorConfig.from_dict({**current, "format_version": 1}).provenance == Provenance()
    )  # no field at all


def test_normalize_clamps_at_ten_standard_deviations():
    prior = mlp_prior(BOX)
    prior.set_normalization(np.zeros(7), np.ones(7))
    normalized = prior.normalize(np.array([[100.0, -100.0, 9.5, -9.5, 0.0, 10.0, -10.0]]))
    assert normalized.tolist() == [[10.0, -10.0, 9.5, -9.5, 0.0, 10.0, -10.0]]


def test_saved_tensor_names_are_the_file_format(tiny_lm):
    """A saved prior is loaded by these names: a layer added, removed or moved (e.g. the LayerNorm before
    the head, a GELU between two linears) breaks every prior saved before it."""
    lm_prior = build_prior(observation_space=observation_space(), action_space=BOX, lm=tiny_lm)
    assert sorted(lm_prior.trainable_state_dict()) == [
        "action_head.0.bias",  # LayerNorm
        "action_head.0.weight",
        "action_head.1.0.bias",  # Linear, GELU, Linear
        "action_head.1.0.weight",
        "action_head.1.2.bias",
        "action_head.1.2.weight",
        "obs_mean",
        "obs_std",
        "projection.0.bias",
        "projection.0.weight",
        "projection.2.bias",
        "projection.2.weight",
        "token_scale",
    ]
    assert isinstance(lm_prior.action_head[0], torch.nn.LayerNorm)
    assert isinstance(lm_prior.projection[1], torch.nn.GELU) and isinstance(
        lm_prior.action_head[1][1], torch.nn.GELU
    )
    mlp = build_prior(observation_space=observation_space(), action_space=BOX, kind="mlp")
    assert sorted(mlp.trainable_state_dict()) == [
        "action_head.bias",
        "action_head.weight",
        "instruction_embedding.weight",
        "obs_mean",
        "obs_std",
        "trunk.0.bias",
        "trunk.0.weight",
        "trunk.2.bias",
        "trunk.2.weight",
    ]
    assert isinstance(mlp.trunk[1], torch.nn.GELU) and isinstance(mlp.trunk[3], torch.nn.GELU)


def test_soft_tokens_are_the_projection_at_the_embeddings_scale(tiny_lm):
    prior = trained_like(build_prior(observation_space=observation_space(), action_space=BOX, lm=tiny_lm))
    embeddings = prior.lm.get_input_embeddings().weight
    torch.testing.assert_close(prior.token_scale, embeddings.pow(2).mean().sqrt().reshape(1))
    x = prior.normalize(random_obs(5))
    with torch.no_grad():
        expected = (prior.projection(x) * embeddings.pow(2).mean().sqrt()).reshape(5, 4, 64)
        torch.testing.assert_close(prior.soft_tokens(x), expected)


def test_build_prior_records_and_uses_every_argument(tiny_lm):
    tasks = ("reach-v3", "push-v3")
    kwargs = dict(observation_space=observation_space(), action_space=BOX, lm=tiny_lm, n_obs_tokens=3)
    kwargs.update(prompt_format="Do: {instruction}\nObs:", hidden_size=16, seed=5, observation_dims=4)
    prior = build_prior(**kwargs, tasks=tasks, quantization="bf16")
    config = prior.config
    assert (config.n_obs_tokens, config.hidden_size, config.seed, config.observation_dims) == (3, 16, 5, 4)
    assert config.prompt_format == "Do: {instruction}\nObs:" and config.tasks == ["reach-v3", "push-v3"]
    assert config.lm_name == tiny_lm and config.quantization == "bf16"
    assert next(prior.lm.parameters()).dtype == torch.bfloat16
    assert prior.projection[0].in_features == 4 and prior.projection[0].out_features == 16
    assert prior.projection[2].out_features == 3 * 64 and prior.prompt("go") == "Do: go\nObs:"
    same, other = build_prior(**kwargs), build_prior(**{**kwargs, "seed": 6})
    for name, value in same.trainable_state_dict().items():
        if name != "token_scale":  # the bf16 LM's embedding scale differs from the fp32 one's
            assert torch.equal(value, prior.trainable_state_dict()[name]), name
    assert not torch.equal(other.projection[0].weight, same.projection[0].weight)


def test_build_prior_refusals(tiny_lm):
    def build(**kwargs):
        return build_prior(observation_space=observation_space(), action_space=BOX, kind="mlp", **kwargs)

    for dims in (0, 8):
        with pytest.raises(ValueError) as refused:
            build(observation_dims=dims)
        assert str(refused.value) == f"observation_dims must be in 1..7, got {dims}"
    assert build(observation_dims=1).config.obs_dim == 1 and build(observation_dims=7).config.obs_dim == 7
    with pytest.raises(ValueError) as refused:
        build_prior(
            observation_space=observation_space(), action_space=BOX, lm=tiny_lm, prompt_format="no {x}"
        )
    assert str(refused.value) == "prompt_format must contain '{instruction}'"
    with pytest.raises(ValueError) as refused:
        build(n_obs_tokens=2)  # an option of another kind is refused, not ignored
    assert str(refused.value) == (
        "n_obs_tokens: not an option of kind 'mlp' (its options: env_id, tasks, observation_dims, hidden_size, "
        "seed, log_std_min, log_std_max, n_buckets)"
    )
    with pytest.raises(ValueError) as refused:
        build_prior(
            observation_space=observation_space(),
            action_space=BOX,
            lm=load_lm(tiny_lm),
            lm_random_init_seed=0,
        )
    assert str(refused.value) == "a random-init LM (lm_random_init_seed) needs the LM's name, not a loaded LM"
    with pytest.raises(ValueError) as refused:
        build_prior(observation_space=observation_space(), action_space=BOX, kind="random-lm")
    assert str(refused.value) == "kind must be one of ('lm', 'lm-instruction', 'gru', 'mlp'), got 'random-lm'"


def test_lora_training_gradients_reach_the_prompt(tiny_lm):
    """With LoRA and gradients on, the default path recomputes the prompt (the cache holds detached keys and
    values): the adapters' gradients are those of the full pass, which the cached pass would miss."""
    prior = trained_like(
        build_prior(
            observation_space=observation_space(),
            action_space=BOX,
            lm=tiny_lm,
            lora=LoraSettings(r=4, alpha=8),
        )
    )
    with torch.no_grad():  # non-zero adapters, so that the prompt's keys and values depend on them
        for name, param in prior.lm.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.1, generator=torch.Generator().manual_seed(1))
    obs, instructions = random_obs(4), INSTRUCTIONS
    lora = [p for n, p in prior.lm.named_parameters() if "lora_A" in n]

    def grads(use_cache):
        prior.zero_grad()
        prior.action_head(
            prior.features(prior.normalize(obs), instructions, use_cache=use_cache)
        ).sum().backward()
        return torch.cat([p.grad.flatten() for p in lora])

    default, full, cached = grads(None), grads(False), grads(True)
    torch.testing.assert_close(default, full)
    assert not torch.allclose(cached, full)  # the trap the default avoids is real


def test_save_prior_records_its_provenance_and_weights_metadata(tmp_path):
    from safetensors import safe_open

    from priors import save_prior

    split = {"train": INSTRUCTIONS[:3], "held_out": INSTRUCTIONS[3:]}
    path = save_prior(mlp_prior(BOX), tmp_path / "p", dataset="org/demos-v0", instruction_split=split)
    provenance = json.loads((path / "config.json").read_text())["provenance"]
    assert provenance["dataset"] == "org/demos-v0" and provenance["instruction_split"] == split
    with safe_open(path / "model.safetensors", "pt") as weights:
        assert weights.metadata() == {"format": "pt", "kind": "mlp"}  # "pt": what safetensors loaders expect


def test_set_log_prob_is_the_log_of_the_mass_on_the_set():
    """Kills the survivors of the set likelihood: the mask inverted, softmax over the batch."""
    torch.manual_seed(0)
    prior = build_prior(observation_space=observation_space(), action_space=DISCRETE, kind="mlp")
    trained_like(prior)
    obs, instructions = random_obs(6), [INSTRUCTIONS[i % 4] for i in range(6)]
    sets = torch.rand(6, 5) < 0.4
    sets[:, 2] = True  # no empty set
    with torch.no_grad():
        probs = Categorical(logits=prior(obs, instructions)).probs
        expected = (probs * sets).sum(-1).log()
        torch.testing.assert_close(prior.set_log_prob(obs, instructions, sets.numpy()), expected)


def test_build_prior_defaults_and_the_instruction_lm_head(tiny_lm):
    """Defaults a user gets without arguments (survivors changed them silently), and the LayerNorm that
    the instruction-only LM prior puts before its projection."""
    prior = build_prior(observation_space=observation_space(), action_space=DISCRETE, kind="mlp")
    assert (prior.config.hidden_size, prior.config.seed, prior.config.n_buckets) == (256, 0, 4096)
    soft_tokens = build_prior(observation_space=observation_space(), action_space=DISCRETE, lm=tiny_lm)
    assert soft_tokens.config.n_obs_tokens == 4 and soft_tokens.config.lora is None
    lm_prior = build_prior(
        observation_space=observation_space(), action_space=DISCRETE, kind="lm-instruction", lm=tiny_lm
    )
    norm, linear = lm_prior.token_projection
    width = lm_prior.lm.get_input_embeddings().weight.shape[1]
    assert isinstance(norm, torch.nn.LayerNorm) and norm.normalized_shape == (width,)
    assert (linear.in_features, linear.out_features) == (width, 64)
    assert (lm_prior.encoder.input_size, lm_prior.encoder.hidden_size) == (64, 256)


def test_log_std_floor_is_the_squash_lower_bound_and_is_checked():
    box = gym.spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)
    prior = build_prior(observation_space=observation_space(), action_space=box, kind="mlp", log_std_min=-2.3)
    assert prior.config.log_std_min == -2.3
    with torch.no_grad():
        prior.action_head.bias[2:] = -1e6  # raw log-std far below: tanh saturates at -1
        log_std = prior(random_obs(3), INSTRUCTIONS[:3])[:, 2:]
    torch.testing.assert_close(log_std, torch.full_like(log_std, -2.3))
    for bad in (2.0, float("nan")):
        with pytest.raises(ValueError, match="log_std_min must be a number below log_std_max"):
            build_prior(observation_space=observation_space(), action_space=box, kind="mlp", log_std_min=bad)


@pytest.mark.parametrize("kind", ["lm", "lm-instruction", "gru", "mlp"])
def test_an_empty_instruction_is_refused(tiny_lm, kind):
    """Every kind refuses a missing instruction rather than guessing from the observation alone."""
    prior = build_prior(kind, observation_space=observation_space(), action_space=BOX, lm=tiny_lm)
    obs = random_obs(3)
    for bad in ("", "   ", None):
        with pytest.raises(ValueError) as refused:
            prior.predict(obs, [INSTRUCTIONS[0], bad, INSTRUCTIONS[1]])
        assert str(refused.value) == (
            f"empty instruction ({bad!r}): a prior needs the task's language instruction for every observation; "
            "pass the instruction the environment gives (info['instruction'])."
        )
    with pytest.raises(ValueError, match="empty instruction"):
        prior(obs, "")
    assert prior.predict(obs, INSTRUCTIONS[:3]).shape == (3, 6)
