"""Network architectures (architecture only; sizes come from a config)."""

from wgan.nets.mlp import MLP, make_activation

__all__ = ["MLP", "make_activation"]
