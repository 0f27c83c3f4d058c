"""``wgan experiment NAME --quick`` runs one experiment at its quick size, and experiment settings
accept the dotted training-config names they mirror (``train.steps=`` for ``steps=``); issue 25,
friction 8."""

import json
from dataclasses import fields

import pytest

from wgan.cli.app import main
from wgan.config import resolve, set_value
from wgan.errors import ConfigError
from wgan.experiments import EXPERIMENTS, get_experiment, run_experiment
from wgan.experiments.framework import make_settings, quick_settings

#: parallel-lines at a size that runs in a second: its quick size, fewer critic steps and samples.
SMALL = ["steps=2", "eval_samples=50"]


@pytest.fixture(autouse=True)
def _no_progress(monkeypatch):
    monkeypatch.setenv("WGAN_NO_PROGRESS", "1")


def _settings(out: str) -> dict:
    record = json.loads(out)
    return json.loads(open(record["results"]).read())["settings"]


def test_quick_runs_one_experiment_at_its_quick_size_with_overrides_on_top(tmp_path, capsys):
    argv = ["experiment", "parallel-lines", "--quick", *SMALL, "--json", "--out-dir", str(tmp_path)]
    assert main(argv) == 0
    settings = _settings(capsys.readouterr().out)
    quick = get_experiment("parallel-lines").quick
    assert settings["n_theta"] == quick["n_theta"] == 5  # from the quick size (default 11)
    assert settings["steps"] == 2 and settings["eval_samples"] == 50  # the overrides win


def test_quick_from_python(tmp_path):
    result = run_experiment("parallel-lines", SMALL, tmp_path, quick=True)
    saved = json.loads((result.run_dir / "results.json").read_text())["settings"]
    assert saved["n_theta"] == 5 and saved["steps"] == 2


def test_quick_without_a_quick_size_says_so(tmp_path, capsys):
    assert not get_experiment("likelihood").quick
    small = ["dims=2", "n_train=50", "n_test=50", "n_samples=50"]
    assert main(["experiment", "likelihood", "--quick", *small, "--out-dir", str(tmp_path)]) == 0
    assert "likelihood has no quick size; running its defaults" in capsys.readouterr().err


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_make_settings_is_the_default_or_the_quick_size(name):
    experiment = get_experiment(name)
    assert make_settings(experiment) == experiment.Settings()
    assert make_settings(experiment, quick=True) == quick_settings(experiment)


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_every_mirrored_key_is_a_setting_and_a_training_key_of_its_type(name):
    settings = get_experiment(name).Settings()
    own = {f.name for f in fields(settings)}
    cfg = resolve(None)
    mirrors = settings.train_keys()
    assert mirrors["seed"] == ("train.seed",)  # every experiment has a seed
    for field, keys in mirrors.items():
        assert field in own, f"{name}: TRAIN_KEYS names {field}, not a setting"
        for key in keys:
            set_value(cfg, key, getattr(settings, field))  # an unknown key or type raises


def test_dotted_names_are_the_settings_they_mirror():
    experiment = get_experiment("mode-collapse")
    dotted = [
        "train.steps=7",
        "train.seed=3",
        "data.batch_size=32",
        "generator.hidden=16",
        "critic.hidden=16",
        "generator.depth=2",
        "critic.depth=2",
        "train.eval_samples=100",
        "train.device=cpu",
    ]
    flat = ["steps=7", "seed=3", "batch_size=32", "hidden=16", "depth=2", "eval_samples=100"]
    got = make_settings(experiment, dotted)
    assert got == make_settings(experiment, [*flat, "device=cpu"])
    assert (got.steps, got.seed, got.batch_size, got.hidden, got.depth) == (7, 3, 32, 16, 2)
    # a setting of its own for one net wins: overfitting has critic_hidden and generator_hidden
    s = make_settings(get_experiment("overfitting"), ["critic.hidden=48"])
    assert (s.critic_hidden, s.generator_hidden, s.hidden) == (48, 0, 256)
    s = make_settings(get_experiment("overfitting"), ["g_optim.lr=2e-4", "d_optim.lr=2e-4"])
    assert s.lr == 2e-4


def test_dotted_names_from_the_command_line(tmp_path, capsys):
    argv = [
        "experiment", "mode-collapse", "train.steps=3", "generator.hidden=16",
        "critic.hidden=16", "data.batch_size=32", "train.eval_samples=100", "n_seeds=1",
        "methods=gan", "datasets=8gaussians", "--json", "--out-dir", str(tmp_path),
    ]  # fmt: skip
    assert main(argv) == 0
    settings = _settings(capsys.readouterr().out)
    assert (settings["steps"], settings["hidden"], settings["batch_size"]) == (3, 16, 32)
    assert settings["eval_samples"] == 100


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        # one net's width where one setting sizes both: the fix is the setting's own name
        (["mode-collapse", "critic.hidden=16"], "write hidden=16"),
        (["mode-collapse", "critic.hidden=16", "generator.hidden=32"], "with one value"),
        # parallel-lines trains critics alone: its steps are not train.steps
        (["parallel-lines", "train.steps=5"], "no setting 'train.steps'; did you mean steps?"),
        (["mode-collapse", "train.lr=1e-4"], "see 'wgan experiment mode-collapse --help'"),
    ],
)
def test_a_dotted_name_that_does_not_fit_is_one_line_with_the_fix(argv, says, tmp_path, capsys):
    assert main(["experiment", *argv, "--out-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("wgan: error: ") and err.count("\n") == 1
    assert says in err
    assert not list(tmp_path.iterdir())  # refused before any run directory


def test_help_lists_the_training_config_names(capsys):
    assert main(["experiment", "overfitting", "--help"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line.split()[1] for line in lines if line.startswith(("train.", "g_"))}
    assert rows["train.steps"] == "steps" and rows["train.eval_every"] == "eval_every"
    assert rows["g_optim.lr"] == "+"  # "g_optim.lr + d_optim.lr  lr (given together, ...)"
    assert any(line.startswith("critic.hidden ") and "critic_hidden" in line for line in lines)
    assert any("quick size (--quick" in line for line in lines)


def test_overrides_must_be_a_list():
    with pytest.raises(ConfigError, match="list of 'key=value' strings, got str"):
        run_experiment("mode-collapse", "steps=3")
