"""The GAN game: a generator, a critic, an objective and a Lipschitz constraint.

Every GAN in this package is the same game. The critic D scores samples; the generator G maps
noise to samples; the *objective* turns the scores into two losses and an estimate of the
divergence the critic implies; the *constraint* adds a penalty to the critic's loss or projects
its weights. :class:`GANLoss` is the one place where these meet: it returns dicts of named scalar
terms and the training loop calls ``backward()`` on ``terms['loss']``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wgan.config import Config, NetConfig
from wgan.constraints import Constraints, GradientPenalty, make_constraints
from wgan.errors import ConfigError, WganError
from wgan.nets import (
    MLP,
    AuxClassifierCritic,
    ConditionalCritic,
    ConditionalGenerator,
    TextCritic,
    TextGenerator,
)
from wgan.nets.build import image_critic, image_generator
from wgan.objectives import Objective, make_objective
from wgan.tricks import (
    BatchAwareCritic,
    FeatureCritic,
    MinibatchDiscrimination,
    MinibatchStdDev,
    VirtualBatchNet,
    feature_matching_loss,
)


class LatentGenerator(nn.Module):
    """G(z) with z ~ N(0, I_latent_dim), or G(c, z) when ``n_classes`` > 0.

    ``net`` maps (B, latent_dim) to samples (B, dim) or images (B, C, H, W); a conditional
    ``net`` (:class:`wgan.nets.ConditionalGenerator`) also takes the labels (B,).
    """

    def __init__(self, net: nn.Module, latent_dim: int, n_classes: int = 0) -> None:
        super().__init__()
        self.net, self.latent_dim, self.n_classes = net, latent_dim, n_classes

    def noise(self, n: int, generator: torch.Generator | None, device) -> Tensor:
        return torch.randn(n, self.latent_dim, generator=generator, device=device)  # (n, latent)

    def sample(
        self, n: int, generator: torch.Generator | None = None, labels: Tensor | None = None
    ) -> Tensor:
        """``n`` samples; a conditional G draws uniform labels when none are given."""
        device = next(self.parameters()).device
        z = self.noise(n, generator, device)
        if self.n_classes and labels is None:
            labels = torch.randint(self.n_classes, (n,), generator=generator, device=device)
        return self(z, labels)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.n_classes:
            if labels is None:
                raise WganError("this generator is conditional: give a label per sample")
            return self.net(z, labels)
        return self.net(z)


class NoisyDataGenerator(nn.Module):
    """A fixed "generator": real samples plus N(0, std^2) noise; it has nothing to learn.

    Used to study critics alone (the clipping-vs-penalty figure of Gulrajani et al. 2017, Fig. 1:
    the generator is held fixed at the real data plus Gaussian noise). Its "noise" is the noisy
    sample itself, so :meth:`forward` is the identity.
    """

    n_classes = 0

    def __init__(self, dataset, std: float, device) -> None:
        super().__init__()
        self.dataset, self.std, self.device = dataset, std, torch.device(device)

    def noise(self, n: int, generator: torch.Generator | None, device=None) -> Tensor:
        x = self.dataset.sample(n, generator=generator, device=device or self.device)
        noise = torch.randn(x.shape, generator=generator, device=x.device)
        return x + self.std * noise  # (n, dim)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        return x

    def sample(
        self, n: int, generator: torch.Generator | None = None, labels: Tensor | None = None
    ) -> Tensor:
        return self.noise(n, generator)


def build_net(cfg: NetConfig, in_dim: int, out_dim: int) -> nn.Module:
    """The MLP a :class:`NetConfig` describes, from ``in_dim`` to ``out_dim`` features."""
    if cfg.arch != "mlp":
        what = "text" if cfg.arch == "text" else "images"
        raise ConfigError(f"arch '{cfg.arch}' is for {what}; vector data needs arch 'mlp'")
    return MLP(in_dim, out_dim, cfg.hidden, cfg.depth, cfg.activation, cfg.norm)


def build_image_generator(cfg: NetConfig, in_dim: int, shape: tuple[int, int, int]) -> nn.Module:
    """A DCGAN, ResNet or MLP generator from (B, in_dim) to images of ``shape`` = (C, H, W)."""
    return image_generator(cfg, in_dim, shape)  # every option: wgan.nets.build


def build_image_critic(cfg: NetConfig, channels: int, resolution: int) -> nn.Module:
    """A DCGAN or ResNet critic from images (B, channels, R, R) to scores (B, 1)."""
    return image_critic(cfg, channels, resolution)


def build_text_players(cfg: Config, vocab: int, seq_len: int) -> tuple[nn.Module, nn.Module]:
    """The WGAN-GP language model's nets (:mod:`wgan.nets.text`) for ``(B, vocab, seq_len)``."""
    for key in ("generator", "critic"):
        if getattr(cfg, key).arch != "text":
            raise ConfigError(f"text data needs {key}.arch text, got '{getattr(cfg, key).arch}'")
    g, d = cfg.generator, cfg.critic
    g_net = TextGenerator(g.latent_dim, vocab, seq_len, g.width, g.depth, g.kernel)
    d_net = TextCritic(vocab, seq_len, d.width, d.depth, d.kernel)
    return g_net, d_net


