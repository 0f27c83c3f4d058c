"""``wgan sample --refine`` and ``wgan eval --refine`` end to end on a tiny trained toy run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import tiny

from wgan.cli import run_commands
from wgan.cli.app import main
from wgan.gan import refine as R
from wgan.training.run import load_run


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    args = tiny(hidden=32, steps=40, eval_samples=200)
    assert main(["train", "toy-wgan-gp", *args, "--out-dir", str(out), "--json"]) == 0
    (run_dir,) = out.iterdir()
    return run_dir


def test_the_cli_knows_the_librarys_methods_and_defaults():
    assert run_commands.REFINE_METHODS == R.METHODS
    assert run_commands.REFINE_STEPS == R.DEFAULT_STEPS


def test_sample_writes_the_refined_samples(capsys, tmp_path, trained):
    path = tmp_path / "x.npy"
    argv = ["sample", str(trained), "--num", "150", "--out", str(path), "--device", "cpu"]
    code, out, _ = run_cli(capsys, *argv, "--refine", "flow", "--refine-steps", "7")
    assert code == 0 and "refined: flow, 7 steps" in out
    run = load_run(trained)
    expected = run.samples(150, refine="flow", refine_steps=7)
    assert np.array_equal(np.load(path), expected.numpy())
    assert not torch.equal(expected, run.samples(150))  # the flag did refine
    code, out, _ = run_cli(capsys, *argv, "--refine", "dot")  # the default steps
    assert code == 0 and "refined: dot, 100 steps" in out
    assert np.array_equal(np.load(path), run.samples(150, refine="dot").numpy())


def test_eval_reports_the_metrics_before_and_after(capsys, trained):
    base = ["eval", str(trained), "--num", "200", "--device", "cpu"]
    code, out, _ = run_cli(capsys, *base, "--json")
    assert code == 0
    plain = json.loads(out)
    code, out, err = run_cli(capsys, *base, "--json", "--refine", "flow", "--refine-steps", "30")
    assert code == 0, err
    record = json.loads(out)
    assert record["refine"] == "flow" and record["refine_steps"] == 30
    assert record["run"] == plain["run"] and record["step"] == plain["step"]
    assert record["before"] == {k: v for k, v in plain.items() if k not in ("run", "step")}
    after = load_run(trained).evaluate(200, refine="flow", refine_steps=30)
    assert record["after"] == json.loads(json.dumps(after))
    assert record["after"]["w1"] != record["before"]["w1"]

    code, out, _ = run_cli(capsys, *base, "--refine", "flow", "--refine-steps", "30")
    assert code == 0
    header, *rows = out.split("before refinement")[1].splitlines()
    assert header.strip() == "after refinement"
    w1 = next(row.split() for row in rows if row.split()[:1] == ["w1"])
    assert w1[1:] == [f"{record['before']['w1']:.4g}", f"{record['after']['w1']:.4g}"]


@pytest.mark.parametrize(
    "extra,needle",
    [
        (["--refine", "sharpen"], "invalid choice: 'sharpen'"),
        (["--refine", "dot", "--refine-steps", "-3"], "--refine-steps must be in [0,"),
        (["--refine", "dot", "--refine-steps", "many"], "invalid int value: 'many'"),
        (["--refine-steps", "5"], "--refine-steps needs --refine"),
    ],
)
@pytest.mark.parametrize("command", ["sample", "eval"])
def test_bad_refine_values_are_one_line_and_exit_2(
    capsys, tmp_path, trained, command, extra, needle
):
    argv = [command, str(trained), *extra]
    if command == "sample":
        argv += ["--out", str(tmp_path / "x.npy")]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 2 and needle in err and not out
    assert len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "x.npy").exists()
