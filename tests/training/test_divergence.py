"""The last good checkpoint after a divergence is good (issue 10, class 2).

Before every save (and every evaluation or figure) the whole state is checked for nan and inf:
weights, EMA, optimiser states, and a few samples of the generator with the critic's scores on
them (weights can be finite yet so large that the networks overflow). A save never writes a
non-finite state; training stops with "training diverged ... the last checkpoint (step N) is
kept", and that checkpoint loads, samples and evaluates. ``Run.samples`` refuses non-finite
samples, so ``wgan sample`` exits 2 instead of writing NaNs.
"""

import json
import math

import numpy as np
import pytest
import torch

from wgan.cli.app import main
from wgan.errors import TrainingDiverged, WganError
from wgan.store.checkpoints import load_checkpoint, save_checkpoint
from wgan.training.run import NonFiniteSamples, load_run
from wgan.training.train import resume, train
from wgan.training.trainer import Trainer

STEPS = 4


@pytest.fixture
def run_dir(fast_config):
    cfg = fast_config(
        None, "generator.hidden=16", "critic.hidden=16", f"train.steps={STEPS}", "train.log_every=2"
    )
    return train(cfg, tensorboard=False).run_dir


def all_finite(state) -> bool:
    """Every floating-point tensor of a checkpoint dict is finite."""
    if isinstance(state, torch.Tensor):
        return not state.is_floating_point() or bool(torch.isfinite(state).all())
    if isinstance(state, dict):
        return all(all_finite(v) for v in state.values())
    if isinstance(state, (list, tuple)):
        return all(all_finite(v) for v in state)
    return True


