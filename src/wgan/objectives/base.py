"""The :class:`Objective` interface every GAN objective implements.

An objective turns raw critic outputs into the scalars the two players minimise, plus a
scalar ``estimate`` of the divergence/distance its critic implicitly measures (e.g. the
Jensen-Shannon divergence for the minimax GAN of Goodfellow et al. 2014, the Wasserstein-1
distance for WGAN of Arjovsky et al. 2017, an f-divergence for f-GAN of Nowozin et al. 2016).

Conventions shared by all objectives:

* ``real_out`` / ``fake_out`` are the critic's *raw* outputs (logits, scores), shape ``(B,)``
  or ``(B, 1)``; ``(B, 1)`` is flattened to ``(B,)``.  Real and fake batch sizes may differ.
* Every returned value is a 0-d tensor that stays on the autograd graph: no ``.item()``, no
  host synchronisation, no data-dependent Python control flow (the training step may be
  CUDA-graph captured).
* ``critic_loss`` returns at least ``{'loss', 'estimate'}``; ``generator_loss`` at least
  ``{'loss'}``.  Both losses are *minimised*.
"""

from __future__ import annotations

import abc

from torch import Tensor

from wgan.errors import WganError

__all__ = ["Objective", "as_batch"]


def as_batch(out: Tensor) -> Tensor:
    """Flatten a critic output of shape ``(B,)`` or ``(B, 1)`` to ``(B,)``.

    Raises :class:`wgan.errors.WganError` for any other shape (a critic with several outputs
    per sample is a model/objective mismatch, not something to average silently).
    """
    if not isinstance(out, Tensor):
        raise WganError(f"critic output must be a tensor, got {type(out).__name__}")
    if out.dim() == 2 and out.shape[1] == 1:
        out = out.reshape(out.shape[0])  # (B, 1) -> (B,)
    elif out.dim() != 1:
        raise WganError(f"critic output must have shape (B,) or (B, 1); got {tuple(out.shape)}")
    if out.shape[0] == 0:
        raise WganError("critic output is an empty batch (a mean over 0 samples is undefined)")
    return out


class Objective(abc.ABC):
    """A GAN objective: critic loss, generator loss and the divergence estimate.

    Attributes:
        name: registry name of the objective (``"minimax"``, ``"wasserstein"``, ``"fgan"`` ...).
        estimate_name: what ``critic_loss(...)['estimate']`` estimates, e.g. ``"js"``,
            ``"w1"``, ``"tv"``, ``"triangular"`` or an f-divergence name such as ``"kl"``.
    """

    name: str
    estimate_name: str

    @abc.abstractmethod
    def critic_loss(self, real_out: Tensor, fake_out: Tensor) -> dict[str, Tensor]:
        """Critic (discriminator) loss.

        Args:
            real_out: raw critic outputs on data samples, shape ``(B,)`` or ``(B, 1)``.
            fake_out: raw critic outputs on generated samples, shape ``(B',)`` or ``(B', 1)``.

        Returns:
            At least ``{'loss': scalar the critic MINIMISES, 'estimate': scalar estimate of
            the divergence/distance its critic implies}``; objectives add more named scalars
            (``'d_real'``, ``'d_fake'`` = mean raw outputs, ...).  All 0-d, on the graph.
        """

    @abc.abstractmethod
    def generator_loss(self, fake_out: Tensor) -> dict[str, Tensor]:
        """Generator loss from raw critic outputs on generated samples.

        Returns:
            At least ``{'loss': scalar the generator MINIMISES}``; all values 0-d, on the graph.
        """

    def fake_term(self, fake_out: Tensor) -> Tensor:
        """The part of the critic's loss that scores ``fake_out`` as fake (a 0-d tensor).

        Every critic loss here is separable, ``loss(real, fake) = A(real) + B(fake)``; this is
        ``B``. A conditional critic adds ``B`` of real images paired with wrong labels: the
        third term ``(1/m) sum log(1 - D(c^i, x_hat^i))`` of the matching-aware discriminator
        (Reed et al. 2016, GAN-CLS).
        """
        raise NotImplementedError(f"{type(self).__name__} does not define fake_term")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, estimate_name={self.estimate_name!r})"
