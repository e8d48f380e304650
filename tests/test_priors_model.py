"""The priors' forward passes: prefix-cache exactness, distributions, training, baselines."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from priors_helpers import INSTRUCTIONS, observation_space, random_obs
from torch.distributions import Categorical, Independent

from priors import LMPrior, LoraSettings, MLPPrior, build_prior, load_lm

DISCRETE = gym.spaces.Discrete(5)
BOX = gym.spaces.Box(-1.0, 1.0, (3,), dtype=np.float32)

pytestmark = pytest.mark.usefixtures("lago_cache")  # conftest: a temporary conversion cache


def mixed_instructions(batch):
    """Instructions of different token lengths, interleaved, with repeats."""
    return [INSTRUCTIONS[(i * 3) % len(INSTRUCTIONS)] for i in range(batch)]


@pytest.mark.parametrize("action_space", [DISCRETE, BOX], ids=["discrete", "box"])
def test_prefix_cache_matches_full_recompute(tiny_lm, action_space):
    prior = build_prior(observation_space=observation_space(), action_space=action_space, lm=tiny_lm)
    obs, instructions = random_obs(10), mixed_instructions(10)
    with torch.no_grad():
        normalized = prior.normalize(obs)
        full = prior.features(normalized, instructions, use_cache=False)
        cached = prior.features(normalized, instructions, use_cache=True)
        again = prior.features(normalized, instructions, use_cache=True)  # served from the prefix cache
        one_by_one = torch.cat(
            [prior.features(normalized[i : i + 1], instructions[i : i + 1]) for i in range(10)]
        )
    assert len(prior._prefix_cache) == len(set(instructions))
    torch.testing.assert_close(cached, full, atol=1e-4, rtol=0)
    torch.testing.assert_close(again, cached, atol=0, rtol=0)
    torch.testing.assert_close(one_by_one, full, atol=1e-4, rtol=0)
    # The instruction matters (otherwise the equalities above would prove little).
    other = prior.features(normalized, ["open the drawer"] * 10, use_cache=False)
    assert (other - full).abs().max() > 1e-2


def test_prompts_cached_together_equal_each_prompt_alone_and_the_cache_keeps_to_its_bytes(tiny_lm):
    """Prompts of different lengths run left-padded in one call; each cached entry is the LM's own keys and
    values of that prompt alone, padding cut off. Past ``max_cached_bytes`` the least recently used go."""
    from transformers import DynamicCache

    prior = build_prior(observation_space=observation_space(), action_space=DISCRETE, lm=tiny_lm)
    prompts = list(dict.fromkeys(mixed_instructions(10)))
    assert len({len(prior.token_ids(p)) for p in prompts}) > 1  # padding is exercised
    together = prior._prefix_kvs(prompts, chunk=len(prompts))
    for prompt, kv in zip(prompts, together, strict=True):
        cache = DynamicCache()
        with torch.no_grad():
            prior.lm(input_ids=torch.tensor([prior.token_ids(prompt)]), use_cache=True, past_key_values=cache)
        alone = torch.stack([torch.stack([layer.keys[0], layer.values[0]]) for layer in cache.layers])
        torch.testing.assert_close(kv, alone, atol=1e-5, rtol=0)
    entry = together[0].numel() * together[0].element_size()
    prior.max_cached_bytes = 2 * entry  # room for two prompts of the first one's length or so
    prior._prefix_kvs(["open the drawer"])
    assert list(prior._prefix_cache)[-1] == ("open the drawer", 0)
    assert sum(v.numel() * v.element_size() for v in prior._prefix_cache.values()) <= 2 * entry
    assert prompts[0] not in {key for key, _ in prior._prefix_cache}  # the oldest went first


def test_cached_path_trains_projection_exactly(tiny_lm):
    """Without LoRA the cache is used under grad too; its gradients equal the full pass's."""
    prior = build_prior(observation_space=observation_space(), action_space=DISCRETE, lm=tiny_lm)
    obs, instructions = random_obs(6), mixed_instructions(6)
    actions = torch.arange(6) % 5
    grads = []
    for use_cache in (False, True):
        prior.zero_grad()
        features = prior.features(prior.normalize(obs), instructions, use_cache=use_cache)
        logits = prior.action_head(features)
        torch.nn.functional.cross_entropy(logits, actions).backward()
        grads.append(torch.cat([p.grad.flatten() for p in prior.projection.parameters()]))
    torch.testing.assert_close(grads[1], grads[0], atol=1e-5, rtol=1e-4)


