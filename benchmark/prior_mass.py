"""Where does a CLEVR-Robot prior put its probability? On the goal's two balls, and on good pushes.

For scenes off the start state (a few random pushes from a reset) and the episode's train-split
instruction, the prior's mass on the 16 pushes of the goal's two balls (the only balls the expert
pushes; uniform: 0.4) and on the good pushes (those that make the goal hold, else the cheapest;
:func:`cleanrl_lago.envs.clevr_expert.good_actions`). A prior trained on mislabelled goals can put
its mass on the right balls and the wrong pushes: the picture behind part 13 of the results grid.

    python benchmark/prior_mass.py clevr-robot-smollm2 benchmark/comparison_priors/clevr-robot-smollm2-mislabelled
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np
import torch

import cleanrl_lago.envs  # noqa: F401  (registers CLEVR-Robot-v0)
from cleanrl_lago.envs.clevr_expert import good_actions
from cleanrl_lago.envs.clevr_robot import PUSH_DIRECTIONS
from priors import load_prior


def scenes(n: int, seed: int = 0) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
    """Observations, instructions, the goal balls' action mask and the good-push mask of up to ``n`` scenes."""
    env = gym.make("CLEVR-Robot-v0")
    rng = np.random.default_rng(seed)
    obs_rows, instructions, ball_masks, good_masks = [], [], [], []
    for scene in range(n):
        obs, info = env.reset(seed=seed + scene)
        terminated = False
        for _ in range(int(rng.integers(0, 5))):
            obs, _, terminated, _, _ = env.step(int(rng.integers(env.action_space.n)))
            if terminated:
                break
        if terminated:  # the goal holds already: no push to judge
            continue
        a, _, b = env.unwrapped.goal
        obs_rows.append(obs)
        instructions.append(info["instruction"])
        ball_masks.append(np.isin(np.arange(env.action_space.n) // len(PUSH_DIRECTIONS), (a, b)))
        good_masks.append(good_actions(env.unwrapped))
    env.close()
    return np.array(obs_rows, dtype=np.float32), instructions, np.array(ball_masks), np.array(good_masks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("priors", nargs="+", help="prior folders, Hub ids or shipped names")
    parser.add_argument("--scenes", type=int, default=200)
    args = parser.parse_args()
    obs, instructions, balls, good = scenes(args.scenes)
    print(
        f"{len(obs)} scenes; uniform: {balls.mean(1).mean():.3f} on the goal balls, {good.mean(1).mean():.3f} on good pushes"
    )
    for path in args.priors:
        with torch.no_grad():
            probs = torch.softmax(load_prior(path).predict(obs, instructions), -1).numpy()
        on_balls, on_good = (probs * balls).sum(1), (probs * good).sum(1)
        print(
            f"{path}: mass on the goal balls {on_balls.mean():.3f} ± {on_balls.std(ddof=1) / np.sqrt(len(probs)):.3f}, "
            f"on good pushes {on_good.mean():.3f} ± {on_good.std(ddof=1) / np.sqrt(len(probs)):.3f}"
        )


if __name__ == "__main__":
    main()
