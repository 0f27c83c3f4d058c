"""The functional optimisers of wgan.gan.optim equal torch.optim, alone and stacked under vmap.

Tolerance: rtol 1e-5, atol 1e-7 on the parameters after 20 steps (float32), except Adam with
beta2 = 0.999 (see ``BETA2_NEAR_1``). The updates are torch's formulas, not its kernels:
the bias corrections come from a float32 step tensor (torch uses Python floats), the moments
are updated with ``mul_/add_`` (torch's Adam uses ``lerp_``), RMSprop divides ``lr * g`` by the
root (torch: ``addcdiv_``) and SGD steps ``p -= lr * buf`` (torch: ``add_(alpha=-lr)``), so
the results differ in the last bits. Measured on these cases (largest over all tensors): Adam
with beta2 0.9 2.4e-7 absolute (2.1e-7 relative), RMSprop 1.2e-7 (2.2e-7), SGD 2.4e-7
(8.8e-7).
"""

from __future__ import annotations

import pytest
import torch

from wgan.errors import WganError
from wgan.gan import optim

RTOL, ATOL = 1e-5, 1e-7
# Adam with beta2 = 0.999: 1 - beta2^t in float32 (float32(0.999) = 0.99900001287) is off by
# 1.3e-5 relative at t = 1, so the step size by ~6e-6; measured over 20 steps: 1.1e-6 absolute,
# 1.5e-5 relative. Computing it as -expm1(t log beta2) brings it to 1.2e-7 / 3.5e-7 (a proposed
# change to wgan.gan.optim._adam; see the report), after which this looser tolerance can go.
BETA2_NEAR_1 = {"rtol": 3e-5, "atol": 2e-6}
STEPS = 20
SHAPES = [(5, 3), (3,), (2, 2, 3), (4,)]
# The last tensor's gradients are ~1e-6, so Adam's and RMSprop's eps (1e-8) matters there.
SCALES = [1.0, 1.0, 1.0, 1e-6]


def _params_and_grads(seed: int):
    g = torch.Generator().manual_seed(seed)
    params = [torch.randn(s, generator=g) for s in SHAPES]
    grads = [
        [c * torch.randn(s, generator=g) for s, c in zip(SHAPES, SCALES, strict=True)]
        for _ in range(STEPS)
    ]
    return params, grads


def _torch_optimizer(name, params, lr, betas, weight_decay):
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=betas, eps=1e-8, weight_decay=weight_decay)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=0.99, eps=1e-8, weight_decay=weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=betas[0], weight_decay=weight_decay)


def _run_both(name, lr, betas, weight_decay, seed=0):
    """Parameters after 20 steps of torch.optim and of wgan.gan.optim.update_ on the same grads."""
    start, grads = _params_and_grads(seed)
    ref = [p.clone().requires_grad_(True) for p in start]
    opt = _torch_optimizer(name, ref, lr, betas, weight_decay)
    ours = [p.clone() for p in start]
    state = optim.init_state(name, ours)
    h = optim.hyper(lr, betas, weight_decay)
    for step_grads in grads:
        for p, g in zip(ref, step_grads, strict=True):
            p.grad = g.clone()
        opt.step()
        optim.update_(name, ours, [g.clone() for g in step_grads], state, h)
    assert state["step"].item() == STEPS
    return [p.detach() for p in ref], ours, start


CASES = [
    ("adam", 1e-2, (0.0, 0.9), 0.0),
    ("adam", 1e-2, (0.5, 0.999), 0.0),
    ("adam", 1e-2, (0.0, 0.9), 0.1),
    ("adam", 1e-2, (0.5, 0.999), 0.1),
    ("rmsprop", 5e-3, (0.0, 0.0), 0.0),
    ("rmsprop", 5e-3, (0.0, 0.0), 0.1),
    ("sgd", 1e-2, (0.0, 0.0), 0.0),
    ("sgd", 1e-2, (0.9, 0.0), 0.0),
    ("sgd", 1e-2, (0.9, 0.0), 0.1),
]


@pytest.mark.parametrize(
    "name,lr,betas,weight_decay",
    CASES,
    ids=[f"{c[0]}-b{c[2][0]}-{c[2][1]}-wd{c[3]}" for c in CASES],
)
def test_update_equals_torch_optim_over_20_steps(name, lr, betas, weight_decay):
    ref, ours, start = _run_both(name, lr, betas, weight_decay)
    tol = BETA2_NEAR_1 if name == "adam" and betas[1] > 0.99 else {"rtol": RTOL, "atol": ATOL}
    for r, o, s in zip(ref, ours, start, strict=True):
        assert not torch.equal(r, s)  # the parameters did move
        torch.testing.assert_close(o, r, **tol)