@pytest.mark.parametrize("lr", [1e30, 1e20])
def test_a_huge_learning_rate_on_resume_keeps_the_last_good_checkpoint(run_dir, capsys, lr):
    """Before: the step-5 checkpoint was written with finite but overflowing generator weights
    (its samples all inf/NaN) and `wgan sample` wrote them with exit 0."""
    before = load_checkpoint(run_dir)
    config_yaml = (run_dir / "config.yaml").read_bytes()
    overrides = {"train.steps": 9, "g_optim.lr": lr, "train.checkpoint_every": 1}
    with pytest.raises(TrainingDiverged) as err:
        resume(run_dir, overrides, tensorboard=False)
    message = str(err.value)
    assert message.startswith("training diverged: non-finite ")
    assert f"the last checkpoint (step {STEPS}, {run_dir / 'checkpoint.pt'}) is kept" in message
    kept = load_checkpoint(run_dir)
    assert kept["step"] == STEPS and all_finite(kept)
    assert all(torch.equal(v, before["generator"][k]) for k, v in kept["generator"].items())
    assert (run_dir / "config.yaml").read_bytes() == config_yaml  # still the checkpoint's
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["kind"] == "error" and records[-1]["event"] == "diverged"
    # The kept run samples, evaluates and resumes.
    out = run_dir.parent / "s.npy"
    assert main(["sample", str(run_dir), "--num", "50", "--out", str(out)]) == 0
    assert np.isfinite(np.load(out)).all()
    capsys.readouterr()
    assert main(["eval", str(run_dir), "--num", "200", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["step"] == STEPS
    assert resume(run_dir, {"train.steps": 6}, tensorboard=False).step == 6


def test_an_infinite_learning_rate_never_reaches_a_checkpoint(fast_config, tmp_path):
    """lr=inf is refused by validation; set behind its back, the state check still stops it
    (before: the NaN weights of step 1 were saved, the losses logged then being finite)."""
    cfg = fast_config(None, "train.steps=5", "train.log_every=1", "train.checkpoint_every=1")
    with pytest.raises(WganError, match="g_optim.lr must be a finite number"):
        fast_config(None, "g_optim.lr=inf")
    trainer = Trainer(cfg, tmp_path / "inf")
    cfg.g_optim.lr = math.inf
    with pytest.raises(TrainingDiverged, match="training diverged: non-finite .*generator"):
        trainer.fit()
    ckpt = tmp_path / "inf" / "checkpoint.pt"
    assert not ckpt.exists() or all_finite(load_checkpoint(ckpt))


def poison(trainer, part):
    nan = float("nan")
    with torch.no_grad():
        if part == "generator weights":
            next(trainer.gen.parameters()).view(-1)[0] = nan
        elif part == "critic weights":
            next(trainer.critic.parameters()).view(-1)[-1] = nan
        elif part == "critic optimiser state":
            trainer.opt_d["exp_avg_sq"][1].view(-1)[0] = nan
        elif part == "generator optimiser state":
            trainer.opt_g["exp_avg"][0].view(-1)[0] = float("inf")
        elif part == "generator EMA weights":
            next(trainer.ema.module.parameters()).view(-1)[0] = nan


@pytest.mark.parametrize(
    "part",
    [
        "generator weights",
        "critic weights",
        "critic optimiser state",
        "generator optimiser state",
        "generator EMA weights",
    ],
)
def test_a_save_never_writes_a_non_finite_state(fast_config, tmp_path, part):
    """A hook runs after the (finite) statistics are logged and before the save; whatever it
    spoils, the save refuses, names the part, and keeps the previous checkpoint. Before: the
    state was saved as it was, as only the logged losses were checked."""
    cfg = fast_config(
        None, "train.steps=6", "train.log_every=2", "train.checkpoint_every=2", "train.ema=0.9"
    )
    trainer = Trainer(cfg, tmp_path / "run")

    def hook(t, values):
        if t.step == 4:
            poison(t, part)

    with pytest.raises(TrainingDiverged) as err:
        trainer.fit(hook=hook)
    assert part in str(err.value) and "by step 4" in str(err.value)
    assert "the last checkpoint (step 2," in str(err.value)
    kept = load_checkpoint(tmp_path / "run")
    assert kept["step"] == 2 and all_finite(kept)
    # Trainer.save itself refuses too.
    with pytest.raises(TrainingDiverged, match=part):
        trainer.save()
    assert load_checkpoint(tmp_path / "run")["step"] == 2


def test_divergence_between_log_points_says_training_diverged(fast_config, tmp_path, monkeypatch):
    """Before: an evaluation due between log points failed with "samples contains non-finite
    values" (and no record of a divergence)."""
    cfg = fast_config(None, "train.steps=10", "train.log_every=100", "train.eval_every=3")
    original = Trainer.train_step

    def step(self):
        out = original(self)
        if self.step == 2:
            poison(self, "generator weights")
        return out

    monkeypatch.setattr(Trainer, "train_step", step)
    with pytest.raises(TrainingDiverged, match="^training diverged: non-finite .* by step 3; no "):
        Trainer(cfg, tmp_path / "run").fit()


def test_the_check_leaves_the_training_state_alone(fast_config, tmp_path):
    """The check draws from its own generator in eval mode: the run's RNG, the spectral-norm
    power-iteration vectors and batch-norm statistics are unchanged (resumes stay exact)."""
    cfg = fast_config("toy-wgan-sn", "train.steps=2", "generator.norm=batch")
    trainer = Trainer(cfg, tmp_path / "run")
    trainer.advance(2)
    rng = trainer.rng.get_state()
    torch_rng = torch.get_rng_state()
    buffers = {
        n: b.clone()
        for m in (trainer.gen, trainer.critic)
        for n, b in m.named_buffers()
        if b.is_floating_point()
    }
    assert trainer.non_finite_parts() == []
    assert torch.equal(trainer.rng.get_state(), rng)
    assert torch.equal(torch.get_rng_state(), torch_rng)
    after = {
        n: b for m in (trainer.gen, trainer.critic) for n, b in m.named_buffers() if n in buffers
    }
    assert any("_u" in n for n in buffers) and any("running_mean" in n for n in buffers)
    assert all(torch.equal(buffers[n], after[n]) for n in buffers)
    assert trainer.gen.training and trainer.critic.training


def test_non_finite_samples_are_refused(run_dir, tmp_path, capsys):
    """Before: `wgan sample` wrote all-NaN samples and exited 0."""
    state = load_checkpoint(run_dir)
    state["generator"] = {
        k: torch.full_like(v, float("nan")) for k, v in state["generator"].items()
    }
    save_checkpoint(run_dir / "checkpoint.pt", state)
    with pytest.raises(NonFiniteSamples, match=f"at step {STEPS} produces non-finite samples"):
        load_run(run_dir).samples(10)
    out = tmp_path / "s.npy"
    assert main(["sample", str(run_dir), "--num", "10", "--out", str(out)]) == 1  # run-time
    err = capsys.readouterr().err
    assert "non-finite samples" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_the_cli_reports_divergence_in_one_line_with_exit_1(capsys, tmp_path):
    argv = [
        "train",
        "generator.hidden=16",
        "critic.hidden=16",
        "train.steps=6",
        "train.progress=false",
        "train.eval_every=0",
        "train.figure_every=0",
        "train.checkpoint_every=1",
        "g_optim.lr=1e30",
        "--out-dir",
        str(tmp_path),
    ]
    assert main(argv) == 1  # a run-time failure; 2 is for bad input
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wgan: error: training diverged: non-finite")
    assert "Traceback" not in err
