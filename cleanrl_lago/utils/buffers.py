"""Replay buffers for ``sac_lago.py`` (CleanRL imports Stable-Baselines3's; ours is inline and small, and
checkpoints hold it): a FIFO replay memory, and the same memory with the frozen prior's parameters at each
transition's next observation, computed in batches by the script's own function (LaGO)."""

import time
from concurrent.futures import Future, ThreadPoolExecutor
from types import SimpleNamespace

import numpy as np
import torch


class ReplayBuffer:
    """A FIFO replay memory of float32 arrays (in place of SB3's), sampled with NumPy's global RNG; checkpoints hold it."""

    def __init__(self, buffer_size, obs_dim, act_dim, device, **extra_dims):
        self.buffer_size, self.device, self.pos, self.size = buffer_size, device, 0, 0
        dims = dict(observations=obs_dim, next_observations=obs_dim, actions=act_dim, rewards=1, dones=1, **extra_dims)
        self.arrays = {name: np.zeros((buffer_size, dim), dtype=np.float32) for name, dim in dims.items()}

    def add(self, obs, next_obs, actions, rewards, dones, infos=None, *extra):
        rows = (self.pos + np.arange(len(rewards))) % self.buffer_size
        for array, value in zip(self.arrays.values(), (obs, next_obs, actions, rewards, dones, *extra), strict=True):
            array[rows] = np.reshape(value, (len(rows), -1))
        self.pos, self.size = (self.pos + len(rows)) % self.buffer_size, min(self.size + len(rows), self.buffer_size)

    def sample(self, batch_size):
        rows = np.random.randint(0, self.size, size=batch_size)
        return SimpleNamespace(**{k: torch.as_tensor(v[rows], device=self.device) for k, v in self.arrays.items()})

    def state_dict(self):  # the filled part only, so that an early checkpoint stays small
        return {"pos": self.pos, "size": self.size, **{k: v[: self.size].copy() for k, v in self.arrays.items()}}

    def load_state_dict(self, state):
        self.pos, self.size = state["pos"], state["size"]
        for name, array in self.arrays.items():
            array[: self.size] = state[name]


class PriorReplayBuffer(ReplayBuffer):
    """The replay buffer plus the prior's (mean, log_std) at each transition's next observation, as the script's
    ``prior_params_at(next_observations)`` computes them. New transitions wait in ``staging`` until
    ``prior_batch_size`` have arrived; ``prior_params_at`` then evaluates them in one batch, in a thread of its
    own (``prior_async``: the batch enters the buffer when the next one is handed over) or inline. The step that
    reaches ``learning_starts`` hands everything over and waits, so learning starts on all of it. ``prior_time``
    is the time the caller spent waiting for the prior."""

    def __init__(self, args, obs_dim, act_dim, device, prior_params_at):
        super().__init__(args.buffer_size, obs_dim, act_dim, device, prior_params=2 * act_dim)
        self.prior_params_at, self.args = prior_params_at, args
        self.staging, self.pending, self.prior_time = [], [], 0.0  # pending: at most one future
        self.added = 0  # transitions added so far: the env steps
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prior")

    def add(self, obs, next_obs, actions, rewards, dones, infos=None):
        self.staging.append((obs, next_obs, actions, rewards, dones))
        self.added += len(rewards)
        if self.added - len(rewards) <= self.args.learning_starts < self.added:
            self.hand_over(wait=True)
        elif len(self.staging) * len(rewards) >= self.args.prior_batch_size:
            self.hand_over()

    def hand_over(self, wait=False):
        """The staged batch goes to the prior; the one it finished before enters the buffer (this one too if `wait`)."""
        start = time.time()
        if self.pending:
            super().add(*self.pending.pop().result())
        if self.staging:
            self.pending.append(self.thread.submit(self.with_prior_params, self.staging))
            self.staging = []
        if self.pending and (wait or not self.args.prior_async):
            super().add(*self.pending.pop().result())
        self.prior_time += time.time() - start

    def with_prior_params(self, staged):
        batch = [np.concatenate(field) for field in zip(*staged, strict=True)]
        return (*batch, None, self.prior_params_at(batch[1]))  # no infos, then the prior's parameters

    def state_dict(self):  # the staged transitions and the batch in the prior's hands (awaited, not in the buffer)
        pending = self.pending[0].result() if self.pending else None
        return {**super().state_dict(), "staging": self.staging, "pending": pending, "added": self.added}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.staging, self.pending = state["staging"], [Future()] if state["pending"] is not None else []
        self.added = state["added"]
        if self.pending:
            self.pending[0].set_result(state["pending"])

    def close(self):
        self.thread.shutdown()
