"""The command line: every bad input is one clear line and exit code 2; the commands work."""

import json
import subprocess
import sys

import numpy as np
import pytest
from helpers import tiny

from wgan.cli.app import main

FAST = tiny(
    "train.log_every=3", "train.progress=false", hidden=32, steps=6, eval_samples=300, quiet=False
)


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["train", "constraint.penalty_wieght=1"], "did you mean constraint.penalty_weight"),
        (["train", "train.steps=many"], "train.steps must be int"),
        (["train", "constraint.penalty_weight=-1"], "lambda"),
        (["train", "train.n_critic=0"], "n_critic must be >= 1"),
        (["train", "toy-wgan-pg"], "unknown preset 'toy-wgan-pg'; did you mean toy-wgan-gp"),
        (["train", "missing/config.yaml"], "config file not found"),
        (["train", "objective.name=fancy"], "objective.name must be one of"),
        (["train", "objective.name=fgan", "objective.divergence=kll"], "kll"),
    ],
)
def test_bad_input_is_one_line_exit_2(capsys, tmp_path, argv, needle):
    code, out, err = run_cli(capsys, *argv, "--out-dir", str(tmp_path))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wgan: error: "), err
    assert needle in lines[0]
    assert "Traceback" not in err


def test_resume_without_checkpoint(capsys, tmp_path):
    empty = tmp_path / "00000-empty"
    empty.mkdir()
    code, _, err = run_cli(capsys, "train", "--resume", str(empty))
    assert code == 2 and "has no checkpoint" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(capsys, "train", "--resume", str(tmp_path / "nope"))
    assert code == 2 and "not found" in err


def test_corrupt_checkpoint_is_a_clear_error(capsys, tmp_path):
    run = tmp_path / "00000-bad"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(b"not a checkpoint at all")
    for argv in (["train", "--resume", str(run)], ["eval", str(run)]):
        code, _, err = run_cli(capsys, *argv)
        assert code == 2 and "cannot load checkpoint" in err, err


def test_usage_error_is_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["sample"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("wgan: error:")


def test_dry_run_prints_resolved_config(capsys):
    code, out, _ = run_cli(capsys, "train", "toy-wgan-clip", "train.steps=17", "--dry-run")
    assert code == 0
    assert "steps: 17" in out and "clip: 0.01" in out and "name: rmsprop" in out


def test_presets_one_line_each(capsys):
    code, out, _ = run_cli(capsys, "presets")
    lines = out.strip().splitlines()
    names = [line.split()[0] for line in lines]
    assert code == 0 and "toy-wgan-gp" in names and "toy-fgan-kl" in names
    assert all(len(line.split(maxsplit=1)) == 2 for line in lines)  # every preset described


def test_train_sample_eval_resume(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "train", *FAST, "--out-dir", str(tmp_path))
    assert code == 0
    run = tmp_path / "00000-toy-wgan-gp"
    assert f"run:     {run}" in out and "figures:" in out and "metrics:" in out
    npy = tmp_path / "s.npy"
    code, out, _ = run_cli(capsys, "sample", str(run), "--num", "123", "--out", str(npy))
    assert code == 0 and np.load(npy).shape == (123, 2)
    csv = tmp_path / "s.csv"
    assert run_cli(capsys, "sample", str(run), "--num", "5", "--out", str(csv))[0] == 0
    assert csv.read_text().splitlines()[0] == "x1,x2"  # a header row
    assert np.loadtxt(csv, delimiter=",", skiprows=1).shape == (5, 2)
    code, _, err = run_cli(capsys, "sample", str(run), "--out", str(tmp_path / "s.txt"))
    assert code == 2 and ".npy or .csv" in err
    code, out, _ = run_cli(capsys, "eval", str(run), "--num", "300", "--json")
    metrics = json.loads(out)
    assert code == 0 and metrics["step"] == 6 and metrics["n_modes"] == 8 and metrics["w1"] > 0
    code, out, _ = run_cli(capsys, "train", "--resume", str(run), "train.steps=9")
    assert code == 0 and "steps up to 9" in out


def test_module_entry_point_has_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "wgan", "train", "data.nmae=x"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("wgan: error: unknown config key 'data.nmae'; did you mean")
    assert "data.name" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_every_command_is_parsed_here_without_loading_the_libraries():
    """All argparse lives in the command-line modules (wgan.cli.app, wgan.cli.scale): building the
    parser (sweep and bench included) imports neither wgan.scale.sweep, wgan.scale.bench,
    wgan.training.train nor torch; the commands import them lazily."""
    code = (
        "import sys, wgan.cli.app, wgan.cli.scale\n"
        "p = wgan.cli.app.build_parser()\n"
        "a = p.parse_args(['bench', 'toy-wgan-gp', '--no-compile'])\n"
        "s = p.parse_args(['sweep', '--seeds', '0-1', '--engine', 'vmap'])\n"
        "assert a.func is wgan.cli.scale.cmd_bench and a.compile is False, a\n"
        "assert s.func is wgan.cli.scale.cmd_sweep and s.engine == 'vmap', s\n"
        "heavy = ('wgan.scale.sweep', 'wgan.scale.bench', 'wgan.training.train', 'torch')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_sweep_unknown_engine_is_one_line(capsys):
    code, _, err = run_cli(capsys, "sweep", "--seeds", "0,1", "--engine", "nope")
    assert code == 2 and err.startswith("wgan: error: --engine must be one of")
    assert len(err.strip().splitlines()) == 1


def test_the_wgan_executable_runs_the_command_line():
    """``[project.scripts]`` names the command line's main, and the installed ``wgan``
    executable (beside this interpreter, where the package is installed) runs it."""
    import importlib
    import re
    from pathlib import Path

    from wgan.cli.app import main as cli_app_main

    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    module, attr = re.search(r'^wgan = "([\w.]+):(\w+)"', pyproject, re.M).groups()
    assert getattr(importlib.import_module(module), attr) is cli_app_main
    exe = Path(sys.executable).with_name("wgan")
    if not exe.exists():
        pytest.skip("wgan is not installed beside this interpreter")
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=False)
    assert out.returncode == 0 and out.stdout.startswith("wgan "), out.stderr
