"""CLI wiring of experiments and Lipschitz analysis (the experiments' own tests run them)."""

import json

from wgan.cli.app import main
from wgan.experiments import EXPERIMENTS


def test_experiment_list(capsys):
    assert main(["experiment", "--list"]) == 0
    out = capsys.readouterr().out
    names = [line.split()[0] for line in out.strip().splitlines()]
    assert names == list(EXPERIMENTS)
    assert set(names) == {
        "parallel-lines",
        "clipping-vs-penalty",
        "loss-vs-quality",
        "mode-collapse",
        "overfitting",
        "f-divergences",
        "improved-techniques",
        "discrete-data",
        "random-architectures",
        "architectures",
        "momentum",
        "generator-only",
        "mode-hopping",
        "refinement",
        "likelihood",
        "attributes",
    }


def test_experiment_bad_input(capsys):
    assert main(["experiment", "parallel-line"]) == 2
    err = capsys.readouterr().err
    assert "did you mean parallel-lines" in err and len(err.strip().splitlines()) == 1
    assert main(["experiment", "parallel-lines", "no_such_key=1"]) == 2
    err = capsys.readouterr().err
    assert "unknown config key 'no_such_key'" in err


def test_lipschitz_command(capsys, tmp_path):
    argv = ["critic.hidden=16", "generator.hidden=16", "train.steps=3", "train.progress=false"]
    assert main(["train", *argv, "--out-dir", str(tmp_path)]) == 0
    run = next(tmp_path.iterdir())
    capsys.readouterr()
    assert main(["lipschitz", str(run), "--num", "256", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["bound_holds"] is True
    assert report["bound"] >= report["empirical_max"] > 0
    assert main(["lipschitz", str(run), "--num", "256"]) == 0
    assert "bound" in capsys.readouterr().out
