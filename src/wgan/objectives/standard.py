"""Standard GAN objectives: minimax / non-saturating, Wasserstein, least squares, hinge.

Each objective is written twice: as small pure functions of the raw critic outputs
(``*_critic_loss`` / ``*_generator_loss``) and as an :class:`~wgan.objectives.base.Objective`
subclass that calls them.  Every function flattens ``(B, 1)`` to ``(B,)`` and returns 0-d
tensors on the autograd graph.

Estimates: every critic loss here is, at the optimal critic, an affine function of a
divergence/distance between the data distribution ``p`` and the model distribution ``q``.  The
``estimate`` returned inverts that affine map.  For a sub-optimal critic the loss is larger,
so each estimate is a *lower* bound on its divergence (the better the critic separates, the
larger the estimate).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn import functional as F

from wgan.errors import ConfigError, WganError
from wgan.objectives.base import Objective, as_batch

__all__ = [
    "HingeGAN",
    "LeastSquaresGAN",
    "MinimaxGAN",
    "NonSaturatingGAN",
    "WassersteinGAN",
    "hinge_critic_loss",
    "hinge_generator_loss",
    "least_squares_critic_loss",
    "least_squares_generator_loss",
    "minimax_critic_loss",
    "minimax_generator_loss",
    "nonsaturating_generator_loss",
    "wasserstein_critic_loss",
    "wasserstein_generator_loss",
]

_LOG2 = math.log(2.0)


def _scores(out: Tensor, name: str) -> Tensor:
    """Critic outputs ``(B,)`` or ``(B, 1)`` as ``(B,)`` with B >= 1, else WganError.

    Types and shapes only (no value is read, so no host sync): these losses run inside compiled,
    vmapped and CUDA-graph-captured steps. The mean of an empty batch would be a silent NaN.
    """
    if not isinstance(out, Tensor):
        raise WganError(
            f"{name} must be a tensor of critic outputs (B,) or (B, 1), got {type(out).__name__}"
        )
    scores = as_batch(out)
    if scores.shape[0] == 0:
        raise WganError(f"{name} is an empty batch: an objective needs at least one critic output")
    return scores


# --------------------------------------------------------------------------------------------
# Minimax GAN (Goodfellow et al. 2014) and its non-saturating generator loss.
# --------------------------------------------------------------------------------------------


def minimax_critic_loss(
    real_out: Tensor, fake_out: Tensor, label_smoothing: float = 0.0
) -> dict[str, Tensor]:
    """Discriminator loss of the minimax GAN (Goodfellow et al. 2014, eq. 1).

    ``D(x) = sigmoid(l(x))`` with ``l`` the raw critic output (a logit).  The discriminator
    maximises ``V = E_p log D(x) + E_q log(1 - D(G(z)))``; in logits
    ``log D = -softplus(-l)`` and ``log(1 - D) = -softplus(l)``, so the loss (``-V``) is

        loss = E_p softplus(-l_real) + E_q softplus(l_fake).

    With the optimal ``D* = p/(p+q)`` (Goodfellow et al. 2014, Prop. 1 and Thm. 1)
    ``V = 2 JS(p, q) - 2 log 2``, so ``estimate = (V + 2 log 2)/2 = log 2 - loss/2``
    estimates the Jensen-Shannon divergence (natural log, in ``[0, log 2]``).

    One-sided label smoothing (Salimans et al. 2016, sec. 3.4) with ``label_smoothing`` = alpha:
    real samples get the target 1 - alpha, generated ones keep 0, so the real term is the cross
    entropy -E_p[(1 - alpha) log D + alpha log(1 - D)]. Pointwise the loss
    -p[(1 - alpha) log D + alpha log(1 - D)] - q log(1 - D) is minimised by
    D*(x) = (1 - alpha) p(x) / (p(x) + q(x)). ``estimate`` and ``value`` stay those of the
    unsmoothed V.

    Returns ``loss``, ``estimate`` (JS), ``value`` (``V``), ``d_real``/``d_fake`` (mean logits)
    and ``p_real``/``p_fake`` (mean ``D`` probabilities).
    """
    l_real, l_fake = _scores(real_out, "real_out"), _scores(fake_out, "fake_out")
    loss_real = F.softplus(-l_real).mean()  # -E log(sigmoid(l_real)) = -E log D(x)
    loss_fake = F.softplus(l_fake).mean()  # -E log(1 - sigmoid(l_fake)) = -E log(1 - D(G(z)))
    value = -(loss_real + loss_fake)  # V = E log D(x) + E log(1 - D(G(z)))
    loss = -value
    if label_smoothing:
        # target 1 - alpha: -(1 - alpha) log D(x) - alpha log(1 - D(x))
        smoothed = (1.0 - label_smoothing) * loss_real
        loss = smoothed + label_smoothing * F.softplus(l_real).mean() + loss_fake
    return {
        "loss": loss,
        "estimate": (value + 2.0 * _LOG2) / 2.0,  # V = 2 JS - 2 log 2 at the optimal D
        "value": value,
        "d_real": l_real.mean(),
        "d_fake": l_fake.mean(),
        "p_real": torch.sigmoid(l_real).mean(),
        "p_fake": torch.sigmoid(l_fake).mean(),
    }


def minimax_generator_loss(fake_out: Tensor) -> dict[str, Tensor]:
    """Saturating (true minimax) generator loss, Goodfellow et al. 2014 eq. 1.

    The generator minimises ``E_q log(1 - D(G(z))) = -E softplus(l_fake)``.  Its gradient
    vanishes when ``D(G(z)) -> 0`` (the discriminator confidently rejects fakes), which is why
    the non-saturating variant is used in practice.
    """
    l_fake = _scores(fake_out, "fake_out")
    return {"loss": -F.softplus(l_fake).mean()}  # E log(1 - sigmoid(l_fake))


def nonsaturating_generator_loss(fake_out: Tensor) -> dict[str, Tensor]:
    """Non-saturating generator loss (Goodfellow et al. 2014, sec. 3).

    The generator minimises ``-E_q log D(G(z)) = E softplus(-l_fake)``: same fixed point as
    the minimax loss, strong gradients early in training when ``D(G(z))`` is small.
    """
    l_fake = _scores(fake_out, "fake_out")
    return {"loss": F.softplus(-l_fake).mean()}  # -E log(sigmoid(l_fake))


def check_label_smoothing(alpha: float) -> float:
    """ConfigError unless the one-sided label smoothing alpha is a number in [0, 1)."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha < 1:
        raise ConfigError(f"label smoothing alpha must be a number in [0, 1), got {alpha!r}")
    return float(alpha)


