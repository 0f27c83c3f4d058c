"""Issue 25, item 6: a study says what it does while it runs (a line as each run starts and
ends, with its step and metrics), prints the table of its runs when Ctrl-C or SIGTERM stops it,
and is extended by ``train.steps=N`` (each run resumed to N steps, as ``wgan train --resume``
would) instead of being refused as "a study does not mix configs".
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

import pytest
import torch
from helpers import tiny

from wgan.cli.app import main
from wgan.config import resolve
from wgan.errors import ConfigError
from wgan.scale.study import run_study
from wgan.store import checkpoints

# One thread, no learning-rate decay (train.steps may then change on resume without changing
# the maths), an evaluation every 4 steps.
TOY = tiny(
    "train.threads=1",
    "train.lr_decay=none",
    "train.eval_every=4",
    "train.log_every=2",
    hidden=16,
    eval_samples=200,
)
NAME = "toy-wgan-gp-seed0"


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    state = checkpoints.load_checkpoint(run_dir / "checkpoint.pt")
    out = {f"g.{k}": v for k, v in state["generator"].items()}
    out.update({f"d.{k}": v for k, v in state["critic"].items()})
    for part in ("opt_d", "opt_g"):
        leaves = torch.utils._pytree.tree_leaves(state[part])
        out.update({f"{part}.{i}": v for i, v in enumerate(leaves)})
    return out


def provenance_kinds(run_dir: Path) -> list[str]:
    return [e["kind"] for e in json.loads((run_dir / "provenance.json").read_text())]


def study(tmp_path: Path, steps: int) -> list[str]:
    argv = ["study", "toy-wgan-gp", "--seeds", "0", "--threads", "1", *TOY, f"train.steps={steps}"]
    return [*argv, "--study-dir", str(tmp_path / "study")]


def test_a_study_shows_its_runs_and_train_steps_extends_it_like_resume(tmp_path, capsys):
    run = tmp_path / "study" / NAME
    assert main(study(tmp_path, 4)) == 0
    err = capsys.readouterr().err
    assert "wgan: study: 1 of 1 runs to train\n" in err
    assert f"wgan: study: [1/1] {NAME}: started, training to step 4\n" in err
    done = rf"wgan: study: \[1/1\] {NAME}: done at step 4 in [0-9.]+ s: modes \d/8, hq [0-9.]+"
    assert re.search(done + r".*w1 [0-9.]+ \(real [0-9.]+\) \(1 of 1 ended\)\n", err), err

    # More steps: the run is resumed from its checkpoint, not refused.
    assert main([*study(tmp_path, 8), "--json"]) == 0, capsys.readouterr().err
    out, err = capsys.readouterr()
    record = json.loads(out)["runs"][0]
    assert (record["status"], record["step"]) == ("resumed", 8)
    assert "wgan: 1 study run(s) continue with train.steps=8 (was 4), as a resume would" in err
    assert f"[1/1] {NAME}: started, training to step 8 (it has a checkpoint)\n" in err
    assert re.search(rf"\[1/1\] {NAME}: resumed at step 8 in [0-9.]+ s: modes", err), err
    assert "a worker checks the run again" not in err  # an extension is not a suspect record
    assert provenance_kinds(run) == ["new", "resume"]

    # Bit for bit the run of `wgan train --resume RUN train.steps=8` after 4 steps.
    single = tmp_path / "single"
    argv = ["train", *TOY, "train.steps=4", "train.seed=0", "--out-dir", str(single)]
    assert main(argv) == 0
    assert main(["train", "--resume", str(single / "00000-toy-wgan-gp"), "train.steps=8"]) == 0
    capsys.readouterr()
    plain = weights(single / "00000-toy-wgan-gp")
    extended = weights(run)
    assert plain.keys() == extended.keys()
    for key in plain:
        assert torch.equal(plain[key], extended[key]), key

    # Fewer steps than the run has: left as it is, without a worker.
    assert main([*study(tmp_path, 6), "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["runs"][0]["status"] == "skipped" and "continue with" not in err


def test_the_python_api_extends_and_reports_progress(tmp_path):
    cfg = resolve("toy-wgan-gp", [*TOY, "train.steps=4"])
    lines: list[str] = []
    run_study([("a", cfg)], tmp_path / "s", threads=1, progress=lines.append)
    longer = resolve("toy-wgan-gp", [*TOY, "train.steps=6", "d_optim.lr=0.0002"])
    [record] = run_study([("a", longer)], tmp_path / "s", threads=1, progress=lines.append)
    assert (record["status"], record["step"]) == ("resumed", 6)
    assert lines[-2] == "wgan: study: [1/1] a: started, training to step 6 (it has a checkpoint)"
    saved = (tmp_path / "s" / "a" / "config.yaml").read_text()
    assert "steps: 6" in saved and "lr: 0.0002" in saved  # the new values were applied

    # A key a resume may not change still names another run.
    with pytest.raises(
        ConfigError, match=r"critic\.hidden=16, now critic\.hidden=32.*train\.steps"
    ):
        run_study([("a", resolve("toy-wgan-gp", [*TOY, "critic.hidden=32"]))], tmp_path / "s")


def test_sigterm_prints_the_table_of_the_study(tmp_path):
    run = tmp_path / "study" / NAME
    argv = study(tmp_path, 100_000_000)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "wgan", *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    metrics = run / "metrics.jsonl"
    while time.time() < deadline and proc.poll() is None:
        if metrics.is_file() and metrics.stat().st_size:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    step = checkpoints.load_checkpoint(run / "checkpoint.pt")["step"]
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["run", "preset", "data", "step", "status"]
    assert lines[1].split()[:6] == [
        NAME,
        "toy-wgan-gp",
        "8gaussians",
        f"{step}/100000000",
        "interrupted",
        "yes",
    ]
    assert lines[-1] == f"1 run under {tmp_path / 'study'}: 1 interrupted"
    assert "wgan: to continue: wgan study toy-wgan-gp --seeds 0" in err
