"""Network architectures (architecture only; sizes come from a config)."""

from wgan.nets.conditional import AuxClassifierCritic, ConditionalCritic, ConditionalGenerator
from wgan.nets.dcgan import DCGANCritic, DCGANGenerator
from wgan.nets.mlp import MLP, make_activation
from wgan.nets.resnet import ResNetCritic, ResNetGenerator
from wgan.nets.text import TextCritic, TextGenerator

__all__ = [
    "MLP",
    "AuxClassifierCritic",
    "ConditionalCritic",
    "ConditionalGenerator",
    "DCGANCritic",
    "DCGANGenerator",
    "ResNetCritic",
    "ResNetGenerator",
    "TextCritic",
    "TextGenerator",
    "make_activation",
]
