"""Network architectures (architecture only; sizes come from a config)."""

from wgan.nets.conditional import AuxClassifierCritic, ConditionalCritic, ConditionalGenerator
from wgan.nets.dcgan import DCGANCritic, DCGANGenerator
from wgan.nets.mlp import MLP, make_activation
from wgan.nets.resnet import ResNetCritic, ResNetGenerator

__all__ = [
    "MLP",
    "AuxClassifierCritic",
    "ConditionalCritic",
    "ConditionalGenerator",
    "DCGANCritic",
    "DCGANGenerator",
    "ResNetCritic",
    "ResNetGenerator",
    "make_activation",
]
