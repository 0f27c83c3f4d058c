"""Image architectures: DCGAN and WGAN-GP ResNet generators/critics, conditional wrappers."""

import pytest
import torch
from torch import nn

from wgan.constraints import SpectralNorm, input_gradient_norm
from wgan.errors import ConfigError, WganError
from wgan.nets import (
    MLP,
    AuxClassifierCritic,
    ConditionalCritic,
    ConditionalGenerator,
    DCGANCritic,
    DCGANGenerator,
    ResNetCritic,
    ResNetGenerator,
)
from wgan.nets.mlp import count_parameters
from wgan.nets.resnet import DownBlock, OptimizedBlock, UpBlock

RESOLUTIONS = [8, 16, 32, 64]
NORMS = ["batch", "none", "layer"]
WIDTH = 8
B = 3


def _images(channels: int, res: int, seed: int = 0, batch: int = B) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, channels, res, res, generator=g) * 2 - 1


def _expected_features(cls: type, res: int, width: int) -> int:
    if cls is DCGANCritic:
        # last map: width * 2**(n-1) channels at 4x4 with n = log2(res / 4)
        return 16 * width * (res // 8)
    return width  # ResNet: global mean pooling over space


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("res", RESOLUTIONS)
@pytest.mark.parametrize("cls", [DCGANGenerator, ResNetGenerator])
def test_generator_shape_and_range(cls, res, channels, norm):
    torch.manual_seed(0)
    gen = cls(in_dim=5, channels=channels, resolution=res, width=WIDTH, norm=norm)
    out = gen(torch.randn(B, 5))
    assert out.shape == (B, channels, res, res)
    assert gen.out_shape == (channels, res, res)
    assert torch.isfinite(out).all()
    assert out.min() >= -1.0 and out.max() <= 1.0
    # the noise reaches the output; with N(0, 0.02) weights and no normalisation the DCGAN
    # activations shrink ~10x per layer at init (the paper relies on batch norm), so only
    # strict positivity is asserted there
    spread = out.std(dim=0).mean().item()
    assert spread > (1e-3 if norm != "none" or cls is ResNetGenerator else 0.0)


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("res", RESOLUTIONS)
@pytest.mark.parametrize("cls", [DCGANCritic, ResNetCritic])
def test_critic_shape_features_and_head(cls, res, channels, norm):
    torch.manual_seed(0)
    critic = cls(channels=channels, resolution=res, width=WIDTH, norm=norm)
    x = _images(channels, res)
    out = critic(x)
    feats = critic.features(x)
    n_feat = _expected_features(cls, res, WIDTH)
    assert critic.in_shape == (channels, res, res)
    assert out.shape == (B, 1)
    assert feats.shape == (B, n_feat)
    assert isinstance(critic.head, nn.Linear) and critic.head.in_features == n_feat
    torch.testing.assert_close(out, critic.head(feats))
    assert out.std() > 0  # distinct images get distinct scores


def test_dcgan_channel_progression_matches_paper():
    """At 64x64, width 64: G 4x4x512 -> 256 -> 128 -> 64 -> 3; D 64 -> 128 -> 256 -> 512."""
    gen = DCGANGenerator(100, 3, 64)
    deconvs = [m for m in gen.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [(m.in_channels, m.out_channels) for m in deconvs] == [
        (512, 256),
        (256, 128),
        (128, 64),
        (64, 3),
    ]
    assert all(m.kernel_size == (4, 4) and m.stride == (2, 2) for m in deconvs)
    assert gen.project.out_features == 512 * 16
    critic = DCGANCritic(3, 64)
    convs = [m for m in critic.modules() if isinstance(m, nn.Conv2d)]
    assert [m.out_channels for m in convs] == [64, 128, 256, 512]
    # batch norm after every conv but the first; none at the output of G
    assert sum(isinstance(m, nn.BatchNorm2d) for m in critic.modules()) == 3
    assert sum(isinstance(m, nn.BatchNorm2d) for m in gen.modules()) == 4
    # DCGAN init: weights ~ N(0, 0.02)
    w = convs[-1].weight
    assert abs(w.mean().item()) < 1e-3 and w.std().item() == pytest.approx(0.02, rel=0.05)


@pytest.mark.parametrize("res, ups, downs", [(8, 1, 0), (16, 2, 1), (32, 3, 2), (64, 4, 3)])
def test_resnet_block_counts_and_final_map(res, ups, downs):
    gen = ResNetGenerator(4, 3, res, width=WIDTH)
    assert sum(isinstance(m, UpBlock) for m in gen.modules()) == ups
    critic = ResNetCritic(3, res, width=WIDTH)
    blocks = list(critic.blocks)
    assert isinstance(blocks[0], OptimizedBlock)
    assert all(isinstance(b, DownBlock) for b in blocks[1:])
    n_down = int(blocks[0].down) + sum(b.down for b in blocks[1:])
    assert n_down == downs
    assert [b.down for b in blocks[-2:]] == [False, False]  # two blocks without resampling
    # the last map is always 8x8 (the paper's 32 -> 16 -> 8 -> 8 -> 8)
    assert critic.blocks(_images(3, res)).shape == (B, WIDTH, 8, 8)


@pytest.mark.parametrize("norm", ["none", "layer"])
@pytest.mark.parametrize("cls", [DCGANCritic, ResNetCritic])
def test_gradient_penalty_double_backward(cls, norm):
    torch.manual_seed(0)
    critic = cls(channels=3, resolution=16, width=WIDTH, norm=norm)
    x = _images(3, 16)
    norms = input_gradient_norm(critic, x, create_graph=True)  # (B,)
    assert norms.shape == (B,) and (norms > 0).all()
    penalty = ((norms - 1.0) ** 2).mean()
    penalty.backward()
    first_conv = next(m for m in critic.modules() if isinstance(m, nn.Conv2d))
    grad = first_conv.weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


@pytest.mark.parametrize("norm", ["none", "layer"])
@pytest.mark.parametrize("cls", [DCGANCritic, ResNetCritic])
def test_per_sample_independence(cls, norm):
    """Without batch norm, D(x_i) depends on x_i only (needed by the per-sample penalty)."""
    torch.manual_seed(0)
    critic = cls(channels=3, resolution=16, width=WIDTH, norm=norm)
    x = _images(3, 16, batch=4)
    y = x.clone()
    y[2] = _images(3, 16, seed=1, batch=1)[0]
    with torch.no_grad():
        a, b = critic(x), critic(y)
    keep = [0, 1, 3]
    torch.testing.assert_close(a[keep], b[keep], rtol=0, atol=1e-6)
    assert (a[2] - b[2]).abs().item() > 1e-6


@pytest.mark.parametrize("cls", [DCGANCritic, ResNetCritic])
def test_batch_norm_couples_samples(cls):
    """Contrast: in training mode batch norm makes D(x_i) depend on the other samples."""
    torch.manual_seed(0)
    critic = cls(channels=3, resolution=16, width=WIDTH, norm="batch")
    x = _images(3, 16, batch=4)
    y = x.clone()
    y[2] = _images(3, 16, seed=1, batch=1)[0]
    with torch.no_grad():
        a, b = critic(x), critic(y)
    assert (a[0] - b[0]).abs().item() > 1e-6


@pytest.mark.parametrize("res", [4, 12, 128, 0, 6])
@pytest.mark.parametrize("cls", [DCGANGenerator, ResNetGenerator, DCGANCritic, ResNetCritic])
def test_bad_resolution(cls, res):
    args = (4, 3, res) if cls in (DCGANGenerator, ResNetGenerator) else (3, res)
    with pytest.raises(ConfigError, match=rf"resolution {res}\b"):
        cls(*args, width=WIDTH)


@pytest.mark.parametrize("cls", [DCGANGenerator, ResNetGenerator, DCGANCritic, ResNetCritic])
def test_bad_norm_and_sizes(cls):
    args = (4, 3, 16) if cls in (DCGANGenerator, ResNetGenerator) else (3, 16)
    with pytest.raises(ConfigError, match="'spectral'"):
        cls(*args, width=WIDTH, norm="spectral")
    with pytest.raises(ConfigError, match="width must be a positive integer, got 0"):
        cls(*args, width=0)


@pytest.mark.parametrize("cls", [DCGANCritic, ResNetCritic])
def test_critic_wrong_input_shape(cls):
    critic = cls(channels=3, resolution=32, width=WIDTH, norm="none")
    for bad in (torch.zeros(2, 1, 32, 32), torch.zeros(2, 3, 16, 16), torch.zeros(3, 32, 32)):
        with pytest.raises(WganError, match=r"expected images of shape \(B, 3, 32, 32\), got"):
            critic(bad)


@pytest.mark.parametrize("cls", [DCGANGenerator, ResNetGenerator])
def test_generator_wrong_noise_shape(cls):
    gen = cls(in_dim=6, channels=3, resolution=8, width=WIDTH)
    with pytest.raises(WganError, match=r"expected noise of shape \(B, 6\), got \(2, 5\)"):
        gen(torch.zeros(2, 5))


@pytest.mark.parametrize("cls", [DCGANCritic, ResNetCritic])
def test_spectral_norm_critic(cls):
    torch.manual_seed(0)
    critic = SpectralNorm().prepare(cls(channels=3, resolution=16, width=WIDTH, norm="none"))
    x = _images(3, 16)
    for _ in range(30):  # power iterations run once per training-mode forward
        out = critic(x)
    out.sum().backward()
    assert out.shape == (B, 1) and torch.isfinite(out).all()
    first_conv = next(m for m in critic.modules() if isinstance(m, nn.Conv2d))
    assert nn.utils.parametrize.is_parametrized(first_conv, "weight")
    assert first_conv.parametrizations.weight.original.grad is not None
    # every normalised layer has sigma_max(W) ~ 1 (conv kernels as (out, in * k * k) matrices)
    for layer in (first_conv, critic.head):
        sigma = torch.linalg.matrix_norm(layer.weight.detach().flatten(1), 2)
        assert sigma.item() == pytest.approx(1.0, abs=0.05)


# ---- conditional wrappers -------------------------------------------------------------------

N_CLASSES, EMBED = 4, 3


def test_conditional_generator():
    torch.manual_seed(0)
    gen = ConditionalGenerator(
        DCGANGenerator(5 + EMBED, 1, 16, width=WIDTH, norm="none"), N_CLASSES, EMBED
    )
    assert gen.n_classes == N_CLASSES and gen.in_dim == 5
    z = torch.randn(1, 5).expand(N_CLASSES, 5)  # one noise vector, every label
    out = gen(z, torch.arange(N_CLASSES))
    assert out.shape == (N_CLASSES, 1, 16, 16)
    diffs = (out[:, None] - out[None]).abs().flatten(2).amax(-1)  # (K, K) pairwise
    assert (diffs + torch.eye(N_CLASSES) > 1e-5).all()
    with pytest.raises(WganError, match=r"class label 4 is out of range for n_classes=4"):
        gen(torch.randn(2, 5), torch.tensor([0, 4]))
    with pytest.raises(WganError, match=r"expected noise of shape \(B, 5\)"):
        gen(torch.randn(2, 5 + EMBED), torch.tensor([0, 1]))


@pytest.mark.parametrize("cls", [DCGANCritic, ResNetCritic])
def test_conditional_image_critic(cls):
    torch.manual_seed(0)
    critic = ConditionalCritic(
        cls(channels=3 + EMBED, resolution=16, width=WIDTH, norm="none"), N_CLASSES, EMBED
    )
    assert critic.n_classes == N_CLASSES and critic.in_shape == (3, 16, 16)
    x = _images(3, 16, batch=1).expand(N_CLASSES, -1, -1, -1)
    y = torch.arange(N_CLASSES)
    out = critic(x, y)
    assert out.shape == (N_CLASSES, 1)
    feats = critic.features(x, y)
    torch.testing.assert_close(out, critic.head(feats))
    assert torch.unique(out.detach().round(decimals=6)).numel() == N_CLASSES
    with pytest.raises(WganError, match=r"class label -1 is out of range for n_classes=4"):
        critic(x, torch.tensor([0, 1, -1, 2]))
    with pytest.raises(WganError, match="integer class labels"):
        critic(x, y.float())
    with pytest.raises(WganError, match="got 3 labels for a batch of 4"):
        critic(x, y[:3])
    with pytest.raises(WganError, match=r"expected images of shape \(B, 3, 16, 16\)"):
        critic(_images(1 + EMBED, 16), y[:B])
    # the head lives once in the state dict (it is a property, not a second registration)
    assert not any(k.startswith("head.") for k in critic.state_dict())


def test_conditional_vector_critic_and_penalty():
    torch.manual_seed(0)
    critic = ConditionalCritic(MLP(2 + EMBED, 1, hidden=16, depth=2), N_CLASSES, EMBED)
    assert critic.in_dim == 2
    x = torch.randn(1, 2).expand(N_CLASSES, 2)
    y = torch.arange(N_CLASSES)
    out = critic(x, y)
    assert out.shape == (N_CLASSES, 1) and critic.features(x, y).shape == (N_CLASSES, 16)
    assert torch.unique(out.detach().round(decimals=6)).numel() == N_CLASSES
    with pytest.raises(WganError, match=r"class label 7 is out of range for n_classes=4"):
        critic(x, torch.tensor([7, 0, 0, 0]))
    # the gradient penalty with respect to x (labels fixed) and its double backward
    xr = torch.randn(5, 2, requires_grad=True)
    (g,) = torch.autograd.grad(
        critic(xr, torch.tensor([0, 1, 2, 3, 0])).sum(), xr, create_graph=True
    )
    ((g.norm(dim=1) - 1) ** 2).mean().backward()
    assert critic.embedding.weight.grad is not None


def test_conditional_inner_net_too_small():
    with pytest.raises(ConfigError, match="leaves no room"):
        ConditionalCritic(DCGANCritic(2, 8, width=WIDTH), N_CLASSES, embed_dim=2)
    with pytest.raises(ConfigError, match="leaves no room"):
        ConditionalGenerator(DCGANGenerator(3, 1, 8, width=WIDTH), N_CLASSES, embed_dim=3)


@pytest.mark.parametrize("cls", [DCGANCritic, ResNetCritic])
def test_aux_classifier_critic(cls):
    torch.manual_seed(0)
    net = cls(channels=3, resolution=16, width=WIDTH, norm="none")
    critic = AuxClassifierCritic(net, N_CLASSES)
    assert critic.n_classes == N_CLASSES and critic.in_shape == (3, 16, 16)
    x = _images(3, 16)
    score, logits = critic.score_and_logits(x)
    assert score.shape == (B, 1) and logits.shape == (B, N_CLASSES)
    torch.testing.assert_close(score, critic(x))
    torch.testing.assert_close(logits, critic.logits(x))
    torch.testing.assert_close(score, net(x))  # the score is the wrapped critic's
    torch.testing.assert_close(score, critic.head(critic.features(x)))
    # one backward reaches the shared trunk from both heads
    (score.sum() + nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2]))).backward()
    assert critic.classifier.weight.grad.abs().sum() > 0
    assert not any(k.startswith("head.") for k in critic.state_dict())


