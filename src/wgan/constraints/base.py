"""The constraint interface: :class:`Constraint`, whose three hooks are all no-ops.

Every mechanism in :mod:`wgan.constraints` is a small object with up to three hooks that the
training loop calls without knowing the maths:

* ``prepare(critic)``: change the parametrisation once (spectral normalisation);
* ``penalty(critic, real, fake, generator)``: a loss term added to the critic loss (the
  gradient penalty);
* ``project(critic)``: a projection after each critic optimiser step (weight clipping).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from wgan.errors import ConfigError


def check_real(owner: str, name: str, value: Any, low: float, strict: bool) -> float:
    """``value`` as a finite float ``> low`` (``strict``) or ``>= low``, else ConfigError.

    Checks Python numbers only (constructor arguments), never tensors: nothing here runs in
    the training step.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{owner}: {name} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or (v <= low if strict else v < low):
        bound = f"> {low:g}" if strict else f">= {low:g}"
        raise ConfigError(f"{owner}: {name} must be a finite number {bound}, got {value!r}")
    return v


class Constraint:
    """Base class: every hook is a no-op."""

    def prepare(self, critic: nn.Module) -> nn.Module:
        return critic

    def penalty(
        self,
        critic: Callable[[Tensor], Tensor],
        real: Tensor,
        fake: Tensor,
        eps: Tensor | torch.Generator | None,
        scale: Tensor | None = None,
        **overrides: Any,
    ) -> dict[str, Tensor]:
        return {}

    def project(self, critic: nn.Module) -> None:
        self.project_(list(critic.parameters()))

    def project_(self, params: list[Tensor], clip: float | Tensor | None = None) -> None:
        """The projection on a list of parameter tensors (in place); ``clip`` overrides c."""
        return None
