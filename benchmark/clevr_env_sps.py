"""CLEVR-Robot-v0 env steps/s on one env, and as a ratio of the raw physics floor.

The floor is the same push done with nothing but MuJoCo: place the pusher, set the control,
``mj_step`` 40 substeps. Both are measured in this one run, on the same random actions.

    python benchmark/clevr_env_sps.py [--steps 20000]
"""

import argparse
import time

import gymnasium as gym
import mujoco
import numpy as np

import cleanrl_lago.envs  # noqa: F401  (registers CLEVR-Robot-v0)
from cleanrl_lago.envs.clevr_robot import PUSH_DIRECTIONS, PUSH_OFFSET, PUSH_SUBSTEPS


def env_sps(actions: np.ndarray) -> float:
    env = gym.make("CLEVR-Robot-v0")
    env.reset(seed=0)
    start = time.perf_counter()
    for a in actions:
        _, _, terminated, truncated, _ = env.step(int(a))
        if terminated or truncated:
            env.reset()
    return len(actions) / (time.perf_counter() - start)


def raw_sps(actions: np.ndarray) -> float:
    scene = gym.make("CLEVR-Robot-v0").unwrapped
    scene.reset(seed=0)
    model, data = scene.model, scene.data
    balls, pusher_q, pusher_v = scene._ball_qpos, scene._pusher_qpos, scene._pusher_dof
    start = time.perf_counter()
    for a in actions:
        ball, direction = divmod(int(a), 8)
        d = PUSH_DIRECTIONS[direction]
        data.qpos[pusher_q] = data.qpos[balls[ball] : balls[ball] + 2] - PUSH_OFFSET * d
        data.qvel[pusher_v] = 0.0
        data.ctrl[:] = d
        mujoco.mj_step(model, data, nstep=PUSH_SUBSTEPS)
    return len(actions) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    actions = np.random.default_rng(0).integers(0, 40, size=args.steps)
    # Best of a few alternating repeats, so both figures see the same machine load.
    env_best = raw_best = 0.0
    for _ in range(args.repeats):
        env_best = max(env_best, env_sps(actions))
        raw_best = max(raw_best, raw_sps(actions))
    print(f"CLEVR-Robot-v0 (gym.make, 1 env): {env_best:,.0f} env steps/s")
    print(f"raw mj_step floor (40 substeps): {raw_best:,.0f} pushes/s")
    print(f"ratio env / raw: {env_best / raw_best:.2f}")


if __name__ == "__main__":
    main()
