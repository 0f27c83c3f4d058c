"""The f-GAN objective (Nowozin, Cseke & Tomioka 2016, arXiv 1606.00709).

An f-divergence with convex generator ``f``, ``f(1) = 0``, is ``D_f(P||Q) = ∫ q f(p/q)``.
With the Fenchel conjugate ``f*(t) = sup_u (t u - f(u))`` it has the variational lower bound
(Nguyen, Wainwright & Jordan 2010; f-GAN eq. 4)

    D_f(P||Q) >= sup_T  E_P[T(x)] - E_Q[f*(T(x))],

tight at ``T*(x) = f'(p(x)/q(x))``.  f-GAN parametrises ``T = g(v)``: ``v`` is the raw critic
output and ``g`` an output activation mapping ``R`` into ``dom f*`` (f-GAN Table 2).

The divergences are stored AS DATA: one frozen :class:`FDivergence` per divergence in
:data:`DIVERGENCES` (:mod:`wgan.objectives.fdivergence_table`, with notes on what each row's
``f`` gives; the formulas are in :mod:`wgan.objectives.fdivergence_formulas`).  This module
holds the objective built on a row: :func:`variational_bound`, :func:`fgan_critic_loss`,
:func:`fgan_generator_loss` and :class:`FGAN`; the table's names are importable from here too.
"""

from __future__ import annotations

from torch import Tensor

from wgan.errors import ConfigError
from wgan.objectives.base import Objective, as_batch
from wgan.objectives.fdivergence_table import (
    DIVERGENCES,
    FDivergence,
    get_divergence,
    weighted_jensen_shannon,
)

__all__ = [
    "DIVERGENCES",
    "FGAN",
    "GENERATOR_LOSSES",
    "FDivergence",
    "fgan_critic_loss",
    "fgan_generator_loss",
    "get_divergence",
    "variational_bound",
    "weighted_jensen_shannon",
]

#: Generator-loss modes of :class:`FGAN`.
GENERATOR_LOSSES = ("saddle", "alternative")


def variational_bound(
    t_real: Tensor,
    f_star_t_fake: Tensor,
    p: Tensor | None = None,
    q: Tensor | None = None,
) -> Tensor:
    """Variational lower bound ``E_P[T] - E_Q[f*(T)] <= D_f(P||Q)`` (f-GAN eq. 4).

    Args:
        t_real: ``T(x)`` at points ``x ~ P`` (or at every support point, with weights ``p``).
        f_star_t_fake: ``f*(T(x))`` at points ``x ~ Q`` (or at every support point, with
            weights ``q``).
        p, q: optional probability weights over the last axis; ``None`` means the sample mean.

    Returns:
        ``sum_x p(x) T(x) - sum_x q(x) f*(T(x))`` (weighted), or
        ``mean T(x_real) - mean f*(T(x_fake))`` (samples).  Equality holds at
        ``T* = f'(p/q)`` (Nguyen et al. 2010).
    """
    e_p = t_real.mean(-1) if p is None else (p * t_real).sum(-1)  # E_P[T]
    e_q = f_star_t_fake.mean(-1) if q is None else (q * f_star_t_fake).sum(-1)  # E_Q[f*(T)]
    return e_p - e_q


def fgan_critic_loss(
    real_out: Tensor, fake_out: Tensor, divergence: FDivergence
) -> dict[str, Tensor]:
    """f-GAN critic loss (Nowozin et al. 2016, eq. 6 with ``T = g(v)``).

    P = data (real), Q = model (fake).  The critic maximises
    ``F = E_P[g(v(x))] - E_Q[f*(g(v(x)))]``; ``loss = -F``; ``estimate = F``, the variational
    lower bound on ``D_f(P||Q)`` (tight at the optimal critic).  ``f*(g(v))`` is evaluated
    with ``divergence.f_star_of_activation`` (stable closed form).

    Returns ``loss``, ``estimate``, ``t_real`` (``E_P[T]``), ``f_star_fake``
    (``E_Q[f*(T)]``), ``d_real``/``d_fake`` (mean raw outputs).
    """
    v_real, v_fake = as_batch(real_out), as_batch(fake_out)
    t_real = divergence.activation(v_real).mean()  # E_P[T(x)], T = g(v)
    f_star_fake = divergence.f_star_of_activation(v_fake).mean()  # E_Q[f*(T(x))]
    estimate = t_real - f_star_fake  # variational lower bound on D_f(P||Q)
    return {
        "loss": -estimate,
        "estimate": estimate,
        "t_real": t_real,
        "f_star_fake": f_star_fake,
        "d_real": v_real.mean(),
        "d_fake": v_fake.mean(),
    }