class MinimaxGAN(Objective):
    """Minimax GAN (Goodfellow et al. 2014) with the saturating generator loss.

    Critic: :func:`minimax_critic_loss` (with one-sided ``label_smoothing``); generator:
    :func:`minimax_generator_loss`. ``estimate`` is the Jensen-Shannon divergence
    (``estimate_name = "js"``).
    """

    name = "minimax"
    estimate_name = "js"

    def __init__(self, label_smoothing: float = 0.0) -> None:
        self.label_smoothing = check_label_smoothing(label_smoothing)

    def critic_loss(self, real_out: Tensor, fake_out: Tensor) -> dict[str, Tensor]:
        """See :func:`minimax_critic_loss`."""
        return minimax_critic_loss(real_out, fake_out, self.label_smoothing)

    def fake_term(self, fake_out: Tensor) -> Tensor:
        return F.softplus(_scores(fake_out, "fake_out")).mean()  # -E log(1 - sigmoid(l))

    def generator_loss(self, fake_out: Tensor) -> dict[str, Tensor]:
        """See :func:`minimax_generator_loss`."""
        return minimax_generator_loss(fake_out)


class NonSaturatingGAN(MinimaxGAN):
    """Minimax-GAN critic with the non-saturating generator loss ``-log D(G(z))``.

    Critic: :func:`minimax_critic_loss` (``estimate_name = "js"``); generator:
    :func:`nonsaturating_generator_loss`.
    """

    name = "nonsaturating"

    def generator_loss(self, fake_out: Tensor) -> dict[str, Tensor]:
        """See :func:`nonsaturating_generator_loss`."""
        return nonsaturating_generator_loss(fake_out)


# --------------------------------------------------------------------------------------------
# Wasserstein GAN (Arjovsky, Chintala & Bottou 2017).
# --------------------------------------------------------------------------------------------


def wasserstein_critic_loss(real_out: Tensor, fake_out: Tensor) -> dict[str, Tensor]:
    """WGAN critic loss (Arjovsky et al. 2017, eq. 3 / Algorithm 1).

    By Kantorovich-Rubinstein duality ``W1(p, q) = sup_{|D|_L <= 1} E_p D(x) - E_q D(x)``.
    The critic maximises ``E_p D(x) - E_q D(G(z))``, so

        loss = -(E D(x_real) - E D(x_fake)),   estimate = E D(x_real) - E D(x_fake).

    The estimate is a (lower bound on the) Wasserstein-1 distance only if the critic is kept
    1-Lipschitz (weight clipping, gradient penalty ...); that constraint is not part of this
    loss.
    """
    d_real, d_fake = _scores(real_out, "real_out").mean(), _scores(fake_out, "fake_out").mean()
    estimate = d_real - d_fake  # E_p D - E_q D: the Kantorovich-Rubinstein dual objective
    return {"loss": -estimate, "estimate": estimate, "d_real": d_real, "d_fake": d_fake}