def _players(cfg: Config, dataset) -> tuple[nn.Module, nn.Module]:
    """Generator net and critic net (before any constraint), conditional as configured."""
    cond = cfg.conditional
    n_classes = int(getattr(dataset, "n_classes", 0) or 0)
    if cond.mode != "none" and n_classes < 2:
        raise ConfigError(
            f"conditional.mode={cond.mode} needs labelled data; dataset '{cfg.data.name}' "
            "has no labels"
        )
    extra = cond.embed_dim if cond.mode != "none" else 0  # label embedding width
    latent = cfg.generator.latent_dim + extra
    critic_extra = extra if cond.mode == "concat" else 0
    if getattr(dataset, "is_text", False):
        if cond.mode != "none":
            raise ConfigError("text data has no labels: conditional.mode must be none")
        g_net, d_net = build_text_players(cfg, *dataset.shape)
    elif getattr(dataset, "is_image", False):
        shape = tuple(dataset.shape)
        g_net = build_image_generator(cfg.generator, latent, shape)
        d_net = build_image_critic(cfg.critic, shape[0] + critic_extra, shape[1])
    else:
        g_net = build_net(cfg.generator, latent, dataset.dim)
        d_net = build_net(cfg.critic, dataset.dim + critic_extra, 1)
    if cond.mode != "none":
        g_net = ConditionalGenerator(g_net, n_classes, cond.embed_dim)
    if cond.mode == "concat":
        d_net = ConditionalCritic(d_net, n_classes, cond.embed_dim)
    elif cond.mode == "acgan":
        d_net = AuxClassifierCritic(d_net, n_classes)
    return g_net, d_net


def build_objective(cfg: Config) -> Objective:
    """The objective a config names (f-GAN parameters only for ``fgan``)."""
    o = cfg.objective
    if o.name == "fgan":
        return make_objective(
            "fgan", divergence=o.divergence, pi=o.pi, generator_loss=o.generator_loss
        )
    if cfg.tricks.label_smoothing:
        return make_objective(o.name, label_smoothing=cfg.tricks.label_smoothing)
    return make_objective(o.name)


def build_constraints(cfg: Config) -> Constraints:
    c = cfg.constraint
    return make_constraints(
        c.clip,
        c.penalty,
        c.penalty_weight,
        c.penalty_target,
        c.penalty_every,
        c.spectral_norm,
        c.penalty_impl,
    )


def build_models(cfg: Config, dataset, device) -> tuple[nn.Module, nn.Module, Constraints]:
    """Generator, critic (with its constraint's parametrisation) and the constraints."""
    g_net, d_net = _players(cfg, dataset)
    if cfg.generator.norm == "virtual" and cfg.generator.kind != "fixed":
        n_cls = int(getattr(dataset, "n_classes", 0) or 0) if cfg.conditional.mode != "none" else 0
        g_net = _virtual_batch(cfg, g_net, n_cls)
    if cfg.generator.kind == "fixed":
        gen: nn.Module = NoisyDataGenerator(dataset, cfg.generator.fixed_noise_std, device)
    else:
        n_classes = int(getattr(dataset, "n_classes", 0) or 0)
        gen = LatentGenerator(
            g_net, cfg.generator.latent_dim, n_classes if cfg.conditional.mode != "none" else 0
        )
    constraints = build_constraints(cfg)
    if getattr(dataset, "is_image", False) and cfg.critic.norm == "batch":
        if any(isinstance(p, GradientPenalty) for p in constraints.parts):
            raise ConfigError(
                "critic.norm=batch with a gradient penalty: the penalty is per sample and batch "
                "norm couples samples (WGAN-GP, sec. 4); use critic.norm=layer or none"
            )
    d_net = _batch_features(cfg, d_net, constraints)
    critic = constraints.prepare(d_net)
    if cfg.tricks.feature_matching > 0:
        critic = FeatureCritic(critic)
    return gen.to(device), critic.to(device), constraints


