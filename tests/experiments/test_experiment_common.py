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
        None,
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
        None,
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
        None,
        device="cpu",
        **common,
    )
    run = run_config(bad, tmp_path / "bad")
    assert run.result is None and run.diverged_at is not None and "diverged" in run.error


def test_check_settings():
    check_settings([(True, "fine")])
    with pytest.raises(ConfigError, match="^x: second$"):
        check_settings([(True, "first"), (False, "second"), (False, "third")], "x: ")


def test_experiment_config_takes_what_is_not_given_from_the_settings():
    from wgan.experiments.mode_collapse import ModeCollapseSettings

    s = ModeCollapseSettings(steps=9, hidden=24, depth=2, batch_size=48, seed=5)
    cfg = experiment_config("toy-gan", "n", [], s, dataset="swissroll", seed=11)
    assert (cfg.data.name, cfg.data.batch_size, cfg.train.steps) == ("swissroll", 48, 9)
    assert (cfg.generator.hidden, cfg.critic.depth, cfg.train.seed) == (24, 2, 11)


def test_mean_std_and_over_seeds():
    from wgan.experiments.common import mean_std, over_seeds

    assert mean_std([1.0, None, 3.0, float("nan")]) == (2.0, 2.0**0.5, 2)
    assert mean_std([4.0]) == (4.0, 0.0, 1)
    m, s, n = mean_std([None])
    assert n == 0 and m != m and s != s  # NaN
    records = [
        {"d": "a", "m": "x", "metrics": {"v": 1}},
        {"d": "b", "m": "x", "metrics": None},
        {"d": "a", "m": "x", "metrics": {"v": 3}},
        {"d": "a", "m": "y", "metrics": {"v": 5}},
    ]
    groups = over_seeds(records, ("d", "m"))
    keys = [{"d": "a", "m": "x"}, {"d": "b", "m": "x"}, {"d": "a", "m": "y"}]
    assert [g[0] for g in groups] == keys
    assert [len(g[1]) for g in groups] == [2, 1, 1]
    assert (
        groups[0][2] == [{"v": 1}, {"v": 3}] and groups[1][2] == [] and groups[2][2] == [{"v": 5}]
    )
