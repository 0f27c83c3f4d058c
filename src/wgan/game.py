"""The GAN game: a generator, a critic, an objective and a Lipschitz constraint.

Every GAN in this package is the same game. The critic D scores samples; the generator G maps
noise to samples; the *objective* turns the scores into two losses and an estimate of the
divergence the critic implies; the *constraint* adds a penalty to the critic's loss or projects
its weights. :class:`GANLoss` is the one place where these meet: it returns dicts of named scalar
terms and the training loop calls ``backward()`` on ``terms['loss']``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from wgan.config import Config, NetConfig
from wgan.constraints import Constraints, make_constraints
from wgan.nets import MLP
from wgan.objectives import Objective, make_objective


class LatentGenerator(nn.Module):
    """G(z) with z ~ N(0, I_latent_dim). ``net`` maps (B, latent_dim) to (B, dim)."""

    def __init__(self, net: nn.Module, latent_dim: int) -> None:
        super().__init__()
        self.net, self.latent_dim = net, latent_dim

    def noise(self, n: int, generator: torch.Generator | None, device) -> Tensor:
        return torch.randn(n, self.latent_dim, generator=generator, device=device)  # (n, latent)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        device = next(self.parameters()).device
        return self(self.noise(n, generator, device))

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class NoisyDataGenerator(nn.Module):
    """A fixed "generator": real samples plus N(0, std^2) noise; it has nothing to learn.

    Used to study critics alone (seed 003's clipping-vs-penalty figure, after Gulrajani et al.
    2017, Fig. 1: "the generator is held fixed at the real data plus Gaussian noise").
    """

    def __init__(self, dataset, std: float, device) -> None:
        super().__init__()
        self.dataset, self.std, self.device = dataset, std, torch.device(device)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        x = self.dataset.sample(n, generator=generator, device=self.device)
        noise = torch.randn(x.shape, generator=generator, device=self.device)
        return x + self.std * noise


def build_net(cfg: NetConfig, in_dim: int, out_dim: int) -> nn.Module:
    """The network a :class:`NetConfig` describes."""
    return MLP(in_dim, out_dim, cfg.hidden, cfg.depth, cfg.activation, cfg.norm)


def build_objective(cfg: Config) -> Objective:
    """The objective a config names (f-GAN parameters only for ``fgan``)."""
    o = cfg.objective
    if o.name == "fgan":
        return make_objective(
            "fgan", divergence=o.divergence, pi=o.pi, generator_loss=o.generator_loss
        )
    return make_objective(o.name)


def build_constraints(cfg: Config) -> Constraints:
    c = cfg.constraint
    return make_constraints(
        c.clip, c.penalty, c.penalty_weight, c.penalty_target, c.penalty_every, c.spectral_norm
    )


def build_models(cfg: Config, dataset, device) -> tuple[nn.Module, nn.Module, Constraints]:
    """Generator, critic (with its constraint's parametrisation) and the constraints."""
    dim = dataset.dim
    if cfg.generator.kind == "fixed":
        gen: nn.Module = NoisyDataGenerator(dataset, cfg.generator.fixed_noise_std, device)
    else:
        net = build_net(cfg.generator, cfg.generator.latent_dim, dim)
        gen = LatentGenerator(net, cfg.generator.latent_dim)
    constraints = build_constraints(cfg)
    critic = constraints.prepare(build_net(cfg.critic, dim, 1))
    return gen.to(device), critic.to(device), constraints


@dataclass
class GANLoss:
    """Turns (G, D, a real batch) into named loss terms; the loop knows none of the maths."""

    objective: Objective
    constraints: Constraints

    def critic_terms(
        self,
        gen: nn.Module,
        critic: nn.Module,
        real: Tensor,
        generator: torch.Generator | None,
        with_penalty: bool = True,
    ) -> dict[str, Tensor]:
        """The critic's loss (objective + penalty) on a real batch (B, ...) and B fakes."""
        with torch.no_grad():
            fake = gen.sample(real.shape[0], generator)  # (B, ...), no graph into G
        terms = dict(self.objective.critic_loss(critic(real), critic(fake)))
        if with_penalty:
            extra = self.constraints.penalty(critic, real, fake, generator)
            if "penalty" in extra:
                terms["loss"] = terms["loss"] + extra["penalty"]
            terms.update(extra)
        return terms

    def generator_terms(
        self, gen: nn.Module, critic: nn.Module, batch_size: int, generator: torch.Generator | None
    ) -> dict[str, Tensor]:
        """The generator's loss on B fresh samples."""
        return dict(self.objective.generator_loss(critic(gen.sample(batch_size, generator))))
