"""``wgan experiment``: NAME --help lists every setting, a run ends with its verdicts (and a
warning on stderr for each claim the settings are too small to test), --json prints one object."""

import json

import pytest

from wgan.cli.app import main
from wgan.experiments import EXPERIMENTS
from wgan.experiments.framework import settings_fields

TINY = [
    "steps=3",
    "hidden=16",
    "n_seeds=1",
    "eval_samples=100",
    "batch_size=32",
    "methods=gan,wgan-gp",
    "datasets=8gaussians",
]


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_help_lists_every_setting_with_default_and_meaning(name, capsys):
    assert main(["experiment", name, "--help"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith(f"usage: wgan experiment {name}")
    for h in settings_fields(EXPERIMENTS[name].settings):
        row = next((line for line in lines if line.split(" ", 1)[0] == h.name), None)
        assert row is not None, f"{h.name} missing from the help of {name}"
        assert repr(h.default) in row
        if h.meaning:
            assert h.meaning in row


def test_help_without_a_name_is_the_command_help(capsys):
    assert main(["experiment", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--quick" in out and "--json" in out and "'all'" in out


def test_run_prints_verdicts_and_warns_when_too_short(tmp_path, capsys):
    assert main(["experiment", "mode-collapse", *TINY, "--out-dir", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    tail = captured.out.split("verdicts:\n", 1)[1].splitlines()
    assert len(tail) == 2
    assert all(line.startswith("  [not tested at these settings]") for line in tail)
    warnings = [line for line in captured.err.splitlines() if line.startswith("wgan: warning:")]
    assert len(warnings) == 2 and all("3 generator iterations < 1000" in w for w in warnings)


def test_json_is_one_object_with_the_verdicts(tmp_path, capsys):
    argv = ["experiment", "mode-collapse", *TINY, "--json", "--out-dir", str(tmp_path)]
    assert main(argv) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["experiment"] == "mode-collapse"
    assert [v["status"] for v in record["verdicts"]] == ["not tested at these settings"] * 2
    saved = json.loads(open(record["results"]).read())
    assert saved["verdicts"] == record["verdicts"]
    assert record["numbers"]["summary"][0]["dataset"] == "8gaussians"


def test_a_one_item_list_setting_is_text_not_a_number():
    from wgan.experiments import get_experiment
    from wgan.experiments.common import apply_overrides

    settings = apply_overrides(get_experiment("likelihood").settings(), ["dims=64"])
    assert settings.dims == "64"
    settings = apply_overrides(get_experiment("discrete-data").settings(), ["steps=7"])
    assert settings.steps == 7  # numbers stay numbers where the setting is one
