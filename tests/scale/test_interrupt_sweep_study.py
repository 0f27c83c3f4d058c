"""SIGTERM and Ctrl-C stop ``wgan sweep``, ``wgan study`` and ``wgan experiment`` as they stop
``wgan train`` (issue 24, row 9): checkpoints of the step reached, ``provenance.json`` and
``study.json`` say ``interrupted``, the command that continues the work is printed, the exit
status is 143; and an interrupted sweep resumes like a single run (``wgan sweep --resume``),
bit for bit. Real signals go to real processes.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from helpers import FOREVER, assert_same_tensors, checkpoint_tensors, toy_long

from wgan.cli.app import main
from wgan.config import resolve
from wgan.scale.sweep import SweepTrainer, fit_recorded
from wgan.store import checkpoints
from wgan.store.checkpoints import load_checkpoint
from wgan.training import cadence as cadence_module

toy = toy_long


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    """Every tensor the run's checkpoint holds that training changes."""
    return checkpoint_tensors(load_checkpoint(run_dir))


assert_same = assert_same_tensors


def provenance(run_dir: Path) -> list[dict]:
    return json.loads((run_dir / "provenance.json").read_text())


def start(argv: list[str], ready: list[Path]) -> subprocess.Popen:
    """``wgan ARGV`` in a subprocess, once every file of ``ready`` has content (training)."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "wgan", *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if all(p.is_file() and p.stat().st_size for p in ready):
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    return proc


def stop(proc: subprocess.Popen, signum: int = signal.SIGTERM) -> tuple[int, str]:
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


# ----------------------------------------------------------------------------------------------
# wgan sweep
# ----------------------------------------------------------------------------------------------


def test_sigterm_stops_a_sweep_and_sweep_resume_continues_it_bit_for_bit(tmp_path, capsys):
    sweep = tmp_path / "runs" / "00000-toy-wgan-gp-sweep"
    runs = [sweep / "00000-seed0", sweep / "00001-seed1"]
    argv = ["sweep", "--seeds", "0,1", *toy(FOREVER), "--out-dir", str(tmp_path / "runs")]
    proc = start(argv, [r / "metrics.jsonl" for r in runs])
    code, err = stop(proc)
    assert code == 143, err
    match = re.search(
        r"interrupted by SIGTERM at step (\d+); the checkpoints of its 2 live runs", err
    )
    assert match, err
    step = int(match.group(1))
    assert f"wgan: to continue: wgan sweep --resume {sweep}\n" in err
    assert "Traceback" not in err
    for run in runs:
        assert load_checkpoint(run)["step"] == step
        assert [e["status"] for e in provenance(run)] == ["interrupted"]
        assert provenance(run)[-1]["end_step"] == step

    # A run of the sweep is not the sweep: `wgan train --resume SWEEP_DIR` names the command.
    assert main(["train", "--resume", str(sweep)]) == 2
    assert f"continue it with: wgan sweep --resume {sweep}" in capsys.readouterr().err

    assert main(["sweep", "--resume", str(sweep), f"train.steps={step + 3}"]) == 0
    out = capsys.readouterr().out
    assert f"2 runs x {step + 3} iterations" in out
    for run in runs:
        assert [e["status"] for e in provenance(run)] == ["interrupted", "completed"]
        assert provenance(run)[-1]["kind"] == "resume"
    summary = json.loads((sweep / "sweep.json").read_text())
    assert [r["step"] for r in summary["runs"]] == [step + 3] * 2

    fresh = tmp_path / "fresh"
    argv = ["sweep", "--seeds", "0,1", *toy(f"train.steps={step + 3}"), "--out-dir", str(fresh)]
    assert main(argv) == 0
    capsys.readouterr()
    for run in runs:
        assert_same(weights(run), weights(fresh / sweep.name / run.name))


def test_a_sweep_killed_before_its_first_checkpoint_trains_again_on_resume(tmp_path, capsys):
    argv = ["sweep", "--seeds", "0,1", *toy("train.steps=4"), "--out-dir", str(tmp_path / "a")]
    assert main(argv) == 0
    sweep = tmp_path / "a" / "00000-toy-wgan-gp-sweep"
    expected = {run.name: weights(run) for run in sweep.glob("0000*")}
    for run in sweep.glob("0000*"):  # as if killed before any save
        (run / "checkpoint.pt").unlink()
    assert main(["sweep", "--resume", str(sweep)]) == 0, capsys.readouterr().err
    capsys.readouterr()
    for run in sweep.glob("0000*"):
        assert_same(weights(run), expected[run.name])
        assert provenance(run)[-1]["kind"] == "restart"


def test_a_sweep_saves_every_checkpoint_minutes_without_changing_its_runs(tmp_path, monkeypatch):
    def sweep(out: str, minutes: str) -> list[Path]:
        cfgs = [resolve(None, toy("train.steps=8", minutes, f"train.seed={s}")) for s in (0, 1)]
        dirs = [tmp_path / out / f"seed{s}" for s in (0, 1)]
        for run in dirs:
            run.mkdir(parents=True)
        fit_recorded(SweepTrainer(cfgs, dirs), dirs, "sweep", tensorboard=False)
        return dirs

    saved = []
    real_save = checkpoints.save_checkpoint
    monkeypatch.setattr(
        checkpoints, "save_checkpoint", lambda p, s: (saved.append(s["step"]), real_save(p, s))
    )
    plain = sweep("plain", "train.checkpoint_minutes=0")
    assert saved == [8, 8]  # checkpoint_every=0: only at the end
    saved.clear()
    clock = iter(range(0, 10**6, 60))  # a minute passes at every reading
    monkeypatch.setattr(cadence_module, "monotonic", lambda: float(next(clock)))
    timed = sweep("timed", "train.checkpoint_minutes=2")
    assert len(saved) > 2 and saved[-2:] == [8, 8] and saved[0] < 8
    for a, b in zip(plain, timed, strict=True):
        assert_same(weights(a), weights(b))


# ----------------------------------------------------------------------------------------------
# wgan study and wgan experiment
# ----------------------------------------------------------------------------------------------


def test_sigterm_stops_a_study_and_marks_it_interrupted(tmp_path, capsys):
    study = tmp_path / "study"
    runs = [study / "toy-wgan-gp-seed0", study / "toy-wgan-gp-seed1"]
    argv = ["study", "toy-wgan-gp", "--seeds", "0,1", "--jobs", "2", *toy(FOREVER)]
    argv += ["--study-dir", str(study)]
    proc = start(argv, [r / "metrics.jsonl" for r in runs])
    code, err = stop(proc)
    assert code == 143, err
    assert f"interrupted by SIGTERM; {study / 'study.json'} marks the runs not finished" in err
    assert "wgan: to continue: wgan study toy-wgan-gp --seeds 0,1 --jobs 2" in err
    assert "Traceback" not in err
    records = json.loads((study / "study.json").read_text())["runs"]
    assert [r["status"] for r in records] == ["interrupted", "interrupted"]
    for run in runs:  # each worker stopped at a step boundary with a checkpoint of it
        entry = provenance(run)[-1]
        assert entry["status"] == "interrupted"
        assert load_checkpoint(run)["step"] == entry["end_step"] > 0
    step = load_checkpoint(runs[0])["step"]
    assert main(["train", "--resume", str(runs[0]), f"train.steps={step + 2}"]) == 0
    capsys.readouterr()


def test_sigterm_stops_an_experiment(tmp_path):
    argv = ["experiment", "mode-collapse", "steps=100000000", "n_seeds=1", "hidden=16"]
    argv += ["datasets=8gaussians", "methods=wgan-gp", "eval_samples=200"]
    argv += ["--out-dir", str(tmp_path)]
    proc = start(argv, [])
    deadline = time.time() + 120  # until a training run's folder exists
    while time.time() < deadline and not list(tmp_path.glob("*/**/config.yaml")):
        time.sleep(0.05)
    code, err = stop(proc)
    assert code == 143, err
    assert "interrupted by SIGTERM" in err
    assert "an experiment does not resume; to run it again: wgan experiment mode-collapse" in err
    assert "Traceback" not in err
