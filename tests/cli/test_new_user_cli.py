"""What a new user trips on at the command line (issue 25, items 4, 12 and 13): ``wgan config``,
close matches for keys and commands, ``--dry-run`` checking the data, a text preset given a
file, ``train.seed=0,1``, YAML lines, ``sample --out`` into a new folder, one default seed for
sample, eval and interpolate, and the line ``--resume`` prints."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import tiny

from wgan.cli.app import build_parser, main

FAST = tiny(hidden=16, steps=4, eval_samples=200)


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("wgan: error: ")
    return lines[0]


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    """A tiny finished toy run (4 steps, linear learning-rate decay)."""
    out = tmp_path_factory.mktemp("runs")
    code = main(["train", *FAST, "train.lr_decay=linear", "--out-dir", str(out), "--json"])
    assert code == 0
    (run_dir,) = out.iterdir()
    return run_dir


# --------------------------------------------------------------------------------------------
# wgan config, and train --help pointing to it
# --------------------------------------------------------------------------------------------


def test_config_lists_every_key_with_type_default_range_and_meaning(capsys):
    from wgan.config import config_keys

    code, out, err = run_cli(capsys, "config", "digits-wgan-gp")
    assert code == 0 and err == ""
    for row in config_keys("digits-wgan-gp"):
        assert f"  {row.key} " in out, row.key
    steps = {row.key: row for row in config_keys("digits-wgan-gp")}["train.steps"].default
    row = next(line for line in out.splitlines() if line.startswith("  train.steps "))
    assert row.split()[1:3] == ["int", str(steps)]
    assert row.endswith(">= 1, <= 1,000,000,000,000")
    assert "generator iterations in all" in out
    assert out.startswith("digits-wgan-gp: ")


def test_config_section_key_json_and_overrides(capsys):
    code, out, _ = run_cli(capsys, "config", "toy-wgan-gp", "--section", "train", "train.steps=7")
    assert code == 0
    keys = [line.split()[0] for line in out.splitlines() if line.startswith("  train.")]
    assert "train.steps" in keys and all(k.startswith("train.") for k in keys)
    steps = next(line for line in out.splitlines() if line.startswith("  train.steps "))
    assert steps.split()[1:3] == ["int", "7"]
    code, out, _ = run_cli(capsys, "config", "--section", "g_optim.lr", "--json")
    rows = json.loads(out)
    assert [r["key"] for r in rows] == ["g_optim.lr"]
    assert rows[0]["type"] == "float" and rows[0]["range"] == "> 0" and rows[0]["meaning"]


def test_config_unknown_section_is_one_line_with_close_match(capsys):
    code, _, err = run_cli(capsys, "config", "--section", "trian")
    assert code == 2
    assert "did you mean train" in _one_error_line(err)


def test_train_help_points_to_wgan_config(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "wgan config [PRESET]" in " ".join(out.split())


# --------------------------------------------------------------------------------------------
# Close matches: commands and keys
# --------------------------------------------------------------------------------------------


def test_misspelt_command_gets_did_you_mean(capsys):
    with pytest.raises(SystemExit) as info:
        main(["trian"])
    assert info.value.code == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "invalid choice: 'trian'; did you mean train?" in line


def test_misspelt_choice_of_an_option_gets_did_you_mean(capsys):
    with pytest.raises(SystemExit):
        main(["sample", "RUN", "--out", "x.npy", "--refine", "flw"])
    assert "did you mean flow?" in _one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    "override,needle",
    [
        ("steps=100", "did you mean train.steps?"),
        ("train.lr=1e-3", "did you mean g_optim.lr, d_optim.lr?"),
        ("train.seed=0,1", "'wgan sweep PRESET --seeds 0,1'"),
    ],
)
def test_train_key_mistakes_say_the_fix(capsys, tmp_path, override, needle):
    code, _, err = run_cli(capsys, "train", override, "--dry-run", "--out-dir", str(tmp_path))
    assert code == 2
    assert needle in _one_error_line(err)


def test_yaml_error_gives_line_and_column(capsys, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  steps: 5\n bad: [\n")
    code, _, err = run_cli(capsys, "train", str(path), "--dry-run")
    assert code == 2
    assert "is not valid YAML: line 3, column 2: " in _one_error_line(err)


# --------------------------------------------------------------------------------------------
# --dry-run builds the data
# --------------------------------------------------------------------------------------------


def test_dry_run_refuses_an_unknown_dataset(capsys):
    code, out, err = run_cli(capsys, "train", "data.name=8gaussian", "--dry-run")
    assert code == 2 and out == ""
    assert "unknown dataset '8gaussian'; did you mean 8gaussians" in _one_error_line(err)


def test_dry_run_refuses_a_missing_data_path(capsys, tmp_path):
    missing = tmp_path / "my-pictures"
    argv = ["digits-wgan-gp", "data.name=folder", f"data.path={missing}", "--dry-run"]
    code, out, err = run_cli(capsys, "train", *argv)
    assert code == 2 and out == ""
    assert str(missing) in _one_error_line(err)


def test_dry_run_says_what_data_it_checked(capsys):
    code, out, err = run_cli(capsys, "train", "digits-wgan-gp", "--dry-run")
    assert code == 0 and err == ""
    head, rest = out.split("\n", 1)  # a YAML comment, then the config as in config.yaml
    assert head == "# data checked: digits: 1,500 images of 1x16x16, 10 classes"
    assert rest.startswith("name: digits-wgan-gp\n")


def test_text_preset_takes_a_file_without_data_name(capsys, tmp_path):
    corpus = tmp_path / "f.txt"
    corpus.write_text("the cat sat on the mat\n" * 100)
    code, out, err = run_cli(capsys, "train", "text-wgan-gp", f"data.path={corpus}", "--dry-run")
    assert code == 0, err
    assert "  name: text\n" in out and f"  path: {corpus}\n" in out
    assert out.startswith("# data checked: text: ")


# --------------------------------------------------------------------------------------------
# One default seed; sample --out into a new folder; --resume's line
# --------------------------------------------------------------------------------------------


def test_sample_eval_and_interpolate_share_one_default_seed(toy_run):
    from wgan.analysis import latent
    from wgan.training.run import SAMPLE_SEED, load_run

    parser = build_parser()
    seeds = {
        name: parser.parse_args([name, "RUN", *extra]).seed
        for name, extra in (
            ("sample", ["--out", "x.npy"]),
            ("eval", []),
            ("interpolate", ["--out", "x.png"]),
        )
    }
    assert seeds == {"sample": None, "eval": None, "interpolate": None}  # the run's default
    run = load_run(toy_run)
    default = latent.interpolation_grid(run, num_paths=1, steps=3, path="linear")
    same = latent.interpolation_grid(run, num_paths=1, steps=3, path="linear", seed=SAMPLE_SEED)
    assert np.array_equal(default.z.numpy(), same.z.numpy())
    assert run.sample_seed == SAMPLE_SEED


def test_sample_into_a_new_folder_says_it_created_it(capsys, toy_run, tmp_path):
    out = tmp_path / "new" / "dir" / "x.npy"
    code, stdout, err = run_cli(capsys, "sample", str(toy_run), "--num", "5", "--out", str(out))
    assert code == 0
    assert err == f"wgan: created the folder {out.parent} for --out\n"
    assert np.load(out).shape == (5, 2) and str(out) in stdout
    code, _, err = run_cli(capsys, "sample", str(toy_run), "--num", "5", "--out", str(out))
    assert code == 0 and "created" not in err  # the folder exists now: nothing to say


def test_resume_prints_steps_and_the_lr_schedule(capsys, toy_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(toy_run, run)
    code, out, err = run_cli(capsys, "train", "--resume", str(run), "train.steps=8", "--json")
    assert code == 0
    json.loads(out)  # stdout stays the JSON object
    line = next(x for x in err.splitlines() if x.startswith("wgan: resuming"))
    assert "resuming at step 4: train.steps 4 -> 8;" in line
    assert "lr x 0 -> lr x 0.5 at step 4, then linearly to 0 at step 8" in line
