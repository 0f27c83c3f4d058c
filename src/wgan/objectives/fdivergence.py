"""f-divergences and the f-GAN objective (Nowozin, Cseke & Tomioka 2016, arXiv 1606.00709).

An f-divergence with convex generator ``f``, ``f(1) = 0``, is ``D_f(P||Q) = ∫ q f(p/q)``.
With the Fenchel conjugate ``f*(t) = sup_u (t u - f(u))`` it has the variational lower bound
(Nguyen, Wainwright & Jordan 2010; f-GAN eq. 4)

    D_f(P||Q) >= sup_T  E_P[T(x)] - E_Q[f*(T(x))],

tight at ``T*(x) = f'(p(x)/q(x))``.  f-GAN parametrises ``T = g(v)``: ``v`` is the raw critic
output and ``g`` an output activation mapping ``R`` into ``dom f*`` (f-GAN Table 2).

Everything is stored AS DATA: one frozen :class:`FDivergence` per divergence in
:data:`DIVERGENCES`, holding ``f``, ``f*``, ``g``, a numerically stable ``f*(g(v))``, ``f'``
and an independent closed form of ``D_f`` for discrete distributions.

Honest notes on the table (the generator functions ``f`` below are used exactly as listed, and
``closed_form`` is ``∫ q f(p/q)`` for *these* ``f``):

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

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from wgan.errors import ConfigError
from wgan.objectives.base import Objective, as_batch
from wgan.objectives.lambertw import lambertw_exp

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

_LOG2 = math.log(2.0)

#: Generator-loss modes of :class:`FGAN`.
GENERATOR_LOSSES = ("saddle", "alternative")


def _array_api(fn: Callable[..., Tensor]) -> Callable[..., Any]:
    """Let a torch function also take numpy arrays / floats (computed in float64, returned as
    numpy: a numpy array, or a ``np.float64`` for 0-d results)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if all(isinstance(a, Tensor) for a in args):
            return fn(*args, **kwargs)
        any_tensor = any(isinstance(a, Tensor) for a in args)
        targs = [
            a if isinstance(a, Tensor) else torch.as_tensor(np.asarray(a, dtype=np.float64))
            for a in args
        ]
        out = fn(*targs, **kwargs)
        if any_tensor:
            return out
        arr = out.detach().cpu().numpy()
        return arr[()] if arr.ndim == 0 else arr

    return wrapper


def _log1mexp(x: Tensor) -> Tensor:
    """``log(1 - exp(x))`` for ``x < 0``, stable (Mächler 2012: switch at ``-log 2``).

    Each branch gets clamped input so the unused branch of ``torch.where`` never yields
    inf/NaN (which would poison the gradient).
    """
    tiny = torch.finfo(x.dtype).tiny
    near0 = torch.clamp(x, min=-_LOG2, max=-tiny)  # branch for -log 2 < x < 0
    far = torch.clamp(x, max=-_LOG2)  # branch for x <= -log 2
    return torch.where(
        x > -_LOG2,
        torch.log(-torch.expm1(near0)),  # log(1 - e^x) = log(-expm1(x)), accurate near 0
        torch.log1p(-torch.exp(far)),  # log1p(-e^x), accurate for very negative x
    )


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


# --------------------------------------------------------------------------------------------
# Total variation: f(u) = 1/2 |u - 1|, f*(t) = t on |t| <= 1/2, g(v) = 1/2 tanh(v).
# --------------------------------------------------------------------------------------------


@_array_api
def _tv_f(u: Tensor) -> Tensor:
    return 0.5 * torch.abs(u - 1.0)  # 1/2 |u - 1|


@_array_api
def _tv_f_star(t: Tensor) -> Tensor:
    return t  # f*(t) = t on |t| <= 1/2


def _tv_g(v: Tensor) -> Tensor:
    return 0.5 * torch.tanh(v)  # maps R onto (-1/2, 1/2)


def _tv_f_star_g(v: Tensor) -> Tensor:
    return 0.5 * torch.tanh(v)  # f*(g(v)) = g(v)


