"""Training: every GAN variant trains on CPU, estimates have the right sign and size, resume."""

import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from wgan.errors import TrainingDiverged
from wgan.store.checkpoints import load_checkpoint
from wgan.store.tracking import read_jsonl
from wgan.training.run import load_run
from wgan.training.train import resume, train
from wgan.training.trainer import Trainer

LOG2 = math.log(2.0)


def wasserstein_check(lo_ratio, hi_ratio):
    """The critic gap, as a fraction of the exact W1 between the final samples and the data."""
    return lambda est, w1: lo_ratio * w1 <= est <= hi_ratio * w1


def within(lo, hi):
    return lambda est, w1: lo <= est <= hi


PAPER_LR = ["train.lr_decay=none", "g_optim.lr=1e-4", "d_optim.lr=1e-4"]

# (preset, extra overrides, check(estimate over the last 50 steps, exact W1 at the end)).
VARIANTS = [
    # A clipped critic is K-Lipschitz with a small K: a positive gap far below W1.
    ("toy-wgan-clip", [], wasserstein_check(1e-6, 0.1)),
    # With lambda = 10 the critic is about 1-Lipschitz: its gap estimates W1 itself.
    # (The WGAN-GP paper's constant lr 1e-4 here, not the main job's fast decaying schedule.)
    ("toy-wgan-gp", ["constraint.penalty_weight=10", *PAPER_LR], wasserstein_check(0.7, 1.3)),
    (
        "toy-wgan-gp-onesided",
        ["constraint.penalty_weight=10", *PAPER_LR],
        wasserstein_check(0.7, 1.3),
    ),
    # A spectrally normalised critic is at most 1-Lipschitz: a lower bound on W1.
    ("toy-wgan-sn", PAPER_LR, wasserstein_check(0.05, 1.1)),
    ("toy-gan", [], within(0.0, LOG2)),  # JS lies in [0, log 2]
    ("toy-gan-ns", [], within(0.0, LOG2)),
    ("toy-lsgan", [], within(0.0, 2.0)),  # triangular discrimination lies in [0, 2]
    ("toy-hinge-sn", [], within(0.0, 1.0)),  # total variation lies in [0, 1]
    ("toy-fgan-js", [], within(0.0, 2 * LOG2)),  # the table's f gives 2 JSD <= 2 log 2
    ("toy-fgan-gan", [], within(-math.log(4), 0.0)),  # 2 JSD - log 4 lies in [-log 4, 0]
    ("toy-fgan-hellinger", [], within(0.0, 2.0)),  # squared Hellinger lies in [0, 2]
    ("toy-fgan-tv", [], within(0.0, 1.0)),  # total variation lies in [0, 1]
]

# The range checks above hold for an untrained critic too (with both learning rates at 1e-12,
# 7 of the 8 bounded divergences stayed in range). So each bounded estimate must also rise
# above the untrained critic's: training the critic tightens its lower bound on the divergence,
# before the generator closes the gap. RISE is the least rise of the highest logged estimate
# over the same run with both learning rates at 1e-12 (same seed, same data), about half the
# smallest rise measured over seeds 0, 1, 2 (shown in brackets; seed 0, the test's, in front):
RISE = {
    "toy-gan": 0.02,  # 0.12 [0.046 .. 0.12]
    "toy-gan-ns": 0.02,  # 0.12 [0.046 .. 0.12]
    "toy-lsgan": 0.7,  # 2.4 [1.5 .. 3.1]
    "toy-hinge-sn": 0.02,  # 0.059 [0.046 .. 0.078]
    "toy-fgan-js": 0.04,  # 0.24 [0.092 .. 0.24]
    "toy-fgan-gan": 0.04,  # 0.24 [0.092 .. 0.24]
    "toy-fgan-hellinger": 0.1,  # 0.42 [0.20 .. 0.42]
    "toy-fgan-tv": 0.05,  # 0.24 [0.11 .. 0.26]
}
UNTRAINED = ["g_optim.lr=1e-12", "d_optim.lr=1e-12"]


def train_records(run_dir, kind="train"):
    return [r for r in read_jsonl(run_dir / "metrics.jsonl") if r["kind"] == kind]


