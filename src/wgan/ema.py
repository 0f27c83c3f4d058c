"""An exponential moving average of the generator's weights.

theta_ema <- beta * theta_ema + (1 - beta) * theta after every generator step (Karras et al.
2018, progressive GANs; Yazici et al. 2019, "The unusual effectiveness of averaging in GAN
training"). Samples and metrics use the averaged generator; training never reads it.
Buffers (batch-norm running statistics) are copied, not averaged.

Early in training a fixed decay would average in the random initial weights for ~1/(1-beta)
steps, so the decay warms up as beta_t = min(beta, (1 + t) / (10 + t)) after t updates (the
schedule of TensorFlow's ``ExponentialMovingAverage`` with ``num_updates``).
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """A frozen copy of ``module`` whose parameters track an exponential moving average."""

    def __init__(self, module: nn.Module, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.module = copy.deepcopy(module).requires_grad_(False)
        self._live = [p for p in module.parameters()]
        self._avg = [p for p in self.module.parameters()]
        self._live_buffers = list(module.buffers())
        self._avg_buffers = list(self.module.buffers())

    def current_decay(self) -> float:
        """beta_t = min(beta, (1 + t) / (10 + t)) for the next update."""
        t = self.updates
        return min(self.decay, (1.0 + t) / (10.0 + t))

    @torch.no_grad()
    def update(self) -> None:
        """theta_ema <- theta_ema + (1 - beta_t) (theta - theta_ema), in one fused call."""
        torch._foreach_lerp_(self._avg, self._live, 1.0 - self.current_decay())
        self.updates += 1
        for avg, live in zip(self._avg_buffers, self._live_buffers, strict=True):
            avg.copy_(live)

    def state_dict(self) -> dict:
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        if "module" in state:
            self.module.load_state_dict(state["module"])
            self.updates = int(state["updates"])
        else:  # a plain generator state dict (a checkpoint written without EMA)
            self.module.load_state_dict(state)