@_array_api
def _tv_f_prime(u: Tensor) -> Tensor:
    return 0.5 * torch.sign(u - 1.0)  # a subgradient of 1/2 |u-1| (0 at u = 1)


@_array_api
def _tv_closed(p: Tensor, q: Tensor) -> Tensor:
    return 0.5 * torch.abs(p - q).sum(-1)  # TV = 1/2 sum |p - q|


# --------------------------------------------------------------------------------------------
# Kullback-Leibler: f(u) = u log u, f*(t) = exp(t - 1), g(v) = v.
# --------------------------------------------------------------------------------------------


@_array_api
def _kl_f(u: Tensor) -> Tensor:
    return torch.xlogy(u, u)  # u log u


@_array_api
def _kl_f_star(t: Tensor) -> Tensor:
    return torch.exp(t - 1.0)  # exp(t - 1)


def _identity(v: Tensor) -> Tensor:
    return v  # g(v) = v (dom f* = R)


def _kl_f_star_g(v: Tensor) -> Tensor:
    return torch.exp(v - 1.0)  # exp(v - 1)


@_array_api
def _kl_f_prime(u: Tensor) -> Tensor:
    return 1.0 + torch.log(u)  # d/du u log u


@_array_api
def _kl_closed(p: Tensor, q: Tensor) -> Tensor:
    return (p * torch.log(p / q)).sum(-1)  # KL(P||Q) = sum p log(p/q)


# --------------------------------------------------------------------------------------------
# Reverse KL: f(u) = -log u, f*(t) = -1 - log(-t) (t < 0), g(v) = -exp(-v).
# --------------------------------------------------------------------------------------------


@_array_api
def _rkl_f(u: Tensor) -> Tensor:
    return -torch.log(u)  # -log u


@_array_api
def _rkl_f_star(t: Tensor) -> Tensor:
    return -1.0 - torch.log(-t)  # -1 - log(-t), t < 0


def _rkl_g(v: Tensor) -> Tensor:
    return -torch.exp(-v)  # maps R onto (-inf, 0)


def _rkl_f_star_g(v: Tensor) -> Tensor:
    return v - 1.0  # -1 - log(exp(-v))


@_array_api
def _rkl_f_prime(u: Tensor) -> Tensor:
    return -1.0 / u  # d/du (-log u)


@_array_api
def _rkl_closed(p: Tensor, q: Tensor) -> Tensor:
    return (q * torch.log(q / p)).sum(-1)  # KL(Q||P) = sum q log(q/p)


# --------------------------------------------------------------------------------------------
# Pearson chi^2: f(u) = (u - 1)^2, f*(t) = t^2/4 + t, g(v) = v.
# --------------------------------------------------------------------------------------------


@_array_api
def _pearson_f(u: Tensor) -> Tensor:
    return (u - 1.0).square()  # (u - 1)^2


@_array_api
def _pearson_f_star(t: Tensor) -> Tensor:
    return 0.25 * t.square() + t  # t^2/4 + t


def _pearson_f_star_g(v: Tensor) -> Tensor:
    return 0.25 * v.square() + v  # g = identity


@_array_api
def _pearson_f_prime(u: Tensor) -> Tensor:
    return 2.0 * (u - 1.0)  # d/du (u-1)^2


@_array_api
def _pearson_closed(p: Tensor, q: Tensor) -> Tensor:
    return ((p - q).square() / q).sum(-1)  # sum (p - q)^2 / q


# --------------------------------------------------------------------------------------------
# Neyman chi^2: f(u) = (1 - u)^2 / u, f*(t) = 2 - 2 sqrt(1 - t) (t < 1), g(v) = 1 - exp(-v).
# --------------------------------------------------------------------------------------------


@_array_api
def _neyman_f(u: Tensor) -> Tensor:
    return (1.0 - u).square() / u  # (1 - u)^2 / u


@_array_api
def _neyman_f_star(t: Tensor) -> Tensor:
    return 2.0 - 2.0 * torch.sqrt(1.0 - t)  # 2 - 2 sqrt(1 - t), t < 1


