"""Lipschitz constraints on the critic, composable with any objective.

Three mechanisms, each a small object with up to three hooks that the training loop calls
without knowing the maths:

* ``prepare(critic)``: change the parametrisation once (spectral normalisation);
* ``penalty(critic, real, fake, generator)``: a loss term added to the critic loss (the
  gradient penalty);
* ``project(critic)``: a projection after each critic optimiser step (weight clipping).

Modules: :mod:`~wgan.constraints.base` (the :class:`Constraint` interface),
:mod:`~wgan.constraints.clipping` (weight clipping), :mod:`~wgan.constraints.spectral`
(spectral normalisation), :mod:`~wgan.constraints.const_mask` (constant activation masks for
the penalty's double backward), :mod:`~wgan.constraints.penalty` (interpolates, input-gradient
norms, the gradient penalty) and :mod:`~wgan.constraints.compose` (:class:`Constraints`,
:func:`make_constraints`). Imports flow one way: base, const_mask -> clipping, spectral,
penalty -> compose.
"""

from __future__ import annotations

from wgan.constraints.base import Constraint
from wgan.constraints.clipping import WeightClipping
from wgan.constraints.compose import Constraints, make_constraints
from wgan.constraints.penalty import (
    GradientPenalty,
    input_gradient_norm,
    input_gradient_norm_func,
    interpolates,
)
from wgan.constraints.spectral import SpectrallyNormalised, SpectralNorm

__all__ = [
    "Constraint",
    "Constraints",
    "GradientPenalty",
    "SpectralNorm",
    "SpectrallyNormalised",
    "WeightClipping",
    "input_gradient_norm",
    "input_gradient_norm_func",
    "interpolates",
    "make_constraints",
]
