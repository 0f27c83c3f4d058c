"""The formulas behind each row of the f-divergence table (Nowozin, Cseke & Tomioka 2016,
arXiv 1606.00709, Tables 1-2).

For every divergence of :data:`wgan.objectives.fdivergence_table.DIVERGENCES` this module holds
the functions that fill its row (an :class:`~wgan.objectives.fdivergence_table.FDivergence`),
named ``<divergence>_<field>`` after the row's key and field: the convex generator ``f``, its
Fenchel conjugate ``f_star``, the output ``activation`` ``g`` into ``dom f*``, a numerically
stable ``f_star_of_activation`` = ``f*(g(v))``, the derivative ``f_prime`` and an independent
``closed_form`` of ``D_f`` for discrete distributions.  Two activations are shared by several
rows: :func:`identity` and :func:`one_minus_exp_neg`.  The Jeffrey conjugate uses the Lambert W
function (:func:`wgan.objectives.lambertw.lambertw_exp`).

``f``, ``f_star``, ``f_prime`` and ``closed_form`` accept torch tensors (and, for convenience in
tests and analysis, numpy arrays / floats, returned as numpy); the activations and
``f*(g(v))`` take tensors only.  See :mod:`wgan.objectives.fdivergence_table` for what each row
equals with these ``f`` (e.g. ``jensen_shannon`` is twice the usual JSD).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from wgan.objectives.lambertw import lambertw_exp

#: ``log 2``: ``sup dom f*`` of ``jensen_shannon`` (and where :func:`_log1mexp` switches).
LOG2 = math.log(2.0)


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
    near0 = torch.clamp(x, min=-LOG2, max=-tiny)  # branch for -log 2 < x < 0
    far = torch.clamp(x, max=-LOG2)  # branch for x <= -log 2
    return torch.where(
        x > -LOG2,
        torch.log(-torch.expm1(near0)),  # log(1 - e^x) = log(-expm1(x)), accurate near 0
        torch.log1p(-torch.exp(far)),  # log1p(-e^x), accurate for very negative x
    )


# --------------------------------------------------------------------------------------------
# Total variation: f(u) = 1/2 |u - 1|, f*(t) = t on |t| <= 1/2, g(v) = 1/2 tanh(v).
# --------------------------------------------------------------------------------------------


@_array_api
def total_variation_f(u: Tensor) -> Tensor:
    return 0.5 * torch.abs(u - 1.0)  # 1/2 |u - 1|


@_array_api
def total_variation_f_star(t: Tensor) -> Tensor:
    return t  # f*(t) = t on |t| <= 1/2


def total_variation_activation(v: Tensor) -> Tensor:
    return 0.5 * torch.tanh(v)  # maps R onto (-1/2, 1/2)


def total_variation_f_star_of_activation(v: Tensor) -> Tensor:
    return 0.5 * torch.tanh(v)  # f*(g(v)) = g(v)


@_array_api
def total_variation_f_prime(u: Tensor) -> Tensor:
    return 0.5 * torch.sign(u - 1.0)  # a subgradient of 1/2 |u-1| (0 at u = 1)


@_array_api
def total_variation_closed_form(p: Tensor, q: Tensor) -> Tensor:
    return 0.5 * torch.abs(p - q).sum(-1)  # TV = 1/2 sum |p - q|


# --------------------------------------------------------------------------------------------
# Kullback-Leibler: f(u) = u log u, f*(t) = exp(t - 1), g(v) = v.
# --------------------------------------------------------------------------------------------


@_array_api
def kl_f(u: Tensor) -> Tensor:
    return torch.xlogy(u, u)  # u log u


@_array_api
def kl_f_star(t: Tensor) -> Tensor:
    return torch.exp(t - 1.0)  # exp(t - 1)


def identity(v: Tensor) -> Tensor:
    return v  # g(v) = v (dom f* = R)


def kl_f_star_of_activation(v: Tensor) -> Tensor:
    return torch.exp(v - 1.0)  # exp(v - 1)


@_array_api
def kl_f_prime(u: Tensor) -> Tensor:
    return 1.0 + torch.log(u)  # d/du u log u


@_array_api
def kl_closed_form(p: Tensor, q: Tensor) -> Tensor:
    return (p * torch.log(p / q)).sum(-1)  # KL(P||Q) = sum p log(p/q)


# --------------------------------------------------------------------------------------------
# Reverse KL: f(u) = -log u, f*(t) = -1 - log(-t) (t < 0), g(v) = -exp(-v).
# --------------------------------------------------------------------------------------------


@_array_api
def reverse_kl_f(u: Tensor) -> Tensor:
    return -torch.log(u)  # -log u


@_array_api
def reverse_kl_f_star(t: Tensor) -> Tensor:
    return -1.0 - torch.log(-t)  # -1 - log(-t), t < 0


def reverse_kl_activation(v: Tensor) -> Tensor:
    return -torch.exp(-v)  # maps R onto (-inf, 0)


def reverse_kl_f_star_of_activation(v: Tensor) -> Tensor:
    return v - 1.0  # -1 - log(exp(-v))


@_array_api
def reverse_kl_f_prime(u: Tensor) -> Tensor:
    return -1.0 / u  # d/du (-log u)


@_array_api
def reverse_kl_closed_form(p: Tensor, q: Tensor) -> Tensor:
    return (q * torch.log(q / p)).sum(-1)  # KL(Q||P) = sum q log(q/p)


# --------------------------------------------------------------------------------------------
# Pearson chi^2: f(u) = (u - 1)^2, f*(t) = t^2/4 + t, g(v) = v.
# --------------------------------------------------------------------------------------------


@_array_api
def pearson_f(u: Tensor) -> Tensor:
    return (u - 1.0).square()  # (u - 1)^2


@_array_api
def pearson_f_star(t: Tensor) -> Tensor:
    return 0.25 * t.square() + t  # t^2/4 + t


def pearson_f_star_of_activation(v: Tensor) -> Tensor:
    return 0.25 * v.square() + v  # g = identity


@_array_api
def pearson_f_prime(u: Tensor) -> Tensor:
    return 2.0 * (u - 1.0)  # d/du (u-1)^2


@_array_api
def pearson_closed_form(p: Tensor, q: Tensor) -> Tensor:
    return ((p - q).square() / q).sum(-1)  # sum (p - q)^2 / q


# --------------------------------------------------------------------------------------------
# Neyman chi^2: f(u) = (1 - u)^2 / u, f*(t) = 2 - 2 sqrt(1 - t) (t < 1), g(v) = 1 - exp(-v).
# --------------------------------------------------------------------------------------------


@_array_api
def neyman_f(u: Tensor) -> Tensor:
    return (1.0 - u).square() / u  # (1 - u)^2 / u


@_array_api
def neyman_f_star(t: Tensor) -> Tensor:
    return 2.0 - 2.0 * torch.sqrt(1.0 - t)  # 2 - 2 sqrt(1 - t), t < 1


def one_minus_exp_neg(v: Tensor) -> Tensor:
    return -torch.expm1(-v)  # 1 - exp(-v): maps R onto (-inf, 1)


def neyman_f_star_of_activation(v: Tensor) -> Tensor:
    return 2.0 - 2.0 * torch.exp(-0.5 * v)  # 2 - 2 sqrt(exp(-v))


@_array_api
def neyman_f_prime(u: Tensor) -> Tensor:
    return 1.0 - 1.0 / u.square()  # d/du (u - 2 + 1/u)


@_array_api
def neyman_closed_form(p: Tensor, q: Tensor) -> Tensor:
    return ((p - q).square() / p).sum(-1)  # sum (p - q)^2 / p


# --------------------------------------------------------------------------------------------
# Squared Hellinger: f(u) = (sqrt u - 1)^2, f*(t) = t/(1 - t) (t < 1), g(v) = 1 - exp(-v).
# --------------------------------------------------------------------------------------------


@_array_api
def squared_hellinger_f(u: Tensor) -> Tensor:
    return (torch.sqrt(u) - 1.0).square()  # (sqrt(u) - 1)^2


@_array_api
def squared_hellinger_f_star(t: Tensor) -> Tensor:
    return t / (1.0 - t)  # t / (1 - t), t < 1


def squared_hellinger_f_star_of_activation(v: Tensor) -> Tensor:
    return torch.expm1(v)  # (1 - e^-v) / e^-v = e^v - 1


@_array_api
def squared_hellinger_f_prime(u: Tensor) -> Tensor:
    return 1.0 - 1.0 / torch.sqrt(u)  # d/du (u - 2 sqrt(u) + 1)


@_array_api
def squared_hellinger_closed_form(p: Tensor, q: Tensor) -> Tensor:
    return (torch.sqrt(p) - torch.sqrt(q)).square().sum(-1)  # sum (sqrt p - sqrt q)^2


# --------------------------------------------------------------------------------------------
# Jeffrey: f(u) = (u - 1) log u, f*(t) = W(e^{1-t}) + 1/W(e^{1-t}) + t - 2, g(v) = v.
# --------------------------------------------------------------------------------------------


@_array_api
def jeffrey_f(u: Tensor) -> Tensor:
    return (u - 1.0) * torch.log(u)  # (u - 1) log u


def jeffrey_conjugate(t: Tensor) -> Tensor:
    # f'(u) = log u + 1 - 1/u = t; with w = 1/u: w + log w = 1 - t, so w = W(e^{1-t}) and
    # f*(t) = t/w - f(1/w) = w + 1/w + t - 2.  1/w = exp(w - (1 - t)) since w e^w = e^{1-t}.
    a = 1.0 - t
    w = lambertw_exp(a)  # W(e^{1-t}), computed in log space
    return w + torch.exp(w - a) + t - 2.0  # W + 1/W + t - 2


jeffrey_f_star = _array_api(jeffrey_conjugate)


def jeffrey_f_star_of_activation(v: Tensor) -> Tensor:
    return jeffrey_conjugate(v)  # g = identity; stable for moderate v


@_array_api
def jeffrey_f_prime(u: Tensor) -> Tensor:
    return torch.log(u) + 1.0 - 1.0 / u  # d/du (u - 1) log u


@_array_api
def jeffrey_closed_form(p: Tensor, q: Tensor) -> Tensor:
    return ((p - q) * (torch.log(p) - torch.log(q))).sum(-1)  # KL(P||Q) + KL(Q||P)


# --------------------------------------------------------------------------------------------
# Jensen-Shannon (this f gives 2 JSD): f(u) = -(u+1) log((1+u)/2) + u log u,
# f*(t) = -log(2 - e^t) (t < log 2), g(v) = log 2 - softplus(-v).
# --------------------------------------------------------------------------------------------


@_array_api
def jensen_shannon_f(u: Tensor) -> Tensor:
    return -(u + 1.0) * torch.log((1.0 + u) / 2.0) + torch.xlogy(u, u)


@_array_api
def jensen_shannon_f_star(t: Tensor) -> Tensor:
    return -torch.log(2.0 - torch.exp(t))  # -log(2 - e^t), t < log 2


def jensen_shannon_activation(v: Tensor) -> Tensor:
    return LOG2 - F.softplus(-v)  # log(2 sigmoid(v)) in (-inf, log 2)


def jensen_shannon_f_star_of_activation(v: Tensor) -> Tensor:
    return F.softplus(v) - LOG2  # -log(2 - 2 sigmoid(v)) = -log 2 - log sigmoid(-v)


@_array_api
def jensen_shannon_f_prime(u: Tensor) -> Tensor:
    return torch.log(2.0 * u / (1.0 + u))  # log u - log((1+u)/2)


@_array_api
def jensen_shannon_closed_form(p: Tensor, q: Tensor) -> Tensor:
    m = 0.5 * (p + q)
    return (p * torch.log(p / m) + q * torch.log(q / m)).sum(-1)  # KL(P||M) + KL(Q||M) = 2 JSD


# --------------------------------------------------------------------------------------------
# Weighted Jensen-Shannon, weight pi in (0, 1):
# f(u) = pi u log u - (1 - pi + pi u) log(1 - pi + pi u),
# f*(t) = (1 - pi) log((1 - pi)/(1 - pi e^{t/pi})) (t < -pi log pi),
# g(v) = -pi log pi - softplus(-v).
# --------------------------------------------------------------------------------------------


@_array_api
def weighted_jensen_shannon_f(u: Tensor, *, pi: float) -> Tensor:
    m = 1.0 - pi + pi * u
    return pi * torch.xlogy(u, u) - torch.xlogy(m, m)  # pi u log u - m log m


@_array_api
def weighted_jensen_shannon_f_star(t: Tensor, *, pi: float) -> Tensor:
    return (1.0 - pi) * torch.log((1.0 - pi) / (1.0 - pi * torch.exp(t / pi)))


def weighted_jensen_shannon_activation(v: Tensor, *, pi: float) -> Tensor:
    return -pi * math.log(pi) - F.softplus(-v)  # -pi log pi + log sigmoid(v) < -pi log pi


def weighted_jensen_shannon_f_star_of_activation(v: Tensor, *, pi: float) -> Tensor:
    # pi e^{g/pi} = pi e^{-log pi} e^{logsigmoid(v)/pi} = exp(logsigmoid(v)/pi), so
    # f*(g(v)) = (1 - pi) [log(1 - pi) - log(1 - exp(logsigmoid(v)/pi))].
    x = -F.softplus(-v) / pi  # logsigmoid(v)/pi <= 0; log1mexp keeps it finite up to x -> 0-
    return (1.0 - pi) * (math.log(1.0 - pi) - _log1mexp(x))


@_array_api
def weighted_jensen_shannon_f_prime(u: Tensor, *, pi: float) -> Tensor:
    return pi * torch.log(u / (1.0 - pi + pi * u))  # pi log u - pi log(1 - pi + pi u)


@_array_api
def weighted_jensen_shannon_closed_form(p: Tensor, q: Tensor, *, pi: float) -> Tensor:
    m = pi * p + (1.0 - pi) * q  # mixture M = pi P + (1 - pi) Q
    return (pi * p * torch.log(p / m) + (1.0 - pi) * q * torch.log(q / m)).sum(-1)


# --------------------------------------------------------------------------------------------
# GAN: f(u) = u log u - (u+1) log(u+1) (gives 2 JSD - log 4),
# f*(t) = -log(1 - e^t) (t < 0), g(v) = -softplus(-v) = log sigmoid(v).
# --------------------------------------------------------------------------------------------


@_array_api
def gan_f(u: Tensor) -> Tensor:
    return torch.xlogy(u, u) - (u + 1.0) * torch.log1p(u)  # u log u - (u+1) log(u+1)


@_array_api
def gan_f_star(t: Tensor) -> Tensor:
    return -torch.log(-torch.expm1(t))  # -log(1 - e^t), t < 0


def gan_activation(v: Tensor) -> Tensor:
    return -F.softplus(-v)  # log sigmoid(v) = log D(x)


def gan_f_star_of_activation(v: Tensor) -> Tensor:
    return F.softplus(v)  # -log(1 - sigmoid(v)) = -log(1 - D(x))


@_array_api
def gan_f_prime(u: Tensor) -> Tensor:
    return torch.log(u / (1.0 + u))  # log u - log(1 + u)


@_array_api
def gan_closed_form(p: Tensor, q: Tensor) -> Tensor:
    s = p + q
    return (p * torch.log(p / s) + q * torch.log(q / s)).sum(-1)  # 2 JSD - log 4