def _one_minus_exp_neg(v: Tensor) -> Tensor:
    return -torch.expm1(-v)  # 1 - exp(-v): maps R onto (-inf, 1)


def _neyman_f_star_g(v: Tensor) -> Tensor:
    return 2.0 - 2.0 * torch.exp(-0.5 * v)  # 2 - 2 sqrt(exp(-v))


@_array_api
def _neyman_f_prime(u: Tensor) -> Tensor:
    return 1.0 - 1.0 / u.square()  # d/du (u - 2 + 1/u)


@_array_api
def _neyman_closed(p: Tensor, q: Tensor) -> Tensor:
    return ((p - q).square() / p).sum(-1)  # sum (p - q)^2 / p


# --------------------------------------------------------------------------------------------
# Squared Hellinger: f(u) = (sqrt u - 1)^2, f*(t) = t/(1 - t) (t < 1), g(v) = 1 - exp(-v).
# --------------------------------------------------------------------------------------------


@_array_api
def _hellinger_f(u: Tensor) -> Tensor:
    return (torch.sqrt(u) - 1.0).square()  # (sqrt(u) - 1)^2


@_array_api
def _hellinger_f_star(t: Tensor) -> Tensor:
    return t / (1.0 - t)  # t / (1 - t), t < 1


def _hellinger_f_star_g(v: Tensor) -> Tensor:
    return torch.expm1(v)  # (1 - e^-v) / e^-v = e^v - 1


@_array_api
def _hellinger_f_prime(u: Tensor) -> Tensor:
    return 1.0 - 1.0 / torch.sqrt(u)  # d/du (u - 2 sqrt(u) + 1)


@_array_api
def _hellinger_closed(p: Tensor, q: Tensor) -> Tensor:
    return (torch.sqrt(p) - torch.sqrt(q)).square().sum(-1)  # sum (sqrt p - sqrt q)^2


# --------------------------------------------------------------------------------------------
# Jeffrey: f(u) = (u - 1) log u, f*(t) = W(e^{1-t}) + 1/W(e^{1-t}) + t - 2, g(v) = v.
# --------------------------------------------------------------------------------------------


@_array_api
def _jeffrey_f(u: Tensor) -> Tensor:
    return (u - 1.0) * torch.log(u)  # (u - 1) log u


def _jeffrey_conj(t: Tensor) -> Tensor:
    # f'(u) = log u + 1 - 1/u = t; with w = 1/u: w + log w = 1 - t, so w = W(e^{1-t}) and
    # f*(t) = t/w - f(1/w) = w + 1/w + t - 2.  1/w = exp(w - (1 - t)) since w e^w = e^{1-t}.
    a = 1.0 - t
    w = lambertw_exp(a)  # W(e^{1-t}), computed in log space
    return w + torch.exp(w - a) + t - 2.0  # W + 1/W + t - 2


_jeffrey_f_star = _array_api(_jeffrey_conj)


def _jeffrey_f_star_g(v: Tensor) -> Tensor:
    return _jeffrey_conj(v)  # g = identity; stable for moderate v


@_array_api
def _jeffrey_f_prime(u: Tensor) -> Tensor:
    return torch.log(u) + 1.0 - 1.0 / u  # d/du (u - 1) log u


@_array_api
def _jeffrey_closed(p: Tensor, q: Tensor) -> Tensor:
    return ((p - q) * (torch.log(p) - torch.log(q))).sum(-1)  # KL(P||Q) + KL(Q||P)


# --------------------------------------------------------------------------------------------
# Jensen-Shannon (this f gives 2 JSD): f(u) = -(u+1) log((1+u)/2) + u log u,
# f*(t) = -log(2 - e^t) (t < log 2), g(v) = log 2 - softplus(-v).
# --------------------------------------------------------------------------------------------


@_array_api
def _js_f(u: Tensor) -> Tensor:
    return -(u + 1.0) * torch.log((1.0 + u) / 2.0) + torch.xlogy(u, u)


