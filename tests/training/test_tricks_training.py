"""The improved techniques inside the one training step: single runs, resume, sweeps, compile."""

import copy

import pytest
import torch
from helpers import tiny

from wgan.config import resolve
from wgan.errors import ConfigError
from wgan.gan.draws import GeneratorDraws
from wgan.objectives import make_objective
from wgan.scale.sweep import SweepTrainer, sweep_configs
from wgan.store.checkpoints import load_checkpoint
from wgan.training.run import load_run
from wgan.training.train import resume, train
from wgan.training.trainer import Trainer

TINY = tiny("train.device=cpu", hidden=32, batch=64, eval_samples=200)

ALL_TRICKS = [
    "tricks.feature_matching=0.5",
    "tricks.minibatch=stddev",
    "tricks.historical_averaging=0.1",
    "tricks.label_smoothing=0.1",
    "generator.norm=virtual",
    "tricks.virtual_batch_size=16",
    "tricks.instance_noise=0.1",
]


def test_feature_matching_term_equals_a_hand_computation(tmp_path):
    """G's loss = objective's loss + w ||E d(x) - E d(G(z))||^2, with the step's own draws."""
    cfg = resolve("toy-gan-ns", [*TINY, "tricks.feature_matching=2.0", "train.n_critic=1"])
    trainer = Trainer(cfg, tmp_path / "run")
    draws = trainer.gan_step.draw(trainer.batches, trainer.rng, trainer.batch_size).as_dict()
    with torch.no_grad():
        fake = trainer.gen(draws["g_noise"])
        inner = trainer.critic.inner  # the FeatureCritic's critic
        gap = inner.features(draws["g_real"]).mean(0) - inner.features(fake).mean(0)
        fm = gap.square().sum()
        base = make_objective("nonsaturating").generator_loss(inner(fake))["loss"]
    x = GeneratorDraws(draws["g_noise"], real=draws["g_real"])
    terms = trainer.gan_step.generator_update(trainer.train_state, x, trainer.hyper())
    assert terms["feature_matching"].item() == pytest.approx(fm.item(), rel=1e-5)
    assert terms["loss"].item() == pytest.approx((base + 2.0 * fm).item(), rel=1e-5)


def test_label_smoothing_optimum_is_one_minus_alpha_p_over_p_plus_q():
    """A tabular discriminator (one logit per point) on p = (.1,.2,.3,.4), q = (.4,.3,.2,.1):
    the smoothed minimax critic loss is minimised at D* = (1 - alpha) p / (p + q) (Salimans et
    al. 2016); checked to 1e-4 after L-BFGS, and the unsmoothed optimum p / (p + q) differs."""
    alpha = 0.2
    p = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    q = torch.tensor([0.4, 0.3, 0.2, 0.1], dtype=torch.float64)
    # expectations as means over samples: point i repeated in proportion to p_i (q_i)
    real_idx = torch.repeat_interleave(torch.arange(4), (p * 10).round().long())
    fake_idx = torch.repeat_interleave(torch.arange(4), (q * 10).round().long())
    objective = make_objective("minimax", label_smoothing=alpha)
    logits = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([logits], lr=1.0, max_iter=200, tolerance_grad=1e-12)

    def closure():
        opt.zero_grad()
        loss = objective.critic_loss(logits[real_idx], logits[fake_idx])["loss"]
        loss.backward()
        return loss

    opt.step(closure)
    d = torch.sigmoid(logits.detach())
    torch.testing.assert_close(d, (1 - alpha) * p / (p + q), rtol=0, atol=1e-4)
    assert (d - p / (p + q)).abs().max() > 0.05
    with pytest.raises(ConfigError, match="label smoothing needs an objective"):
        make_objective("wasserstein", label_smoothing=0.1)


def test_historical_average_is_the_mean_of_past_parameters_across_a_resume(tmp_path):
    cfg = resolve(
        "toy-gan",
        [*TINY, "tricks.historical_averaging=0.1", "train.n_critic=1", "train.steps=3"],
    )
    result = train(cfg, tmp_path / "run", tensorboard=False)
    seen = []  # the critic's parameters at each critic step (taken before its update)
    trainer = Trainer(cfg, tmp_path / "replay")  # the same run, replayed step by step
    for _ in range(3):
        seen.append([p.detach().clone() for p in trainer.critic.parameters()])
        trainer.train_step()
    for i, mean in enumerate(trainer.train_state["hist_d"]):
        torch.testing.assert_close(mean, torch.stack([s[i] for s in seen]).mean(0))
    assert float(trainer.train_state["hist_d_count"]) == 3
    # resumed for 2 more steps: the mean of all 5 (an uninterrupted 5-step run agrees)
    resume(result.run_dir, {"train.steps": 5}, tensorboard=False)
    whole = Trainer(copy.deepcopy(cfg), tmp_path / "whole")
    whole.cfg.train.steps = 5
    for _ in range(5):
        whole.train_step()
    saved = load_checkpoint(result.run_dir / "checkpoint.pt")["historical"]
    for got, want in zip(saved["hist_d"], whole.train_state["hist_d"], strict=True):
        torch.testing.assert_close(got, want)
    assert float(saved["hist_d_count"]) == 5


