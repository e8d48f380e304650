"""Does a CLEVR-Robot prior read word order? Mean KL between the prior for a goal and for its swap.

For each scene (random play from a reset) and each template of a split, the goal "A <rel> B" and its
swap "B <rel> A" are rendered with the same template, and ``KL(p(.|s, goal) || p(.|s, swap))`` is
averaged over scenes, goals and templates. A bag of words gives 0 (both instructions hold the same
words); issue 12 asks for at least 1 nat from the LM prior.

    python benchmark/prior_order.py clevr-robot-smollm2 runs/priors/clevr-gru-v1 --scenes 50 --split test
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np
import torch

import cleanrl_lago.envs  # noqa: F401  (registers CLEVR-Robot-v0)
from cleanrl_lago.envs.clevr_robot import instruction_text, split_templates
from priors import load_prior


def swap_kl(prior, scenes: int, split: str, seed: int = 0) -> tuple[float, float]:
    """Mean and standard error of KL(goal || swapped goal) per (scene, template) pair."""
    env = gym.make("CLEVR-Robot-v0")
    rng = np.random.default_rng(seed)
    obs_rows, goals, swaps = [], [], []
    for scene in range(scenes):
        obs, _ = env.reset(seed=seed + scene)
        for _ in range(int(rng.integers(0, 5))):  # a few random pushes: scenes off the start state
            obs, *_ = env.step(int(rng.integers(env.action_space.n)))
        a, rel, b = env.unwrapped.goal
        for template in split_templates(split):
            obs_rows.append(obs)
            goals.append(instruction_text((a, rel, b), template))
            swaps.append(instruction_text((b, rel, a), template))
    obs = np.array(obs_rows, dtype=np.float32)
    log_p = torch.log_softmax(prior.predict(obs, goals), -1)
    log_q = torch.log_softmax(prior.predict(obs, swaps), -1)
    kl = (log_p.exp() * (log_p - log_q)).sum(-1).numpy()
    return float(kl.mean()), float(kl.std(ddof=1) / np.sqrt(len(kl)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("priors", nargs="+", help="prior folders, Hub ids or shipped names")
    parser.add_argument("--scenes", type=int, default=50)
    parser.add_argument("--split", default="test", help="train, validation or test phrasings")
    args = parser.parse_args()
    for path in args.priors:
        mean, sem = swap_kl(load_prior(path), args.scenes, args.split)
        print(f"{path}: KL(goal || swapped goal) = {mean:.3f} ± {sem:.3f} nats ({args.split} phrasings)")


if __name__ == "__main__":
    main()