@_array_api
def _js_f_star(t: Tensor) -> Tensor:
    return -torch.log(2.0 - torch.exp(t))  # -log(2 - e^t), t < log 2


def _js_g(v: Tensor) -> Tensor:
    return _LOG2 - F.softplus(-v)  # log(2 sigmoid(v)) in (-inf, log 2)


def _js_f_star_g(v: Tensor) -> Tensor:
    return F.softplus(v) - _LOG2  # -log(2 - 2 sigmoid(v)) = -log 2 - log sigmoid(-v)


@_array_api
def _js_f_prime(u: Tensor) -> Tensor:
    return torch.log(2.0 * u / (1.0 + u))  # log u - log((1+u)/2)


@_array_api
def _js_closed(p: Tensor, q: Tensor) -> Tensor:
    m = 0.5 * (p + q)
    return (p * torch.log(p / m) + q * torch.log(q / m)).sum(-1)  # KL(P||M) + KL(Q||M) = 2 JSD


# --------------------------------------------------------------------------------------------
# Weighted Jensen-Shannon, weight pi in (0, 1):
# f(u) = pi u log u - (1 - pi + pi u) log(1 - pi + pi u),
# f*(t) = (1 - pi) log((1 - pi)/(1 - pi e^{t/pi})) (t < -pi log pi),
# g(v) = -pi log pi - softplus(-v).
# --------------------------------------------------------------------------------------------


@_array_api
def _wjs_f(u: Tensor, *, pi: float) -> Tensor:
    m = 1.0 - pi + pi * u
    return pi * torch.xlogy(u, u) - torch.xlogy(m, m)  # pi u log u - m log m


@_array_api
def _wjs_f_star(t: Tensor, *, pi: float) -> Tensor:
    return (1.0 - pi) * torch.log((1.0 - pi) / (1.0 - pi * torch.exp(t / pi)))


def _wjs_g(v: Tensor, *, pi: float) -> Tensor:
    return -pi * math.log(pi) - F.softplus(-v)  # -pi log pi + log sigmoid(v) < -pi log pi


def _wjs_f_star_g(v: Tensor, *, pi: float) -> Tensor:
    # pi e^{g/pi} = pi e^{-log pi} e^{logsigmoid(v)/pi} = exp(logsigmoid(v)/pi), so
    # f*(g(v)) = (1 - pi) [log(1 - pi) - log(1 - exp(logsigmoid(v)/pi))].
    x = -F.softplus(-v) / pi  # logsigmoid(v)/pi <= 0; log1mexp keeps it finite up to x -> 0-
    return (1.0 - pi) * (math.log(1.0 - pi) - _log1mexp(x))


@_array_api
def _wjs_f_prime(u: Tensor, *, pi: float) -> Tensor:
    return pi * torch.log(u / (1.0 - pi + pi * u))  # pi log u - pi log(1 - pi + pi u)


@_array_api
def _wjs_closed(p: Tensor, q: Tensor, *, pi: float) -> Tensor:
    m = pi * p + (1.0 - pi) * q  # mixture M = pi P + (1 - pi) Q
    return (pi * p * torch.log(p / m) + (1.0 - pi) * q * torch.log(q / m)).sum(-1)


# --------------------------------------------------------------------------------------------
# GAN: f(u) = u log u - (u+1) log(u+1) (gives 2 JSD - log 4),
# f*(t) = -log(1 - e^t) (t < 0), g(v) = -softplus(-v) = log sigmoid(v).
# --------------------------------------------------------------------------------------------


@_array_api
def _gan_f(u: Tensor) -> Tensor:
    return torch.xlogy(u, u) - (u + 1.0) * torch.log1p(u)  # u log u - (u+1) log(u+1)


@_array_api
def _gan_f_star(t: Tensor) -> Tensor:
    return -torch.log(-torch.expm1(t))  # -log(1 - e^t), t < 0


def _gan_g(v: Tensor) -> Tensor:
    return -F.softplus(-v)  # log sigmoid(v) = log D(x)


