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
from torch import Tensor, nn


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
        return ema_decay(self.decay, self.updates)

    def update(self) -> None:
        """theta_ema <- theta_ema + (1 - beta_t) (theta - theta_ema) (:func:`ema_update_`)."""
        state = {
            "ema": dict(zip(range(len(self._avg)), self._avg, strict=True)),
            "ema_buf": dict(zip(range(len(self._avg_buffers)), self._avg_buffers, strict=True)),
            "g_buf": dict(zip(range(len(self._live_buffers)), self._live_buffers, strict=True)),
        }
        ema_update_(state, self._live, self.current_decay(), functional=False)
        self.updates += 1

    def state_dict(self) -> dict:
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        if "module" in state:
            self.module.load_state_dict(state["module"])
            self.updates = int(state["updates"])
        else:  # a plain generator state dict (a checkpoint written without EMA)
            self.module.load_state_dict(state)


@torch.no_grad()
def ema_update_(state: dict, live: list[Tensor], decay: float | Tensor, functional: bool) -> None:
    """theta_ema <- theta_ema + (1 - beta_t)(theta - theta_ema) in place; buffers are copied.

    ``state['ema']`` / ``state['ema_buf']`` hold the average's parameters and buffers,
    ``state['g_buf']`` the live buffers, ``live`` the live parameters; ``decay`` is beta_t (a
    float, or a tensor in a compiled or vmapped step, where the update avoids foreach ops).
    """
    avg = list(state["ema"].values())
    if functional:
        for a, p in zip(avg, live, strict=True):
            a.copy_(a + (1.0 - decay) * (p - a))
    else:
        torch._foreach_lerp_(avg, live, 1.0 - decay)
    for a, b in zip(state["ema_buf"].values(), state["g_buf"].values(), strict=True):
        a.copy_(b)


def ema_decay(decay: float, updates: int | Tensor) -> float | Tensor:
    """beta_t = min(beta, (1 + t) / (10 + t)) after t updates (warm-up, see :mod:`wgan.gan.ema`)."""
    if isinstance(updates, Tensor):
        return torch.clamp((1.0 + updates) / (10.0 + updates), max=decay)
    return min(decay, (1.0 + updates) / (10.0 + updates))