def _batch_features(cfg: Config, d_net: nn.Module, constraints: Constraints) -> nn.Module:
    """The critic with a minibatch-discrimination or minibatch-stddev feature, as configured."""
    t = cfg.tricks
    if t.minibatch == "none":
        return d_net
    if constraints.has_penalty:
        raise ConfigError(
            f"tricks.minibatch={t.minibatch} with a gradient penalty: D(x_i) then depends on the "
            "whole batch, and the per-sample penalty ||grad_x D(x_hat_i)|| is not defined; use "
            "clipping, spectral norm or no constraint"
        )
    if cfg.conditional.mode == "acgan":
        raise ConfigError(
            f"tricks.minibatch={t.minibatch} with conditional.mode=acgan is not supported (the "
            "class head reads the features); use conditional.mode=concat"
        )
    if t.minibatch == "stddev":
        layer: nn.Module = MinibatchStdDev()
    else:
        width = d_net.head.in_features
        layer = MinibatchDiscrimination(width, t.minibatch_kernels, t.minibatch_kernel_dim)
    return BatchAwareCritic(d_net, layer)


def _virtual_batch(cfg: Config, g_net: nn.Module, n_classes: int) -> nn.Module:
    """``generator.norm=virtual``: the net with its fixed reference batch (Salimans et al. 2016).

    The reference noise (and labels, for a conditional G) is drawn once from its own seed, so
    it does not touch the run's random stream, and is a buffer of the generator (checkpointed).
    """
    g = torch.Generator().manual_seed(cfg.train.seed + 104_729)
    n = cfg.tricks.virtual_batch_size
    z_ref = torch.randn(n, cfg.generator.latent_dim, generator=g)  # (n_ref, latent)
    labels = torch.randint(n_classes, (n,), generator=g) if n_classes else None
    return VirtualBatchNet(g_net, z_ref, labels)


class Critic(Protocol):
    """The critic as a function: scores (B, 1) of x given labels, and (score, logits) for AC-GAN."""

    def __call__(self, x: Tensor, labels: Tensor | None = None) -> Tensor: ...

    def score_and_logits(self, x: Tensor) -> tuple[Tensor, Tensor]: ...


