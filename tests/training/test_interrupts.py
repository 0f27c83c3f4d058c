"""An interrupt keeps the work and tells the truth (issue 24, rows 9 and 12).

* SIGTERM (``docker stop``, systemd, Slurm) and SIGINT (Ctrl-C) stop ``wgan train`` at a step
  boundary: a checkpoint of that step, ``provenance.json`` says ``interrupted``, the step and
  the exact resume command are printed, the exit status is 143 (130), and the resume continues
  bit for bit. Real signals go to a real ``wgan train`` process.
* ``train.checkpoint_minutes``: a checkpoint every few minutes too, which changes nothing in
  the training.
* A disk that fills up mid-training is a run-time failure (exit 1, not 2: "nothing was run"),
  and a run left without any checkpoint is named as such by ``wgan eval`` and trained again
  from step 0 by ``wgan train --resume``.
"""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import FOREVER, assert_same_tensors, checkpoint_tensors, toy_long

from wgan.cli.app import main
from wgan.config import TrainConfig, resolve
from wgan.errors import ConfigError, Interrupted
from wgan.store import checkpoints
from wgan.store.checkpoints import load_checkpoint
from wgan.training import cadence as cadence_module
from wgan.training.train import resume, train
from wgan.training.trainer import Trainer

toy = toy_long


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    """Every tensor the run's checkpoint holds that training changes."""
    return checkpoint_tensors(load_checkpoint(run_dir))


assert_same = assert_same_tensors


def statuses(run_dir: Path) -> list[str]:
    return [entry["status"] for entry in json.loads((run_dir / "provenance.json").read_text())]


def _default_sigint() -> None:
    """In the child: Ctrl-C handled as a terminal delivers it, even when this suite itself was
    started with SIGINT ignored (a non-interactive shell's ``&``, nohup), a disposition the child
    would inherit and, as documented in wgan.training.interrupt, keep."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_training(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen, Path]:
    """``wgan train`` of the toy config in a subprocess, once it has logged (is in its loop)."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    argv = [sys.executable, "-m", "wgan", "train", *toy(FOREVER, *extra)]
    argv += ["--out-dir", str(tmp_path / "runs")]
    proc = subprocess.Popen(
        argv,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    )
    run = tmp_path / "runs" / "00000-toy-wgan-gp"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if (run / "metrics.jsonl").is_file() and (run / "metrics.jsonl").stat().st_size:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    return proc, run


def stop(proc: subprocess.Popen, signum: int) -> tuple[int, str]:
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def reached(err: str, run: Path) -> int:
    """The step the message says the run stopped at (and it names the resume command)."""
    match = re.search(r"at step (\d+); the checkpoint (\S+) holds step (\d+)", err)
    assert match, err
    assert match.group(1) == match.group(3) and Path(match.group(2)) == run / "checkpoint.pt"
    assert f"wgan: to continue: wgan train --resume {run}\n" in err, err
    assert "Traceback" not in err
    return int(match.group(1))


# ----------------------------------------------------------------------------------------------
# Real signals to a real `wgan train`
# ----------------------------------------------------------------------------------------------


def test_sigterm_stops_train_with_a_checkpoint_and_the_resume_is_bit_for_bit(tmp_path, capsys):
    proc, run = start_training(tmp_path)
    code, err = stop(proc, signal.SIGTERM)
    assert code == 143, err
    assert "interrupted by SIGTERM" in err
    step = reached(err, run)
    assert load_checkpoint(run)["step"] == step
    assert statuses(run) == ["interrupted"]
    assert json.loads((run / "provenance.json").read_text())[-1]["end_step"] == step

    # The printed command, with more steps, continues exactly where the signal stopped it.
    assert main(["train", "--resume", str(run), f"train.steps={step + 3}"]) == 0
    assert statuses(run) == ["interrupted", "completed"]
    cfg = resolve(None, toy(f"train.steps={step + 3}"))
    cfg.out_dir = str(tmp_path / "fresh")
    fresh = train(cfg, tensorboard=False)
    assert load_checkpoint(run)["step"] == step + 3
    assert_same(weights(run), weights(fresh.run_dir))
    capsys.readouterr()


