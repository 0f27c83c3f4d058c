"""Network architectures (architecture only; sizes come from a config)."""

from wgan.nets.build import image_critic, image_generator
from wgan.nets.conditional import AuxClassifierCritic, ConditionalCritic, ConditionalGenerator
from wgan.nets.dcgan import DCGANCritic, DCGANGenerator
from wgan.nets.mlp import MLP, MLPImageGenerator, make_activation
from wgan.nets.projection import ProjectionCritic
from wgan.nets.resnet import ResNetCritic, ResNetGenerator
from wgan.nets.text import TextCritic, TextGenerator

__all__ = [
    "MLP",
    "MLPImageGenerator",
    "ProjectionCritic",
    "AuxClassifierCritic",
    "ConditionalCritic",
    "ConditionalGenerator",
    "DCGANCritic",
    "DCGANGenerator",
    "ResNetCritic",
    "ResNetGenerator",
    "TextCritic",
    "TextGenerator",
    "image_critic",
    "image_generator",
    "make_activation",
]