def many_instructions(batch, distinct=13):
    """``distinct`` instructions of 1 to ``distinct`` words (so of as many token lengths), shuffled."""
    words = "push the red ball to the left of the blue cube and open drawer".split()
    texts = [" ".join(words[: n + 1]) for n in range(distinct)]
    order = np.random.default_rng(3).permutation(batch)
    return [texts[i % distinct] for i in order]


def test_cached_batch_runs_in_one_lm_call(tiny_lm):
    """Many distinct prompts of different lengths in one batch: one LM call once prompts are cached."""
    prior = build_prior(observation_space=observation_space(), action_space=DISCRETE, lm=tiny_lm)
    obs, instructions = random_obs(40), many_instructions(40)
    assert len({len(prior.token_ids(s)) for s in instructions}) == 13
    calls = []
    hook = prior.lm.register_forward_hook(lambda *args: calls.append(1))
    with torch.no_grad():
        normalized = prior.normalize(obs)
        full = prior.features(normalized, instructions, use_cache=False)
        prior.features(normalized, instructions, use_cache=True)  # fills the prefix cache
        calls.clear()
        cached = prior.features(normalized, instructions, use_cache=True)
    assert len(calls) == 1
    torch.testing.assert_close(cached, full, atol=1e-4, rtol=0)
    # Large batches run in chunks of at most max_tokens_per_call soft tokens (3 states here).
    prior.max_tokens_per_call = 3 * prior.config.n_obs_tokens + 1
    calls.clear()
    with torch.no_grad():
        chunked = prior.features(normalized, instructions, use_cache=True)
    hook.remove()
    assert len(calls) == 14
    torch.testing.assert_close(chunked, full, atol=1e-4, rtol=0)
    # Row by row (each prompt alone, no padding) gives the same features.
    with torch.no_grad():
        alone = torch.cat([prior.features(normalized[i : i + 1], instructions[i : i + 1]) for i in range(40)])
    torch.testing.assert_close(alone, full, atol=1e-4, rtol=0)


@pytest.mark.parametrize("n_obs_tokens", [1, 3])
def test_cached_gradients_match_full_with_many_prompts(tiny_lm, n_obs_tokens):
    """Without LoRA, gradients through the cached pass equal the full pass's, for every trainable tensor."""
    prior = build_prior(
        observation_space=observation_space(), action_space=BOX, lm=tiny_lm, n_obs_tokens=n_obs_tokens
    )
    obs, instructions = random_obs(24, seed=5), many_instructions(24)
    actions = torch.from_numpy(np.random.default_rng(2).uniform(-1, 1, (24, 3)).astype(np.float32))
    losses, grads = [], []
    # The second cached pass reads prompts from the cache, the third runs in chunks of 5 states.
    for use_cache, per_call in ((False, 512), (True, 512), (True, 5 * n_obs_tokens)):
        prior.max_tokens_per_call = per_call
        prior.zero_grad()
        features = prior.features(prior.normalize(obs), instructions, use_cache=use_cache)
        params = prior.action_head(features)
        loss = (params[:, :3] - actions).pow(2).sum(-1).mean() + features.pow(2).mean()
        loss.backward()
        losses.append(loss.detach())
        grads.append({n: p.grad.clone() for n, p in prior.named_parameters() if p.requires_grad})
    for cached in grads[1:]:
        assert cached.keys() == grads[0].keys()
        for name, grad in grads[0].items():
            torch.testing.assert_close(cached[name], grad, atol=1e-5, rtol=1e-4, msg=name)
    torch.testing.assert_close(losses[1], losses[0], atol=1e-5, rtol=1e-5)