@pytest.mark.parametrize("name", ["adam", "rmsprop", "sgd"])
def test_vmapped_stacked_update_equals_separate_updates(name):
    """K runs stacked (params (K, ...), lr a (K,) tensor) under vmap = K separate updates."""
    k = 3
    lrs = [1e-3, 1e-2, 5e-2]
    betas = (0.5, 0.999) if name == "adam" else (0.9, 0.0)
    runs = [_params_and_grads(seed) for seed in range(k)]
    separate = []
    for (start, grads), lr in zip(runs, lrs, strict=True):
        params = [p.clone() for p in start]
        state = optim.init_state(name, params)
        for step_grads in grads:
            optim.update_(name, params, step_grads, state, optim.hyper(lr, betas, 0.01))
        separate.append(params)

    stacked = [torch.stack([r[0][i] for r in runs]) for i in range(len(SHAPES))]  # (K, ...)
    state = optim.init_state(name, stacked)
    state["step"] = torch.zeros(k)  # one step count per run
    h = optim.hyper(torch.tensor(lrs), betas, 0.01)
    dims = {"lr": 0, "beta1": None, "beta2": None, "weight_decay": None}

    def one(params, grads, st, hyper):
        optim.update_(name, params, grads, st, hyper)
        return params

    mapped = torch.func.vmap(one, in_dims=(0, 0, 0, dims))
    for s in range(STEPS):
        grads = [torch.stack([r[1][s][i] for r in runs]) for i in range(len(SHAPES))]
        mapped(stacked, grads, state, h)
    assert torch.equal(state["step"], torch.full((k,), float(STEPS)))
    for run in range(k):
        for p_stacked, p_alone in zip(stacked, separate[run], strict=True):
            torch.testing.assert_close(p_stacked[run], p_alone, rtol=RTOL, atol=ATOL)
    # the runs differ (different data and learning rates): the stacking kept them apart
    assert not torch.allclose(stacked[0][0], stacked[0][1])


def test_lr_factor():
    assert optim.lr_factor(0, 100, "linear") == 1.0
    assert optim.lr_factor(25, 100, "linear") == pytest.approx(0.75)
    assert optim.lr_factor(100, 100, "linear") == 0.0
    assert optim.lr_factor(150, 100, "linear") == 0.0  # floored at 0
    assert optim.lr_factor(7, 0, "linear") == 0.0  # total 0 is read as 1
    assert optim.lr_factor(50, 100, "none") == 1.0
    t = optim.lr_factor(torch.tensor([0.0, 50.0, 200.0]), 100, "linear")
    assert isinstance(t, torch.Tensor)
    torch.testing.assert_close(t, torch.tensor([1.0, 0.5, 0.0]))


def test_state_round_trip_and_kind_mismatch_is_refused():
    params = [torch.randn(3, 2), torch.randn(4)]
    state = optim.init_state("adam", params)
    optim.update_(
        "adam", params, [torch.ones(3, 2), torch.ones(4)], state, optim.hyper(1e-2, (0.5, 0.9), 0)
    )
    saved = optim.state_to_cpu(state)
    fresh = optim.init_state("adam", [torch.zeros(3, 2), torch.zeros(4)])
    optim.load_state_("adam", fresh, saved)
    assert fresh["step"].item() == 1
    assert all(torch.equal(a, b) for a, b in zip(fresh["exp_avg"], state["exp_avg"], strict=True))
    rms = optim.init_state("rmsprop", [torch.zeros(3, 2), torch.zeros(4)])
    with pytest.raises(WganError, match="not a rmsprop state.*cannot change on resume"):
        optim.load_state_("rmsprop", rms, saved)
    sgd = optim.init_state("sgd", [torch.zeros(3, 2), torch.zeros(4)])
    with pytest.raises(WganError, match="not a adam state"):
        optim.load_state_("adam", optim.init_state("adam", params), optim.state_to_cpu(sgd))
    with pytest.raises(WganError, match="does not fit"):
        optim.load_state_(
            "adam", optim.init_state("adam", [torch.zeros(2, 3), torch.zeros(4)]), saved
        )
    with pytest.raises(WganError, match="unknown optimiser 'lamb'"):
        optim.init_state("lamb", params)