@pytest.mark.parametrize("preset,extra,check", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_variant_trains_200_steps_with_a_sensible_estimate(fast_config, preset, extra, check):
    cfg = fast_config(preset, "train.steps=200", "train.log_every=50", *extra)
    result = train(cfg, tensorboard=False)
    records = train_records(result.run_dir)
    assert [r["step"] for r in records] == [50, 100, 150, 200]
    for r in records:
        assert all(math.isfinite(v) for v in r.values() if isinstance(v, float)), r
    estimate = records[-1]["d/estimate"]
    w1 = train_records(result.run_dir, "eval")[-1]["w1"]
    assert check(estimate, w1), f"{preset}: estimate {estimate:.4g}, exact W1 {w1:.4g}"
    if preset in RISE:
        still = fast_config(preset, "train.steps=50", "train.log_every=50", *extra, *UNTRAINED)
        untrained = train_records(train(still, tensorboard=False).run_dir)[-1]["d/estimate"]
        peak = max(r["d/estimate"] for r in records)
        assert peak >= untrained + RISE[preset], (
            f"{preset}: highest estimate {peak:.4g}, untrained critic {untrained:.4g}"
        )


@pytest.mark.parametrize(
    "divergence", ["kl", "reverse_kl", "pearson", "neyman", "jeffrey", "weighted_jensen_shannon"]
)
def test_unbounded_f_gans_train_without_nan(fast_config, divergence):
    # These conjugates grow exponentially or quadratically; the runs must stay finite. Their
    # critics are slower to become tight, so the bound is only required to be finite here.
    cfg = fast_config(
        "toy-gan",
        "objective.name=fgan",
        f"objective.divergence={divergence}",
        "train.steps=200",
        "train.log_every=50",
    )
    records = train_records(train(cfg, tensorboard=False).run_dir)
    assert len(records) == 4
    assert all(math.isfinite(v) for r in records for v in r.values() if isinstance(v, float))


def test_the_gap_shrinks_as_wgan_gp_trains(fast_config):
    cfg = fast_config(
        None, "train.steps=300", "train.log_every=25", "g_optim.lr=5e-4", "d_optim.lr=5e-4"
    )
    result = train(cfg, tensorboard=False)
    est = [
        r["d/estimate"]
        for r in read_jsonl(result.run_dir / "metrics.jsonl")
        if r["kind"] == "train"
    ]
    assert max(est[:4]) > 2 * est[-1] > 0


def test_fixed_generator_trains_only_the_critic(fast_config):
    cfg = fast_config("toy-critic-gp", "train.steps=20", "train.log_every=10")
    trainer = Trainer(cfg, Path(cfg.out_dir) / "fixed")
    # No generator optimiser, no generator step: an iteration is n_critic critic updates only.
    assert trainer.opt_g is None and trainer.gan_step.g_optim is None
    assert "opt_g" not in trainer.train_state
    assert "g" not in trainer.train_step() and not any(
        k.startswith("g/") for k in trainer.stats.sums
    )
    trainer.step = 0  # (train_step above was an extra iteration; fit runs all 20 again)
    gen_state = {k: v.clone() for k, v in trainer.gen.state_dict().items()}
    critic_before = [p.detach().clone() for p in trainer.critic.parameters()]
    before = trainer.samples(100)
    trainer.fit()
    assert trainer.step == 20
    assert torch.equal(before, trainer.samples(100))  # the "generator" did not change
    assert all(torch.equal(v, trainer.gen.state_dict()[k]) for k, v in gen_state.items())
    assert any(
        not torch.equal(a, b)
        for a, b in zip(critic_before, trainer.critic.parameters(), strict=True)
    )
    # samples are real data plus N(0, 0.1^2) noise: about 0.1 from the nearest mode
    dist = torch.cdist(trainer.samples(2000), trainer.dataset.modes).min(dim=1).values
    assert 0.08 < dist.median().item() < 0.16


def test_run_directory_contents(fast_config):
    cfg = fast_config(
        None,
        "train.steps=20",
        "train.log_every=10",
        "train.eval_every=10",
        "train.figure_every=10",
        "train.checkpoint_every=10",
        "train.eval_samples=200",
    )
    result = train(cfg)
    d = result.run_dir
    assert d.name == "00000-toy-wgan-gp"
    assert (d / "config.yaml").is_file() and (d / "checkpoint.pt").is_file()
    assert (d / "figures" / "step_000010.png").is_file() and (d / "figures" / "latest.png").exists()
    assert any((d / "tb").iterdir())
    kinds = [r["kind"] for r in read_jsonl(d / "metrics.jsonl")]
    assert kinds.count("train") == 2 and kinds.count("eval") == 2
    train_rec = train_records(d)[-1]
    for key in ("d/loss", "d/estimate", "d/penalty", "d/grad_norm", "g/loss"):
        assert key in train_rec
    # The last line is the step-20 evaluation: the metrics of the saved generator, which the run
    # handle recomputes (fixed seeds) from the checkpoint.
    last = json.loads((d / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["kind"] == "eval" and last["step"] == 20 and last["n_samples"] == 200
    again = load_run(d).evaluate()
    assert isinstance(last["modes_captured"], int) and 0 <= last["modes_captured"] <= 8
    assert last["modes_captured"] == again["modes_captured"]
    assert last["high_quality_fraction"] == pytest.approx(again["high_quality_fraction"])
    assert last["w1"] == pytest.approx(again["w1"], rel=1e-6) and last["w1"] > 0
    assert train(cfg, tensorboard=False).run_dir.name == "00001-toy-wgan-gp"


def _params(trainer):
    return [
        p.detach().clone() for m in (trainer.gen, trainer.critic) for p in m.state_dict().values()
    ]


class Crash(Exception):
    pass


@pytest.mark.parametrize("preset", ["toy-wgan-gp", "toy-wgan-clip"])
def test_resume_reproduces_uninterrupted_run_exactly(fast_config, monkeypatch, preset):
    # lr decay and a finite training set make the schedule and the data part of the state.
    base = [
        "train.steps=20",
        "train.log_every=5",
        "train.checkpoint_every=10",
        "data.n_train=300",
        "train.lr_decay=linear",
    ]
    straight = train(fast_config(preset, *base), tensorboard=False)

    # The same run, killed at step 13 (after the checkpoint at step 10), then resumed.
    original = Trainer.train_step

    def crashing_step(self):
        if self.step == 13:
            raise Crash
        return original(self)

    monkeypatch.setattr(Trainer, "train_step", crashing_step)
    with pytest.raises(Crash):
        train(fast_config(preset, *base), tensorboard=False)
    monkeypatch.setattr(Trainer, "train_step", original)
    crashed = next(p for p in Path(straight.run_dir).parent.iterdir() if p != straight.run_dir)
    assert load_run(crashed).step == 10
    assert resume(crashed, tensorboard=False).step == 20

    a, b = load_run(straight.run_dir), load_run(crashed)
    for x, y in zip(_params(a), _params(b), strict=True):
        assert torch.equal(x, y)
    # The optimiser states (moments and step counts) and the RNG streams are the same too.
    sa, sb = load_checkpoint(straight.run_dir), load_checkpoint(crashed)
    assert sa["format"] == sb["format"] == "wgan-checkpoint-2"
    for opt in ("opt_d", "opt_g"):
        assert sa[opt].keys() == sb[opt].keys() and "step" in sa[opt]
        assert (
            sa[opt]["step"].item()
            == sb[opt]["step"].item()
            == 20 * (a.cfg.train.n_critic if opt == "opt_d" else 1)
        )
        for key, value in sa[opt].items():
            pairs = (
                zip(value, sb[opt][key], strict=True)
                if isinstance(value, list)
                else [(value, sb[opt][key])]
            )
            assert all(torch.equal(x, y) for x, y in pairs), (opt, key)
    assert torch.equal(sa["rng"], sb["rng"])
    # the metrics file holds each step once, as if never interrupted
    steps = [r["step"] for r in read_jsonl(crashed / "metrics.jsonl") if r["kind"] == "train"]
    assert steps == [5, 10, 15, 20]


def test_non_finite_loss_stops_with_clear_error_and_keeps_checkpoint(fast_config):
    cfg = fast_config(None, "train.steps=40", "train.log_every=5", "train.checkpoint_every=10")
    tmp = Path(cfg.out_dir) / "nan"
    trainer = Trainer(cfg, tmp)
    cfg.train.steps = 10
    trainer.fit()
    saved = (tmp / "checkpoint.pt").read_bytes()
    cfg.train.steps = 40
    with torch.no_grad():
        for p in trainer.critic.parameters():
            p.fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match="non-finite.*checkpoint.*kept"):
        trainer.fit()
    assert (tmp / "checkpoint.pt").read_bytes() == saved


def test_copying_a_run_and_resuming_it(fast_config, tmp_path):
    first = train(fast_config(None, "train.steps=5"), tensorboard=False)
    copy = tmp_path / "copy"
    shutil.copytree(first.run_dir, copy)
    assert resume(copy, {"train.steps": 8}, tensorboard=False).step == 8


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without a GPU")
def test_cuda_request_without_gpu_is_a_clear_error(fast_config, monkeypatch):
    from wgan.errors import DeviceUnavailable  # a run-time failure (exit 1), not bad input

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = fast_config(None, "train.steps=1", "train.device=cuda")
    with pytest.raises(DeviceUnavailable, match="no CUDA device"):
        train(cfg, tensorboard=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_training_matches_shapes_and_stays_finite(fast_config):
    cfg = fast_config(None, "train.steps=20", "train.log_every=10", "train.device=cuda")
    result = train(cfg, tensorboard=False)
    assert all(
        math.isfinite(v)
        for r in train_records(result.run_dir)
        for v in r.values()
        if isinstance(v, float)
    )
