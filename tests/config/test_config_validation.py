"""Config validation: every bad value is one clear ConfigError naming the key (issue 10, class 3/5).

YAML files: dotted keys are dotted overrides, a repeated key is an error naming it. Values: no
nan or inf anywhere, an upper bound next to every count, ``train.steps >= 1``, device names.
"""

import dataclasses
import math

import pytest

from wgan.cli.app import main
from wgan.config import (
    Config,
    leaf_items,
    read_yaml_mapping,
    resolve,
    set_value,
    validate,
)
from wgan.errors import ConfigError


def write(tmp_path, text, name="mine.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def one_line_error(capsys, argv):
    """Run the CLI; assert exit 2 with one ``wgan: error:`` line; return that line."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wgan: error: "), err
    assert "Traceback" not in err
    return lines[0]


# -- YAML files ---------------------------------------------------------------------------------


def test_dotted_yaml_keys_are_dotted_overrides(tmp_path):
    cfg = resolve(write(tmp_path, "extends: toy-wgan-gp\ntrain.steps: 7\ncritic.hidden: 32\n"))
    assert cfg.train.steps == 7 and cfg.critic.hidden == 32
    # the same as the nested spelling, and the same as the overrides on the command line
    nested = resolve(
        write(tmp_path, "extends: toy-wgan-gp\ntrain: {steps: 7}\ncritic: {hidden: 32}\n")
    )
    assert nested.to_dict() | {"name": "x"} == cfg.to_dict() | {"name": "x"}


@pytest.mark.parametrize(
    "text, needle",
    [
        ("trian.steps: 5\n", "unknown config key 'trian'; did you mean train"),
        ("train.stepz: 5\n", "unknown config key 'train.stepz'; did you mean train.steps"),
        ("train.steps.x: 5\n", "train.steps is not a section"),
        ("critic: {hidden.x: 5}\n", "critic.hidden is not a section"),
        ("train: {steps: 5}\ntrain.steps: 6\n", "config key 'train.steps' is given twice"),
        ("train.steps: 6\ntrain: {steps: 5}\n", "config key 'train.steps' is given twice"),
        ("train.steps: {a: 1}\n", "train.steps must be int"),
        ("train: 5\n", "train must be a mapping"),
    ],
)
def test_bad_dotted_yaml_keys_are_one_clear_error(tmp_path, text, needle):
    # Before: 'trian.steps' and 'train.steps.x' raised AttributeError; the two spellings of one
    # key silently let the last one win.
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.").replace("(", r"\(")):
        resolve(write(tmp_path, text))


@pytest.mark.parametrize(
    "text, key, line",
    [
        ("train:\n  steps: 5\ncritic: {hidden: 32}\ntrain:\n  n_critic: 2\n", "train", 4),
        ("train: {steps: 5, n_critic: 2, steps: 6}\n", "steps", 1),
        ("name: a\nname: b\n", "name", 2),
        ("data:\n  batch_size: 8\n  sigma: 0.1\n  batch_size: 16\n", "batch_size", 4),
    ],
)
def test_duplicate_yaml_keys_are_refused_naming_the_key(tmp_path, text, key, line):
    # Before: the last value silently won, dropping e.g. a whole 'train' block.
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=f"key '{key}' is given twice \\(line {line}\\)"):
        resolve(path)


def test_yaml_merge_keys_may_still_be_overridden():
    text = "base: &b {steps: 3, n_critic: 1}\ntrain: {<<: *b, steps: 4}\n"
    assert read_yaml_mapping(text, "x")["train"] == {"steps": 4, "n_critic": 1}


def test_duplicate_and_dotted_keys_through_the_cli(capsys, tmp_path):
    dup = write(tmp_path, "train: {steps: 5}\ntrain: {steps: 6}\n")
    assert "key 'train' is given twice" in one_line_error(capsys, ["train", dup, "--dry-run"])
    bad = write(tmp_path, "trian.steps: 5\n", "bad.yaml")
    assert "unknown config key 'trian'" in one_line_error(capsys, ["train", bad, "--dry-run"])


# -- numbers --------------------------------------------------------------------------------------


def float_keys():
    out = []
    for key, _, f in leaf_items(Config()):
        hint = str(f.type)
        if "float" in hint:
            out.append((key, "tuple" in hint))
    return out


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("key, pair", float_keys())
def test_nan_and_inf_are_refused_for_every_float_key(key, pair, bad):
    # Before: lr=inf, penalty_weight=inf, clip=inf, sigma=nan, radius=inf ... all passed.
    cfg = Config()
    set_value(cfg, key, [0.5, bad] if pair else bad)
    with pytest.raises(ConfigError, match=f"^{key} must be a finite number"):
        validate(cfg)


@pytest.mark.parametrize("text", ["nan", ".nan", "inf", ".inf", "-.inf", "1e999"])
def test_non_finite_overrides_from_the_command_line(text):
    for key in ("g_optim.lr", "constraint.penalty_weight", "constraint.clip"):
        with pytest.raises(ConfigError, match=f"^{key} must be a finite number"):
            resolve(None, [f"{key}={text}"])


def bounded_keys():
    return [(k, f.metadata["max"]) for k, _, f in leaf_items(Config()) if "max" in f.metadata]


def test_the_counts_have_upper_bounds_next_to_their_fields():
    bounds = dict(bounded_keys())
    expected = {
        "data.batch_size": 2**20,
        "critic.hidden": 65536,
        "generator.hidden": 65536,
        "critic.width": 4096,
        "generator.depth": 1000,
        "generator.latent_dim": 65536,
        "conditional.embed_dim": 65536,
        "train.eval_samples": 2**20,
        "train.n_critic": 1000,
    }
    assert expected.items() <= bounds.items()
    # every int field of the config has a bound (an int can overflow int64 otherwise)
    ints = {
        k
        for k, _, f in leaf_items(Config())
        if "int" in str(f.type) and "Literal" not in str(f.type)
    }
    assert ints - {"data.resolution", "data.channels"} <= set(bounds)


@pytest.mark.parametrize("key, bound", bounded_keys())
def test_every_bound_is_enforced_naming_key_and_bound(key, bound):
    cfg = Config()
    set_value(cfg, key, bound)
    validate(cfg)  # the bound itself is allowed
    set_value(cfg, key, bound + 1)
    with pytest.raises(ConfigError, match=f"^{key} must be <= {bound:,}, got {bound + 1:,}"):
        validate(cfg)


@pytest.mark.parametrize(
    "override, needle",
    [
        ("data.batch_size=99999999999999999999", "data.batch_size must be <= 1,048,576"),
        ("data.batch_size=1000000000000", "data.batch_size must be <= 1,048,576"),
        ("critic.hidden=1000000000", "critic.hidden must be <= 65,536"),
        ("train.eval_samples=1000000000000", "train.eval_samples must be <= 1,048,576"),
        ("generator.depth=100000", "generator.depth must be <= 1,000"),
        ("train.seed=99999999999999999999", "train.seed must be <= "),
        ("train.seed=-1", "train.seed must be >= 0"),
        ("critic.hidden=1e9", "critic.hidden must be int"),
        ("train.steps=0", "train.steps must be >= 1"),
        ("train.steps=-3", "train.steps must be >= 1"),
        ("train.device=cpux", "train.device must be auto, cpu, cuda or cuda:N, got 'cpux'"),
        ("train.device=cuda:x", "train.device must be auto, cpu, cuda or cuda:N"),
        ("train.device=", "train.device must be auto, cpu, cuda or cuda:N"),
    ],
)
def test_absurd_values_are_one_line_errors(capsys, override, needle):
    # Before: batch_size overflow was a TypeError traceback from torch, critic.hidden=10^9 an
    # allocation, train.device=cpux a RuntimeError traceback, train.steps=0 exit 0 with no run.
    with pytest.raises(ConfigError, match="^" + needle.replace("(", r"\(").replace(".", r"\.")):
        resolve(None, [override])
    assert needle in one_line_error(capsys, ["train", override, "--dry-run"])


def test_device_names_that_torch_rejects_are_config_errors():
    from wgan.training.run import resolve_device

    with pytest.raises(ConfigError, match="train.device must be"):
        resolve_device("cpux")
    assert str(resolve_device("cpu")) == "cpu" and str(resolve_device("cpu:0")) == "cpu:0"
    # a device this machine lacks is a run-time failure (exit 1), not an input error
    from wgan.errors import DeviceUnavailable

    with pytest.raises(DeviceUnavailable, match="cuda:99"):
        resolve_device("cuda:99")


def test_sections_and_presets_still_resolve():
    from wgan.config import preset_names

    for name in preset_names():
        validate(resolve(name))
    assert dataclasses.asdict(resolve())["train"]["steps"] >= 1


def test_fuzz_many_bad_values_per_key_through_the_cli(capsys):
    """Every key, many bad values: exit 0 (a value that happens to be valid) or exactly one
    line ``wgan: error: ...`` with exit 2, never a traceback."""
    bad_values = [
        "nan",
        "-inf",
        "-1",
        "0",
        "99999999999999999999",
        "1e400",
        "[1, 2, 3]",
        "{a: 1}",
        "''",
        "null",
        "true",
        "x y",
    ]
    for key, _, _ in leaf_items(Config()):
        for value in bad_values:
            code = main(["train", f"{key}={value}", "--dry-run"])
            out, err = capsys.readouterr()
            assert code in (0, 2), (key, value, code)
            assert "Traceback" not in err, (key, value, err)
            if code == 2:
                lines = err.strip().splitlines()
                assert len(lines) == 1 and lines[0].startswith("wgan: error: "), (key, value)