def test_distributions_shapes_and_log_prob(tiny_lm):
    lm = load_lm(tiny_lm)
    discrete = build_prior(observation_space=observation_space(), action_space=DISCRETE, lm=lm)
    box = build_prior(observation_space=observation_space(), action_space=BOX, lm=lm)
    obs, instructions = random_obs(4), mixed_instructions(4)

    dist = discrete.distribution(obs, instructions)
    assert isinstance(dist, Categorical) and dist.logits.shape == (4, 5)
    assert discrete(obs, instructions).shape == (4, 5)
    assert discrete.log_prob(obs, instructions, torch.tensor([0, 1, 2, 4])).shape == (4,)

    dist = box.distribution(obs, instructions)
    assert isinstance(dist, Independent) and dist.batch_shape == (4,) and dist.event_shape == (3,)
    params = box(obs, instructions)
    assert params.shape == (4, 6)
    log_std = params[:, 3:]
    assert (log_std >= box.config.log_std_min).all() and (log_std <= box.config.log_std_max).all()
    expected = torch.distributions.Normal(params[:, :3], log_std.exp()).log_prob(torch.zeros(4, 3)).sum(-1)
    torch.testing.assert_close(box.log_prob(obs, instructions, torch.zeros(4, 3)), expected)
    # One string is broadcast to the batch; a wrong count is refused.
    torch.testing.assert_close(box(obs, "reach the goal"), box(obs, ["reach the goal"] * 4))
    with pytest.raises(ValueError, match="3 instructions for 4 observations"):
        box(obs, instructions[:3])


def test_normalization_lives_in_the_prior(tiny_lm):
    prior = build_prior(observation_space=observation_space(), action_space=DISCRETE, lm=tiny_lm)
    obs = random_obs(5)
    mean, std = obs.mean(0), obs.std(0)
    prior.set_normalization(mean, std)
    torch.testing.assert_close(prior.normalize(obs), (obs - mean) / std)
    # Raw numpy float64 observations are accepted as they come from the environment.
    torch.testing.assert_close(
        prior(obs.numpy().astype(np.float64), "reach the goal"), prior(obs, "reach the goal")
    )


def test_training_updates_only_trainable_parts(tiny_lm):
    prior = build_prior(observation_space=observation_space(), action_space=DISCRETE, lm=tiny_lm)
    frozen_before = {n: p.clone() for n, p in prior.lm.named_parameters()}
    names = {n for n, p in prior.named_parameters() if p.requires_grad}
    assert names and all(n.startswith(("projection.", "action_head.")) for n in names)
    assert not any(p.requires_grad for p in prior.lm.parameters())
    optimizer = torch.optim.Adam(prior.trainable_parameters(), lr=3e-3)
    obs, instructions = random_obs(16), mixed_instructions(16)
    actions = torch.from_numpy(np.random.default_rng(1).integers(0, 5, 16))
    losses = []
    for _ in range(30):
        loss = prior.nll(obs, instructions, actions)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    for name, param in prior.lm.named_parameters():
        assert torch.equal(param, frozen_before[name]), name


def test_lora_trains_and_invalidates_prefix_cache(tiny_lm):
    prior = build_prior(
        observation_space=observation_space(), action_space=BOX, lm=tiny_lm, lora=LoraSettings(r=4, alpha=8)
    )
    lora_params = [n for n, p in prior.named_parameters() if p.requires_grad and "lora_" in n]
    assert lora_params and not any(
        p.requires_grad for n, p in prior.lm.named_parameters() if "lora_" not in n
    )
    obs, instructions = random_obs(8), mixed_instructions(8)
    optimizer = torch.optim.Adam(prior.trainable_parameters(), lr=1e-2)
    for _ in range(3):  # with grad and LoRA the full path runs, and LoRA gets gradients
        loss = prior.nll(obs, instructions, torch.zeros(8, 3))
        optimizer.zero_grad()
        loss.backward()
        assert prior.lm.layers[0].self_attn.q_proj.lora_B.default.weight.grad.abs().sum() > 0
        optimizer.step()
        with torch.no_grad():  # the cached path must see the updated LoRA weights
            cached = prior.features(prior.normalize(obs), instructions, use_cache=True)
            full = prior.features(prior.normalize(obs), instructions, use_cache=False)
        torch.testing.assert_close(cached, full, atol=1e-4, rtol=0)


