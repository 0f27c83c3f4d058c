"""The experiments' shared plumbing: critic fitting by the one step, configs, one run."""

import pytest
import torch

from wgan.config import OptimConfig
from wgan.constraints import make_constraints
from wgan.data import make_dataset
from wgan.errors import ConfigError
from wgan.experiments.common import (
    check_settings,
    experiment_config,
    fit_critic,
    run_config,
)
from wgan.gan.loss import GANLoss
from wgan.gan.players import NoisyDataGenerator
from wgan.nets import MLP
from wgan.objectives import make_objective


def critic_and_loss(clip: float = 0.0, penalty: str = "none"):
    torch.manual_seed(0)
    critic = MLP(2, 1, 16, 2, "relu")
    constraints = make_constraints(clip=clip, penalty=penalty, penalty_weight=0.1)
    return critic, GANLoss(make_objective("wasserstein"), constraints)


def fit(clip: float = 0.0, penalty: str = "none", steps: int = 20, seed: int = 0):
    critic, loss = critic_and_loss(clip, penalty)
    data = make_dataset("8gaussians")
    fake = NoisyDataGenerator(data, 1.0, "cpu")
    name = "rmsprop" if clip else "adam"
    g = torch.Generator().manual_seed(seed)
    return fit_critic(critic, loss, data, fake, steps, 32, OptimConfig(name, 1e-3, (0.5, 0.9)), g)


def test_fit_critic_trains_projects_and_is_reproducible():
    before = critic_and_loss()[0]
    critic = fit(penalty="two_sided")
    assert not critic.training
    assert any(
        not torch.equal(a, b) for a, b in zip(before.parameters(), critic.parameters(), strict=True)
    )
    again = fit(penalty="two_sided")
    for a, b in zip(critic.parameters(), again.parameters(), strict=True):
        assert torch.equal(a, b)
    clipped = fit(clip=0.01)
    assert max(float(p.detach().abs().max()) for p in clipped.parameters()) <= 0.01 + 1e-9


def test_experiment_config_sets_sizes_and_overrides_win():
    cfg = experiment_config(
        "toy-wgan-gp",
        "exp-test",
        ["train.n_critic=2", "critic.hidden=8"],
        dataset="swissroll",
        batch_size=16,
        hidden=(32, 64),
        depth=2,
        steps=7,
        seed=3,
        device="cpu",
    )
    assert cfg.name == "exp-test"
    assert (cfg.generator.hidden, cfg.critic.hidden, cfg.critic.depth) == (32, 8, 2)
    assert (cfg.train.steps, cfg.train.seed, cfg.train.n_critic) == (7, 3, 2)
    assert not cfg.train.progress and cfg.train.eval_every == 0


def test_run_config_records_divergence(tmp_path):
    common = dict(dataset="8gaussians", batch_size=16, hidden=8, depth=1, steps=20, seed=0)
    cfg = experiment_config(
        "toy-gan",
        "ok",
        ["train.log_every=5", "train.eval_samples=100"],
        device="cpu",
        **common,
    )
    seen = []
    run = run_config(cfg, tmp_path / "ok", track=True, hook=lambda t, v: seen.append(t.step))
    assert run.result is not None and run.diverged_at is None and run.error is None
    assert seen == [5, 10, 15, 20]
    assert (tmp_path / "ok" / "config.yaml").is_file()
    assert (tmp_path / "ok" / "metrics.jsonl").is_file()
    bad = experiment_config(
        "toy-gan",
        "bad",
        ["train.log_every=5", "g_optim.lr=1e30", "d_optim.lr=1e30"],
        device="cpu",
        **common,
    )
    run = run_config(bad, tmp_path / "bad")
    assert run.result is None and run.diverged_at is not None and "diverged" in run.error


def test_check_settings():
    check_settings([(True, "fine")])
    with pytest.raises(ConfigError, match="^x: second$"):
        check_settings([(True, "first"), (False, "second"), (False, "third")], "x: ")
