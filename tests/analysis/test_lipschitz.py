"""Tests for wgan.lipschitz: exact FFT constants, layer/product bounds, empirical bounds."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from wgan.errors import WganError
from wgan.lipschitz import (
    conv2d_lipschitz_bound,
    conv2d_lipschitz_fft,
    empirical_lipschitz,
    interpolates,
    layer_lipschitz,
    network_lipschitz_bound,
)

CHANNELS = [(1, 1), (2, 3), (3, 2), (4, 4)]
GRIDS = [(6, 6), (8, 5)]


def _dense_conv(w: torch.Tensor, H: int, W: int, mode: str) -> torch.Tensor:
    """Explicit (D H W) x (C H W) matrix of the stride-1 'same' conv, built column by column."""
    C = w.shape[1]
    basis = torch.eye(C * H * W, dtype=torch.float64).reshape(-1, C, H, W)
    p = w.shape[-1] // 2
    if mode == "circular":
        y = F.conv2d(F.pad(basis, (p, p, p, p), mode="circular"), w)
    else:
        y = F.conv2d(basis, w, padding=p)
    return y.reshape(C * H * W, -1).T


def _sigma_max(M: torch.Tensor) -> float:
    return float(torch.linalg.svdvals(M)[0])


def _jacobian_norm(module: nn.Module, shape: tuple[int, ...]) -> float:
    """Spectral norm of an affine module's linear part, from the images of a basis."""
    n = math.prod(shape[1:])
    basis = torch.eye(n, dtype=torch.float64).reshape(n, *shape[1:])
    with torch.no_grad():
        cols = module(basis) - module(torch.zeros_like(basis[:1]))
    return _sigma_max(cols.reshape(n, -1).T)


@pytest.mark.parametrize("C,D", CHANNELS)
@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("H,W", GRIDS)
def test_fft_constant_equals_dense_circular_matrix(C: int, D: int, k: int, H: int, W: int) -> None:
    gen = torch.Generator().manual_seed(C * 100 + D * 10 + k + H)
    w = torch.randn(D, C, k, k, dtype=torch.float64, generator=gen)
    exact = _sigma_max(_dense_conv(w, H, W, "circular"))
    L = conv2d_lipschitz_fft(w, (H, W))
    assert abs(L - exact) <= 1e-5 * exact
    res = conv2d_lipschitz_bound(w, (H, W), padding="circular")
    assert res["exact"] is True
    assert abs(res["value"] - exact) <= 1e-5 * exact
    # float32 weights give the same number (computed in float64 internally)
    assert abs(conv2d_lipschitz_fft(w.float(), (H, W)) - exact) <= 1e-5 * exact


@pytest.mark.parametrize("C,D", CHANNELS)
@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("H,W", GRIDS)
def test_zero_padding_bound_is_an_upper_bound(C: int, D: int, k: int, H: int, W: int) -> None:
    gen = torch.Generator().manual_seed(C * 100 + D * 10 + k + W)
    w = torch.randn(D, C, k, k, dtype=torch.float64, generator=gen)
    true = _sigma_max(_dense_conv(w, H, W, "zeros"))
    res = conv2d_lipschitz_bound(w, (H, W), padding="zeros")
    assert res["exact"] is False and res["padding"] == "zeros"
    assert res["value"] >= true * (1 - 1e-12)


def test_kernel_larger_than_grid_is_folded() -> None:
    w = torch.randn(2, 2, 5, 5, dtype=torch.float64)
    H, W = 3, 4
    basis = torch.eye(2 * H * W, dtype=torch.float64).reshape(-1, 2, H, W)
    tiled = basis.repeat(1, 1, 3, 3)[:, :, : H + 4, : W + 4]  # periodic extension
    M = F.conv2d(tiled, w).reshape(2 * H * W, -1).T
    assert abs(conv2d_lipschitz_fft(w, (H, W)) - _sigma_max(M)) <= 1e-9 * _sigma_max(M)


