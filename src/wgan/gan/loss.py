"""The GAN's losses: one place where the critic's scores, the objective and the constraint meet.

Every GAN in this package is the same game. The critic D scores samples; the generator G maps
noise to samples; the *objective* turns the scores into two losses and an estimate of the
divergence the critic implies; the *constraint* adds a penalty to the critic's loss or projects
its weights. :class:`GANLoss` returns dicts of named scalar terms and the training step calls
``backward()`` on ``terms['loss']``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from wgan.config import Config
from wgan.constraints import Constraints
from wgan.errors import ConfigError, WganError
from wgan.gan.tricks import feature_matching_loss
from wgan.objectives import Objective, make_objective


class Critic(Protocol):
    """The critic as a function: scores (B, 1) of x given labels, and (score, logits) for AC-GAN."""

    def __call__(self, x: Tensor, labels: Tensor | None = None) -> Tensor: ...

    def score_and_logits(self, x: Tensor) -> tuple[Tensor, Tensor]: ...


class PenaltyCall(NamedTuple):
    """How one critic step takes the constraint's penalty, in one record.

    ``factor`` multiplies it: lazy regularisation's ``every`` on the critic steps where it is
    due and 0 elsewhere (Karras et al. 2020), 1 on every step otherwise; a Python 0 skips
    computing it. ``weight`` and ``target`` replace the constraint's lambda and target norm
    (per-run tensors in a sweep; None: the constraint's own). ``scale`` is the fp16 loss scale,
    and ``functional`` takes grad_x D through ``torch.func.grad`` (compiled and vmapped steps).
    """

    factor: float | Tensor = 1.0
    weight: float | Tensor | None = None
    target: float | Tensor | None = None
    scale: Tensor | None = None
    functional: bool = False


#: The penalty on every critic step with the constraint's own weight and target.
EVERY_STEP = PenaltyCall()


@dataclass
class GANLoss:
    """The named loss terms of both players, from critic outputs on tensors drawn beforehand.

    Nothing here draws random numbers or takes optimiser steps: :mod:`wgan.gan.step` draws the real
    batch, the noise, the labels, the wrong-label shifts and the interpolation weights once per
    generator iteration, calls these methods, and differentiates ``terms['loss']``.

    ``conditioning`` is ``none``, ``concat`` (D(c, x); with ``wrong_label`` real images paired
    with a wrong label are a third, "fake" term, Reed et al. 2016), ``projection`` (D(x, c) =
    psi(phi(x)) + <V c, phi(x)>, Miyato & Koyama 2018; the wrong-label term as for concat) or
    ``acgan`` (an auxiliary classifier on an unconditional critic, Odena et al. 2017). See
    :class:`wgan.config.ConditionalConfig`. The condition c is a class (labels (B,) int64) or an
    attribute vector (labels (B, k) float, :mod:`wgan.data.attributes`); for vectors the wrong
    vector c' differs from c in a random non-empty set of attribute groups
    (:meth:`wgan.data.attributes.AttributeSchema.wrong`) and the AC-GAN head is multi-label: a
    binary cross-entropy per attribute instead of the softmax cross-entropy over classes.

    The three-term conditional critic loss is the sum of the objective's terms; for the minimax
    family exactly -E log D(c, x) - E log(1 - D(c, G(c, z))) - E log(1 - D(c', x)), every term
    bounded below. With the Wasserstein objective the wrong-label term is refused: the critic
    loss -E D(c, x) + E D(c, x~) + E D(c', x) has no lower bound, because the penalty (or
    clipping) constrains D in x at a fixed label, while D(c, x) - D(c', x) can grow without
    limit through the label (averaging the two fake terms removes the output-bias direction but
    not this one: measured, the loss reaches -400 in 300 steps, ``tests/gan/test_step.py``).
    The same holds for the projection critic, where D(x, c) - D(x, c') = <V (c - c'), phi(x)>
    grows without limit through V at a fixed x-gradient, and for attribute vectors (measured in
    ``tests/gan/test_attribute_conditioning.py``), so the refusal covers both.
    """

    objective: Objective
    constraints: Constraints
    conditioning: str = "none"
    wrong_label: bool = True
    ac_weight: float = 1.0
    ac_weight_g: float = 0.1
    feature_matching: float = 0.0  # weight of the feature-matching term in G's loss
    feature_matching_mode: str = "add"  # or "replace": G's loss is the feature matching alone
    n_classes: int = 0  # conditional critics match features per class

    def __post_init__(self) -> None:
        if self.paired and self.wrong_label and self.objective.name in ("wasserstein",):
            raise ConfigError(
                "conditional.wrong_label=true with objective wasserstein: the critic loss "
                "-E D(c,x) + E D(c,G(z)) + E D(c',x) is unbounded below (the Lipschitz "
                "constraint holds the label fixed, so D(c,x) - D(c',x) can grow without "
                "limit, with concat and projection critics alike); set "
                "conditional.wrong_label=false or use another objective"
            )

    @property
    def paired(self) -> bool:
        """Whether the critic scores (x, c) pairs, D(x, c): ``concat`` and ``projection``."""
        return self.conditioning in ("concat", "projection")

    def critic_terms(
        self,
        critic: Critic,
        real: Tensor,
        fake: Tensor,
        labels: Tensor | None = None,
        wrong: Tensor | None = None,
        eps: Tensor | None = None,
        penalty: PenaltyCall = EVERY_STEP,
    ) -> dict[str, Tensor]:
        """The critic's loss (objective + penalty) on a real batch (B, ...) and fakes (B, ...).

        Args:
            critic: D as a function (see :class:`Critic`).
            real, fake: the batches; ``labels`` their condition when conditional: (B,) classes
                or (B, k) attribute vectors.
            wrong: wrong labels (B,) or vectors (B, k) for the third conditional term
                (``concat`` or ``projection`` with ``wrong_label``).
            eps: (B,) interpolation weights for the gradient penalty.
            penalty: how this step takes the penalty (:class:`PenaltyCall`).
        """
        if self.conditioning != "none" and labels is None:
            raise WganError("a conditional GAN needs the labels of the real batch")
        if self.paired:
            terms = dict(self.objective.critic_loss(critic(real, labels), critic(fake, labels)))
            if self.wrong_label:
                if wrong is None:
                    raise WganError("the wrong-label term needs wrong labels")
                term = self.objective.fake_term(critic(real, wrong))
                terms["loss"] = terms["loss"] + term
                terms["wrong_label"] = term.detach()
        elif self.conditioning == "acgan":
            s_real, logits_real = critic.score_and_logits(real)  # (B, 1), (B, K) or (B, k)
            terms = dict(self.objective.critic_loss(s_real, critic(fake)))
            ac = auxiliary_loss(logits_real, labels)
            terms["loss"] = terms["loss"] + self.ac_weight * ac
            terms["ac_loss"] = ac.detach()
            terms["ac_accuracy"] = auxiliary_accuracy(logits_real.detach(), labels)
        else:
            terms = dict(self.objective.critic_loss(critic(real), critic(fake)))
        factor = penalty.factor
        if isinstance(factor, Tensor) or factor != 0:  # a Python 0 skips computing it
            score = self.score_fn(critic, labels)
            extra = self.constraints.penalty(
                score,
                real,
                fake,
                eps,
                scale=penalty.scale,
                weight=penalty.weight,
                target=penalty.target,
                impl="func" if penalty.functional else None,
            )
            if "penalty" in extra:
                extra["penalty"] = extra["penalty"] * factor
                terms["loss"] = terms["loss"] + extra["penalty"]
            terms.update(extra)
        elif self.constraints.has_penalty:
            # Not due (lazy regularisation): an applied penalty of 0, logged as such, so the
            # logged mean is the same whether the step skips the penalty or multiplies it by 0.
            terms["penalty"] = torch.zeros((), device=terms["loss"].device)
        return terms

    def score_fn(self, critic: Critic, labels: Tensor | None) -> Callable[[Tensor], Tensor]:
        """The critic as a function of x alone: D(c, .) at the fixed labels when conditioned."""
        if self.paired:
            return functools.partial(critic, labels=labels)
        return critic

    def generator_terms(
        self,
        critic: Critic,
        fake: Tensor,
        labels: Tensor | None = None,
        real: Tensor | None = None,
        scored: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """The generator's loss on generated samples (B, ...), made on ``labels`` if conditional.

        ``scored`` (default ``fake``) is what the critic scores (the fakes plus instance noise);
        ``real`` (B, ...), a data batch with the same labels, is needed for feature matching
        (Salimans et al. 2016): ``feature_matching`` x ||E d(x) - E d(G(z))||^2 is added to the
        objective's loss, or replaces it (``feature_matching_mode="replace"``).
        """
        terms = self._objective_generator_terms(critic, fake if scored is None else scored, labels)
        if self.feature_matching > 0:
            if real is None:
                raise WganError("feature matching needs a real batch in the generator's step")
            args = (labels,) if self.paired else ()
            conditional = self.conditioning != "none"
            fm = feature_matching_loss(
                critic.features(real, *args),
                critic.features(fake, *args),
                labels if conditional else None,
                labels if conditional else None,
                self.n_classes if conditional else 0,
            )
            weighted = self.feature_matching * fm
            if self.feature_matching_mode == "replace":
                terms["loss"] = weighted
            else:
                terms["loss"] = terms["loss"] + weighted
            terms["feature_matching"] = fm.detach()
        return terms

    def _objective_generator_terms(
        self, critic: Critic, fake: Tensor, labels: Tensor | None
    ) -> dict[str, Tensor]:
        if self.paired:
            return dict(self.objective.generator_loss(critic(fake, labels)))
        if self.conditioning == "acgan":
            score, logits = critic.score_and_logits(fake)
            terms = dict(self.objective.generator_loss(score))
            ac = auxiliary_loss(logits, labels)
            terms["loss"] = terms["loss"] + self.ac_weight_g * ac
            terms["ac_loss"] = ac.detach()
            return terms
        return dict(self.objective.generator_loss(critic(fake)))


def auxiliary_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """The AC-GAN head's loss (Odena et al. 2017): the softmax cross-entropy of class logits
    (B, K) at labels (B,) int64, or for attribute vectors (B, k) float the binary cross-entropy
    per attribute, summed over attributes and averaged over the batch,
    -(1/B) sum_i sum_j [c_ij log s(l_ij) + (1 - c_ij) log(1 - s(l_ij))] (s: sigmoid): a
    multi-label head with one independent Bernoulli per attribute, each attribute weighing as
    much as the class term does for class labels (a mean over the k attributes would divide
    every attribute's pull on G by k; with k = 9 the shapes' generator then ignored c)."""
    if labels.is_floating_point():
        bce = F.binary_cross_entropy_with_logits(logits.float(), labels.float(), reduction="none")
        return bce.sum(1).mean()  # (B, k) -> per sample sum -> batch mean
    return F.cross_entropy(logits.float(), labels)


def auxiliary_accuracy(logits: Tensor, labels: Tensor) -> Tensor:
    """The AC-GAN head's accuracy: the fraction of argmax classes equal to the labels (B,), or
    for attribute vectors (B, k) the per-attribute accuracy, the fraction of the B x k entries
    where (logit > 0) equals the attribute (the mean over attributes of each one's accuracy)."""
    if labels.is_floating_point():
        return ((logits > 0) == (labels > 0.5)).float().mean()
    return (logits.argmax(1) == labels).float().mean()


def build_objective(cfg: Config) -> Objective:
    """The objective a config names (f-GAN parameters only for ``fgan``).

    A non-zero ``tricks.label_smoothing`` goes to every objective, so one that has no targets to
    smooth refuses it (ConfigError) instead of training without it.
    """
    o = cfg.objective
    params: dict[str, object] = {}
    if o.name == "fgan":
        params = {"divergence": o.divergence, "pi": o.pi, "generator_loss": o.generator_loss}
    if cfg.tricks.label_smoothing:
        params["label_smoothing"] = cfg.tricks.label_smoothing
    return make_objective(o.name, **params)


def build_loss(cfg: Config, constraints: Constraints, n_classes: int = 0) -> GANLoss:
    """The :class:`GANLoss` a config describes."""
    c, t = cfg.conditional, cfg.tricks
    return GANLoss(
        build_objective(cfg),
        constraints,
        c.mode,
        c.wrong_label,
        c.ac_weight,
        c.ac_weight_g,
        feature_matching=t.feature_matching,
        feature_matching_mode=t.feature_matching_mode,
        n_classes=n_classes,
    )
