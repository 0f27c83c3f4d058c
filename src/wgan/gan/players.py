"""The players of the GAN game and how a config builds them: the generator, the critic (with
the improved techniques' layers around it), the objective and the Lipschitz constraint.

:func:`build_models` is what a run calls; :mod:`wgan.gan.loss` combines the pieces into losses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from wgan.config import Config, NetConfig
from wgan.constraints import Constraints, GradientPenalty, make_constraints
from wgan.errors import ConfigError, WganError
from wgan.nets import (
    MLP,
    AuxClassifierCritic,
    ConditionalCritic,
    ConditionalGenerator,
    ProjectionCritic,
    TextCritic,
    TextGenerator,
)
from wgan.nets.build import image_critic, image_generator
from wgan.nets.tricks import (
    BatchAwareCritic,
    FeatureCritic,
    MinibatchDiscrimination,
    MinibatchStdDev,
    VirtualBatchNet,
)

if TYPE_CHECKING:
    from wgan.data.attributes import AttributeSchema


class LatentGenerator(nn.Module):
    """G(z) with z ~ N(0, I_latent_dim), or G(z, c) when conditional: on a class (``n_classes``
    > 0, labels (B,) int64) or an attribute vector (``attribute_schema`` set, labels (B, k)
    float, :class:`wgan.data.attributes.AttributeSchema`).

    ``net`` maps (B, latent_dim) to samples (B, dim) or images (B, C, H, W); a conditional
    ``net`` (:class:`wgan.nets.ConditionalGenerator`) also takes the labels.
    """

    def __init__(
        self,
        net: nn.Module,
        latent_dim: int,
        n_classes: int = 0,
        attribute_schema: AttributeSchema | None = None,
    ) -> None:
        super().__init__()
        self.net, self.latent_dim, self.n_classes = net, latent_dim, n_classes
        self.attribute_schema = attribute_schema
        self.n_attributes = 0 if attribute_schema is None else attribute_schema.dim
        if n_classes and attribute_schema is not None:
            raise ConfigError("a generator conditions on classes or on attribute vectors, not both")

    @property
    def conditional(self) -> bool:
        """Whether G takes a condition (a class or an attribute vector) per sample."""
        return bool(self.n_classes or self.n_attributes)

    def noise(self, n: int, generator: torch.Generator | None, device) -> Tensor:
        return torch.randn(n, self.latent_dim, generator=generator, device=device)  # (n, latent)

    def draw_conditions(
        self, n: int, generator: torch.Generator | None = None, device=None
    ) -> Tensor | None:
        """``n`` uniform conditions: classes (n,) int64, attribute vectors (n, k)
        (:meth:`~wgan.data.attributes.AttributeSchema.uniform`), or None for an unconditional G."""
        if self.n_classes:
            return torch.randint(self.n_classes, (n,), generator=generator, device=device)
        if self.attribute_schema is not None:
            return self.attribute_schema.uniform(n, generator, device)
        return None

    def sample(
        self, n: int, generator: torch.Generator | None = None, labels: Tensor | None = None
    ) -> Tensor:
        """``n`` samples; a conditional G draws uniform conditions when none are given."""
        device = next(self.parameters()).device
        z = self.noise(n, generator, device)
        if labels is None:
            labels = self.draw_conditions(n, generator, device)
        return self(z, labels)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.conditional:
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


def _condition_sizes(dataset) -> tuple[int, int]:
    """(K classes, k attributes) a conditional GAN on ``dataset`` conditions on: an attribute
    dataset (``attribute_schema`` set) gives (0, k), a labelled one (K, 0)."""
    schema = getattr(dataset, "attribute_schema", None)
    if schema is not None:
        return 0, int(schema.dim)
    return int(getattr(dataset, "n_classes", 0) or 0), 0


def _players(cfg: Config, dataset) -> tuple[nn.Module, nn.Module]:
    """Generator net and critic net (before any constraint), conditional as configured."""
    cond = cfg.conditional
    n_classes, n_attributes = _condition_sizes(dataset)
    if cond.mode != "none" and n_classes < 2 and not n_attributes:
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
        g_net = ConditionalGenerator(g_net, n_classes, cond.embed_dim, n_attributes)
    if cond.mode == "concat":
        d_net = ConditionalCritic(d_net, n_classes, cond.embed_dim, n_attributes)
    elif cond.mode == "projection":
        d_net = ProjectionCritic(d_net, n_classes, n_attributes)
    elif cond.mode == "acgan":
        d_net = AuxClassifierCritic(d_net, n_classes, n_attributes)
    return g_net, d_net


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
    conditional = cfg.conditional.mode != "none"
    n_classes, n_attributes = _condition_sizes(dataset) if conditional else (0, 0)
    schema = getattr(dataset, "attribute_schema", None) if n_attributes else None
    if cfg.generator.norm == "virtual" and cfg.generator.kind != "fixed":
        g_net = _virtual_batch(cfg, g_net, n_classes, schema)
    if cfg.generator.kind == "fixed":
        gen: nn.Module = NoisyDataGenerator(dataset, cfg.generator.fixed_noise_std, device)
    else:
        gen = LatentGenerator(g_net, cfg.generator.latent_dim, n_classes, schema)
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
    if cfg.conditional.mode in ("acgan", "projection"):
        raise ConfigError(
            f"tricks.minibatch={t.minibatch} with conditional.mode={cfg.conditional.mode} is not "
            "supported (its class head or projection reads the features); use "
            "conditional.mode=concat"
        )
    if t.minibatch == "stddev":
        layer: nn.Module = MinibatchStdDev()
    else:
        width = d_net.head.in_features
        layer = MinibatchDiscrimination(width, t.minibatch_kernels, t.minibatch_kernel_dim)
    return BatchAwareCritic(d_net, layer)


def _virtual_batch(
    cfg: Config, g_net: nn.Module, n_classes: int, schema: AttributeSchema | None = None
) -> nn.Module:
    """``generator.norm=virtual``: the net with its fixed reference batch (Salimans et al. 2016).

    The reference noise (and labels or attribute vectors, for a conditional G) is drawn once
    from its own seed, so it does not touch the run's random stream, and is a buffer of the
    generator (checkpointed).
    """
    g = torch.Generator().manual_seed(cfg.train.seed + 104_729)
    n = cfg.tricks.virtual_batch_size
    z_ref = torch.randn(n, cfg.generator.latent_dim, generator=g)  # (n_ref, latent)
    labels = torch.randint(n_classes, (n,), generator=g) if n_classes else None
    if schema is not None:
        labels = schema.uniform(n, g)  # (n_ref, k)
    return VirtualBatchNet(g_net, z_ref, labels)