def wasserstein_generator_loss(fake_out: Tensor) -> dict[str, Tensor]:
    """WGAN generator loss (Arjovsky et al. 2017, Algorithm 1): minimise ``-E D(G(z))``."""
    # the generator raises the critic's score on fakes
    return {"loss": -_scores(fake_out, "fake_out").mean()}


class WassersteinGAN(Objective):
    """Wasserstein GAN objective (Arjovsky et al. 2017); ``estimate_name = "w1"``.

    The Lipschitz constraint (clipping or gradient penalty, Gulrajani et al. 2017) is applied
    by the training loop, not here.
    """

    name = "wasserstein"
    estimate_name = "w1"

    def critic_loss(self, real_out: Tensor, fake_out: Tensor) -> dict[str, Tensor]:
        """See :func:`wasserstein_critic_loss`."""
        return wasserstein_critic_loss(real_out, fake_out)

    def fake_term(self, fake_out: Tensor) -> Tensor:
        return _scores(fake_out, "fake_out").mean()  # +E D(x_fake) in -(E D(real) - E D(fake))

    def generator_loss(self, fake_out: Tensor) -> dict[str, Tensor]:
        """See :func:`wasserstein_generator_loss`."""
        return wasserstein_generator_loss(fake_out)


# --------------------------------------------------------------------------------------------
# Least-squares GAN (Mao et al. 2017), a = 0, b = 1, c = 1.
# --------------------------------------------------------------------------------------------


def least_squares_critic_loss(
    real_out: Tensor, fake_out: Tensor, label_smoothing: float = 0.0
) -> dict[str, Tensor]:
    """LSGAN critic loss (Mao et al. 2017, eq. 2 with ``a=0, b=1``)::

        loss = 1/2 E_p (D(x) - 1)^2 + 1/2 E_q D(G(z))^2.

    Estimate (triangular discrimination).  Pointwise, ``1/2 [p (D-1)^2 + q D^2]`` is minimised
    by ``D* = p/(p+q)``; then ``D* - 1 = -q/(p+q)`` and

        L* = 1/2 ∫ [p q^2 + q p^2] / (p+q)^2 = 1/2 ∫ p q / (p+q).

    The triangular discrimination is ``Δ(p, q) = ∫ (p-q)^2/(p+q) = ∫ [(p+q)^2 - 4pq]/(p+q)
    = 2 - 4 ∫ pq/(p+q)``, so ``∫ pq/(p+q) = (2 - Δ)/4`` and ``L* = (2 - Δ)/8``.  Hence
    ``estimate = 2 - 8 loss`` (``estimate_name = "triangular"``, range ``[0, 2]`` at the
    optimum; a lower bound on Δ for any other critic since ``loss >= L*``).

    One-sided label smoothing (Salimans et al. 2016, sec. 3.4) with ``label_smoothing`` =
    alpha: the real target is b = 1 - alpha, so ``loss`` is
    ``1/2 E_p (D(x) - (1 - alpha))^2 + 1/2 E_q D(G(z))^2``, minimised by
    D* = (1 - alpha) p/(p+q).  ``estimate`` stays that of the *unsmoothed* loss
    ``L = 1/2 E_p (D - 1)^2 + 1/2 E_q D^2`` at the same outputs: smoothing changes what the
    critic is trained towards, not what is measured, so ``2 - 8 L`` remains a lower bound on
    Δ for every critic (at p = q it is at most 0, while ``2 - 8 loss`` would read
    ``2 - 2 (1 - alpha)^2 > 0`` at the smoothed optimum).

    Returns ``loss``, ``estimate`` (Δ) and ``d_real``/``d_fake`` (mean outputs).
    """
    d_real, d_fake = _scores(real_out, "real_out"), _scores(fake_out, "fake_out")
    fake_term = 0.5 * d_fake.square().mean()  # a = 0
    unsmoothed = 0.5 * (d_real - 1.0).square().mean() + fake_term  # b = 1
    loss = unsmoothed
    if label_smoothing:
        loss = 0.5 * (d_real - (1.0 - label_smoothing)).square().mean() + fake_term  # b = 1 - alpha
    return {
        "loss": loss,
        "estimate": 2.0 - 8.0 * unsmoothed,  # L* = (2 - Δ)/8 at D* = p/(p+q), unsmoothed L
        "d_real": d_real.mean(),
        "d_fake": d_fake.mean(),
    }


