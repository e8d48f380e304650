"""Observation normalisation whose statistics are saved with the agent (CleanRL's scripts use gymnasium's
``NormalizeObservation`` wrapper, whose statistics a saved model loses: CleanRL issues 425 and 532)."""

import torch
import torch.nn as nn


class RunningMeanStd(nn.Module):
    """Running mean and variance of observations, as buffers so they are saved with the agent."""

    def __init__(self, shape):
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(shape, dtype=torch.float64))
        self.register_buffer("count", torch.tensor(1e-4, dtype=torch.float64))

    def update(self, x):
        batch_mean, batch_var, batch_count = x.mean(0), x.var(0, unbiased=False), x.shape[0]
        delta, total = batch_mean - self.mean, self.count + batch_count
        self.mean += delta * batch_count / total
        self.var = (self.var * self.count + batch_var * batch_count + delta**2 * self.count * batch_count / total) / total
        self.count = total

    def normalize(self, x):
        return torch.clamp((x - self.mean) / torch.sqrt(self.var + 1e-8), -10, 10).float()
