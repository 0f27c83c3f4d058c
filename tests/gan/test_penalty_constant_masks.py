"""The penalty's fast double backward equals the plain autograd path bit for bit.

`input_gradient_norm(..., create_graph=True)` runs the critic under `ConstantMasks`: ReLU,
leaky ReLU and average pooling keep their forward and backward kernels but treat the saved mask
/ shape as a constant, so the second backward no longer sends all-zero gradients back through
the forward pass on x_hat. Only additions of exact zeros disappear, so we assert *exact*
equality (torch.equal) of the penalty, of every weight gradient, and of whole training runs;
the FLOP count drops by exactly the zero branch.
"""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import wgan.constraints.penalty as penalty_module
from wgan.config import resolve
from wgan.constraints import GradientPenalty, input_gradient_norm, interpolates
from wgan.constraints.penalty import input_gradient_norm_func
from wgan.nets import MLP, DCGANCritic, ResNetCritic
from wgan.scale.bench import count_flops
from wgan.training.trainer import Trainer


class _Passthrough(torch.overrides.TorchFunctionMode):
    """Stands in for ConstantMasks: every call runs unchanged (the plain autograd path)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        return func(*args, **(kwargs or {}))


def plain_input_gradient_norm(critic, x):
    """The reference: input_gradient_norm as it was, with plain autograd."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).float().sum(), x, create_graph=True)
    return grad.float().flatten(1).norm(2, dim=1)


def grads(module):
    return [
        p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in module.parameters()
    ]


def wgan_gp_grads(critic, real, fake, seed, fast):
    """WGAN-GP critic loss (scores + two-sided penalty, lambda 10) and its weight gradients."""
    critic.zero_grad(set_to_none=True)
    g = torch.Generator().manual_seed(seed)
    gp = GradientPenalty(10.0)
    if fast:
        penalty = gp.penalty(critic, real, fake, g)["penalty"]
    else:
        x_hat = interpolates(real, fake, g)
        penalty = gp.value(plain_input_gradient_norm(critic, x_hat))
    loss = critic(fake).mean() - critic(real).mean() + penalty
    loss.backward()
    return penalty.detach(), grads(critic), g.get_state()


CRITICS = [
    ("mlp relu", lambda: MLP(2, 1, 32, 3), (16, 2)),
    ("mlp leaky", lambda: MLP(2, 1, 32, 3, "leaky_relu"), (16, 2)),
    ("mlp tanh layer norm", lambda: MLP(2, 1, 32, 3, "tanh", "layer"), (16, 2)),
    ("mlp softplus", lambda: MLP(2, 1, 32, 2, "softplus"), (16, 2)),
    ("dcgan layer norm", lambda: DCGANCritic(1, 16, 8, "layer"), (6, 1, 16, 16)),
    ("dcgan no norm", lambda: DCGANCritic(1, 16, 8, "none"), (6, 1, 16, 16)),
    ("resnet 16px", lambda: ResNetCritic(3, 16, 8, "none"), (4, 3, 16, 16)),
    (
        "in-place relu",
        lambda: nn.Sequential(nn.Linear(2, 16), nn.ReLU(inplace=True), nn.Linear(16, 1)),
        (16, 2),
    ),
]


@pytest.mark.parametrize("name,make,shape", CRITICS, ids=[c[0] for c in CRITICS])
def test_penalty_and_gradients_bitwise_equal(name, make, shape):
    torch.manual_seed(0)
    critic = make()
    real, fake = torch.randn(shape), torch.randn(shape)
    p_plain, g_plain, rng_plain = wgan_gp_grads(critic, real, fake, 3, fast=False)
    p_fast, g_fast, rng_fast = wgan_gp_grads(critic, real, fake, 3, fast=True)
    assert torch.equal(p_fast, p_plain)
    assert all(torch.equal(a, b) for a, b in zip(g_fast, g_plain, strict=True))
    assert torch.equal(rng_fast, rng_plain)  # the same draws (one eps per sample)
    assert p_plain > 0 and any(g.abs().sum() > 0 for g in g_plain)


def test_bf16_autocast_bitwise_equal():
    torch.manual_seed(0)
    critic = MLP(2, 1, 32, 3)
    x = torch.randn(16, 2)
    out = []
    for fast in (False, True):
        critic.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            norms = (
                input_gradient_norm(critic, x, create_graph=True)
                if fast
                else plain_input_gradient_norm(critic, x)
            )
        norms.square().mean().backward()
        out.append((norms.detach(), grads(critic)))
    assert torch.equal(out[0][0], out[1][0])
    assert all(torch.equal(a, b) for a, b in zip(out[0][1], out[1][1], strict=True))


def _mlp_flops(batch, sizes):
    return [2 * batch * a * b for a, b in zip(sizes[:-1], sizes[1:], strict=False)]


def test_flops_drop_by_exactly_the_zero_branch():
    """Penalty + backward on a ReLU MLP: plain autograd also back-propagates the zeros of
    ReLU's mask derivative through the hidden layers (a weight and an input gradient each,
    2 F_hid FLOPs); the fast path computes everything else and nothing more."""
    torch.manual_seed(0)
    b, h = 16, 32
    critic = MLP(2, 1, h, 3)
    x = torch.randn(b, 2)

    def run(fast):
        norms = (
            input_gradient_norm(critic, x, create_graph=True)
            if fast
            else plain_input_gradient_norm(critic, x)
        )
        norms.square().mean().backward()

    plain, fast = count_flops(lambda: run(False)), count_flops(lambda: run(True))
    layers = _mlp_flops(b, [2, h, h, h, 1])
    f_all, f_hidden = sum(layers), sum(layers[:-1])
    # forward, input gradient, double backward (2 F minus the constant seed of the last layer)
    assert fast == f_all + f_all + 2 * f_all - layers[-1]
    assert plain == fast + 2 * f_hidden


