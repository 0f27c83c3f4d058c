"""Tests of the Lipschitz report of trained runs (wgan.analysis.critic_lipschitz)."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import tiny
from torch import nn

from wgan.analysis.critic_lipschitz import (
    critic_lipschitz_bound,
    format_lipschitz_report,
    lipschitz_report,
)
from wgan.config import resolve
from wgan.errors import WganError
from wgan.lipschitz import empirical_lipschitz
from wgan.nets import MLP
from wgan.training.run import load_run
from wgan.training.train import train


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny networks: intra-op threads only add contention on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


TINY = tiny(
    "train.progress=false", "train.device=cpu", hidden=16, steps=3, eval_samples=200, quiet=False
)

KEYS = {
    "step",
    "n",
    "seed",
    "input_dim",
    "input_shape",
    "bound",
    "bound_reason",
    "bound_without_standardisation",
    "bound_method",
    "layers",
    "warnings",
    "empirical",
    "empirical_max",
    "bound_holds",
    "ratio",
}


def trained(tmp_path, *overrides):
    cfg = resolve(None, [*TINY, *overrides])
    cfg.out_dir = str(tmp_path)
    result = train(cfg, tensorboard=False)
    return load_run(result.run_dir)  # what `wgan lipschitz RUN` does


def test_report_of_a_trained_run(tmp_path):
    trainer = trained(tmp_path)
    before = {k: v.clone() for k, v in trainer.critic.state_dict().items()}
    rng = trainer.rng.get_state()
    rep = lipschitz_report(trainer, n=256, seed=1)
    assert set(rep) == KEYS
    json.dumps(rep)  # JSON-serialisable for --json
    assert rep["step"] == 3 and rep["n"] == 256 and rep["input_dim"] == 2
    assert rep["bound_holds"] is True and rep["bound_reason"] is None
    assert rep["bound"] >= rep["empirical_max"] > 0
    assert 0 < rep["ratio"] <= 1
    assert set(rep["empirical"]) == {"real", "fake", "interpolates"}
    assert rep["empirical_max"] == max(v["max_grad_norm"] for v in rep["empirical"].values())
    # Walk covers body then head; the product of the layer constants is the bound.
    names = [layer["name"] for layer in rep["layers"]]
    assert names[0] == "body.0" and names[-1] == "head" and len(names) == 3 * 2 + 1  # no Identity
    prod = 1.0
    for layer in rep["layers"]:
        prod *= layer["lipschitz"]
    assert rep["bound"] == pytest.approx(prod)
    # Nothing about the run changed, and the report is reproducible.
    for k, v in trainer.critic.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert torch.equal(trainer.rng.get_state(), rng)
    assert lipschitz_report(trainer, n=256, seed=1) == rep
    text = format_lipschitz_report(rep)
    assert "head" in text and "upper bound" in text and "interpolates" in text
    with pytest.raises(WganError):
        lipschitz_report(trainer, n=0)


def test_spectral_norm_critic(tmp_path):
    trainer = trained(tmp_path, "constraint.spectral_norm=true")
    u_before = [b.clone() for n, b in trainer.critic.named_buffers() if n.endswith("_u")]
    rep = lipschitz_report(trainer, n=256)
    assert rep["bound_holds"] is True
    linear = [layer for layer in rep["layers"] if "Linear" in layer["type"]]
    assert len(linear) == 4
    for layer in linear:  # spectral norm keeps every linear layer at ~1
        assert layer["lipschitz"] == pytest.approx(1.0, abs=0.05)
    assert rep["bound"] == pytest.approx(1.0, abs=0.2)
    u_after = [b for n, b in trainer.critic.named_buffers() if n.endswith("_u")]
    assert all(torch.equal(a, b) for a, b in zip(u_before, u_after, strict=True))


def test_layer_norm_critic_reports_no_bound(tmp_path):
    trainer = trained(tmp_path, "critic.norm=layer")
    rep = lipschitz_report(trainer, n=256)
    assert rep["bound"] is None and rep["bound_holds"] is None and rep["ratio"] is None
    assert "LayerNorm" in rep["bound_reason"]
    assert rep["empirical_max"] > 0  # the lower bound is still there
    norms = [layer for layer in rep["layers"] if layer["type"] == "LayerNorm"]
    assert len(norms) == 3 and all(layer["lipschitz"] is None for layer in norms)
    assert rep["layers"][-1]["name"] == "head" and rep["layers"][-1]["lipschitz"] > 0
    json.dumps(rep)
    assert "none" in format_lipschitz_report(rep)


@pytest.mark.parametrize("seed", range(8))
def test_bound_never_below_gradient_norms(seed):
    g = torch.Generator().manual_seed(seed)
    activations = ["relu", "leaky_relu", "tanh", "softplus"]
    depth = 1 + int(torch.randint(0, 4, (1,), generator=g))
    act = activations[int(torch.randint(0, 4, (1,), generator=g))]
    torch.manual_seed(seed)
    critic = MLP(2, 1, hidden=12, depth=depth, activation=act)
    if seed % 3 == 0:  # also spectral-normalised critics
        for m in critic.modules():
            if isinstance(m, nn.Linear):
                nn.utils.parametrizations.spectral_norm(m)
    critic.eval()
    info = critic_lipschitz_bound(critic, 2)
    assert info["bound"] is not None, info["bound_reason"]
    assert [layer["name"] for layer in info["layers"]][-1] == "head"
    scale = torch.tensor([0.1, 1.0, 10.0]).repeat_interleave(200)[:, None]
    x = torch.randn(600, 2, generator=g) * scale
    emp = empirical_lipschitz(critic, x)
    assert emp["max_grad_norm"] <= info["bound"] * (1 + 1e-5), (depth, act)


def test_critic_without_body_and_head():
    class Weird(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(2, 4)
            self.n = nn.LayerNorm(4)
            self.b = nn.Linear(4, 1)

        def forward(self, x):
            return self.b(self.n(self.a(x)))

    info = critic_lipschitz_bound(Weird(), 2)
    assert info["bound"] is None and "LayerNorm" in info["bound_reason"]
    plain = critic_lipschitz_bound(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)), 2)
    assert plain["bound"] > 0 and plain["method"] == "network_lipschitz_bound"
