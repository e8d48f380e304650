"""LM-prior inference throughput (states/s) with and without the prefix cache, and its roofline fraction.

Measured in one run on this machine, with the default LM (SmolLM2-135M, fp32) and realistic
CLEVR-Robot inputs: observations from random play (24 numbers; the prior reads the first 10, the
ball positions) and the environment's training instructions, 16 distinct ones per batch or 1.

* cached: ``features(..., use_cache=True)``, the prompts' keys/values come from the prefix cache
  (filled before timing: the steady state of PPO or prior training), only the soft tokens run;
* full: ``features(..., use_cache=False)``, prompt and soft tokens recomputed for every state.

The roofline is the best fp32 ``torch.mm`` throughput of a 2048x576 @ 576x1536 product (the shape
of SmolLM2's MLP at batch 2048), measured in the same run with the same threads. Model FLOPs per
state count only useful work (no padding): ``2 * P * t`` for the ``P`` non-embedding LM parameters
over the ``t`` tokens a state runs through (the soft tokens; plus its prompt's tokens without the
cache), plus causal attention ``4 * hidden * context`` per layer and token (scores and weighted
sum, ``context`` = the positions the token attends to), plus ``2 *`` the parameters of the
observation projection and action head. Rotary embeddings, norms, activations and softmax are left
out (under 1%).

Each figure is the best of a few calls (another job may share the CPU); batch 2048 runs once.

``--designs`` measures instead the cost per state of each prior design of docs/priors.md (issue 12):
``Prior.predict`` (what the RL scripts call: normalisation, the network, no grad) at a rollout step's
batch (16 envs) and a whole rollout's (2,048 states), 16 distinct instructions, caches warm, untrained
weights (speed does not depend on them). The ratio is each design's states/s over the GRU baseline's.

``--cheaper`` measures, on the shipped CLEVR-Robot prior (trained weights, real states), what
issue 15 proposes to make each pass cheaper: ``Prior.predict`` in fp32 (as shipped), under CPU
autocast to bf16 (this CPU has AVX512-BF16), and with ``torch.compile`` on the per-state parts
(trunk and action head); states/s at batch 16 and 2,048, and how far each moves the prior's
distribution from fp32's (largest total-variation distance over 2,048 states).

    python benchmark/prior_throughput.py [--quick] [--threads N] [--designs [--lm gemma-3-270m] | --cheaper]
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np
import torch

import cleanrl_lago.envs  # noqa: F401  (registers CLEVR-Robot-v0)
from cleanrl_lago.envs.clevr_robot import all_instructions
from priors import DEFAULT_LM, build_prior, load_lm


def roofline_gflops(repeats: int) -> float:
    """Best fp32 GFLOP/s of a 2048x576 @ 576x1536 matrix product."""
    a, b = torch.randn(2048, 576), torch.randn(576, 1536)
    for _ in range(3):
        torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(10):
            torch.mm(a, b)
        best = min(best, (time.perf_counter() - start) / 10)
    return 2 * 2048 * 576 * 1536 / best / 1e9


def clevr_observations(n: int) -> np.ndarray:
    env = gym.make("CLEVR-Robot-v0")
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)
    out = []
    for step in range(n):
        obs, *_ = env.step(int(rng.integers(env.action_space.n)))
        out.append(obs)
        if step % 50 == 49:
            obs, _ = env.reset()
    return np.asarray(out, dtype=np.float32)


def flops_per_state(prior, prompt_lengths: list[int], cached: bool) -> float:
    """Useful forward FLOPs per state (see the module docstring), averaged over the batch's rows."""
    config = prior.lm.config
    hidden, layers = config.hidden_size, config.num_hidden_layers
    embedding = prior.lm.get_input_embeddings().weight.numel()
    lm_params = sum(p.numel() for p in prior.lm.parameters()) - embedding
    head_params = sum(p.numel() for m in (prior.projection, prior.action_head) for p in m.parameters())
    n_soft = prior.config.n_obs_tokens
    total = 0.0
    for length in prompt_lengths:
        first = length if cached else 0  # position of the first token that runs
        positions = range(first, length + n_soft)
        total += 2 * lm_params * len(positions)
        total += sum(4 * hidden * (p + 1) * layers for p in positions)
        total += 2 * head_params
    return total / len(prompt_lengths)