def test_virtual_batch_norm_generator_samples_alone_and_survives_a_resume(tmp_path):
    cfg = resolve(
        "toy-gan",
        [*TINY, "generator.norm=virtual", "tricks.virtual_batch_size=32"]
        + ["train.steps=2"],  # fmt: skip
    )
    result = train(cfg, tmp_path / "run", tensorboard=False)
    run = load_run(result.run_dir)
    gen = run.gen.net  # VirtualBatchNet
    z = torch.randn(64, cfg.generator.latent_dim)
    with torch.no_grad():
        batch = gen(z)
        alone = torch.cat([gen(z[i : i + 1]) for i in range(64)])
    torch.testing.assert_close(alone, batch, rtol=1e-5, atol=1e-6)
    fresh = Trainer(cfg, tmp_path / "fresh")  # same seed: the same reference batch
    torch.testing.assert_close(run.gen.net.z_ref, fresh.gen.net.z_ref)
    resumed = resume(result.run_dir, {"train.steps": 3}, tensorboard=False)
    torch.testing.assert_close(load_run(resumed.run_dir).gen.net.z_ref, run.gen.net.z_ref)
    with pytest.raises(ConfigError, match="virtual batch norm is for the generator"):
        resolve("toy-gan", ["critic.norm=virtual"])


def test_instance_noise_reaches_real_and_fake_inputs(tmp_path):
    cfg = resolve("toy-gan", [*TINY, "tricks.instance_noise=0.3", "train.steps=10"])
    trainer = Trainer(cfg, tmp_path / "run")
    x = trainer.gan_step.draw_critic(trainer.batches, trainer.rng, trainer.batch_size)
    seen = []
    handle = trainer.critic.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    hyper = trainer.hyper()
    assert hyper["instance_noise"] == pytest.approx(0.3)
    trainer.gan_step.critic_update(trainer.train_state, x, hyper)
    handle.remove()
    with torch.no_grad():
        fake = trainer.gen(x.noise)
    real_in, fake_in = seen[0], seen[1]
    torch.testing.assert_close(real_in, x.real + 0.3 * x.inst_real)
    torch.testing.assert_close(fake_in, fake + 0.3 * x.inst_fake, rtol=1e-5, atol=1e-6)
    trainer.step = 10
    assert trainer.hyper()["instance_noise"] == 0.0  # annealed to 0 by train.steps


def test_minibatch_features_refuse_a_gradient_penalty():
    cfg = resolve("toy-wgan-gp", [*TINY, "tricks.minibatch=discrimination"])
    with pytest.raises(ConfigError, match="per-sample penalty"):
        Trainer(cfg, "/tmp/never")


def test_a_sweep_with_every_technique_equals_separate_runs(tmp_path):
    base = resolve("toy-gan", [*TINY, *ALL_TRICKS, "train.n_critic=2"])
    cfgs = sweep_configs(base, [{"train.seed": 0}, {"train.seed": 1, "d_optim.lr": 3e-4}])
    sweep = SweepTrainer(cfgs, [tmp_path / "a", tmp_path / "b"])
    for _ in range(3):
        sweep.train_step()
    for k, cfg in enumerate(cfgs):
        single = Trainer(copy.deepcopy(cfg), tmp_path / f"s{k}")
        for _ in range(3):
            single.train_step()
        shell = sweep.sync(k)
        for a, b in zip(shell.critic.parameters(), single.critic.parameters(), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        for a, b in zip(shell.gen.parameters(), single.gen.parameters(), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_every_technique_compiled_equals_eager(tmp_path):
    """One compile (fullgraph) of an iteration with all the techniques at once."""
    cfg = resolve("toy-gan", [*TINY, *ALL_TRICKS, "train.n_critic=1"])
    eager = Trainer(copy.deepcopy(cfg), tmp_path / "eager")
    cfg.train.compile = True
    compiled = Trainer(cfg, tmp_path / "compiled")
    for _ in range(5):
        a, b = eager.train_step(), compiled.train_step()
        for key in ("loss", "feature_matching", "historical"):
            assert float(b["g"][key]) == pytest.approx(float(a["g"][key]), rel=1e-4, abs=1e-6)
    for a, b in zip(eager.gen.parameters(), compiled.gen.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
