"""Issue 25, items 5 and 7: ``wgan runs [DIR]`` lists every run of the three layouts (single,
sweep member, study member) with preset, data, step, status, resumability and last metrics with
their baselines (``--json``, ``--html``); ``wgan eval``, ``sample`` and ``interpolate`` take a
run's checkpoint file and a sweep's or study's folder (each member, or ``--member NAME``); toy
``eval`` gives W1 its real-vs-real baseline.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import tiny

from wgan.cli.app import main
from wgan.config import resolve
from wgan.data.build import build_dataset
from wgan.figures.plotting import legend_covers_data, missing_axis_labels
from wgan.figures.runs_page import curves, curves_figure
from wgan.metrics.wasserstein import exact_w1
from wgan.store.run_index import list_runs
from wgan.training.run import load_run

TOY = tiny(
    "train.eval_every=3",
    "train.log_every=2",
    "train.threads=1",
    hidden=16,
    steps=6,
    eval_samples=200,
)


@pytest.fixture(scope="module")
def layouts(tmp_path_factory) -> Path:
    """``runs/`` with a single run, a sweep of two runs and a study of one run, each trained
    to step 6 with evaluations at steps 3 and 6."""
    root = tmp_path_factory.mktemp("layouts") / "runs"
    assert main(["train", *TOY, "--out-dir", str(root)]) == 0
    assert main(["sweep", "--seeds", "0,1", *TOY, "--out-dir", str(root)]) == 0
    study = ["study", "toy-wgan-gp", "--seeds", "0", *TOY]
    assert main([*study, "--study-dir", str(root / "toy-wgan-gp-study")]) == 0
    return root


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


SINGLE = "00000-toy-wgan-gp"
SWEEP = "00001-toy-wgan-gp-sweep"
STUDY = "toy-wgan-gp-study"
MEMBERS = [
    SINGLE,
    f"{SWEEP}/00000-seed0",
    f"{SWEEP}/00001-seed1",
    f"{STUDY}/toy-wgan-gp-seed0",
]


# ------------------------------------------------------------------------------------ wgan runs


def test_runs_lists_every_layout_with_status_step_resume_and_metrics(layouts, capsys):
    code, out, err = cli(capsys, "runs", layouts)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["run", "preset", "data", "step", "status", "resume", "last"] + [
        "metrics"
    ]
    for member, line in zip(MEMBERS, lines[1:5], strict=True):
        assert line.split()[:6] == [member, "toy-wgan-gp", "8gaussians", "6/6", "finished", "yes"]
        assert re.search(r"modes \d/8, hq [0-9.]+, .*w1 [0-9.]+ \(real [0-9.]+\)", line), line
    assert lines[5] == f"4 runs under {layouts}: 4 finished"

    code, out, _ = cli(capsys, "runs", layouts, "--json")
    rows = json.loads(out)["runs"]
    assert [r["run"] for r in rows] == MEMBERS
    assert [r["layout"] for r in rows] == ["single", "sweep", "sweep", "study"]
    assert [r["group"] for r in rows] == [None] + [str(layouts / SWEEP)] * 2 + [
        str(layouts / STUDY)
    ]
    for row in rows:
        assert (row["step"], row["steps"], row["status"]) == (6, 6, "finished")
        assert row["resumable"] and row["resume"] == f"wgan train --resume {row['path']}"
        assert row["metrics_step"] == 6 and row["baselines"]["w1"] == row["metrics"]["w1_baseline"]
        assert row["notes"] == []
    # The Python API gives the same rows; DIR may be a sweep's folder or one run.
    assert [r["run"] for r in list_runs(layouts / SWEEP)] == ["00000-seed0", "00001-seed1"]
    assert [r["run"] for r in list_runs(layouts / SINGLE)] == [SINGLE]


def _edit_provenance(run: Path, **fields) -> None:
    entries = json.loads((run / "provenance.json").read_text())
    entries[-1].update(fields)
    (run / "provenance.json").write_text(json.dumps(entries))


def test_runs_tells_each_status_and_notes_unreadable_files(layouts, tmp_path, capsys):
    root = tmp_path / "runs"
    for name in ("a-interrupted", "b-killed", "c-running", "d-diverged", "e-bad", "f-no-ckpt"):
        shutil.copytree(layouts / SINGLE, root / name)
    _edit_provenance(root / "a-interrupted", status="interrupted", end_step=4)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # its pid is free: the "running" session's process is gone
    host = {"name": socket.gethostname(), "platform": "x"}
    _edit_provenance(root / "b-killed", status="running", end_step=None, pid=gone.pid, host=host)
    _edit_provenance(
        root / "c-running", status="running", end_step=None, pid=os.getpid(), host=host
    )
    _edit_provenance(root / "d-diverged", status="diverged", end_step=5)
    (root / "e-bad" / "provenance.json").write_text('[{"session": 1, "status": "\x1b[31mok"')
    config = root / "e-bad" / "config.yaml"
    config.write_text(config.read_text().replace("name: toy-wgan-gp", 'name: "evil\\e[2J"'))
    (root / "f-no-ckpt" / "checkpoint.pt").unlink()

    rows = {r["run"]: r for r in list_runs(root)}
    assert rows["a-interrupted"]["status"] == "interrupted" and rows["a-interrupted"]["step"] == 4
    assert rows["b-killed"]["status"] == "killed" and rows["b-killed"]["step"] == 6
    assert rows["c-running"]["status"] == "running"
    assert rows["d-diverged"]["status"] == "diverged" and rows["d-diverged"]["step"] == 5
    assert rows["e-bad"]["status"] == "unreadable"
    assert "provenance.json: not valid JSON" in rows["e-bad"]["notes"][0]
    assert (rows["f-no-ckpt"]["checkpoint"], rows["f-no-ckpt"]["resumable"]) == (False, True)

    code, out, err = cli(capsys, "runs", root)
    assert code == 0, err
    assert "\x1b" not in out  # a name and a note from files reach the terminal escaped
    assert "evil\\x1b[2J" in out
    line = {ln.split()[0]: ln.split() for ln in out.splitlines()[1:7]}
    assert line["f-no-ckpt"][4:7] == ["finished", "from", "0"]
    assert re.search(r"^note: e-bad: .*provenance\.json: not valid JSON", out, re.M)
    assert out.splitlines()[-1].startswith(f"6 runs under {root}: ")


def test_runs_html_overlays_the_curves_of_each_sweep_and_study(layouts, tmp_path, capsys):
    page = tmp_path / "page" / "runs.html"
    code, out, err = cli(capsys, "runs", layouts, "--html", page)
    assert code == 0, err
    assert out.splitlines()[-1] == f"page: {page}"
    text = page.read_text()
    assert text.count('<img src="data:image/png;base64,') == 3  # single runs, sweep, study
    for loaded in ("<script", 'src="http', "<link", "@import"):  # nothing is loaded or run
        assert loaded not in text
    assert f"sweep {layouts / SWEEP} (2 runs)" in text

    rows = [r for r in list_runs(layouts) if r["layout"] == "sweep"]
    series, baselines = curves(rows)
    assert list(series) == ["d/estimate", "w1", "high_quality_fraction"]
    assert [label for label, _, _ in series["w1"]] == ["00000-seed0", "00001-seed1"]
    assert [steps for _, steps, _ in series["w1"]] == [[3, 6], [3, 6]]
    assert baselines["w1"] == rows[0]["metrics"]["w1_baseline"]
    fig = curves_figure(series, baselines, "sweep")
    assert legend_covers_data(fig) == [] and missing_axis_labels(fig) == []

    code, _, err = cli(capsys, "runs", tmp_path / "nope")
    assert code == 2 and err.startswith("wgan: error: runs folder not found")


def test_runs_in_a_folder_without_runs_yet(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no runs/ here: nothing trained yet
    assert cli(capsys, "runs") == (0, "no runs under runs\n", "")
    assert cli(capsys, "runs", "--json") == (0, '{"root": "runs", "runs": []}\n', "")


# ---------------------------------------------------- eval, sample and interpolate: any target


def test_eval_takes_a_checkpoint_file_and_a_sweep_or_study_folder(layouts, capsys):
    ckpt = layouts / SINGLE / "checkpoint.pt"
    code, out, err = cli(capsys, "eval", ckpt, "--json", "--num", "200")
    assert code == 0, err
    assert json.loads(out)["run"] == str(ckpt) and json.loads(out)["step"] == 6
    assert load_run(ckpt).step == 6  # the Python API takes it too

    code, out, err = cli(capsys, "eval", layouts / SWEEP, "--json", "--num", "200")
    assert code == 0, err
    record = json.loads(out)
    assert record["group"] == str(layouts / SWEEP)
    assert [r["run"] for r in record["runs"]] == [str(layouts / m) for m in MEMBERS[1:3]]

    code, out, err = cli(capsys, "eval", layouts / STUDY, "--member", "seed0", "--num", "200")
    assert code == 0, err
    assert out.startswith(f"  run                    {layouts / MEMBERS[3]}\n")

    code, _, err = cli(capsys, "eval", layouts / SWEEP, "--member", "seed7")
    assert code == 2 and len(err.splitlines()) == 1
    assert "its runs: 00000-seed0, 00001-seed1); did you mean seed1?" in err
    code, _, err = cli(capsys, "eval", layouts)  # a folder of many runs, not a group
    assert code == 2 and f"holds 4 runs, not one: give one of them (e.g. {layouts / SINGLE})" in err
    code, _, err = cli(capsys, "eval", layouts / SINGLE, "--member", "seed0")
    assert code == 2 and "--member is for a sweep's or a study's folder" in err
    with pytest.raises(Exception, match="is a sweep's folder holding 2 runs, not one run"):
        load_run(layouts / SWEEP)


def test_sample_and_interpolate_write_one_file_per_member(layouts, tmp_path, capsys):
    code, out, err = cli(
        capsys, "sample", layouts / SWEEP, "--num", "7", "--out", tmp_path / "s.npy"
    )
    assert code == 0, err
    for member in ("00000-seed0", "00001-seed1"):
        assert np.load(tmp_path / f"s-{member}.npy").shape == (7, 2)
    assert not (tmp_path / "s.npy").exists()
    argv = ["sample", layouts / STUDY, "--member", "toy-wgan-gp-seed0", "--num", "5"]
    code, out, err = cli(capsys, *argv, "--out", tmp_path / "one.npy")
    assert code == 0 and np.load(tmp_path / "one.npy").shape == (5, 2), err
    argv = ["interpolate", layouts / SWEEP, "--num-paths", "2", "--steps", "3"]
    code, out, err = cli(capsys, *argv, "--out", tmp_path / "walk.npy")
    assert code == 0, err
    assert np.load(tmp_path / "walk-00001-seed1.npy").shape[:2] == (4, 3)  # linear + slerp rows
    ckpt = layouts / SINGLE / "checkpoint.pt"
    code, out, err = cli(capsys, "interpolate", ckpt, "--steps", "3", "--out", tmp_path / "c.npy")
    assert code == 0 and (tmp_path / "c.npy").is_file(), err


# ------------------------------------------------------------------- W1's real-vs-real baseline


def test_toy_eval_gives_w1_its_real_vs_real_baseline(layouts, capsys):
    code, out, err = cli(capsys, "eval", layouts / SINGLE, "--json", "--num", "200")
    assert code == 0, err
    metrics = json.loads(out)
    data = build_dataset(resolve("toy-wgan-gp", []).data)
    reference = data.sample(200, generator=torch.Generator().manual_seed(1))
    other = data.sample(200, generator=torch.Generator().manual_seed(2))
    assert metrics["w1_baseline"] == exact_w1(other, reference)["w1"]
    assert 0 < metrics["w1_baseline"] < metrics["w1"]  # a generator trained 6 steps is far off

    code, out, _ = cli(capsys, "eval", layouts / SINGLE, "--num", "200")
    baseline = f"{metrics['w1_baseline']:.4g}"
    assert re.search(rf"^  w1 +[0-9.]+  \(real-vs-real: {re.escape(baseline)}\)$", out, re.M)
    assert "w1_baseline" not in out  # on the w1 line, not a line of its own

    # At the default 2,500 samples, the floor of eight_gaussians' empirical W1: 0.03 to 0.07.
    run = load_run(layouts / SINGLE)
    assert 0.03 <= run.evaluate(2500)["w1_baseline"] <= 0.07
