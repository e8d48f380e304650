"""Gymnasium environments of cleanrl-lago. Importing this module registers ``CLEVR-Robot-v0``."""

import gymnasium as gym

if "CLEVR-Robot-v0" not in gym.registry:
    gym.register(
        id="CLEVR-Robot-v0",
        entry_point="cleanrl_lago.envs.clevr_robot:ClevrRobotEnv",
        max_episode_steps=50,
    )