def best_time(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


DESIGNS = (
    ("gru (from scratch)", dict(kind="gru")),
    ("mlp (bag of words)", dict(kind="mlp")),
    ("lm-instruction, layer 4 (shipped)", dict(kind="lm-instruction", lm_layers=4)),
    ("lm-instruction, layer 12", dict(kind="lm-instruction", lm_layers=12)),
    ("lm-instruction, all layers", dict(kind="lm-instruction")),
    ("lm soft tokens, 1 token, layer 4", dict(kind="lm", n_obs_tokens=1, lm_layers=4)),
    ("lm soft tokens, 1 token, layer 12", dict(kind="lm", n_obs_tokens=1, lm_layers=12)),
    ("lm soft tokens, 1 token, all layers", dict(kind="lm", n_obs_tokens=1)),
    ("lm soft tokens, 4 tokens, layer 4", dict(kind="lm", n_obs_tokens=4, lm_layers=4)),
    ("lm soft tokens, 4 tokens, all layers", dict(kind="lm", n_obs_tokens=4)),
)


def design_table(repeats: int, lm_name: str) -> None:
    """States/s of ``Prior.predict`` for each design (see the module docstring), on the LM ``lm_name``."""
    instructions = all_instructions("train")
    observations = clevr_observations(2048)
    lm = load_lm(lm_name)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; LM {lm.name} fp32; states/s of Prior.predict"
    )
    header = f"{'design':<34}{'batch 16':>12}{'batch 2048':>12}{'vs gru (16)':>13}{'vs gru (2048)':>15}"
    print(header)
    print("-" * len(header))
    rates: dict[str, tuple[float, float]] = {}
    for name, options in DESIGNS:
        prior = build_prior(
            observation_space=gym.spaces.Box(-np.inf, np.inf, (24,), dtype=np.float32),
            action_space=gym.spaces.Discrete(40),
            lm=lm,
            observation_dims=10,
            **options,
        )
        prior.set_normalization(observations[:, :10].mean(0), observations[:, :10].std(0))
        row = []
        for batch in (16, 2048):
            batch_instructions = [instructions[(i * 7) % 16] for i in range(batch)]
            obs = observations[:batch]
            prior.predict(obs[:16], batch_instructions[:16])  # warm-up: caches, first-call costs
            seconds = best_time(lambda p=prior, o=obs, i=batch_instructions: p.predict(o, i), repeats)
            row.append(batch / seconds)
        rates[name] = (row[0], row[1])
        base = rates["gru (from scratch)"]
        print(
            f"{name:<34}{row[0]:>12.0f}{row[1]:>12.0f}{row[0] / base[0]:>13.2f}{row[1] / base[1]:>15.2f}",
            flush=True,
        )


