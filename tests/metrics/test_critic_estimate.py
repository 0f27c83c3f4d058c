"""Tests of the critic-implied divergence estimates (wgan.metrics.critic)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from wgan.config import resolve
from wgan.errors import WganError
from wgan.metrics.critic import critic_estimate, critic_outputs, trainer_critic_estimate
from wgan.objectives import make_objective
from wgan.training.trainer import Trainer


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny networks: intra-op threads only add contention on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def linear_critic(w: list[float], bias: float = 0.0) -> nn.Linear:
    lin = nn.Linear(len(w), 1).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([w], dtype=torch.float64))
        lin.bias.fill_(bias)
    return lin


def test_wasserstein_linear_critic_is_exact():
    w = [0.7, -1.3]
    critic = linear_critic(w, bias=0.4)  # the bias cancels in E_p D - E_q D
    real = torch.randn(1000, 2, generator=gen(0), dtype=torch.float64) + 1.0
    fake = torch.randn(700, 2, generator=gen(1), dtype=torch.float64)
    r = critic_estimate(critic, make_objective("wasserstein"), real, fake)
    expect = float(torch.tensor(w, dtype=torch.float64) @ (real.mean(0) - fake.mean(0)))
    assert r["estimate"] == pytest.approx(expect, rel=1e-12, abs=1e-12)
    assert r["loss"] == pytest.approx(-expect, rel=1e-12, abs=1e-12)
    assert r["estimate_name"] == "w1"
    assert (r["n_real"], r["n_fake"]) == (1000, 700)
    assert set(r["terms"]) >= {"loss", "estimate", "d_real", "d_fake"}


class Constant(nn.Module):
    def __init__(self, value: float, flat: bool = False) -> None:
        super().__init__()
        self.value, self.flat = value, flat
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        out = torch.full((x.shape[0], 1), self.value) + 0 * self.dummy
        return out.reshape(-1) if self.flat else out


@pytest.mark.parametrize("flat", [False, True])
def test_minimax_constant_critic_gives_zero_js(flat):
    real, fake = torch.randn(300, 2, generator=gen(0)), torch.randn(200, 2, generator=gen(1))
    r = critic_estimate(Constant(0.0, flat), make_objective("minimax"), real, fake)
    assert r["estimate_name"] == "js"
    assert r["estimate"] == pytest.approx(0.0, abs=1e-6)
    assert r["terms"]["value"] == pytest.approx(-2 * math.log(2), abs=1e-6)  # V = -2 log 2
    # Any other constant is a worse discriminator: the estimate (a lower bound) is negative.
    assert critic_estimate(Constant(1.5), make_objective("minimax"), real, fake)["estimate"] < 0


@pytest.mark.parametrize(
    "objective",
    [
        make_objective("wasserstein"),
        make_objective("minimax"),
        make_objective("hinge"),
        make_objective("least_squares"),
        make_objective("fgan", divergence="kl"),
        make_objective("fgan", divergence="pearson"),
    ],
)
def test_chunking_matches_one_batch(objective):
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1)).double()
    real = torch.randn(1003, 2, generator=gen(2), dtype=torch.float64)
    fake = torch.randn(517, 2, generator=gen(3), dtype=torch.float64) * 2
    one = critic_estimate(critic, objective, real, fake, batch_size=10_000)
    chunked = critic_estimate(critic, objective, real, fake, batch_size=37)
    assert chunked["estimate"] == pytest.approx(one["estimate"], rel=1e-12, abs=1e-12)
    assert chunked["loss"] == pytest.approx(one["loss"], rel=1e-12, abs=1e-12)
    # And the same as calling the objective directly on the whole batch.
    with torch.no_grad():
        direct = objective.critic_loss(critic(real), critic(fake))
    assert one["estimate"] == pytest.approx(float(direct["estimate"]), rel=1e-12, abs=1e-12)


def test_modes_restored_and_no_gradients():
    critic = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1))
    critic.train()
    before = {k: v.clone() for k, v in critic.state_dict().items()}
    real, fake = torch.randn(64, 2, generator=gen(0)), torch.randn(64, 2, generator=gen(1))
    a = critic_estimate(critic, make_objective("wasserstein"), real, fake, batch_size=5)
    b = critic_estimate(critic, make_objective("wasserstein"), real, fake)
    assert a["estimate"] == pytest.approx(b["estimate"], rel=1e-5, abs=1e-6)  # eval mode
    assert critic.training and all(m.training for m in critic.modules())
    for k, v in critic.state_dict().items():  # running stats untouched
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None for p in critic.parameters())


def test_invalid_inputs():
    obj = make_objective("wasserstein")
    critic = nn.Linear(2, 1)
    x = torch.zeros(4, 2)
    with pytest.raises(WganError, match="non-empty"):
        critic_estimate(critic, obj, torch.zeros(0, 2), x)
    with pytest.raises(WganError, match="torch.Tensor"):
        critic_estimate(critic, obj, [[0.0, 0.0]], x)
    with pytest.raises(WganError, match="differ in shape"):
        critic_estimate(critic, obj, x, torch.zeros(4, 3))
    with pytest.raises(WganError, match="batch_size"):
        critic_estimate(critic, obj, x, x, batch_size=0)
    with pytest.raises(WganError, match=r"\(B,\) or \(B, 1\)"):
        critic_estimate(nn.Linear(2, 3), obj, x, x)
    assert critic_outputs(critic, x, batch_size=3).shape == (4,)


def test_trainer_critic_estimate(tmp_path):
    cfg = resolve(
        None,
        [
            "generator.hidden=16",
            "critic.hidden=16",
            "train.progress=false",
            "train.device=cpu",
        ],
    )
    trainer = Trainer(cfg, tmp_path)
    rng_state = trainer.rng.get_state()
    r = trainer_critic_estimate(trainer, n=500, seed=3)
    assert torch.equal(trainer.rng.get_state(), rng_state)  # training RNG untouched
    assert r["estimate_name"] == "w1" and r["n_real"] == r["n_fake"] == 500
    assert r["step"] == 0 and r["seed"] == 3
    # Same as building the samples by hand with the same seed.
    g = torch.Generator().manual_seed(3)
    real = trainer.dataset.sample(500, generator=g)
    with torch.no_grad():
        fake = trainer.gen.sample(500, g)
    manual = critic_estimate(trainer.critic, trainer.loss.objective, real, fake)
    assert r["estimate"] == pytest.approx(manual["estimate"], rel=1e-6, abs=1e-7)
    assert trainer_critic_estimate(trainer, n=500, seed=3)["estimate"] == r["estimate"]
    with pytest.raises(WganError):
        trainer_critic_estimate(trainer, n=0)
