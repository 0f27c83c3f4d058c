"""A multilayer perceptron for generators and critics on vector data.

The activation set is the one of the WGAN-GP paper's random-architecture study (Gulrajani et al.
2017, Table 1): ReLU, LeakyReLU, tanh and softplus(2x + 2)/2 - 1. Normalisation is none, batch
norm, or layer norm; Gulrajani et al. (2017, Sec. 4) note that a gradient-penalised critic must
not use batch norm (the penalty is per sample, batch norm couples samples) and recommend layer
norm as its drop-in replacement.
"""

from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor, nn

from wgan.errors import ConfigError, WganError
from wgan.nets.sizes import check_positive, check_weights
from wgan.tricks import VirtualBatchNorm


class ShiftedSoftplus(nn.Module):
    """softplus(2x + 2)/2 - 1: a smooth ReLU-like activation with f(0) ~ 0 (WGAN-GP, Table 1)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.softplus(2.0 * x + 2.0) / 2.0 - 1.0


def make_activation(name: str) -> nn.Module:
    """The activation module named ``name``: relu, leaky_relu (slope 0.2), tanh or softplus."""
    table: dict[str, Callable[[], nn.Module]] = {
        "relu": nn.ReLU,
        "leaky_relu": lambda: nn.LeakyReLU(0.2),
        "tanh": nn.Tanh,
        "softplus": ShiftedSoftplus,
    }
    if not isinstance(name, str) or name not in table:
        raise ConfigError(f"unknown activation '{name}' (choose from {', '.join(table)})")
    return table[name]()


def _make_norm(name: str, width: int) -> nn.Module:
    """none, batch, layer or virtual batch norm (a generator inside a VirtualBatchNet)."""
    choices = "none, batch, layer, virtual"
    if not isinstance(name, str):
        raise ConfigError(f"unknown normalisation '{name}' (choose from {choices})")
    if name == "none":
        return nn.Identity()
    if name == "batch":
        return nn.BatchNorm1d(width)
    if name == "layer":
        return nn.LayerNorm(width)
    if name == "virtual":
        return VirtualBatchNorm(width)
    raise ConfigError(f"unknown normalisation '{name}' (choose from {choices})")


class MLP(nn.Module):
    """``depth`` hidden blocks Linear -> norm -> activation, then a linear output layer.

    ``forward(x)`` maps (B, in_dim) to (B, out_dim). ``features(x)`` returns the last hidden
    activation (B, hidden), which feature matching (Salimans et al. 2016) uses.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden: int = 512,
        depth: int = 3,
        activation: str = "relu",
        norm: str = "none",
    ) -> None:
        super().__init__()
        check_positive("MLP", in_dim=in_dim, out_dim=out_dim, hidden=hidden)
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
            raise ConfigError(f"MLP: depth must be an integer >= 0, got {depth!r}")
        weights = hidden * (in_dim + (depth - 1) * hidden + out_dim) if depth else in_dim * out_dim
        check_weights("MLP", weights, f"in_dim={in_dim}, hidden={hidden}, depth={depth}")
        blocks: list[nn.Module] = []
        width = in_dim
        for _ in range(depth):
            blocks += [
                # A bias before virtual batch norm is cancelled by it (zero gradient): none.
                nn.Linear(width, hidden, bias=norm != "virtual"),
                _make_norm(norm, hidden),
                make_activation(activation),
            ]
            width = hidden
        self.body = nn.Sequential(*blocks)
        self.head = nn.Linear(width, out_dim)
        self.in_dim, self.out_dim = in_dim, out_dim

    def features(self, x: Tensor) -> Tensor:
        """The last hidden representation, (B, hidden) (or the input when depth is 0)."""
        if x.ndim != 2 or x.shape[1] != self.in_dim:
            raise WganError(f"expected input of shape (B, {self.in_dim}), got {tuple(x.shape)}")
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