LINEAR_LAYERS = [
    (nn.Conv2d(2, 3, 3, padding=1, padding_mode="circular"), (1, 2, 6, 5)),
    (nn.Conv2d(2, 3, 4, padding="same", padding_mode="circular"), (1, 2, 6, 5)),
    (nn.Conv2d(2, 3, 3, padding=2, padding_mode="circular"), (1, 2, 6, 5)),
    (nn.Conv2d(2, 3, 3, padding=0, padding_mode="circular"), (1, 2, 6, 5)),
    (nn.Conv2d(2, 3, 3, padding=1, padding_mode="reflect"), (1, 2, 6, 5)),
    (nn.Conv2d(2, 3, 3, padding=2, padding_mode="replicate"), (1, 2, 6, 5)),
    (nn.Conv2d(2, 3, 3, padding=1), (1, 2, 6, 5)),
    (nn.Conv2d(2, 3, 3, padding=1, stride=2), (1, 2, 7, 6)),
    (nn.Conv2d(2, 3, 4, padding=1, stride=2), (1, 2, 8, 8)),
    (nn.Conv2d(4, 4, 3, padding=2, dilation=2, groups=2), (1, 4, 7, 6)),
    (nn.Conv2d(2, 3, 4, padding="same"), (1, 2, 6, 5)),
    (nn.Conv2d(2, 3, 1, stride=2), (1, 2, 6, 5)),
    (nn.Conv1d(2, 3, 3, padding=1), (1, 2, 9)),
    (nn.Conv1d(2, 3, 3, padding=1, padding_mode="circular"), (1, 2, 9)),
    (nn.ConvTranspose2d(3, 2, 4, stride=2, padding=1), (1, 3, 4, 4)),
    (nn.ConvTranspose2d(4, 2, 3, stride=1, padding=1, groups=2), (1, 4, 5, 4)),
    (nn.Linear(7, 4), (1, 7)),
    (nn.AvgPool2d(2), (1, 1, 6, 6)),
    (nn.AvgPool2d(3, stride=1), (1, 1, 6, 6)),
    (nn.AvgPool2d(3, stride=2, padding=1), (1, 1, 6, 6)),
    (nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False), (1, 1, 6, 6)),
    (nn.AdaptiveAvgPool2d((4, 3)), (1, 1, 6, 7)),
    (nn.AdaptiveAvgPool2d(1), (1, 2, 6, 7)),
    (nn.Upsample(scale_factor=2), (1, 1, 3, 3)),
    (nn.Upsample(size=(5, 7)), (1, 1, 3, 3)),
]


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("module,shape", LINEAR_LAYERS, ids=lambda v: repr(v)[:60])
def test_linear_layers_against_dense_jacobian(module: nn.Module, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    module = module.double()
    for p in module.parameters():
        nn.init.normal_(p)
    res = layer_lipschitz(module, shape)
    true = _jacobian_norm(module, shape)
    assert res["lipschitz"] >= true * (1 - 1e-9), res
    if res["exact"]:
        assert abs(res["lipschitz"] - true) <= 1e-9 * true, res


def test_linear_equals_svd_and_spectral_norm_uses_effective_weight() -> None:
    for seed in range(3):
        torch.manual_seed(seed)
        lin = nn.Linear(6, 9)
        res = layer_lipschitz(lin)
        assert res["exact"]
        assert abs(res["lipschitz"] - float(torch.linalg.svdvals(lin.weight.detach())[0])) < 1e-6
    sn = spectral_norm(nn.Linear(5, 8))
    sn.train()
    for _ in range(30):
        sn(torch.randn(2, 5))
    u_before = sn.parametrizations.weight[0]._u.clone()
    res = layer_lipschitz(sn)
    assert abs(res["lipschitz"] - 1.0) < 1e-3
    torch.testing.assert_close(sn.parametrizations.weight[0]._u, u_before)  # no power step


ACTIVATIONS = [
    nn.ReLU(),
    nn.LeakyReLU(0.2),
    nn.LeakyReLU(-1.5),
    nn.Tanh(),
    nn.Sigmoid(),
    nn.Softplus(),
    nn.ELU(),
    nn.ELU(alpha=2.0),
    nn.SELU(),
    nn.CELU(0.5),
    nn.GELU(),
    nn.GELU("tanh"),
    nn.SiLU(),
    nn.Mish(),
    nn.Hardswish(),
    nn.Hardsigmoid(),
    nn.Hardtanh(),
    nn.ReLU6(),
    nn.Softsign(),
    nn.LogSigmoid(),
    nn.Softshrink(),
]


@pytest.mark.parametrize("act", ACTIVATIONS, ids=repr)
def test_activation_constants_match_sup_of_derivative(act: nn.Module) -> None:
    x = torch.linspace(-12, 12, 480_001, dtype=torch.float64, requires_grad=True)
    (d,) = torch.autograd.grad(act(x).sum(), x)
    sup = float(d.abs().max())
    L = layer_lipschitz(act)["lipschitz"]
    assert sup <= L * (1 + 1e-7)  # (Hardsigmoid's backward uses a float32 1/6)
    assert sup >= L * (1 - 1e-3)


def test_normalisation_and_dropout_layers() -> None:
    torch.manual_seed(1)
    bn = nn.BatchNorm2d(3).double()
    bn.running_var.uniform_(0.2, 2.0)
    bn.weight.data.normal_()
    bn.eval()
    res = layer_lipschitz(bn)
    assert res["exact"]
    assert abs(res["lipschitz"] - _jacobian_norm(bn, (1, 3, 2, 2))) < 1e-9
    bn.train()
    assert layer_lipschitz(bn)["lipschitz"] is None
    ln = layer_lipschitz(nn.LayerNorm(4))
    assert ln["lipschitz"] is None and "data-dependent" in ln["note"]
    drop = nn.Dropout(0.25)
    assert layer_lipschitz(drop.eval())["lipschitz"] == 1.0
    assert layer_lipschitz(drop.train())["lipschitz"] == pytest.approx(1 / 0.75)
    assert layer_lipschitz(nn.Flatten())["lipschitz"] == 1.0
    assert layer_lipschitz(nn.MaxPool2d(2), (1, 1, 4, 4)) == {
        "lipschitz": 1.0,
        "exact": True,
        "note": layer_lipschitz(nn.MaxPool2d(2))["note"],
    }


def _mlp(seed: int, width: int = 16, act: type[nn.Module] = nn.LeakyReLU) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(2, width), act(), nn.Linear(width, width), act(), nn.Linear(width, 1)
    )