def fgan_generator_loss(
    fake_out: Tensor, divergence: FDivergence, mode: str = "saddle"
) -> dict[str, Tensor]:
    """f-GAN generator loss (Nowozin et al. 2016, sec. 3 and 3.2).

    * ``"saddle"``: the generator minimises the saddle objective; only its ``E_Q`` term
      depends on G, so ``loss = -E_Q[f*(g(v(G(z))))]``.  (For ``"gan"`` this is the
      saturating minimax loss ``E log(1 - D(G(z)))``.)
    * ``"alternative"``: the heuristic of sec. 3.2, the generator *maximises*
      ``E_Q[g(v(G(z)))]``: ``loss = -E_Q[T]``.  (For ``"gan"`` this is the non-saturating
      loss ``-E log D(G(z))``.)
    """
    v_fake = as_batch(fake_out)
    if mode == "saddle":
        loss = -divergence.f_star_of_activation(v_fake).mean()  # min_G -E_Q[f*(T)]
    elif mode == "alternative":
        loss = -divergence.activation(v_fake).mean()  # max_G E_Q[T]
    else:
        raise ConfigError(
            f"unknown f-GAN generator_loss {mode!r}; valid choices: {', '.join(GENERATOR_LOSSES)}"
        )
    return {"loss": loss}


class FGAN(Objective):
    """f-GAN objective (Nowozin, Cseke & Tomioka 2016) for one divergence of the table.

    Args:
        divergence: a name in :data:`DIVERGENCES`.
        pi: weight of ``"weighted_jensen_shannon"`` in ``(0, 1)``; ignored by the others.
        generator_loss: ``"saddle"`` (minimise ``-E_Q[f*(T(G(z)))]``) or ``"alternative"``
            (maximise ``E_Q[T(G(z))]``, sec. 3.2).  Stored as ``generator_mode`` (the name
            ``generator_loss`` is the method).

    ``estimate_name`` is the divergence's name; see :mod:`wgan.objectives.fdivergence_table`
    for what each divergence equals with the table's ``f`` (e.g. ``"jensen_shannon"`` is 2 JSD).
    """

    name = "fgan"

    def __init__(self, divergence: str, pi: float = 0.5, generator_loss: str = "saddle") -> None:
        if generator_loss not in GENERATOR_LOSSES:
            raise ConfigError(
                f"unknown f-GAN generator_loss {generator_loss!r}; "
                f"valid choices: {', '.join(GENERATOR_LOSSES)}"
            )
        self.divergence: FDivergence = get_divergence(divergence, pi)
        self.generator_mode: str = generator_loss
        self.estimate_name: str = self.divergence.estimate_name

    def critic_loss(self, real_out: Tensor, fake_out: Tensor) -> dict[str, Tensor]:
        """See :func:`fgan_critic_loss`."""
        return fgan_critic_loss(real_out, fake_out, self.divergence)

    def fake_term(self, fake_out: Tensor) -> Tensor:
        return self.divergence.f_star_of_activation(as_batch(fake_out)).mean()  # E_Q f*(T)

    def generator_loss(self, fake_out: Tensor) -> dict[str, Tensor]:
        """See :func:`fgan_generator_loss`."""
        return fgan_generator_loss(fake_out, self.divergence, self.generator_mode)

    def __repr__(self) -> str:
        extra = f", pi={self.divergence.pi}" if self.divergence.pi is not None else ""
        return (
            f"FGAN(divergence={self.divergence.name!r}{extra}, "
            f"generator_loss={self.generator_mode!r})"
        )