@dataclass
class GANLoss:
    """The named loss terms of both players, from critic outputs on tensors drawn beforehand.

    Nothing here draws random numbers or takes optimiser steps: :mod:`wgan.step` draws the real
    batch, the noise, the labels, the wrong-label shifts and the interpolation weights once per
    generator iteration, calls these methods, and differentiates ``terms['loss']``.

    ``conditioning`` is ``none``, ``concat`` (D(c, x); with ``wrong_label`` real images paired
    with a wrong label are a third, "fake" term, Reed et al. 2016) or ``acgan`` (an auxiliary
    classifier on an unconditional critic, Odena et al. 2017). See
    :class:`wgan.config.ConditionalConfig`.

    The three-term conditional critic loss is the sum of the objective's terms; for the minimax
    family exactly -E log D(c, x) - E log(1 - D(c, G(c, z))) - E log(1 - D(c', x)), every term
    bounded below. With the Wasserstein objective the wrong-label term is refused: the critic
    loss -E D(c, x) + E D(c, x~) + E D(c', x) has no lower bound, because the penalty (or
    clipping) constrains D in x at a fixed label, while D(c, x) - D(c', x) can grow without
    limit through the label (averaging the two fake terms removes the output-bias direction but
    not this one: measured, the loss reaches -400 in 300 steps, ``tests/test_step.py``).
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
        if (
            self.conditioning == "concat"
            and self.wrong_label
            and self.objective.name in ("wasserstein",)
        ):
            raise ConfigError(
                "conditional.wrong_label=true with objective wasserstein: the critic loss "
                "-E D(c,x) + E D(c,G(z)) + E D(c',x) is unbounded below (the Lipschitz "
                "constraint holds the label fixed, so D(c,x) - D(c',x) can grow without "
                "limit); set conditional.wrong_label=false or use another objective"
            )

    def critic_terms(
        self,
        critic: Critic,
        real: Tensor,
        fake: Tensor,
        labels: Tensor | None = None,
        wrong: Tensor | None = None,
        eps: Tensor | None = None,
        penalty_factor: float | Tensor = 1.0,
        penalty_args: dict[str, Any] | None = None,
    ) -> dict[str, Tensor]:
        """The critic's loss (objective + penalty) on a real batch (B, ...) and fakes (B, ...).

        Args:
            critic: D as a function (see :class:`Critic`).
            real, fake: the batches; ``labels`` (B,) their condition when conditional.
            wrong: (B,) wrong labels for the third conditional term (``concat`` with
                ``wrong_label``).
            eps: (B,) interpolation weights for the gradient penalty.
            penalty_factor: multiplies the penalty (lazy regularisation: ``every`` on the steps
                where it is due, 0 elsewhere; a Python 0 skips computing it).
            penalty_args: keyword arguments of :meth:`Constraints.penalty` (``scale``,
                ``weight``, ``target``, ``impl``).
        """
        if self.conditioning != "none" and labels is None:
            raise WganError("a conditional GAN needs the labels of the real batch")
        if self.conditioning == "concat":
            terms = dict(self.objective.critic_loss(critic(real, labels), critic(fake, labels)))
            if self.wrong_label:
                if wrong is None:
                    raise WganError("the wrong-label term needs wrong labels")
                term = self.objective.fake_term(critic(real, wrong))
                terms["loss"] = terms["loss"] + term
                terms["wrong_label"] = term.detach()
        elif self.conditioning == "acgan":
            s_real, logits_real = critic.score_and_logits(real)  # (B, 1), (B, K)
            terms = dict(self.objective.critic_loss(s_real, critic(fake)))
            ac = F.cross_entropy(logits_real.float(), labels)
            terms["loss"] = terms["loss"] + self.ac_weight * ac
            terms["ac_loss"] = ac.detach()
            terms["ac_accuracy"] = (logits_real.argmax(1) == labels).float().mean()
        else:
            terms = dict(self.objective.critic_loss(critic(real), critic(fake)))
        if isinstance(penalty_factor, Tensor) or penalty_factor != 0:
            score = self.score_fn(critic, labels)
            extra = self.constraints.penalty(score, real, fake, eps, **(penalty_args or {}))
            if "penalty" in extra:
                extra["penalty"] = extra["penalty"] * penalty_factor
                terms["loss"] = terms["loss"] + extra["penalty"]
            terms.update(extra)
        elif self.constraints.has_penalty:
            # Not due (lazy regularisation): an applied penalty of 0, logged as such, so the
            # logged mean is the same whether the step skips the penalty or multiplies it by 0.
            terms["penalty"] = torch.zeros((), device=terms["loss"].device)
        return terms

    def score_fn(self, critic: Critic, labels: Tensor | None) -> Callable[[Tensor], Tensor]:
        """The critic as a function of x alone: D(c, .) at the fixed labels when conditioned."""
        if self.conditioning == "concat":
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
            args = (labels,) if self.conditioning == "concat" else ()
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
        if self.conditioning == "concat":
            return dict(self.objective.generator_loss(critic(fake, labels)))
        if self.conditioning == "acgan":
            score, logits = critic.score_and_logits(fake)
            terms = dict(self.objective.generator_loss(score))
            ac = F.cross_entropy(logits.float(), labels)
            terms["loss"] = terms["loss"] + self.ac_weight_g * ac
            terms["ac_loss"] = ac.detach()
            return terms
        return dict(self.objective.generator_loss(critic(fake)))


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