def test_wrapped_critics_under_spectral_norm():
    torch.manual_seed(0)
    ac = SpectralNorm().prepare(AuxClassifierCritic(ResNetCritic(3, 8, width=WIDTH), N_CLASSES))
    cond = SpectralNorm().prepare(
        ConditionalCritic(DCGANCritic(3 + EMBED, 8, width=WIDTH, norm="layer"), N_CLASSES, EMBED)
    )
    x, y = _images(3, 8), torch.tensor([0, 1, 3])
    score, logits = ac.score_and_logits(x)
    (score.sum() + logits.sum() + cond(x, y).sum()).backward()
    assert nn.utils.parametrize.is_parametrized(ac.classifier, "weight")
    assert nn.utils.parametrize.is_parametrized(cond.head, "weight")
    assert cond.embedding.weight.grad is not None  # the embedding is left unnormalised


# ---- parameter counts of the WGAN-GP CIFAR ResNet ------------------------------------------


def test_resnet_cifar_parameter_counts():
    """Counts derived by hand from the architecture (width w = 128, z = 128, 3 channels).

    G: Linear 128 -> 16w (16w*128 + 16w) + 3 up-blocks, each BN(w) 2w + conv3x3 (9w^2 + w) +
    BN 2w + conv3x3 (9w^2 + w) + 1x1 shortcut (w^2 + w) = 19w^2 + 7w, + BN 2w + conv3x3 to 3
    (27w + 3): 264,192 + 936,576 + 3,715 = 1,204,483 (the paper's ~1.2M).
    D (no norm): optimised block conv3x3 3 -> w (27w + w) + conv3x3 (9w^2 + w) + 1x1 (3w + w)
    = 151,680; one down-block 2 (9w^2 + w) + (w^2 + w) = 311,680; two plain blocks
    2 (9w^2 + w) each = 590,336; head w + 1 = 129: 1,053,825 (the paper's ~1.0M).
    """
    w = 128
    gen = ResNetGenerator(128, 3, 32, width=w)
    g_expected = (16 * w * 128 + 16 * w) + 3 * (19 * w * w + 7 * w) + (2 * w + 27 * w + 3)
    assert g_expected == 1_204_483
    assert count_parameters(gen) == g_expected
    critic = ResNetCritic(3, 32, width=w)
    d_expected = (10 * 3 * w + 9 * w * w + 3 * w) + (19 * w * w + 3 * w) + 2 * (18 * w * w + 2 * w)
    d_expected += w + 1
    assert d_expected == 1_053_825
    assert count_parameters(critic) == d_expected
    assert 1.1e6 < count_parameters(gen) < 1.3e6 and 0.95e6 < count_parameters(critic) < 1.15e6
