"""Image networks from a network config (``generator.*`` / ``critic.*`` keys of a run).

One function per player turns the options of a :class:`wgan.config.NetConfig` into a network,
so every architecture of the WGAN-GP paper's robustness studies (Gulrajani et al. 2017, Sec.
5.1 and Table 1) is a config, not code:

* ``arch``: dcgan, resnet, or (generator only) mlp, the fully connected image generator;
* ``activation``: relu, leaky_relu, softplus (softplus(2x+2)/2 - 1), tanh, gated
  (tanh(a) * sigmoid(b)); "auto" is each architecture's own (DCGAN: ReLU in G, LeakyReLU(0.2)
  in D; ResNet and MLP: ReLU);
* ``norm``: batch, layer (the paper's replacement of batch norm in a gradient-penalised
  critic), none;
* ``width``: the base filter count; ``constant_width`` (DCGAN generator): every map has it;
* ``init`` (DCGAN): dcgan (N(0, 0.02)) or he (N(0, 2 / fan_in), He et al. 2015);
* depth: ``layers`` (DCGAN: convolutions in all, 0 = one per resampling step), ``blocks``
  (ResNet: residual blocks, 0 = the paper's count), ``depth`` x ``hidden`` (MLP).

An option the chosen architecture does not use is refused with a one-line ConfigError instead
of being ignored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

from wgan.errors import ConfigError
from wgan.nets.dcgan import DCGANCritic, DCGANGenerator
from wgan.nets.mlp import MLPImageGenerator
from wgan.nets.resnet import ResNetCritic, ResNetGenerator

if TYPE_CHECKING:
    from wgan.config.sections import NetConfig

__all__ = ["image_critic", "image_generator"]


def _refuse_unused(cfg: NetConfig, key: str, generator: bool) -> None:
    """ConfigError when an option is set that ``cfg.arch`` (for this player) does not use."""
    uses = {
        "dcgan": {"layers", "constant_width", "init"} if generator else {"layers", "init"},
        "resnet": {"blocks"},
        "mlp": set(),
    }.get(cfg.arch, set())
    unsets = (("layers", 0), ("blocks", 0), ("constant_width", False), ("init", "dcgan"))
    for option, unset in unsets:
        value = getattr(cfg, option, unset)
        if value != unset and option not in uses:
            where = {"layers": "dcgan", "blocks": "resnet", "constant_width": "a dcgan generator"}
            where["init"] = "dcgan"
            raise ConfigError(
                f"{key}.{option}={value} is an option of {where[option]}, not of "
                f"{key}.arch={cfg.arch}"
            )


def image_generator(cfg: NetConfig, in_dim: int, shape: tuple[int, int, int]) -> nn.Module:
    """The generator ``cfg`` describes, from noise (B, in_dim) to images (B, *shape) in [-1, 1].

    ``shape`` = (C, R, R) comes from the data.
    """
    channels, resolution, _ = shape
    _refuse_unused(cfg, "generator", generator=True)
    if cfg.arch == "dcgan":
        return DCGANGenerator(
            in_dim,
            channels,
            resolution,
            cfg.width,
            cfg.norm,
            cfg.activation,
            cfg.layers,
            cfg.constant_width,
            cfg.init,
        )
    if cfg.arch == "resnet":
        return ResNetGenerator(
            in_dim, channels, resolution, cfg.width, cfg.norm, cfg.activation, cfg.blocks
        )
    if cfg.arch == "mlp":
        return MLPImageGenerator(
            in_dim, channels, resolution, cfg.hidden, cfg.depth, cfg.activation, cfg.norm
        )
    raise ConfigError(f"image data needs generator.arch dcgan, resnet or mlp, got '{cfg.arch}'")


def image_critic(cfg: NetConfig, channels: int, resolution: int) -> nn.Module:
    """The critic ``cfg`` describes, from images (B, channels, R, R) to scores (B, 1)."""
    _refuse_unused(cfg, "critic", generator=False)
    if cfg.arch == "dcgan":
        return DCGANCritic(
            channels, resolution, cfg.width, cfg.norm, cfg.activation, cfg.layers, cfg.init
        )
    if cfg.arch == "resnet":
        return ResNetCritic(channels, resolution, cfg.width, cfg.norm, cfg.activation, cfg.blocks)
    raise ConfigError(f"image data needs critic.arch dcgan or resnet, got '{cfg.arch}'")
