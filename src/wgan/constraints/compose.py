"""Several constraints at once: :class:`Constraints` and :func:`make_constraints` (from a config).

E.g. spectral normalisation plus a gradient penalty; each hook runs the parts' hooks in order
(spectral norm, then the penalty, then clipping, as :func:`make_constraints` lists them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from wgan.constraints.base import Constraint, check_real
from wgan.constraints.clipping import WeightClipping
from wgan.constraints.penalty import GradientPenalty
from wgan.constraints.spectral import SpectralNorm


class Constraints(Constraint):
    """Several constraints applied together (e.g. spectral norm plus a gradient penalty)."""

    def __init__(self, parts: list[Constraint]) -> None:
        self.parts = parts

    def prepare(self, critic: nn.Module) -> nn.Module:
        for part in self.parts:
            critic = part.prepare(critic)
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
        terms: dict[str, Tensor] = {}
        for part in self.parts:
            terms.update(part.penalty(critic, real, fake, eps, scale, **overrides))
        return terms

    def project_(self, params: list[Tensor], clip: float | Tensor | None = None) -> None:
        for part in self.parts:
            part.project_(params, clip)

    @property
    def has_penalty(self) -> bool:
        return any(isinstance(p, GradientPenalty) for p in self.parts)

    @property
    def has_projection(self) -> bool:
        return any(isinstance(p, WeightClipping) for p in self.parts)

    @property
    def penalty_every(self) -> int:
        """How often (in critic steps) the penalty terms are due; 1 when there are none."""
        return max((p.every for p in self.parts if isinstance(p, GradientPenalty)), default=1)


def make_constraints(
    clip: float = 0.0,
    penalty: str = "none",
    penalty_weight: float = 10.0,
    penalty_target: float = 1.0,
    penalty_every: int = 1,
    spectral_norm: bool = False,
    penalty_impl: str = "autograd",
) -> Constraints:
    """Compose the constraints a config asks for (see :class:`wgan.config.ConstraintConfig`).

    ``clip`` is a finite number >= 0 (0 turns clipping off); ``penalty`` is ``"none"`` or a
    :class:`GradientPenalty` mode, whose parameters are then validated by it.

    Raises:
        ConfigError: a negative or non-finite ``clip``, an unknown ``penalty`` or an invalid
            penalty parameter.
    """
    clip = check_real("make_constraints", "clip", clip, 0.0, strict=False)
    parts: list[Constraint] = []
    if spectral_norm:
        parts.append(SpectralNorm())
    if penalty != "none":
        parts.append(
            GradientPenalty(penalty_weight, penalty, penalty_target, penalty_every, penalty_impl)
        )
    if clip > 0:
        parts.append(WeightClipping(clip))
    return Constraints(parts)