def test_ctrl_c_before_the_first_checkpoint_writes_one(tmp_path, capsys):
    """The first scheduled checkpoint is at step 500: Ctrl-C long before it still leaves one,
    of the step reached, and ``--resume`` takes it (the issue: "has no checkpoint")."""
    proc, run = start_training(tmp_path, "train.checkpoint_every=500")
    code, err = stop(proc, signal.SIGINT)
    assert code == 130, err
    assert "interrupted by Ctrl-C (SIGINT)" in err
    step = reached(err, run)
    assert 0 < step < 500
    assert statuses(run) == ["interrupted"]
    assert main(["train", "--resume", str(run), f"train.steps={step + 2}"]) == 0
    assert load_checkpoint(run)["step"] == step + 2
    capsys.readouterr()


# ----------------------------------------------------------------------------------------------
# In process: a signal at a known step
# ----------------------------------------------------------------------------------------------


def signal_at(monkeypatch, at_step: int, signum: int = signal.SIGTERM) -> None:
    """Send ``signum`` to this process when the loop logs ``at_step`` (a real signal, which the
    loop's handler turns into a request to stop at its next step boundary)."""
    real_log = Trainer._log

    def log(self, tracker):
        values = real_log(self, tracker)
        if self.step == at_step:
            os.kill(os.getpid(), signum)
        return values

    monkeypatch.setattr(Trainer, "_log", log)


class SignalOutsideTheLoop(Exception):
    pass


def outside_the_loop(signum, frame):
    raise SignalOutsideTheLoop(signum)


def test_a_signal_stops_the_loop_at_the_next_step_boundary(tmp_path, monkeypatch):
    # The test's own handler: a signal that the loop does not take fails the test (without it,
    # SIGTERM would end pytest); the loop's handlers are there only while it trains.
    previous = signal.signal(signal.SIGTERM, outside_the_loop)
    try:
        cfg = resolve(None, toy("train.steps=30"))
        cfg.out_dir = str(tmp_path / "runs")
        signal_at(monkeypatch, 10)
        with pytest.raises(Interrupted) as caught:
            train(cfg, tensorboard=False)
        assert signal.getsignal(signal.SIGTERM) is outside_the_loop
    finally:
        signal.signal(signal.SIGTERM, previous)
    err = caught.value
    run = Path(err.run_dir)
    assert (err.signum, err.exit_code, err.step) == (signal.SIGTERM, 143, 10)
    assert err.kept == f"the checkpoint {run / 'checkpoint.pt'} holds step 10"
    assert err.resume == f"wgan train --resume {run}"
    assert load_checkpoint(run)["step"] == 10
    assert statuses(run) == ["interrupted"]
    monkeypatch.undo()
    result = resume(run, tensorboard=False)
    assert result.step == 30
    cfg.out_dir = str(tmp_path / "fresh")
    assert_same(weights(run), weights(train(cfg, tensorboard=False).run_dir))


# ----------------------------------------------------------------------------------------------
# A checkpoint every few minutes
# ----------------------------------------------------------------------------------------------


def test_checkpoint_minutes_is_on_by_default_and_checked():
    assert TrainConfig().checkpoint_minutes == 10.0
    for bad in ("-1", "nan", "1e9"):
        with pytest.raises(ConfigError, match="train.checkpoint_minutes"):
            resolve(None, [f"train.checkpoint_minutes={bad}"])