def cheaper_table(repeats: int) -> None:
    """States/s and distance from fp32 of the shipped CLEVR-Robot prior's variants (module docstring)."""
    from priors import DEFAULT_PRIORS, load_prior

    prior = load_prior(DEFAULT_PRIORS["CLEVR-Robot-v0"])
    instructions = [all_instructions("train")[(i * 7) % 16] for i in range(2048)]
    observations = clevr_observations(2048)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; {prior.config.lm_name}, shipped prior"
    )
    with torch.no_grad():
        reference = torch.softmax(prior.predict(observations, instructions), dim=-1)
    eager_trunk, eager_head = prior.trunk, prior.action_head

    def fp32(obs, instr):
        return prior.predict(obs, instr)

    def bf16(obs, instr):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return prior.predict(obs, instr).float()

    compiled = (torch.compile(eager_trunk), torch.compile(eager_head))

    def compiled_predict(obs, instr):
        prior.trunk, prior.action_head = compiled
        try:
            return prior.predict(obs, instr)
        finally:
            prior.trunk, prior.action_head = eager_trunk, eager_head

    header = f"{'variant':<34}{'batch 16':>12}{'batch 2048':>12}{'vs fp32 (16)':>14}{'vs fp32 (2048)':>16}{'max TV':>9}"
    print(header)
    print("-" * len(header))
    base: tuple[float, float] | None = None
    for name, fn in (
        ("fp32 (shipped)", fp32),
        ("autocast bf16", bf16),
        ("torch.compile trunk + head", compiled_predict),
    ):
        start = time.perf_counter()
        for batch in (16, 2048, 7):  # first calls: caches, compilation for each shape
            fn(observations[:batch], instructions[:batch])
        warm_up = time.perf_counter() - start
        rates = []
        for batch in (16, 2048):
            obs, instr = observations[:batch], instructions[:batch]
            rates.append(
                batch / best_time(lambda f=fn, o=obs, i=instr: f(o, i), repeats * (5 if batch == 16 else 1))
            )
        with torch.no_grad():
            tv = 0.5 * (torch.softmax(fn(observations, instructions), dim=-1) - reference).abs().sum(-1).max()
        base = base or (rates[0], rates[1])
        print(
            f"{name:<34}{rates[0]:>12.0f}{rates[1]:>12.0f}{rates[0] / base[0]:>14.2f}{rates[1] / base[1]:>16.2f}"
            f"{tv.item():>9.4f}   (warm-up {warm_up:.1f} s)",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, no batch-2048 full recompute")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--designs", action="store_true", help="cost per state of each prior design instead")
    parser.add_argument(
        "--lm", default=DEFAULT_LM, help="--designs: the LM (default: SmolLM2-135M; gemma-3-270m)"
    )
    parser.add_argument(
        "--cheaper", action="store_true", help="bf16 and torch.compile on the shipped prior instead"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats = 2 if args.quick else 3
    wall = time.perf_counter()
    if args.designs or args.cheaper:
        design_table(repeats, args.lm) if args.designs else cheaper_table(repeats)
        print(f"total {time.perf_counter() - wall:.0f} s")
        return

    roofline = roofline_gflops(5)
    instructions = all_instructions("train")
    observations = clevr_observations(2048)
    lm = load_lm()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; LM {lm.name} fp32")
    print(f"roofline: fp32 torch.mm 2048x576 @ 576x1536 = {roofline:.1f} GFLOP/s")
    print()
    header = "n_obs_tokens  distinct  batch  path    states/s   ms/call  GFLOP/state  GFLOP/s  of roofline"
    print(header)
    print("-" * len(header))
    speedups, fractions = [], []
    for n_obs_tokens in (4, 1):
        prior = build_prior(
            observation_space=gym.spaces.Box(-np.inf, np.inf, (24,), dtype=np.float32),
            action_space=gym.spaces.Discrete(40),
            lm=lm,
            n_obs_tokens=n_obs_tokens,
            observation_dims=10,
        )
        prior.set_normalization(observations[:, :10].mean(0), observations[:, :10].std(0))
        for distinct, batch in ((1, 1), (1, 64), (16, 64), (1, 2048), (16, 2048)):
            batch_instructions = [instructions[(i * 7) % distinct] for i in range(batch)]
            obs = prior.normalize(observations[:batch])
            lengths = [len(prior.token_ids(s)) for s in batch_instructions]
            rates = {}
            for path in ("cached", "full"):
                if path == "full" and batch == 2048 and (args.quick or (n_obs_tokens, distinct) != (4, 16)):
                    continue  # about 2 minutes each; one such figure is enough

                def call(prior=prior, path=path, obs=obs, batch_instructions=batch_instructions):
                    with torch.no_grad():
                        prior.features(obs, batch_instructions, use_cache=path == "cached")

                with torch.no_grad():  # warm-up on a slice: fills the prefix cache, first-call costs
                    prior.features(obs[:8], batch_instructions[:8], use_cache=path == "cached")
                seconds = best_time(call, 1 if batch == 2048 else repeats)
                flops = flops_per_state(prior, lengths, cached=path == "cached")
                rates[path] = batch / seconds
                achieved = flops * rates[path] / 1e9
                print(
                    f"{n_obs_tokens:>12}  {distinct:>8}  {batch:>5}  {path:<6}  {rates[path]:>8.1f}  "
                    f"{seconds * 1000:>8.0f}  {flops / 1e9:>11.3f}  {achieved:>7.1f}  {achieved / roofline:>10.0%}",
                    flush=True,
                )
                if batch == 2048 and path == "cached":
                    fractions.append(achieved / roofline)
            if batch == 64:
                speedups.append((n_obs_tokens, distinct, rates["cached"] / rates["full"]))
    print()
    for n_obs_tokens, distinct, ratio in speedups:
        print(
            f"prefix-cache speed-up at batch 64 (n_obs_tokens {n_obs_tokens}, {distinct} distinct): {ratio:.1f}x"
        )
    print(f"cached batch-2048 fraction of roofline: {min(fractions):.0%} to {max(fractions):.0%}")
    roofline_end = roofline_gflops(5)
    print(f"roofline measured again at the end: {roofline_end:.1f} GFLOP/s")
    print(f"total {time.perf_counter() - wall:.0f} s")


if __name__ == "__main__":
    main()
