"""Config a new user can discover (issue 25, items 4, 11 and 12): every key listed with its
type, default, range and meaning; close matches across sections; YAML errors with their line;
a list of values pointing to sweeps; the Python API saying which type it expected; the data
checked without training; and the line a resume prints about steps and the learning rate."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from helpers import tiny

import wgan
from wgan.config import Config, config_keys, config_sections, leaf_items, resolve, validate
from wgan.config.validate import value_ranges
from wgan.errors import ConfigError, DataError, WganError

# --------------------------------------------------------------------------------------------
# wgan config: every key with type, default, range and meaning
# --------------------------------------------------------------------------------------------


def test_every_key_is_listed_once_with_a_meaning():
    rows = config_keys()
    assert wgan.config_keys is config_keys  # from the package too
    keys = [row.key for row in rows]
    assert keys == [key for key, _, _ in leaf_items(Config())]  # all of them, in order
    undocumented = [row.key for row in rows if not row.meaning.strip()]
    assert undocumented == []  # a new field needs its comment in wgan/config/sections.py
    assert all(row.type for row in rows)


def test_defaults_are_the_presets_values_and_overrides():
    cfg = resolve("digits-wgan-gp", ["train.steps=7"])
    rows = {row.key: row for row in config_keys("digits-wgan-gp", ["train.steps=7"])}
    for key, value, _ in leaf_items(cfg):
        assert rows[key].default == value, key
    assert rows["train.steps"].default == 7
    assert rows["data.name"].default == "digits"
    assert rows["data.name"].base_default == Config().data.name  # the dataclass's own


def test_ranges_and_choices_are_those_enforced():
    rows = {row.key: row for row in config_keys()}
    assert rows["train.steps"].range == ">= 1, <= 1,000,000,000,000"
    assert rows["objective.pi"].range == "in (0, 1)"
    assert rows["g_optim.name"].type == "choice"
    assert rows["g_optim.name"].range == "adam, rmsprop, sgd"
    assert rows["g_optim.betas"].type == "[float, float]"
    assert rows["data.n_modes"].type == "int or null"
    assert "a resume with more steps" in rows["train.lr_decay"].meaning


def _bound(rule: str) -> tuple[str, float] | None:
    match = re.fullmatch(r"(>=|>) (-?[0-9.]+)(?: \(.*\))?", rule.strip())
    return (match.group(1), float(match.group(2))) if match else None


def test_every_lower_bound_shown_is_enforced():
    """The range text comes from validate()'s own checks: a value just outside each shown
    lower bound is refused, naming the key; the bound itself (for >=) is accepted."""
    checked = 0
    for key, rule_text in value_ranges(resolve()).items():
        for rule in rule_text.split(", "):
            bound = _bound(rule)
            if bound is None:
                continue
            op, low = bound
            outside = low - 1 if op == ">=" else low
            section, _, name = key.rpartition(".")
            for value, refused in ((outside, True), (low, op == ">")):
                cfg = resolve()
                obj = getattr(cfg, section)
                is_float = isinstance(getattr(Config(), section).__dict__[name], float)
                setattr(obj, name, float(value) if is_float else int(value))
                if refused:
                    with pytest.raises(ConfigError, match=re.escape(key)):
                        validate(cfg)
                else:
                    validate(cfg)
            checked += 1
    assert checked >= 30


def test_section_filter_and_unknown_section():
    rows = config_keys(section="train")
    assert rows and all(row.key.startswith("train.") for row in rows)
    assert [row.key for row in config_keys(section="train.steps")] == ["train.steps"]
    with pytest.raises(ConfigError, match="did you mean train"):
        config_keys(section="trian")
    assert list(config_sections()) == [
        f.name for f in dataclasses.fields(Config) if f.name not in ("name", "out_dir")
    ]
    assert config_sections()["train"].startswith("The loop:")


# --------------------------------------------------------------------------------------------
# Close matches across sections, several values, YAML lines
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "override,expected",
    [
        ("steps=100", "did you mean train.steps?"),
        ("train.lr=1e-3", "did you mean g_optim.lr, d_optim.lr?"),
        ("lr=1e-3", "did you mean g_optim.lr, d_optim.lr?"),
        ("batch_size=64", "did you mean data.batch_size?"),
        ("train.stepz=5", "did you mean train.steps"),
        ("trian.steps=5", "did you mean train"),
    ],
)
def test_unknown_keys_name_close_matches_in_every_section(override, expected):
    with pytest.raises(ConfigError) as info:
        resolve("toy-wgan-gp", [override])
    assert expected in str(info.value)
    assert "wgan config" in str(info.value)


@pytest.mark.parametrize(
    "override,expected",
    [
        ("train.seed=0,1", "'wgan sweep PRESET --seeds 0,1'"),
        ("train.seed=[0, 1]", "'wgan sweep PRESET --seeds 0,1'"),
        ("d_optim.lr=1e-4,3e-4", "'wgan study PRESET --vary d_optim.lr=1e-4,3e-4'"),
    ],
)
def test_several_values_point_to_sweep_and_study(override, expected):
    with pytest.raises(ConfigError) as info:
        resolve("toy-wgan-gp", [override])
    assert expected in str(info.value)


def test_a_bad_value_with_a_comma_is_not_a_sweep():
    with pytest.raises(ConfigError) as info:
        resolve("toy-wgan-gp", ["train.seed=a,b"])
    assert "sweep" not in str(info.value)


def test_yaml_syntax_error_names_line_and_column(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  steps: 5\n bad: [\n")
    with pytest.raises(ConfigError) as info:
        resolve(str(path))
    message = str(info.value)
    assert "line 3, column 2" in message and "' bad: ['" in message
    assert "\n" not in message


def test_unknown_key_in_a_yaml_file_names_its_line(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("extends: toy-wgan-gp\ntrain:\n  steps: 5\n  stepz: 3\n")
    with pytest.raises(ConfigError, match=r"mine.yaml, line 4: unknown config key 'train.stepz'"):
        resolve(str(path))
    path.write_text("extends: toy-wgan-gp\ntrain.seed: 0,1\n")
    with pytest.raises(ConfigError, match=r"line 2: train.seed must be int.*--seeds 0,1"):
        resolve(str(path))


# --------------------------------------------------------------------------------------------
# A text preset given a file
# --------------------------------------------------------------------------------------------


def test_text_preset_with_a_path_reads_the_file(tmp_path):
    corpus = tmp_path / "f.txt"
    corpus.write_text("hello world\n" * 200)
    cfg = resolve("text-wgan-gp", [f"data.path={corpus}"])
    assert cfg.data.name == "text" and cfg.data.path == str(corpus)
    from wgan.data.preflight import check_data

    assert check_data(cfg.data).startswith("text: ")
    # data.name given too: the contradiction is kept, and refused when the data is built
    both = resolve("text-wgan-gp", ["data.name=markov_text", f"data.path={corpus}"])
    assert both.data.name == "markov_text"
    with pytest.raises(ConfigError, match="made by code"):
        check_data(both.data)


# --------------------------------------------------------------------------------------------
# --dry-run's data check, from Python
# --------------------------------------------------------------------------------------------


def test_check_data_refuses_what_the_run_would(tmp_path):
    from wgan.data.preflight import check_data

    with pytest.raises(ConfigError, match="did you mean 8gaussians"):
        check_data(resolve("toy-wgan-gp", ["data.name=8gaussian"]).data)
    missing = tmp_path / "nowhere"
    cfg = resolve("digits-wgan-gp", ["data.name=folder", f"data.path={missing}"])
    with pytest.raises(DataError, match=re.escape(str(missing))):
        check_data(cfg.data)
    assert check_data(resolve("toy-wgan-gp").data) == "eight_gaussians: 2-D samples drawn in code"
    with pytest.raises(ConfigError, match="DataConfig"):
        check_data(resolve("toy-wgan-gp"))


# --------------------------------------------------------------------------------------------
# The Python API says which type it expected
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call,needle",
    [
        (lambda: wgan.resolve("toy-wgan-gp", "train.steps=5"), "got the str 'train.steps=5'"),
        (lambda: wgan.resolve("toy-wgan-gp", [5]), "an item must be a str, got int 5"),
        (lambda: wgan.resolve("toy-wgan-gp", 5), "got int 5"),
        (lambda: wgan.resolve(5), "a preset name or the path of a YAML file"),
        (lambda: wgan.train_run("toy-wgan-gp"), "train() takes a Config"),
        (lambda: wgan.train_run({"train": {"steps": 5}}), "train() takes a Config, e.g."),
        (lambda: wgan.Trainer("toy-wgan-gp", "x"), "Trainer() takes a Config, e.g."),
        (lambda: wgan.load_run(5), "run_dir must be a path (str or pathlib.Path), got int 5"),
        (lambda: wgan.load_run("x", device=0), "device must be a str"),
        (lambda: wgan.resume(5), "run_dir must be a path"),
        (lambda: wgan.resume("x", "train.steps=9"), "got the str 'train.steps=9'"),
        (lambda: wgan.run_sweep("toy-wgan-gp", [{}]), "a sweep's base must be a Config"),
        (
            lambda: wgan.run_sweep(wgan.resolve(), ["train.seed=1"]),
            "variants must be a list of dicts",
        ),
    ],
)
def test_api_bad_types_say_what_was_expected(call, needle):
    with pytest.raises(WganError) as info:
        call()
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_api_takes_paths_and_mappings(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("extends: toy-wgan-gp\ntrain: {steps: 9}\n")
    assert wgan.resolve(path).train.steps == 9  # a pathlib.Path
    assert wgan.resolve("toy-wgan-gp", {"train.steps": 8}).train.steps == 8
    assert wgan.resolve("toy-wgan-gp", ("train.steps=7",)).train.steps == 7


def test_a_bad_sweep_engine_makes_no_folder(tmp_path):
    with pytest.raises(ConfigError, match="unknown sweep engine"):
        wgan.run_sweep(wgan.resolve(), [{"train.seed": 0}], out_dir=tmp_path, engine="fast")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------
# Resuming with more steps: what happens to the learning rate
# --------------------------------------------------------------------------------------------


def test_resume_summary_says_steps_and_lr_schedule():
    from wgan.training.resume_check import resume_summary

    saved = resolve("toy-wgan-gp", ["train.steps=20", "train.lr_decay=linear"])
    more = resolve("toy-wgan-gp", ["train.steps=40", "train.lr_decay=linear"])
    line = resume_summary(saved, more, 20)
    assert "resuming at step 20: train.steps 20 -> 40" in line
    assert "lr x 0 -> lr x 0.5 at step 20, then linearly to 0 at step 40" in line
    same = resume_summary(saved, saved, 10)
    assert "train.steps 20;" in same and "continues: lr x 0.5 now" in same
    flat = resolve("toy-wgan-gp", ["train.steps=40", "train.lr_decay=none"])
    assert "constant (train.lr_decay=none)" in resume_summary(flat, flat, 20)
    faster = resolve("toy-wgan-gp", ["train.steps=40", "train.lr_decay=none", "d_optim.lr=2e-4"])
    assert "also d_optim.lr" in resume_summary(flat, faster, 20)


def test_resume_logs_the_line_and_takes_a_list(tmp_path):
    from wgan.training.train import resume, train

    cfg = resolve(
        "toy-wgan-gp", tiny("train.lr_decay=linear", hidden=16, steps=4, eval_samples=200)
    )
    cfg.out_dir = str(tmp_path)
    result = train(cfg, tensorboard=False)
    lines: list[str] = []
    resumed = resume(result.run_dir, ["train.steps=8"], tensorboard=False, log=lines.append)
    assert resumed.step == 8
    assert len(lines) == 1
    assert "train.steps 4 -> 8" in lines[0] and "lr x 0 -> lr x 0.5 at step 4" in lines[0]
    assert Path(resumed.run_dir) == Path(result.run_dir)
