"""DCGAN generator and critic for square images (Radford, Metz and Chintala 2015).

The generator projects z to a 4x4 map with ``width * 2**(n-1)`` channels and then applies
``n = log2(resolution / 4)`` stride-2 transposed convolutions (kernel 4, stride 2, padding 1),
each doubling the side and halving the channels, the last one to the image channels with tanh.
The critic mirrors it with stride-2 convolutions and LeakyReLU(0.2) down to a 4x4 map, whose
flattened activations are the features and a linear layer the score. (The DCGAN paper ends the
discriminator with a 4x4 valid convolution to one unit, which is the same linear map.)

Normalisation follows the paper (batch norm everywhere except the generator output and the
critic input layer) with two alternatives. A gradient-penalised critic must not use batch norm,
because the penalty E[(||grad_x D(x_hat)||_2 - 1)^2] is defined per sample while batch norm makes
D(x_i) depend on the other samples (Gulrajani et al. 2017, section 4): "none" drops it and
"layer" replaces it by layer norm over (C, H, W), i.e. GroupNorm with one group.

Initialisation is the DCGAN paper's: every conv, transposed-conv and linear weight
~ N(0, 0.02), biases 0, batch/group-norm scale ~ N(1, 0.02) and shift 0. ``init="he"`` draws
weights ~ N(0, 2 / fan_in) instead (He et al. 2015), biases 0: without normalisation,
N(0, 0.02) weights shrink the signal by ~0.02 sqrt(fan_in) per layer (and PyTorch's default
by ~sqrt(1/3)), so a deep net without batch norm starts with outputs that do not depend on its
input; He's scale keeps the variance of ReLU layers constant.

The options of the WGAN-GP paper's architecture studies (Gulrajani et al. 2017, Sec. 5.1 and
Table 1) are constructor arguments: the nonlinearity (ReLU, LeakyReLU(0.2), softplus(2x+2)/2-1,
tanh, or the gated unit tanh(a) * sigmoid(b)), the depth (``layers`` convolutions in all: the
``n`` resampling ones plus 3x3 stride-1 convolutions of unchanged width, spread over the
resolutions from the smallest map up), the normalisation, the base filter count, and (for the
generator) a constant filter count instead of the halving widths.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from wgan.errors import ConfigError, WganError
from wgan.nets.mlp import gate_factor, make_activation
from wgan.nets.sizes import check_positive, check_weights
from wgan.nets.tricks import VirtualBatchNorm

NORMS = ("batch", "none", "layer", "virtual")
MIN_RESOLUTION, MAX_RESOLUTION = 8, 64


def resolution_levels(resolution: int, owner: str) -> int:
    """log2(resolution / 4): the number of 2x resampling steps between 4x4 and ``resolution``.

    Raises:
        ConfigError: unless ``resolution`` is a power of two in [8, 64].
    """
    ok = (
        isinstance(resolution, int)
        and MIN_RESOLUTION <= resolution <= MAX_RESOLUTION
        and resolution & (resolution - 1) == 0
    )
    if not ok:
        raise ConfigError(
            f"{owner}: unsupported image resolution {resolution!r} "
            f"(choose a power of two from {MIN_RESOLUTION} to {MAX_RESOLUTION}: 8, 16, 32, 64)"
        )
    return int(math.log2(resolution)) - 2


def check_norm(owner: str, norm: str, choices: tuple[str, ...] = NORMS) -> None:
    """ConfigError unless ``norm`` is one of ``choices``."""
    if norm not in choices:
        raise ConfigError(
            f"{owner}: unknown normalisation {norm!r} (choose from {', '.join(choices)})"
        )


def conv_norm(norm: str, channels: int) -> nn.Module:
    """Normalisation of a (B, C, H, W) map: BatchNorm2d, layer norm over (C, H, W), or identity.

    "layer" is GroupNorm(1, C): mean and variance over all of (C, H, W) of one sample, with a
    per-channel scale and shift, so each sample is normalised on its own.
    """
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "layer":
        return nn.GroupNorm(1, channels)
    if norm == "none":
        return nn.Identity()
    if norm == "virtual":  # a generator inside a VirtualBatchNet (Salimans et al. 2016)
        return VirtualBatchNorm(channels)
    raise ConfigError(f"unknown normalisation {norm!r} (choose from {', '.join(NORMS)})")


def check_images(x: Tensor, in_shape: tuple[int, int, int]) -> None:
    """WganError unless ``x`` has shape (B, *in_shape)."""
    if x.ndim != 4 or tuple(x.shape[1:]) != in_shape:
        c, h, w = in_shape
        raise WganError(f"expected images of shape (B, {c}, {h}, {w}), got {tuple(x.shape)}")


def check_latent(z: Tensor, in_dim: int) -> None:
    """WganError unless ``z`` has shape (B, in_dim)."""
    if z.ndim != 2 or z.shape[1] != in_dim:
        raise WganError(f"expected noise of shape (B, {in_dim}), got {tuple(z.shape)}")


def dcgan_init(module: nn.Module) -> None:
    """The DCGAN paper's initialisation: weights ~ N(0, 0.02), norm scales ~ N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


