"""The f-divergence table as data (Nowozin, Cseke & Tomioka 2016, arXiv 1606.00709, Tables 1-2).

One frozen :class:`FDivergence` per divergence in :data:`DIVERGENCES`, holding ``f``, ``f*``,
``g``, a numerically stable ``f*(g(v))``, ``f'`` and an independent closed form of ``D_f`` for
discrete distributions (the functions are in :mod:`wgan.objectives.fdivergence_formulas`);
:func:`get_divergence` looks a row up by name and :func:`weighted_jensen_shannon` builds the
weighted Jensen-Shannon row for any weight.  The f-GAN objective that uses a row is
:mod:`wgan.objectives.fdivergence`.

Honest notes on the table (the generator functions ``f`` of the rows are used exactly as
listed, and ``closed_form`` is ``∫ q f(p/q)`` for *these* ``f``):

* ``"jensen_shannon"``: ``f(u) = -(u+1) log((1+u)/2) + u log u`` gives
  ``∫ q f(p/q) = KL(P||M) + KL(Q||M) = 2 JSD(P, Q)`` with ``M = (P+Q)/2``.  The paper's
  Table 1 writes ``1/2 ∫ ...`` (i.e. ``JSD``) next to this ``f``; the 1/2 does not match the
  ``f``, so this divergence (and its estimate) is **twice** the usual JSD, in ``[0, 2 log 2]``.
* ``"weighted_jensen_shannon"`` gives ``pi KL(P||M) + (1-pi) KL(Q||M)``, ``M = pi P + (1-pi) Q``;
  at ``pi = 1/2`` this is the usual ``JSD`` (half of ``"jensen_shannon"``).
* ``"gan"``: ``f(u) = u log u - (u+1) log(u+1)`` gives ``2 JSD(P, Q) - log 4`` (in
  ``[-log 4, 0]``); its f-GAN objective is exactly the minimax GAN of Goodfellow et al. 2014.
  This ``f`` has ``f(1) = -log 4``, not 0 (it is the JS generator shifted by a constant), so
  ``D_f(P||P) = -log 4``; every other row has ``f(1) = 0``.
* ``"pearson"``: ``f(u) = (u-1)^2`` gives ``∫ (p-q)^2/q``; ``"neyman"``: ``f(u) = (1-u)^2/u``
  gives ``∫ (p-q)^2/p``.  The ``D_f`` column of the paper's Table 1 has these two swapped; we
  follow ``f``.
* ``"pearson"``: ``f*(t) = t^2/4 + t`` is the conjugate of ``(u-1)^2`` over all real ``u``;
  restricted to ``u >= 0`` the true conjugate is ``-1`` for ``t < -2``.  The table's ``f*`` is
  larger there, so the bound stays a valid (slightly looser) lower bound.

All ``f``-table functions accept torch tensors (and, for convenience in tests and analysis,
numpy arrays / floats, returned as numpy); the f-GAN objective uses tensors only.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from wgan.errors import ConfigError
from wgan.objectives import fdivergence_formulas as formulas

__all__ = [
    "DIVERGENCES",
    "FDivergence",
    "get_divergence",
    "weighted_jensen_shannon",
]


@dataclass(frozen=True)
class FDivergence:
    """One row of the f-GAN tables (Nowozin et al. 2016, Tables 1-2), as data.

    Attributes:
        name: registry key, also used as ``estimate_name`` of the f-GAN objective.
        f: convex generator ``f(u)``, ``u = p/q > 0``, with ``f(1) = 0`` (except ``"gan"``:
            ``-log 4``);
            ``D_f(P||Q) = ∫ q f(p/q)``.
        f_star: Fenchel conjugate ``f*(t)``, evaluated directly from its formula
            (valid on ``dom f*``).
        activation: output activation ``g(v)`` mapping the raw critic output ``v`` into
            ``dom f*``; the critic's function is ``T = g(v)``.
        f_star_of_activation: a numerically stable closed form of ``f*(g(v))`` (no inf/NaN
            for finite ``v`` of moderate size; used by the loss).
        f_prime: ``f'(u)``; the optimal critic is ``T*(x) = f'(p(x)/q(x))``.
        closed_form: ``closed_form(p, q)`` = ``D_f`` for discrete, strictly positive ``p, q``
            (1-D, summed over the last axis), written in its named closed form independently
            of ``f``.
        estimate_name: what the f-GAN estimate estimates (the divergence name).
        domain: ``dom f*`` in words.
        t_sup: ``sup dom f*`` (``inf`` if unbounded above); ``g`` stays below it.
        pi: the weight of ``"weighted_jensen_shannon"`` (``None`` for the others).
    """

    name: str
    f: Callable[..., Any]
    f_star: Callable[..., Any]
    activation: Callable[[Tensor], Tensor]
    f_star_of_activation: Callable[[Tensor], Tensor]
    f_prime: Callable[..., Any]
    closed_form: Callable[..., Any]
    estimate_name: str
    domain: str
    t_sup: float
    pi: float | None = None


def weighted_jensen_shannon(pi: float = 0.5) -> FDivergence:
    """The weighted Jensen-Shannon divergence with weight ``pi`` (f-GAN Tables 1-2).

    ``D = pi KL(P||M) + (1-pi) KL(Q||M)``, ``M = pi P + (1-pi) Q``; at ``pi = 1/2`` the usual
    JSD.  ``pi`` must be a real number in the open interval ``(0, 1)`` (else ``ConfigError``).
    """
    if isinstance(pi, bool) or not isinstance(pi, (int, float)) or not 0.0 < float(pi) < 1.0:
        raise ConfigError(f"weighted_jensen_shannon: pi must be a number in (0, 1); got {pi!r}")
    pi = float(pi)
    return FDivergence(
        name="weighted_jensen_shannon",
        f=functools.partial(formulas.weighted_jensen_shannon_f, pi=pi),
        f_star=functools.partial(formulas.weighted_jensen_shannon_f_star, pi=pi),
        activation=functools.partial(formulas.weighted_jensen_shannon_activation, pi=pi),
        f_star_of_activation=functools.partial(
            formulas.weighted_jensen_shannon_f_star_of_activation, pi=pi
        ),
        f_prime=functools.partial(formulas.weighted_jensen_shannon_f_prime, pi=pi),
        closed_form=functools.partial(formulas.weighted_jensen_shannon_closed_form, pi=pi),
        estimate_name="weighted_jensen_shannon",
        domain="t < -pi log pi",
        t_sup=-pi * math.log(pi),
        pi=pi,
    )


def _row(name: str, domain: str, t_sup: float, **fns: Callable[..., Any]) -> FDivergence:
    return FDivergence(name=name, estimate_name=name, domain=domain, t_sup=t_sup, **fns)


#: The f-GAN divergence table (Nowozin et al. 2016, Tables 1-2), keyed by name.
#: ``"weighted_jensen_shannon"`` is stored with ``pi = 0.5``; use :func:`get_divergence` or
#: :func:`weighted_jensen_shannon` for other weights.
DIVERGENCES: dict[str, FDivergence] = {
    "total_variation": _row(
        "total_variation",
        "|t| <= 1/2",
        0.5,
        f=formulas.total_variation_f,
        f_star=formulas.total_variation_f_star,
        activation=formulas.total_variation_activation,
        f_star_of_activation=formulas.total_variation_f_star_of_activation,
        f_prime=formulas.total_variation_f_prime,
        closed_form=formulas.total_variation_closed_form,
    ),
    "kl": _row(
        "kl",
        "t in R",
        math.inf,
        f=formulas.kl_f,
        f_star=formulas.kl_f_star,
        activation=formulas.identity,
        f_star_of_activation=formulas.kl_f_star_of_activation,
        f_prime=formulas.kl_f_prime,
        closed_form=formulas.kl_closed_form,
    ),
    "reverse_kl": _row(
        "reverse_kl",
        "t < 0",
        0.0,
        f=formulas.reverse_kl_f,
        f_star=formulas.reverse_kl_f_star,
        activation=formulas.reverse_kl_activation,
        f_star_of_activation=formulas.reverse_kl_f_star_of_activation,
        f_prime=formulas.reverse_kl_f_prime,
        closed_form=formulas.reverse_kl_closed_form,
    ),
    "pearson": _row(
        "pearson",
        "t in R",
        math.inf,
        f=formulas.pearson_f,
        f_star=formulas.pearson_f_star,
        activation=formulas.identity,
        f_star_of_activation=formulas.pearson_f_star_of_activation,
        f_prime=formulas.pearson_f_prime,
        closed_form=formulas.pearson_closed_form,
    ),
    "neyman": _row(
        "neyman",
        "t < 1",
        1.0,
        f=formulas.neyman_f,
        f_star=formulas.neyman_f_star,
        activation=formulas.one_minus_exp_neg,
        f_star_of_activation=formulas.neyman_f_star_of_activation,
        f_prime=formulas.neyman_f_prime,
        closed_form=formulas.neyman_closed_form,
    ),
    "squared_hellinger": _row(
        "squared_hellinger",
        "t < 1",
        1.0,
        f=formulas.squared_hellinger_f,
        f_star=formulas.squared_hellinger_f_star,
        activation=formulas.one_minus_exp_neg,
        f_star_of_activation=formulas.squared_hellinger_f_star_of_activation,
        f_prime=formulas.squared_hellinger_f_prime,
        closed_form=formulas.squared_hellinger_closed_form,
    ),
    "jeffrey": _row(
        "jeffrey",
        "t in R",
        math.inf,
        f=formulas.jeffrey_f,
        f_star=formulas.jeffrey_f_star,
        activation=formulas.identity,
        f_star_of_activation=formulas.jeffrey_f_star_of_activation,
        f_prime=formulas.jeffrey_f_prime,
        closed_form=formulas.jeffrey_closed_form,
    ),
    "jensen_shannon": _row(
        "jensen_shannon",
        "t < log 2",
        formulas.LOG2,
        f=formulas.jensen_shannon_f,
        f_star=formulas.jensen_shannon_f_star,
        activation=formulas.jensen_shannon_activation,
        f_star_of_activation=formulas.jensen_shannon_f_star_of_activation,
        f_prime=formulas.jensen_shannon_f_prime,
        closed_form=formulas.jensen_shannon_closed_form,
    ),
    "weighted_jensen_shannon": weighted_jensen_shannon(0.5),
    "gan": _row(
        "gan",
        "t < 0",
        0.0,
        f=formulas.gan_f,
        f_star=formulas.gan_f_star,
        activation=formulas.gan_activation,
        f_star_of_activation=formulas.gan_f_star_of_activation,
        f_prime=formulas.gan_f_prime,
        closed_form=formulas.gan_closed_form,
    ),
}


def get_divergence(name: str, pi: float = 0.5) -> FDivergence:
    """Look up an f-divergence by name; ``pi`` is used only by ``"weighted_jensen_shannon"``.

    Raises :class:`wgan.errors.ConfigError` (listing the valid names) for an unknown name, or
    for ``pi`` outside ``(0, 1)`` with the weighted Jensen-Shannon divergence.
    """
    if not isinstance(name, str) or name not in DIVERGENCES:
        raise ConfigError(f"unknown f-divergence {name!r}; valid choices: {', '.join(DIVERGENCES)}")
    if name == "weighted_jensen_shannon":
        return weighted_jensen_shannon(pi)
    return DIVERGENCES[name]
