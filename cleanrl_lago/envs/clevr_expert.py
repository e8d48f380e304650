"""A scripted CLEVR-Robot expert, the source of the demonstrations for the prior.

It is a one-step model-predictive controller on the true physics: every push of ball A or ball B
(16 of the 40 actions) is simulated on a scratch copy of the scene, and it takes a push that
makes the goal hold, or else the one that brings ball A closest to a target point next to ball B,
where the target's distance outside the walls counts double (so it moves B away from a wall when
A cannot get to the needed side). Ties break towards the lower action index.

:func:`good_actions` is the set behind that choice, the target priors learn: every one of the 40
pushes that makes the goal hold, or, when none does, every push whose cost is within
:data:`GOOD_TOLERANCE` of the best push's (see docs/demonstrations.md for how it was chosen).

Run ``python -m cleanrl_lago.envs.clevr_expert --episodes 200`` to measure its success rate
(``--policy good-set --tolerance T``: a uniform choice among the good pushes).
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np

from cleanrl_lago.envs.clevr_robot import (
    BALL_RADIUS,
    NUM_ACTIONS,
    PUSH_DIRECTIONS,
    RELATION_DIRECTIONS,
    WALL_X,
    WALL_Y_BEHIND,
    WALL_Y_FRONT,
    ClevrRobotEnv,
    relation_holds,
)

TARGET_DISTANCE = 0.32
GOOD_TOLERANCE = 0.02
"""A push is as good as the best when its cost exceeds the best cost by at most this (metres)."""
_LOW = np.array([-WALL_X + BALL_RADIUS, WALL_Y_BEHIND + BALL_RADIUS])
_HIGH = np.array([WALL_X - BALL_RADIUS, WALL_Y_FRONT - BALL_RADIUS])


def _cost(positions: np.ndarray, goal: tuple[int, int, int]) -> float:
    a, rel, b = goal
    target = positions[b] + TARGET_DISTANCE * RELATION_DIRECTIONS[rel]
    outside = np.linalg.norm(np.maximum(_LOW - target, 0.0) + np.maximum(target - _HIGH, 0.0))
    return float(np.linalg.norm(positions[a] - target) + 2.0 * outside)


def expert_action(env: ClevrRobotEnv) -> int:
    """The expert's push for the current scene and goal of ``env`` (the unwrapped env)."""
    a, _, b = env.goal
    n_dirs = len(PUSH_DIRECTIONS)
    best_action, best_cost = a * n_dirs, np.inf
    for ball in (a, b):
        for direction in range(n_dirs):
            action = ball * n_dirs + direction
            positions = env.simulate(action)
            if relation_holds(positions, env.goal):
                return action
            cost = _cost(positions, env.goal)
            if cost < best_cost:
                best_action, best_cost = action, cost
    return best_action


def push_outcomes(env: ClevrRobotEnv) -> tuple[np.ndarray, np.ndarray]:
    """For each of the 40 pushes, simulated on a scratch copy: whether the goal holds after it
    ([40] bool) and the expert's cost after it ([40] float)."""
    holds, costs = np.zeros(NUM_ACTIONS, dtype=bool), np.zeros(NUM_ACTIONS)
    for action in range(NUM_ACTIONS):
        positions = env.simulate(action)
        holds[action] = relation_holds(positions, env.goal)
        costs[action] = _cost(positions, env.goal)
    return holds, costs


def good_actions(env: ClevrRobotEnv, tolerance: float = GOOD_TOLERANCE) -> np.ndarray:
    """[40] bool: the pushes that make the goal hold now, or if none does, those whose cost is at
    most ``tolerance`` above the lowest cost of all 40 pushes (never empty)."""
    return expert_labels(env, tolerance)[1]


def expert_labels(env: ClevrRobotEnv, tolerance: float = GOOD_TOLERANCE) -> tuple[int, np.ndarray]:
    """``(expert_action(env), good_actions(env, tolerance))`` from one simulation of each push."""
    holds, costs = push_outcomes(env)
    a, _, b = env.goal
    n_dirs = len(PUSH_DIRECTIONS)
    candidates = [ball * n_dirs + direction for ball in (a, b) for direction in range(n_dirs)]
    holding = [action for action in candidates if holds[action]]
    # As expert_action: the first push (in its order) that makes the goal hold, else the first cheapest.
    action = holding[0] if holding else min(candidates, key=lambda c: costs[c])
    good = holds if holds.any() else costs <= costs.min() + tolerance
    return action, good


def evaluate(
    episodes: int,
    seed: int = 0,
    instruction_split: str = "train",
    policy: str = "expert",
    tolerance: float = GOOD_TOLERANCE,
) -> tuple[float, float, float]:
    """Run the expert (or, for reference, uniformly random pushes, or ``"good-set"``: a uniform
    choice among :func:`good_actions` with ``tolerance``) for ``episodes`` episodes.

    Returns (success rate, mean episode length, env steps/s)."""
    if policy not in ("expert", "random", "good-set"):
        raise ValueError(f"unknown policy {policy!r}: use 'expert', 'random' or 'good-set'")
    env = gym.make("CLEVR-Robot-v0", instruction_split=instruction_split)
    env.action_space.seed(seed)
    rng = np.random.default_rng(seed)
    successes, lengths, start = 0, [], time.perf_counter()
    for episode in range(episodes):
        env.reset(seed=seed + episode)
        for t in range(1, 10_000):
            if policy == "expert":
                action = expert_action(env.unwrapped)
            elif policy == "random":
                action = env.action_space.sample()
            else:
                action = int(rng.choice(np.flatnonzero(good_actions(env.unwrapped, tolerance))))
            _, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                successes += bool(info["success"])
                lengths.append(t)
                break
    elapsed = time.perf_counter() - start
    env.close()
    return successes / episodes, float(np.mean(lengths)), sum(lengths) / elapsed


def main() -> None:
    import cleanrl_lago.envs  # noqa: F401  (registers CLEVR-Robot-v0)

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--instruction-split", default="train")
    parser.add_argument("--policy", default="expert", choices=["expert", "random", "good-set"])
    parser.add_argument("--tolerance", type=float, default=GOOD_TOLERANCE, help="good-set: cost tolerance")
    args = parser.parse_args()
    rate, length, sps = evaluate(args.episodes, args.seed, args.instruction_split, args.policy, args.tolerance)
    label = f"good-set (tolerance {args.tolerance})" if args.policy == "good-set" else args.policy
    print(
        f"CLEVR-Robot {label} policy: success {rate:.1%} over {args.episodes} episodes "
        f"(seeds {args.seed}..{args.seed + args.episodes - 1}), mean length {length:.1f}, {sps:.0f} env steps/s"
    )


if __name__ == "__main__":
    main()