INITS = ("dcgan", "he")


def _init(owner: str, module: nn.Module, init: str) -> None:
    """Apply ``init``: "dcgan" (:func:`dcgan_init`) or "he" (weights ~ N(0, 2 / fan_in))."""
    if init not in INITS:
        raise ConfigError(f"{owner}: unknown init {init!r} (choose from {', '.join(INITS)})")
    dcgan_init(module)  # norms (and, for "dcgan", the weights)
    if init == "he":
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                # fan_in of a transposed conv is in_channels * k * k / stride^2 in effect; the
                # weight's dim 1 there is out_channels, so use the convolution's own fan_in
                fan_in = (
                    m.weight[0].numel()
                    if not isinstance(m, nn.ConvTranspose2d)
                    else (m.in_channels * m.kernel_size[0] * m.kernel_size[1] // (m.stride[0] ** 2))
                )
                nn.init.normal_(m.weight, 0.0, (2.0 / fan_in) ** 0.5)


def check_layers(owner: str, layers: int, n: int) -> int:
    """The number of convolutions to build: ``n`` (one per resampling step) when ``layers`` is
    0, else ``layers``; ConfigError unless it is an integer, 0 or >= n."""
    if isinstance(layers, bool) or not isinstance(layers, int) or layers < 0:
        raise ConfigError(f"{owner}: layers must be an integer >= 0, got {layers!r}")
    if 0 < layers < n:
        raise ConfigError(
            f"{owner}: layers={layers} is fewer than the {n} resampling convolutions this "
            f"resolution needs (0: exactly {n})"
        )
    return layers or n


def spread(extra: int, slots: int) -> list[int]:
    """``extra`` layers over ``slots`` places, round-robin from slot 0: [e//s + (i < e%s)]."""
    return [extra // slots + (1 if i < extra % slots else 0) for i in range(slots)]


def _activation(owner: str, name: str, default: str) -> str:
    name = default if name == "auto" else name
    try:
        make_activation(name)
    except ConfigError as err:
        raise ConfigError(f"{owner}: {err}") from None
    return name


def _conv_block(conv: nn.Module, norm: str, c_out: int, activation: str) -> list[nn.Module]:
    """conv (to k * c_out channels for the gated unit), its norm, the activation (-> c_out)."""
    k = gate_factor(activation)
    return [conv, conv_norm(norm, k * c_out), make_activation(activation)]


class DCGANGenerator(nn.Module):
    """DCGAN generator: z (B, in_dim) -> images (B, channels, resolution, resolution) in [-1, 1].

    Layers (n = log2(resolution / 4), c_k = width * 2**(n - 1 - k), or c_k = width for all k
    when ``constant_width``):

    * Linear(in_dim, c_0 * 16), reshaped to (B, c_0, 4, 4), norm, activation;
    * for k = 1 .. n-1: ConvTranspose2d(c_{k-1}, c_k, 4, 2, 1), norm, activation (side doubles);
    * ConvTranspose2d(c_{n-1}, channels, 4, 2, 1), tanh.

    With ``layers`` > n, ``layers - n`` more Conv2d(c, c, 3, 1, 1), norm, activation are placed
    before the transposed convolutions, round-robin over the maps 4x4, 8x8, ... (the smallest
    first, where they are cheapest). With the gated activation every layer followed by it has
    twice the output channels (the two halves a, b of tanh(a) * sigmoid(b)).

    At 64x64 with width 64 this is the paper's 4x4x512 -> 8x8x256 -> 16x16x128 -> 32x32x64 ->
    64x64x3 network. Layers followed by a normalisation have no bias (the norm's shift replaces
    it). Weights ~ N(0, 0.02) as in the DCGAN paper.

    Args:
        in_dim: noise dimension.
        channels: image channels (1 or 3 typically).
        resolution: image side, a power of two in [8, 64].
        width: channels of the last hidden map; earlier maps have 2x, 4x, ... as many.
        norm: "batch" (the paper), "layer" (GroupNorm(1, C)) or "none".
        activation: relu, leaky_relu, softplus, tanh, gated; "auto" is ReLU (the paper).
        layers: convolutions in all (0: n, the plain DCGAN).
        constant_width: every hidden map has ``width`` channels (Gulrajani et al. 2017, Sec.
            5.1: "no BN and a constant number of filters", with ``norm="none"``).
        init: "dcgan" (N(0, 0.02), the paper) or "he" (N(0, 2 / fan_in)).
    """

    def __init__(
        self,
        in_dim: int,
        channels: int,
        resolution: int,
        width: int = 64,
        norm: str = "batch",
        activation: str = "auto",
        layers: int = 0,
        constant_width: bool = False,
        init: str = "dcgan",
    ) -> None:
        super().__init__()
        owner = "DCGANGenerator"
        check_positive(owner, in_dim=in_dim, channels=channels, width=width)
        check_norm(owner, norm)
        act = _activation(owner, activation, "relu")
        n = resolution_levels(resolution, owner)
        extra = spread(check_layers(owner, layers, n) - n, n)  # 3x3 convs at 4x4, 8x8, ...
        k = gate_factor(act)
        bias = norm == "none"
        widths = [width if constant_width else width * 2 ** (n - 1 - i) for i in range(n)]
        weights = k * in_dim * widths[0] * 16 + widths[-1] * channels * 16
        weights += sum(k * a * b * 16 for a, b in zip(widths[:-1], widths[1:], strict=True))
        weights += sum(k * e * c * c * 9 for e, c in zip(extra, widths, strict=True))
        check_weights(owner, weights, f"in_dim={in_dim}, width={width}, layers={layers}")
        self.project = nn.Linear(in_dim, k * widths[0] * 16, bias=bias)
        self.project_act = nn.Sequential(conv_norm(norm, k * widths[0]), make_activation(act))
        blocks: list[nn.Module] = []
        for i, c_in in enumerate(widths):
            for _ in range(extra[i]):  # (B, c_i, s, s) -> same shape
                conv = nn.Conv2d(c_in, k * c_in, 3, 1, 1, bias=bias)
                blocks += _conv_block(conv, norm, c_in, act)
            if i + 1 < n:  # (B, c_i, s, s) -> (B, c_{i+1}, 2s, 2s)
                up = nn.ConvTranspose2d(c_in, k * widths[i + 1], 4, 2, 1, bias=bias)
                blocks += _conv_block(up, norm, widths[i + 1], act)
        blocks += [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1), nn.Tanh()]
        self.body = nn.Sequential(*blocks)
        self.in_dim, self.channels, self.resolution = in_dim, channels, resolution
        self.out_shape = (channels, resolution, resolution)
        _init(owner, self, init)

    def forward(self, z: Tensor) -> Tensor:
        check_latent(z, self.in_dim)
        h = self.project(z).view(z.shape[0], -1, 4, 4)  # (B, k * c_0, 4, 4)
        return self.body(self.project_act(h))  # (B, channels, res, res)


class DCGANCritic(nn.Module):
    """DCGAN discriminator used as a critic: images (B, C, res, res) -> scores (B, 1).

    Layers (n = log2(resolution / 4)): for k = 0 .. n-1, Conv2d(c_{k-1}, width * 2**k, 4, 2, 1),
    norm (not after the first conv: no normalisation at the critic's input, as in the paper),
    activation (LeakyReLU(0.2) by default). With ``layers`` > n, ``layers - n`` more
    Conv2d(c, c, 3, 1, 1), norm, activation follow the strided convolutions, round-robin over
    the maps from the smallest (4x4) up. The last map is (B, width * 2**(n-1), 4, 4);
    ``features`` flattens it to (B, F) with F = 16 * width * 2**(n-1) and ``head = Linear(F,
    1)`` gives the score, so ``forward(x) == head(features(x))``. With the gated activation the
    convolutions before it have twice the output channels. Weights ~ N(0, 0.02) as in the
    DCGAN paper.

    Args:
        channels: image channels.
        resolution: image side, a power of two in [8, 64].
        width: channels of the first conv; each later conv doubles them.
        norm: "batch" (the paper; invalid with a gradient penalty), "layer" or "none".
        activation: relu, leaky_relu, softplus, tanh, gated; "auto" is LeakyReLU(0.2).
        layers: convolutions in all (0: n, the plain DCGAN).
        init: "dcgan" (N(0, 0.02), the paper) or "he" (N(0, 2 / fan_in)).
    """

    def __init__(
        self,
        channels: int,
        resolution: int,
        width: int = 64,
        norm: str = "batch",
        activation: str = "auto",
        layers: int = 0,
        init: str = "dcgan",
    ) -> None:
        super().__init__()
        owner = "DCGANCritic"
        check_positive(owner, channels=channels, width=width)
        check_norm(owner, norm)
        act = _activation(owner, activation, "leaky_relu")
        n = resolution_levels(resolution, owner)
        # extra 3x3 convs after strided conv j (map side res / 2^(j+1)): the smallest map first
        extra = spread(check_layers(owner, layers, n) - n, n)[::-1]
        k = gate_factor(act)
        outs = [width * 2**i for i in range(n)]
        weights = sum(k * a * b * 16 for a, b in zip([channels, *outs[:-1]], outs, strict=True))
        weights += sum(k * e * c * c * 9 for e, c in zip(extra, outs, strict=True))
        check_weights(owner, weights + outs[-1] * 16, f"width={width}, layers={layers}")
        layers_: list[nn.Module] = []
        c_in = channels
        for i, c_out in enumerate(outs):
            normed = i > 0 and norm != "none"
            conv = nn.Conv2d(c_in, k * c_out, 4, 2, 1, bias=not normed)
            layers_ += _conv_block(conv, norm if i > 0 else "none", c_out, act)
            for _ in range(extra[i]):  # (B, c_out, s, s) -> same shape
                conv = nn.Conv2d(c_out, k * c_out, 3, 1, 1, bias=norm == "none")
                layers_ += _conv_block(conv, norm, c_out, act)
            c_in = c_out
        self.body = nn.Sequential(*layers_)
        self.feature_dim = c_in * 16
        self.head = nn.Linear(self.feature_dim, 1)
        self.in_shape = (channels, resolution, resolution)
        _init(owner, self, init)

    def features(self, x: Tensor) -> Tensor:
        """The flattened last 4x4 map, (B, 16 * width * 2**(n-1))."""
        check_images(x, self.in_shape)
        return self.body(x).flatten(1)  # (B, C_last * 4 * 4)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))  # (B, 1)