def test_resnet_flops_drop_by_a_third_of_the_penalty():
    """Conv critic with ReLU and average pooling: the zero branch was 1/3 of the penalty."""
    torch.manual_seed(0)
    critic = ResNetCritic(3, 16, 8, "none")
    x = torch.randn(2, 3, 16, 16)

    def run(fast):
        norms = (
            input_gradient_norm(critic, x, create_graph=True)
            if fast
            else plain_input_gradient_norm(critic, x)
        )
        norms.square().mean().backward()

    plain, fast = count_flops(lambda: run(False)), count_flops(lambda: run(True))
    assert fast == pytest.approx(plain * 2 / 3, rel=0.01)


AVG_POOL_ARGS = [
    ((2,), {}),
    ((3,), {"stride": 1, "padding": 1}),
    ((2,), {"stride": (1, 2), "ceil_mode": True}),
    ((3,), {"stride": 2, "padding": 1, "count_include_pad": False}),
    ((2,), {"divisor_override": 3}),
]


@pytest.mark.parametrize("args,kwargs", AVG_POOL_ARGS)
def test_avg_pool2d_replacement_matches(args, kwargs):
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, 3, padding=1)
    x = torch.randn(2, 2, 7, 7)

    def critic(z):
        return F.avg_pool2d(F.relu(conv(z)), *args, **kwargs).flatten(1).sum(1, keepdim=True)

    results = []
    for fast in (False, True):
        conv.zero_grad(set_to_none=True)
        norms = (
            input_gradient_norm(critic, x, create_graph=True)
            if fast
            else plain_input_gradient_norm(critic, x)
        )
        norms.square().mean().backward()
        results.append((norms.detach(), grads(conv)))
    assert torch.equal(results[0][0], results[1][0])
    assert all(torch.equal(a, b) for a, b in zip(results[0][1], results[1][1], strict=True))


def test_no_change_without_create_graph():
    torch.manual_seed(0)
    critic = MLP(2, 1, 16, 2)
    x = torch.randn(8, 2)
    a = input_gradient_norm(critic, x)
    b = plain_input_gradient_norm(critic, x).detach()
    assert torch.equal(a, b) and not a.requires_grad


def _train(cfg, tmp_path, name, steps=3):
    trainer = Trainer(copy.deepcopy(cfg), tmp_path / name)
    for _ in range(steps):
        trainer.train_step()
    return trainer


@pytest.mark.parametrize(
    "preset,overrides",
    [
        ("toy-wgan-gp", ["generator.hidden=32", "critic.hidden=32"]),
        (
            "digits-wgan-gp",
            ["generator.width=8", "critic.width=8", "critic.norm=none", "data.batch_size=8"],
        ),
    ],
    ids=["toy mlp", "digits dcgan"],
)
def test_training_runs_bitwise_equal(tmp_path, monkeypatch, preset, overrides):
    """Whole Trainer runs: same weights bit for bit and the same RNG state (same draws)."""
    cfg = resolve(preset, [*overrides, "train.device=cpu", "train.progress=false"])
    fast = _train(cfg, tmp_path, "fast")
    with monkeypatch.context() as m:
        m.setattr(penalty_module, "ConstantMasks", _Passthrough)
        plain = _train(cfg, tmp_path, "plain")
    for net in ("gen", "critic"):
        a, b = getattr(fast, net).state_dict(), getattr(plain, net).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), net
    assert torch.equal(fast.rng.get_state(), plain.rng.get_state())
    assert fast.stats.flush() == plain.stats.flush()


FUNCTIONAL_CRITICS = [
    c for c in CRITICS if c[0] in ("mlp relu", "mlp leaky", "mlp tanh layer norm")
]
FUNCTIONAL_CRITICS.append(("dcgan layer norm", CRITICS[4][1], CRITICS[4][2]))


@pytest.mark.parametrize(
    "name,make,shape", FUNCTIONAL_CRITICS, ids=[c[0] for c in FUNCTIONAL_CRITICS]
)
def test_functional_penalty_gradients_equal_the_plain_ones(name, make, shape):
    """The functional penalty (torch.func.grad: compiled and vmapped steps) with its constant
    masks gives the plain autograd path's norms and weight gradients."""
    torch.manual_seed(0)
    critic = make()
    x = torch.randn(shape)
    out = []
    for fn in (plain_input_gradient_norm, input_gradient_norm_func):
        critic.zero_grad(set_to_none=True)
        norms = fn(critic, x)
        (norms - 1).square().mean().backward()
        out.append((norms.detach(), grads(critic)))
    assert torch.allclose(out[0][0], out[1][0], rtol=1e-6, atol=1e-7)
    for a, b in zip(out[0][1], out[1][1], strict=True):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7)
    assert any(g.abs().sum() > 0 for g in out[1][1])


def test_functional_penalty_skips_the_zero_branch_too():
    """torch.func.grad with the functional masks costs what the autograd fast path costs."""
    torch.manual_seed(0)
    critic = MLP(2, 1, 32, 3)
    x = torch.randn(16, 2)

    def run(fn):
        kwargs = {"create_graph": True} if fn is input_gradient_norm else {}
        fn(critic, x, **kwargs).square().mean().backward()

    fast = count_flops(lambda: run(input_gradient_norm))
    functional = count_flops(lambda: run(input_gradient_norm_func))
    plain = count_flops(lambda: run(plain_input_gradient_norm))
    assert functional == fast < plain