def _gan_f_star_g(v: Tensor) -> Tensor:
    return F.softplus(v)  # -log(1 - sigmoid(v)) = -log(1 - D(x))


@_array_api
def _gan_f_prime(u: Tensor) -> Tensor:
    return torch.log(u / (1.0 + u))  # log u - log(1 + u)


@_array_api
def _gan_closed(p: Tensor, q: Tensor) -> Tensor:
    s = p + q
    return (p * torch.log(p / s) + q * torch.log(q / s)).sum(-1)  # 2 JSD - log 4


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
        f=functools.partial(_wjs_f, pi=pi),
        f_star=functools.partial(_wjs_f_star, pi=pi),
        activation=functools.partial(_wjs_g, pi=pi),
        f_star_of_activation=functools.partial(_wjs_f_star_g, pi=pi),
        f_prime=functools.partial(_wjs_f_prime, pi=pi),
        closed_form=functools.partial(_wjs_closed, pi=pi),
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
        f=_tv_f,
        f_star=_tv_f_star,
        activation=_tv_g,
        f_star_of_activation=_tv_f_star_g,
        f_prime=_tv_f_prime,
        closed_form=_tv_closed,
    ),
    "kl": _row(
        "kl",
        "t in R",
        math.inf,
        f=_kl_f,
        f_star=_kl_f_star,
        activation=_identity,
        f_star_of_activation=_kl_f_star_g,
        f_prime=_kl_f_prime,
        closed_form=_kl_closed,
    ),
    "reverse_kl": _row(
        "reverse_kl",
        "t < 0",
        0.0,
        f=_rkl_f,
        f_star=_rkl_f_star,
        activation=_rkl_g,
        f_star_of_activation=_rkl_f_star_g,
        f_prime=_rkl_f_prime,
        closed_form=_rkl_closed,
    ),
    "pearson": _row(
        "pearson",
        "t in R",
        math.inf,
        f=_pearson_f,
        f_star=_pearson_f_star,
        activation=_identity,
        f_star_of_activation=_pearson_f_star_g,
        f_prime=_pearson_f_prime,
        closed_form=_pearson_closed,
    ),
    "neyman": _row(
        "neyman",
        "t < 1",
        1.0,
        f=_neyman_f,
        f_star=_neyman_f_star,
        activation=_one_minus_exp_neg,
        f_star_of_activation=_neyman_f_star_g,
        f_prime=_neyman_f_prime,
        closed_form=_neyman_closed,
    ),
    "squared_hellinger": _row(
        "squared_hellinger",
        "t < 1",
        1.0,
        f=_hellinger_f,
        f_star=_hellinger_f_star,
        activation=_one_minus_exp_neg,
        f_star_of_activation=_hellinger_f_star_g,
        f_prime=_hellinger_f_prime,
        closed_form=_hellinger_closed,
    ),
    "jeffrey": _row(
        "jeffrey",
        "t in R",
        math.inf,
        f=_jeffrey_f,
        f_star=_jeffrey_f_star,
        activation=_identity,
        f_star_of_activation=_jeffrey_f_star_g,
        f_prime=_jeffrey_f_prime,
        closed_form=_jeffrey_closed,
    ),
    "jensen_shannon": _row(
        "jensen_shannon",
        "t < log 2",
        _LOG2,
        f=_js_f,
        f_star=_js_f_star,
        activation=_js_g,
        f_star_of_activation=_js_f_star_g,
        f_prime=_js_f_prime,
        closed_form=_js_closed,
    ),
    "weighted_jensen_shannon": weighted_jensen_shannon(0.5),
    "gan": _row(
        "gan",
        "t < 0",
        0.0,
        f=_gan_f,
        f_star=_gan_f_star,
        activation=_gan_g,
        f_star_of_activation=_gan_f_star_g,
        f_prime=_gan_f_prime,
        closed_form=_gan_closed,
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

    ``estimate_name`` is the divergence's name; see the module docstring for what each
    divergence equals with the table's ``f`` (e.g. ``"jensen_shannon"`` is 2 JSD).
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