def _convnet(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 3, 3, padding=1, stride=2),
        nn.Flatten(),
        nn.Linear(3 * 4 * 4, 1),
    )


@pytest.mark.parametrize("seed", range(4))
def test_network_bound_dominates_empirical_lipschitz(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    for model, shape in [
        (_mlp(seed), (2,)),
        (_mlp(seed + 10, act=nn.Tanh), (2,)),
        (_convnet(seed), (2, 8, 8)),
    ]:
        res = network_lipschitz_bound(model, (1, *shape))
        assert res["warnings"] == []
        assert res["bound"] == pytest.approx(math.prod(la["lipschitz"] for la in res["layers"]))
        real = torch.randn(256, *shape, generator=gen)
        fake = 3 * torch.randn(256, *shape, generator=gen)
        emp = empirical_lipschitz(model, real, fake, interpolates(real, fake, gen))
        assert len(emp["per_set_max"]) == 3 and emp["n"] == 768
        assert emp["max_grad_norm"] == max(emp["per_set_max"])
        assert 0 < emp["mean_grad_norm"] <= emp["max_grad_norm"]
        assert emp["max_grad_norm"] <= res["bound"] * (1 + 1e-6)


def test_network_layers_report_and_restore_state() -> None:
    model = nn.Sequential(
        spectral_norm(nn.Conv2d(1, 4, 3, padding=1)),
        nn.LeakyReLU(0.2),
        nn.Dropout(0.0),
        nn.Flatten(),
        spectral_norm(nn.Linear(4 * 5 * 5, 1)),
    )
    model.train()
    res = network_lipschitz_bound(model, (1, 1, 5, 5))
    assert [la["type"] for la in res["layers"]] == [
        "ParametrizedConv2d",
        "LeakyReLU",
        "Dropout",
        "Flatten",
        "ParametrizedLinear",
    ]
    assert [la["name"] for la in res["layers"]] == ["0", "1", "2", "3", "4"]
    assert res["layers"][0]["input_shape"] == (1, 1, 5, 5)
    assert res["layers"][0]["exact"] is False and res["layers"][4]["exact"] is True
    assert all(m.training for m in model.modules())


def test_unsupported_modules_raise_wgan_error() -> None:
    class Weird(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.ones(1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.scale * x**2

    with pytest.raises(WganError, match="Weird"):
        network_lipschitz_bound(nn.Sequential(nn.Linear(2, 3), Weird()), (1, 2))
    with pytest.raises(WganError, match="Weird"):
        layer_lipschitz(Weird())
    with pytest.raises(WganError, match="LayerNorm"):
        network_lipschitz_bound(nn.Sequential(nn.Linear(2, 3), nn.LayerNorm(3)), (1, 2))
    bn_net = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    with pytest.raises(WganError, match="batch statistics"):
        network_lipschitz_bound(bn_net, (2, 2))
    assert float(bn_net[1].running_mean.abs().sum()) == 0.0  # the shape pass ran in eval mode
    assert network_lipschitz_bound(bn_net.eval(), (1, 2))["bound"] > 0
    with pytest.raises(WganError, match="forward pass"):
        network_lipschitz_bound(_mlp(0), (1, 3))
    with pytest.raises(WganError):
        conv2d_lipschitz_bound(torch.randn(2, 2, 3, 3), (4, 4), padding="mirror")


def test_non_chain_forward_is_flagged() -> None:
    class Residual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(2, 2), nn.Linear(2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(x + self.a(x))

    res = network_lipschitz_bound(Residual(), (1, 2))
    assert len(res["warnings"]) == 1 and "'b'" in res["warnings"][0]
    with pytest.raises(WganError, match="plain feed-forward chain"):
        network_lipschitz_bound(Residual(), (1, 2), strict=True)


def test_empirical_lipschitz_of_a_linear_critic_is_exact() -> None:
    lin = nn.Linear(5, 1)
    x = torch.randn(10, 5)
    res = empirical_lipschitz(lin, x, batch_size=3)
    norm = float(lin.weight.detach().norm())
    assert res["max_grad_norm"] == pytest.approx(norm, rel=1e-6)
    assert res["mean_grad_norm"] == pytest.approx(norm, rel=1e-6)
    assert lin.weight.grad is None
    with pytest.raises(WganError, match="one scalar per sample"):
        empirical_lipschitz(nn.Linear(5, 2), x)
    with pytest.raises(WganError, match="at least one"):
        empirical_lipschitz(lin)


def test_interpolates() -> None:
    real, fake = torch.zeros(1000, 2, 3), torch.ones(1000, 2, 3)
    x = interpolates(real, fake, torch.Generator().manual_seed(0))
    assert x.shape == real.shape
    assert torch.all((x >= 0) & (x <= 1))
    assert torch.all(x == x[:, :1, :1])  # one epsilon per sample
    assert 0.4 < float(x.mean()) < 0.6
    with pytest.raises(WganError, match="same shape"):
        interpolates(real, fake[:, :1])