def test_instruction_lm_lora_adapts_the_layers_read_and_refreshes_its_cache(tiny_lm):
    """LoRA on the shipped design: adapters on the layers the pass runs (the first ``lm_layers``), trained
    through the instruction's states, and the cached states follow every change of the adapters."""
    prior = build_prior(
        observation_space=observation_space(),
        action_space=DISCRETE,
        lm=tiny_lm,
        kind="lm-instruction",
        lm_layers=1,
        lora=LoraSettings(r=4, alpha=8),
    )
    adapted = sorted(n for n, p in prior.named_parameters() if p.requires_grad and n.startswith("lm."))
    assert adapted == sorted(
        f"lm.layers.0.self_attn.{m}.lora_{ab}.default.weight"
        for m in ("q_proj", "k_proj", "v_proj", "o_proj")
        for ab in "AB"
    )

    def reference(instruction):  # layer 1's output, straight from the adapted LM
        ids = torch.tensor([prior.tokenizer(prior.prompt(instruction))["input_ids"]])
        with torch.no_grad():
            return prior.lm(input_ids=ids, output_hidden_states=True).hidden_states[1][0]

    instruction = INSTRUCTIONS[1]
    before = prior.token_states([instruction])[0]  # cached; lora_B starts at zero: the plain LM's states
    optimizer = torch.optim.Adam(prior.trainable_parameters(), lr=0.05)
    obs, instructions = random_obs(8), mixed_instructions(8)
    for _ in range(2):
        optimizer.zero_grad()
        prior.nll(obs, instructions, torch.zeros(8, dtype=torch.long)).backward()
        assert prior.lm.layers[0].self_attn.v_proj.lora_B.default.weight.grad.abs().sum() > 0
        optimizer.step()
    after = prior.token_states([instruction])[0]
    torch.testing.assert_close(after, reference(instruction), atol=1e-5, rtol=0)
    change = (after - before).abs().max()
    assert change > 0.01  # the adapters changed what the LM reads (a stale cache would not)
    # The training pass (grad on, no cache) and the cached pass agree.
    with torch.no_grad():
        cached = prior(obs, instructions)
    torch.testing.assert_close(prior(obs, instructions).detach(), cached, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", ["gru", "mlp"])
def test_lora_is_refused_for_priors_without_an_lm(tiny_lm, kind):
    with pytest.raises(ValueError) as refused:
        build_prior(
            observation_space=observation_space(),
            action_space=DISCRETE,
            lm=tiny_lm,
            kind=kind,
            lora=LoraSettings(),
        )
    options = "env_id, tasks, observation_dims, hidden_size, seed, log_std_min, log_std_max"
    options += ", n_buckets" if kind == "mlp" else ""
    assert str(refused.value) == f"lora: not an option of kind {kind!r} (its options: {options})"


def test_mlp_prior_has_the_same_interface(tiny_lm):
    obs, instructions = random_obs(6), mixed_instructions(6)
    for action_space, shape in ((DISCRETE, (6, 5)), (BOX, (6, 6))):
        prior = build_prior(observation_space=observation_space(), action_space=action_space, kind="mlp")
        assert isinstance(prior, MLPPrior) and not hasattr(prior.config, "lm_name")
        assert prior(obs, instructions).shape == shape
        assert type(prior.distribution(obs, instructions)) is (
            Categorical if action_space is DISCRETE else Independent
        )
        actions = torch.zeros(6, dtype=torch.long) if action_space is DISCRETE else torch.zeros(6, 3)
        prior.nll(obs, instructions, actions).backward()
        assert all(p.grad is not None for p in prior.trainable_parameters())
    # Instructions change the output; word order and case do not (bag of words).
    assert not torch.allclose(prior(obs, "open the drawer"), prior(obs, "reach the goal"))
    torch.testing.assert_close(prior(obs, "Open the DRAWER"), prior(obs, "drawer the open"))
    # Deterministic from the seed.
    again = build_prior(observation_space=observation_space(), action_space=BOX, kind="mlp")
    torch.testing.assert_close(again(obs, instructions), prior(obs, instructions))


def test_random_lm_prior_has_same_shape_fresh_weights(tiny_lm):
    pretrained = build_prior(observation_space=observation_space(), action_space=DISCRETE, lm=tiny_lm)
    random_a, random_b, random_c = (
        build_prior(
            observation_space=observation_space(), action_space=DISCRETE, lm=tiny_lm, lm_random_init_seed=seed
        )
        for seed in (0, 0, 1)
    )
    assert isinstance(random_a, LMPrior) and random_a.config.lm_random_init_seed == 0
    shapes = {n: p.shape for n, p in pretrained.lm.named_parameters()}
    assert {n: p.shape for n, p in random_a.lm.named_parameters()} == shapes
    embed = "embed_tokens.weight"
    assert not torch.equal(
        dict(random_a.lm.named_parameters())[embed], dict(pretrained.lm.named_parameters())[embed]
    )
    assert random_a.config.lm_fingerprint == random_b.config.lm_fingerprint
    assert (
        len(
            {pretrained.config.lm_fingerprint, random_a.config.lm_fingerprint, random_c.config.lm_fingerprint}
        )
        == 3
    )
    obs = random_obs(3)
    torch.testing.assert_close(random_a(obs, "reach the goal"), random_b(obs, "reach the goal"))


def test_build_prior_rejects_bad_arguments(tiny_lm):
    with pytest.raises(ValueError, match="kind must be one of"):
        build_prior(observation_space=observation_space(), action_space=DISCRETE, kind="transformer")
    with pytest.raises(ValueError, match="must contain"):
        build_prior(
            observation_space=observation_space(), action_space=DISCRETE, lm=tiny_lm, prompt_format="Go:"
        )
    with pytest.raises(TypeError, match="Box and Discrete"):
        build_prior(observation_space=observation_space(), action_space=gym.spaces.MultiBinary(3), kind="mlp")
    with pytest.raises(ValueError, match="quantization must be one of"):
        load_lm(tiny_lm, quantization="fp8")


@pytest.mark.parametrize("kind", ["lm", "mlp"])
def test_non_finite_observations_are_refused_by_row(tiny_lm, kind):
    prior = build_prior(
        observation_space=observation_space(), action_space=gym.spaces.Discrete(5), lm=tiny_lm, kind=kind
    )
    obs = random_obs(4)
    obs[1, 3], obs[3, 0] = float("nan"), float("inf")
    for call in (lambda: prior(obs, INSTRUCTIONS), lambda: prior.distribution(obs.numpy(), INSTRUCTIONS)):
        with pytest.raises(
            ValueError, match=r"non-finite observation: row\(s\) 1, 3 of 4 hold NaN or inf"
        ) as err:
            call()
        assert "The observation must be finite" in str(err.value)


def test_observations_of_another_width_are_refused(tiny_lm):
    prior = build_prior(
        observation_space=observation_space(7),
        action_space=gym.spaces.Discrete(5),
        lm=tiny_lm,
        env_id="Toy-v0",
    )
    with pytest.raises(
        ValueError, match=r"observation width mismatch: the prior expects 7, received 39"
    ) as err:
        prior.distribution(np.zeros((2, 39)), INSTRUCTIONS[:2])
    assert "This prior was built for another environment (Toy-v0)" in str(err.value)
    with pytest.raises(ValueError, match="the prior expects 7, received 6"):
        prior(np.zeros(6), INSTRUCTIONS[0])
    mlp = build_prior(observation_space=observation_space(7), action_space=gym.spaces.Discrete(5), kind="mlp")
    with pytest.raises(ValueError, match=r"expects 7, received 8 \(observations of shape \(3, 8\)\)") as err:
        mlp(torch.zeros(3, 8), INSTRUCTIONS[0])
    assert "This prior was built for another environment:" in str(err.value)