def least_squares_generator_loss(fake_out: Tensor) -> dict[str, Tensor]:
    """LSGAN generator loss (Mao et al. 2017, eq. 2 with ``c = 1``): ``1/2 E (D(G(z)) - 1)^2``."""
    d_fake = _scores(fake_out, "fake_out")
    return {"loss": 0.5 * (d_fake - 1.0).square().mean()}  # pull fakes to the "real" target c=1


class LeastSquaresGAN(Objective):
    """Least-squares GAN (Mao et al. 2017), ``a=0, b=1, c=1``; ``estimate_name = "triangular"``.

    See :func:`least_squares_critic_loss` for the derivation of the estimate.
    """

    name = "least_squares"
    estimate_name = "triangular"

    def __init__(self, label_smoothing: float = 0.0) -> None:
        self.label_smoothing = check_label_smoothing(label_smoothing)

    def critic_loss(self, real_out: Tensor, fake_out: Tensor) -> dict[str, Tensor]:
        """See :func:`least_squares_critic_loss`."""
        return least_squares_critic_loss(real_out, fake_out, self.label_smoothing)

    def fake_term(self, fake_out: Tensor) -> Tensor:
        return 0.5 * _scores(fake_out, "fake_out").square().mean()  # 1/2 E D^2

    def generator_loss(self, fake_out: Tensor) -> dict[str, Tensor]:
        """See :func:`least_squares_generator_loss`."""
        return least_squares_generator_loss(fake_out)


# --------------------------------------------------------------------------------------------
# Hinge GAN (Lim & Ye 2017; Miyato et al. 2018).
# --------------------------------------------------------------------------------------------


def hinge_critic_loss(real_out: Tensor, fake_out: Tensor) -> dict[str, Tensor]:
    """Hinge critic loss (Lim & Ye 2017 "Geometric GAN"; Miyato et al. 2018, eq. 16)::

        loss = E_p relu(1 - D(x)) + E_q relu(1 + D(G(z))).

    Estimate (total variation).  Pointwise, ``p relu(1-D) + q relu(1+D)`` is linear in ``D``
    on ``[-1, 1]`` (``= p + q + D (q - p)``) and larger outside, so it is minimised by
    ``D* = sign(p - q)`` with value ``p + q - |p - q| = 2 min(p, q)``.  Since
    ``∫ min(p, q) = 1 - TV(p, q)`` with ``TV = 1/2 ∫ |p - q|``, ``L* = 2 (1 - TV)`` and
    ``estimate = 1 - loss/2`` (``estimate_name = "tv"``; a lower bound on TV for any critic).
    """
    d_real, d_fake = _scores(real_out, "real_out"), _scores(fake_out, "fake_out")
    loss = F.relu(1.0 - d_real).mean() + F.relu(1.0 + d_fake).mean()  # margins at +1 / -1
    return {
        "loss": loss,
        "estimate": 1.0 - 0.5 * loss,  # L* = 2 (1 - TV) at D* = sign(p - q)
        "d_real": d_real.mean(),
        "d_fake": d_fake.mean(),
    }


def hinge_generator_loss(fake_out: Tensor) -> dict[str, Tensor]:
    """Hinge-GAN generator loss (Lim & Ye 2017; Miyato et al. 2018): ``-E D(G(z))``."""
    return {"loss": -_scores(fake_out, "fake_out").mean()}  # raise the critic's score on fakes


class HingeGAN(Objective):
    """Hinge GAN (Lim & Ye 2017; Miyato et al. 2018); ``estimate_name = "tv"``.

    See :func:`hinge_critic_loss` for the derivation of the estimate.
    """

    name = "hinge"
    estimate_name = "tv"

    def critic_loss(self, real_out: Tensor, fake_out: Tensor) -> dict[str, Tensor]:
        """See :func:`hinge_critic_loss`."""
        return hinge_critic_loss(real_out, fake_out)

    def fake_term(self, fake_out: Tensor) -> Tensor:
        return F.relu(1.0 + _scores(fake_out, "fake_out")).mean()  # E relu(1 + D)

    def generator_loss(self, fake_out: Tensor) -> dict[str, Tensor]:
        """See :func:`hinge_generator_loss`."""
        return hinge_generator_loss(fake_out)
