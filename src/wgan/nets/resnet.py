"""The residual generator and critic of the WGAN-GP paper's CIFAR-10 experiments.

Gulrajani et al. (2017, appendix, and their ``gan_cifar_resnet.py``): the generator maps z
linearly to a 4x4 map and applies pre-activation residual blocks that double the side
(nearest-neighbour upsampling), three at 32x32; the critic starts with an "optimised" block
(convolutions first, no pre-activation on the raw image), downsamples with residual blocks to
8x8, adds two residual blocks without resampling (four blocks at 32x32), then ReLU, global mean
pooling and a linear score.

A residual block computes y = shortcut(x) + F(x); F is norm-ReLU-conv3x3-norm-ReLU-conv3x3
with the resampling inside F and a 1x1 convolution on the shortcut whenever the shape changes.
The paper's critic has no normalisation ("none"; batch norm is invalid under the per-sample
gradient penalty); "layer" is layer norm over (C, H, W) (GroupNorm(1, C)), the paper's option
for the critic. The generator uses batch norm by default.

Options of the WGAN-GP paper's architecture study (Gulrajani et al. 2017, Sec. 5.1): the
nonlinearity (ReLU by default; LeakyReLU, softplus(2x+2)/2-1 or tanh) and the number of
residual blocks, for its deep ResNet (101 layers: a critic of ``blocks=50`` has 2 * 50
convolutions on the residual paths plus the linear head). Extra generator blocks keep the side
(no upsampling) and are spread over the maps from the smallest up; extra critic blocks are
more unresampled blocks at the end.

Initialisation: PyTorch's default (Kaiming-uniform with a = sqrt(5) for convs and linears,
unit scale and zero shift for norms), not the reference code's He/Glorot uniform.
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

from wgan.errors import ConfigError
from wgan.nets.dcgan import (
    NORMS,
    check_images,
    check_latent,
    check_norm,
    conv_norm,
    resolution_levels,
    spread,
)
from wgan.nets.mlp import make_activation
from wgan.nets.sizes import check_positive, check_weights


def _conv3(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, padding=1)


def _activation(owner: str, name: str) -> str:
    """``name`` ("auto": relu); ConfigError for the gated unit (the pre-activation blocks apply
    the nonlinearity to the block input itself, which a gate would halve) or an unknown name."""
    name = "relu" if name == "auto" else name
    if name == "gated":
        raise ConfigError(f"{owner}: the gated activation is for dcgan and mlp nets, not resnet")
    try:
        make_activation(name)
    except ConfigError as err:
        raise ConfigError(f"{owner}: {err}") from None
    return name


def _check_blocks(owner: str, blocks: int, least: int) -> int:
    """``blocks`` (0: ``least``); ConfigError unless an integer that is 0 or >= ``least``."""
    if isinstance(blocks, bool) or not isinstance(blocks, int) or blocks < 0:
        raise ConfigError(f"{owner}: blocks must be an integer >= 0, got {blocks!r}")
    if 0 < blocks < least:
        raise ConfigError(
            f"{owner}: blocks={blocks} is fewer than the {least} this resolution needs "
            f"(0: exactly {least})"
        )
    return blocks or least


class UpBlock(nn.Module):
    """Generator block: (B, c_in, s, s) -> (B, c_out, 2s, 2s) (or (B, c_out, s, s) if not
    ``up``).

    F(x) = conv3x3(act(norm(conv3x3(up(act(norm(x))))))), shortcut(x) = conv1x1(up(x)), with
    ``up`` nearest-neighbour 2x upsampling (the reference's tile + depth-to-space) or the
    identity; act is ReLU by default. Without resampling and with c_in = c_out the shortcut is x.
    """

    def __init__(
        self, c_in: int, c_out: int, norm: str, activation: str = "relu", up: bool = True
    ) -> None:
        super().__init__()
        self.norm1, self.conv1 = conv_norm(norm, c_in), _conv3(c_in, c_out)
        self.norm2, self.conv2 = conv_norm(norm, c_out), _conv3(c_out, c_out)
        self.act1, self.act2 = make_activation(activation), make_activation(activation)
        self.up = up
        self.shortcut = nn.Conv2d(c_in, c_out, 1) if up or c_in != c_out else nn.Identity()

    def _up(self, x: Tensor) -> Tensor:
        return F.interpolate(x, scale_factor=2, mode="nearest") if self.up else x

    def forward(self, x: Tensor) -> Tensor:
        h = self._up(self.act1(self.norm1(x)))  # (B, c_in, s', s')
        h = self.conv2(self.act2(self.norm2(self.conv1(h))))  # (B, c_out, s', s')
        return self.shortcut(self._up(x)) + h


class DownBlock(nn.Module):
    """Critic block: (B, c_in, s, s) -> (B, c_out, s/2, s/2), or same size if not ``down``.

    F(x) = pool(conv3x3(act(norm(conv3x3(act(norm(x))))))) (act ReLU by default) with ``pool``
    2x2 average pooling (identity when not ``down``). The shortcut is x when the shape is
    unchanged, otherwise conv1x1(pool(x)): a 1x1 conv and average pooling are both linear and
    act on different axes, so they commute and this equals the reference's pool(conv1x1(x)) at
    a quarter of the cost.
    """

    def __init__(
        self, c_in: int, c_out: int, norm: str, down: bool, activation: str = "relu"
    ) -> None:
        super().__init__()
        self.norm1, self.conv1 = conv_norm(norm, c_in), _conv3(c_in, c_out)
        self.norm2, self.conv2 = conv_norm(norm, c_out), _conv3(c_out, c_out)
        self.act1, self.act2 = make_activation(activation), make_activation(activation)
        self.down = down
        self.shortcut = nn.Conv2d(c_in, c_out, 1) if down or c_in != c_out else nn.Identity()

    def _pool(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, 2) if self.down else x

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(self.act1(self.norm1(x)))
        h = self._pool(self.conv2(self.act2(self.norm2(h))))  # (B, c_out, s', s')
        return self.shortcut(self._pool(x)) + h


class OptimizedBlock(nn.Module):
    """The critic's first block: (B, C, s, s) -> (B, width, s/2, s/2) (or s if not ``down``).

    F(x) = pool(conv3x3(act(conv3x3(x)))), shortcut(x) = conv1x1(pool(x)): no normalisation
    or activation before the first convolution, since x is the raw image.
    """

    def __init__(self, c_in: int, c_out: int, down: bool, activation: str = "relu") -> None:
        super().__init__()
        self.conv1, self.conv2 = _conv3(c_in, c_out), _conv3(c_out, c_out)
        self.act = make_activation(activation)
        self.shortcut = nn.Conv2d(c_in, c_out, 1)
        self.down = down

    def _pool(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, 2) if self.down else x

    def forward(self, x: Tensor) -> Tensor:
        h = self._pool(self.conv2(self.act(self.conv1(x))))
        return self.shortcut(self._pool(x)) + h


class ResNetGenerator(nn.Module):
    """WGAN-GP CIFAR ResNet generator: z (B, in_dim) -> images (B, channels, res, res) in [-1, 1].

    Linear(in_dim, 16 * width) reshaped to (B, width, 4, 4); n = log2(res / 4) ``UpBlock``s of
    width channels (1, 2, 3, 4 blocks at 8, 16, 32, 64); then norm, activation, conv3x3 to
    ``channels`` and tanh. At 32x32, width 128, in_dim 128, channels 3 it has 1,204,483
    parameters (the paper's ~1.2M). With ``blocks`` > n, ``blocks - n`` more residual blocks
    without upsampling sit before the upsampling ones, round-robin over the maps 4x4, 8x8, ...

    Args:
        in_dim: noise dimension.
        channels: image channels.
        resolution: image side, a power of two in [8, 64].
        width: channels of every residual block (the paper's DIM_G = 128).
        norm: "batch" (the paper), "layer" or "none".
        activation: relu, leaky_relu, softplus or tanh ("auto": ReLU, the paper).
        blocks: residual blocks in all (0: n).
    """

    def __init__(
        self,
        in_dim: int,
        channels: int,
        resolution: int,
        width: int = 128,
        norm: str = "batch",
        activation: str = "auto",
        blocks: int = 0,
    ) -> None:
        super().__init__()
        owner = "ResNetGenerator"
        check_positive(owner, in_dim=in_dim, channels=channels, width=width)
        check_norm(owner, norm, NORMS)
        act = _activation(owner, activation)
        n = resolution_levels(resolution, owner)
        total = _check_blocks(owner, blocks, n)
        weights = 16 * in_dim * width + total * 19 * width * width + 9 * width * channels
        check_weights(owner, weights, f"in_dim={in_dim}, width={width}, blocks={blocks}")
        self.project = nn.Linear(in_dim, 16 * width)
        layers: list[nn.Module] = []
        for extra in spread(total - n, n):  # one slot per map 4x4, 8x8, ... before its upsampling
            layers += [UpBlock(width, width, norm, act, up=False) for _ in range(extra)]
            layers.append(UpBlock(width, width, norm, act))
        self.blocks = nn.Sequential(*layers)
        self.out = nn.Sequential(
            conv_norm(norm, width), make_activation(act), _conv3(width, channels), nn.Tanh()
        )
        self.in_dim, self.channels, self.resolution = in_dim, channels, resolution
        self.out_shape = (channels, resolution, resolution)

    def forward(self, z: Tensor) -> Tensor:
        check_latent(z, self.in_dim)
        h = self.project(z).view(z.shape[0], -1, 4, 4)  # (B, width, 4, 4)
        return self.out(self.blocks(h))  # (B, channels, res, res)


class ResNetCritic(nn.Module):
    """WGAN-GP CIFAR ResNet critic: images (B, C, res, res) -> scores (B, 1).

    ``OptimizedBlock`` (C -> width, halving the side), ``DownBlock``s halving the side until it
    is 8, two ``DownBlock``s without resampling, ReLU and the mean over space give the features
    (B, width); ``head = Linear(width, 1)``. Blocks per resolution: 8 -> optimised block without
    pooling (the map stays 8x8) + 2; 16 -> optimised + 2; 32 -> optimised + 1 down + 2 (the
    paper's four blocks); 64 -> optimised + 2 down + 2. At 32x32, width 128, channels 3 and no
    normalisation it has 1,053,825 parameters (the paper's ~1.0M). With ``blocks`` more than
    that default count, the extra blocks are further unresampled ``DownBlock``s at the end.

    Args:
        channels: image channels.
        resolution: image side, a power of two in [8, 64].
        width: channels of every block (the paper's DIM_D = 128).
        norm: "none" (the paper, for the gradient penalty), "layer" (GroupNorm(1, C)) or
            "batch" (not valid with a gradient penalty).
        activation: relu, leaky_relu, softplus or tanh ("auto": ReLU, the paper).
        blocks: residual blocks in all, the optimised one included (0: the default count).
    """

    def __init__(
        self,
        channels: int,
        resolution: int,
        width: int = 128,
        norm: str = "none",
        activation: str = "auto",
        blocks: int = 0,
    ) -> None:
        super().__init__()
        owner = "ResNetCritic"
        check_positive(owner, channels=channels, width=width)
        check_norm(owner, norm, NORMS)
        act = _activation(owner, activation)
        n = resolution_levels(resolution, owner)  # 1, 2, 3, 4 for 8, 16, 32, 64
        n_down = max(n - 1, 0)  # halvings to reach 8x8
        n_plain = _check_blocks(owner, blocks, 1 + max(n_down - 1, 0) + 2) - 1 - max(n_down - 1, 0)
        # optimised block (3x3, 3x3, 1x1), resampling blocks (with a 1x1 shortcut), plain ones
        weights = 10 * channels * width + 9 * width * width + width
        weights += (max(n_down - 1, 0) * 19 + n_plain * 18) * width * width
        check_weights(owner, weights, f"width={width}, blocks={blocks}")
        layers: list[nn.Module] = [OptimizedBlock(channels, width, down=n_down > 0, activation=act)]
        layers += [DownBlock(width, width, norm, True, act) for _ in range(n_down - 1)]
        layers += [DownBlock(width, width, norm, False, act) for _ in range(n_plain)]
        self.blocks = nn.Sequential(*layers)
        self.act = make_activation(act)
        self.feature_dim = width
        self.head = nn.Linear(width, 1)
        self.in_shape = (channels, resolution, resolution)

    def features(self, x: Tensor) -> Tensor:
        """The activation (ReLU by default) of the last 8x8 map averaged over space, (B, width)."""
        check_images(x, self.in_shape)
        return self.act(self.blocks(x)).mean(dim=(2, 3))  # (B, width)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))  # (B, 1)