def test_checkpoint_minutes_saves_between_scheduled_checkpoints_and_changes_nothing(
    tmp_path, monkeypatch
):
    clock = iter(range(0, 10**6, 60))  # a clock on which a minute passes at every reading
    monkeypatch.setattr(cadence_module, "monotonic", lambda: float(next(clock)))
    saved = []
    real_save = checkpoints.save_checkpoint

    def save(path, state):
        saved.append(state["step"])
        real_save(path, state)

    monkeypatch.setattr(checkpoints, "save_checkpoint", save)
    cfg = resolve(None, toy("train.steps=12", "train.checkpoint_minutes=2"))
    cfg.out_dir = str(tmp_path / "timed")
    timed = train(cfg, tensorboard=False).run_dir
    # checkpoint_every=0: only the final checkpoint is scheduled; the others are the clock's.
    assert len(saved) > 2 and saved[-1] == 12 and saved == sorted(set(saved))
    monkeypatch.undo()
    cfg = resolve(None, toy("train.steps=12", "train.checkpoint_minutes=0"))
    cfg.out_dir = str(tmp_path / "plain")
    assert_same(weights(timed), weights(train(cfg, tensorboard=False).run_dir))


# ----------------------------------------------------------------------------------------------
# A full disk (row 12)
# ----------------------------------------------------------------------------------------------


def full_disk_after(monkeypatch, n: int) -> None:
    """``torch.save`` fails as a full disk does from its (n+1)-th call on."""
    real = torch.save
    calls = []

    def save(obj, f, *args, **kwargs):
        calls.append(1)
        if len(calls) > n:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)


def test_a_disk_that_fills_mid_training_is_a_run_time_failure(tmp_path, monkeypatch, capsys):
    full_disk_after(monkeypatch, 1)
    argv = ["train", *toy("train.steps=6", "train.checkpoint_every=2")]
    code = main([*argv, "--out-dir", str(tmp_path)])
    err = capsys.readouterr().err
    run = tmp_path / "00000-toy-wgan-gp"
    assert code == 1, err  # README: 2 is "nothing was run"
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wgan: error: "), err
    assert (
        "the disk is full" in err and f"the last checkpoint {run / 'checkpoint.pt'} is kept" in err
    )
    assert f"continue with: wgan train --resume {run}" in err
    assert load_checkpoint(run)["step"] == 2
    assert statuses(run) == ["failed: CheckpointSaveError"]


def test_metrics_on_a_full_disk_is_a_run_time_failure(tmp_path, monkeypatch, capsys):
    from wgan.store import tracking

    real = tracking.JsonlWriter.write

    def write(self, record):
        if record.get("step", 0) >= 4:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.path))
        return real(self, record)

    monkeypatch.setattr(tracking.JsonlWriter, "write", write)
    argv = ["train", *toy("train.steps=6", "train.log_every=2", "train.checkpoint_every=2")]
    code = main([*argv, "--out-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "the disk is full" in err and "the checkpoint of step 2 is kept" in err, err


def test_less_room_than_one_checkpoint_leaves_a_run_that_eval_names_and_resume_restarts(
    tmp_path, monkeypatch, capsys
):
    full_disk_after(monkeypatch, 0)
    argv = ["train", *toy("train.steps=6", "train.checkpoint_every=2")]
    code = main([*argv, "--out-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    run = tmp_path / "runs" / "00000-toy-wgan-gp"
    assert code == 1, err
    assert "no checkpoint was saved before" in err
    assert not (run / "checkpoint.pt").exists() and (run / "config.yaml").is_file()
    monkeypatch.undo()

    assert main(["eval", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"wgan: error: {run} has no checkpoint (checkpoint.pt): it stopped ")
    assert f"'wgan train --resume {run}' trains it again from step 0" in err

    assert main(["train", "--resume", str(run)]) == 0, capsys.readouterr().err
    assert "training it again from step 0" in capsys.readouterr().err
    assert statuses(run) == ["failed: CheckpointSaveError", "completed"]
    assert json.loads((run / "provenance.json").read_text())[-1]["kind"] == "restart"
    cfg = resolve(None, toy("train.steps=6", "train.checkpoint_every=2"))
    cfg.out_dir = str(tmp_path / "fresh")
    assert_same(weights(run), weights(train(cfg, tensorboard=False).run_dir))
