"""What running a shipped prior's frozen LM in bfloat16 instead of fp32 costs in accuracy and buys in speed.

Both shipped priors were trained with the LM in fp32 and ship running it in bf16. This loads each
twice, with ``quantization="none"`` (fp32) and ``quantization="bf16"``, and on expert states (Meta-World's
scripted policies on the MT10 tasks, the CLEVR-Robot expert, with their instructions) prints

* the prior's throughput in states/s (one batch of 256 states, best of 3 calls, this machine's
  threads);
* how far the bf16 distribution is from the fp32 one: KL(fp32 || bf16) per state (mean, 99th
  percentile, max) and, for Meta-World, the largest change of a mean or a log-std;
* for scale, the KL between the fp32 prior at consecutive states of one episode (mean).

    python benchmark/prior_precision.py [--threads N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch.distributions import kl_divergence

from cleanrl_lago.demonstrations import clevr_episodes, metaworld_episodes
from cleanrl_lago.envs.metaworld_tasks import MT10_TASKS
from priors import DEFAULT_PRIORS, load_prior


def expert_states(env_id: str) -> tuple[torch.Tensor, list[str], np.ndarray]:
    """Observations, instructions and episode indices of expert episodes (last observations dropped)."""
    if env_id == "CLEVR-Robot-v0":
        episodes = list(clevr_episodes(120, seed=1000))  # short episodes: about 3 steps each
    else:
        episodes = list(metaworld_episodes(list(MT10_TASKS), 2, seed=1000, max_episode_steps=150))
    obs = np.concatenate([ep.observations[:-1] for ep in episodes])
    lengths = [len(ep.observations) - 1 for ep in episodes]
    instructions = [ep.instruction for ep, n in zip(episodes, lengths, strict=True) for _ in range(n)]
    episode = np.repeat(np.arange(len(episodes)), lengths)
    return torch.as_tensor(obs, dtype=torch.float32), instructions, episode


@torch.no_grad()
def params_of(prior, obs: torch.Tensor, instructions: list[str], batch: int = 256) -> torch.Tensor:
    return torch.cat(
        [prior(obs[i : i + batch], instructions[i : i + batch]) for i in range(0, len(obs), batch)]
    )


@torch.no_grad()
def states_per_second(prior, obs: torch.Tensor, instructions: list[str], batch: int = 256) -> float:
    obs, instructions = obs[:batch], instructions[:batch]
    prior(obs, instructions)  # warm-up, fills the prefix cache
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        prior(obs, instructions)
        best = min(best, time.perf_counter() - start)
    return len(obs) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch threads: {torch.get_num_threads()}")
    for env_id, name in DEFAULT_PRIORS.items():
        obs, instructions, episode = expert_states(env_id)
        fp32 = load_prior(name, quantization="none").eval()
        bf16 = load_prior(name, quantization="bf16").eval()
        p32, p16 = params_of(fp32, obs, instructions), params_of(bf16, obs, instructions)
        d32, d16 = fp32.distribution_from_params(p32), bf16.distribution_from_params(p16)
        kl = kl_divergence(d32, d16)
        # consecutive states of the same episode
        same = torch.as_tensor(episode[1:] == episode[:-1])
        step_kl = kl_divergence(
            fp32.distribution_from_params(p32[1:][same]), fp32.distribution_from_params(p32[:-1][same])
        )
        sps32, sps16 = states_per_second(fp32, obs, instructions), states_per_second(bf16, obs, instructions)
        print(f"\n{name} ({env_id}), {len(obs)} expert states in {episode[-1] + 1} episodes")
        print(f"  states/s: fp32 {sps32:.0f}, bf16 {sps16:.0f} ({sps16 / sps32:.2f}x)")
        print(
            f"  KL(fp32 || bf16) per state: mean {kl.mean():.2e}, 99th percentile "
            f"{kl.quantile(0.99):.2e}, max {kl.max():.2e} nats"
        )
        if not fp32.config.is_discrete:
            (m32, s32), (m16, s16) = p32.chunk(2, dim=-1), p16.chunk(2, dim=-1)
            print(
                f"  largest change: mean {(m32 - m16).abs().max():.3f}, log-std {(s32 - s16).abs().max():.3f}"
            )
        print(f"  for scale, KL(fp32 prior at s_t+1 || at s_t): mean {step_kl.mean():.2e} nats")


if __name__ == "__main__":
    main()
