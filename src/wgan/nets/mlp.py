"""A multilayer perceptron for generators and critics on vector data (and images, flattened).

The activation set is the one of the WGAN-GP paper's random-architecture study (Gulrajani et al.
2017, Table 1): ReLU, LeakyReLU, tanh and softplus(2x + 2)/2 - 1, plus the gated multiplicative
unit tanh(a) * sigmoid(b) of its fixed-architecture study (Gulrajani et al. 2017, Sec. 5.1; van
den Oord et al. 2016, PixelCNN), where a and b are two halves of the layer's pre-activation, so
a gated layer computes twice as many pre-activations as it outputs. Normalisation is none,
batch norm, or layer norm; Gulrajani et al. (2017, Sec. 4) note that a gradient-penalised
critic must not use batch norm (the penalty is per sample, batch norm couples samples) and
recommend layer norm as its drop-in replacement.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wgan.errors import ConfigError, WganError
from wgan.nets.sizes import check_positive, check_weights
from wgan.nets.tricks import VirtualBatchNorm


class ShiftedSoftplus(nn.Module):
    """softplus(2x + 2)/2 - 1: a smooth ReLU-like activation with f(0) ~ 0 (WGAN-GP, Table 1)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.softplus(2.0 * x + 2.0) / 2.0 - 1.0


class Gated(nn.Module):
    """tanh(a) * sigmoid(b) with (a, b) the two halves of the input along dim 1.

    (B, 2C, ...) -> (B, C, ...): the layer before it produces 2C pre-activations (Gulrajani et
    al. 2017, Sec. 5.1, after the gated units of van den Oord et al. 2016).
    """

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[1] % 2:
            raise WganError(f"gated activation needs an even dim 1, got shape {tuple(x.shape)}")
        a, b = x.chunk(2, dim=1)  # each (B, C, ...)
        return torch.tanh(a) * torch.sigmoid(b)


#: Activation names of :func:`make_activation` ("auto": the network's own default).
ACTIVATIONS = ("relu", "leaky_relu", "tanh", "softplus", "gated")


def gate_factor(name: str) -> int:
    """Pre-activations per output unit: 2 for the gated unit, 1 for the others."""
    return 2 if name == "gated" else 1


def make_activation(name: str) -> nn.Module:
    """The activation module named ``name``: relu, leaky_relu (slope 0.2), tanh, softplus
    (softplus(2x + 2)/2 - 1) or gated (tanh(a) * sigmoid(b), halving dim 1)."""
    table: dict[str, Callable[[], nn.Module]] = {
        "relu": nn.ReLU,
        "leaky_relu": lambda: nn.LeakyReLU(0.2),
        "tanh": nn.Tanh,
        "softplus": ShiftedSoftplus,
        "gated": Gated,
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
    activation (B, hidden), which feature matching (Salimans et al. 2016) uses. With the gated
    activation each hidden Linear has 2 * hidden outputs (normalised before the gate).
    ``activation="auto"`` is ReLU.
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
        activation = "relu" if activation == "auto" else activation
        make_activation(activation)  # a one-line ConfigError for an unknown name, before sizes
        k = gate_factor(activation)
        weights = hidden * (in_dim + (depth - 1) * hidden + out_dim) if depth else in_dim * out_dim
        check_weights("MLP", k * weights, f"in_dim={in_dim}, hidden={hidden}, depth={depth}")
        blocks: list[nn.Module] = []
        width = in_dim
        for _ in range(depth):
            blocks += [
                # A bias before virtual batch norm is cancelled by it (zero gradient): none.
                nn.Linear(width, k * hidden, bias=norm != "virtual"),
                _make_norm(norm, k * hidden),
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


class MLPImageGenerator(nn.Module):
    """A fully connected generator for images: z (B, in_dim) -> (B, C, R, R) in [-1, 1].

    An :class:`MLP` from ``in_dim`` to C * R * R outputs (``depth`` hidden layers of ``hidden``
    units), tanh, reshaped to (C, R, R). With ``depth=4, hidden=512`` and ReLU this is the
    4-layer 512-unit ReLU MLP generator of the WGAN-GP paper's architecture study (Gulrajani
    et al. 2017, Sec. 5.1, setting "G: 4-layer 512-dim ReLU MLP").
    """

    def __init__(
        self,
        in_dim: int,
        channels: int,
        resolution: int,
        hidden: int = 512,
        depth: int = 4,
        activation: str = "relu",
        norm: str = "none",
    ) -> None:
        super().__init__()
        check_positive("MLPImageGenerator", channels=channels, resolution=resolution)
        self.mlp = MLP(in_dim, channels * resolution * resolution, hidden, depth, activation, norm)
        self.in_dim, self.channels, self.resolution = in_dim, channels, resolution
        self.out_shape = (channels, resolution, resolution)

    def forward(self, z: Tensor) -> Tensor:
        x = torch.tanh(self.mlp(z))  # (B, C * R * R)
        return x.view(z.shape[0], *self.out_shape)  # (B, C, R, R)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
