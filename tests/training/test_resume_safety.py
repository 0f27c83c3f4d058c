"""A resume can never destroy its run (issue 10, class 1) and a checkpoint is never trusted with
a file to execute (class 6).

A resume is validated exactly like a new run before anything is written; it refuses what cannot
change (shapes, optimiser kind, code paths: named with both values), applies what can
(``wgan.config.RESUME_MAY_CHANGE``), and refuses an edited ``config.yaml`` instead of silently
ignoring and overwriting it. After every refused or failed resume the run still loads and
evaluates at its last good step.
"""

import json
import math
import shutil
import typing
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from wgan.cli.app import main
from wgan.config import (
    RESUME_MAY_CHANGE,
    Config,
    check_resume,
    from_dict,
    leaf_items,
    set_value,
)
from wgan.errors import ConfigError, WganError
from wgan.store.checkpoints import load_checkpoint, save_checkpoint
from wgan.training.run import load_run
from wgan.training.train import resume, train

STEPS = 4


@pytest.fixture
def run_dir(fast_config):
    """A finished 4-step toy run with a checkpoint, config.yaml and metrics (no TensorBoard)."""
    cfg = fast_config(
        None, "generator.hidden=16", "critic.hidden=16", f"train.steps={STEPS}", "train.log_every=2"
    )
    return train(cfg, tensorboard=False).run_dir


def snapshot(run: Path) -> dict[str, bytes]:
    """Every file of a run directory and its bytes (the lock file excepted)."""
    return {
        str(p.relative_to(run)): p.read_bytes()
        for p in sorted(run.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def assert_last_good_state(run: Path, step: int = STEPS) -> None:
    restored = load_run(run)
    assert restored.step == step
    metrics = restored.evaluate(200)
    assert metrics["n_modes"] == 8 and math.isfinite(metrics["w1"])


# -- every refused resume writes nothing --------------------------------------------------------

REFUSED = [
    ({"train.n_critic": 0}, "train.n_critic must be >= 1"),
    ({"train.log_every": 0}, "train.log_every must be >= 1"),
    ({"d_optim.lr": -1}, "d_optim.lr must be > 0"),
    ({"g_optim.lr": math.inf}, "g_optim.lr must be a finite number"),
    ({"constraint.penalty_weight": "inf"}, "constraint.penalty_weight must be a finite number"),
    ({"constraint.clip": math.nan}, "constraint.clip must be a finite number"),
    (
        {"d_optim.name": "rmsprop"},
        "d_optim.name from 'adam' to 'rmsprop' (the saved optimiser state is not a rmsprop "
        "state): this key cannot change on resume",
    ),
    ({"critic.hidden": 32}, "critic.hidden from 16 to 32"),
    ({"generator.latent_dim": 3}, "generator.latent_dim from 2 to 3"),
    ({"data.name": "25gaussians"}, "data.name from '8gaussians' to '25gaussians'"),
    ({"objective.name": "hinge"}, "objective.name from 'wasserstein' to 'hinge'"),
    ({"train.seed": 1}, "train.seed from 0 to 1"),
    ({"train.precision": "bf16"}, "train.precision from 'fp32' to 'bf16'"),
    ({"train.steps": STEPS}, f"the run is already at step {STEPS}"),
    ({"train.steps": 0}, "train.steps must be >= 1"),
    ({"train.device": "cpux"}, "train.device must be auto, cpu, cuda or cuda:N"),
    ({"trian.steps": 9}, "unknown config key 'trian'"),
    ({"train.steps": "many"}, "train.steps must be int"),
    ({"data.batch_size": 99999999999999999999}, "data.batch_size must be <= 1,048,576"),
]


@pytest.mark.parametrize("overrides, needle", REFUSED, ids=[str(o) for o, _ in REFUSED])
def test_a_refused_resume_writes_nothing_and_the_run_still_works(run_dir, overrides, needle):
    """Before: lr=inf trained, rewrote config.yaml and logged NaNs; seed, precision or steps
    <= step were accepted and rewrote config.yaml; rmsprop and critic.hidden failed without
    naming the key; cpux was a RuntimeError traceback."""
    before = snapshot(run_dir)
    overrides = {"train.steps": 8, **overrides}
    with pytest.raises(WganError) as err:
        resume(run_dir, overrides, tensorboard=True)
    assert needle in str(err.value)
    assert len(str(err.value).splitlines()) == 1
    assert snapshot(run_dir) == before  # config.yaml, metrics, checkpoint untouched
    assert not (run_dir / "tb").exists()  # no TensorBoard writer was opened
    assert_last_good_state(run_dir)


def test_a_refused_resume_through_the_cli_then_eval(capsys, run_dir):
    before = snapshot(run_dir)
    for override in ("train.n_critic=0", "train.log_every=0", "d_optim.lr=-1", "critic.hidden=8"):
        code = main(["train", "--resume", str(run_dir), "train.steps=9", override])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("wgan: error: ") and len(err.splitlines()) == 1, err
        assert override.split("=")[0] in err
    assert snapshot(run_dir) == before
    assert main(["eval", str(run_dir), "--num", "200", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["step"] == STEPS


# -- which keys may change -------------------------------------------------------------------------


def field_type(key: str):
    """The type annotation of a dotted config key."""
    section: object = Config()
    *path, name = key.split(".")
    for part in path:
        section = getattr(section, part)
    return typing.get_type_hints(type(section))[name]


def other_value(key: str, value) -> object:
    """A different, valid-looking value for a config key (by its type)."""
    hint = field_type(key)
    args = typing.get_args(hint)
    if typing.get_origin(hint) is typing.Literal:
        return next(a for a in args if a != value)
    if isinstance(value, bool):
        return not value
    if isinstance(value, tuple):
        return (0.25, 0.5)
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value + 0.125 if value < 0.5 else value / 2
    if value is None:
        return {
            "data.resolution": 16,
            "data.channels": 1,
            "data.split": "test",
            "data.classes": ("ants", "bees"),
        }.get(key, 0.5 if float in args else (3 if int in args else "x"))
    return value + "x"


def test_the_may_change_set_is_this_list():
    """The one place that says what a resume may change (wgan.config.RESUME_MAY_CHANGE)."""
    assert set(RESUME_MAY_CHANGE) == {
        "train.steps",
        "train.threads",
        "train.n_critic",
        "train.lr_decay",
        "train.log_every",
        "train.eval_every",
        "train.eval_samples",
        "train.figure_every",
        "train.checkpoint_every",
        "train.checkpoint_minutes",
        "train.progress",
        "train.device",
        "train.ema",
        "train.inception_weights",
        "d_optim.lr",
        "d_optim.betas",
        "d_optim.weight_decay",
        "g_optim.lr",
        "g_optim.betas",
        "g_optim.weight_decay",
        "constraint.penalty_weight",
        "constraint.penalty_target",
        "constraint.penalty_every",
        "constraint.clip",
        "data.path",
    }
    keys = {k for k, _, _ in leaf_items(Config())}
    assert set(RESUME_MAY_CHANGE) <= keys  # no stale names
    saved = Config()
    for key, value, _ in leaf_items(Config()):
        cfg = from_dict(saved.to_dict())
        set_value(cfg, key, other_value(key, value))
        if key in RESUME_MAY_CHANGE:
            check_resume(saved, cfg)
        else:
            with pytest.raises(ConfigError, match=f"cannot resume with {key} from "):
                check_resume(saved, cfg)


def test_every_other_key_is_refused_on_resume_naming_it(run_dir):
    """Through resume itself, every key outside the may-change set, changed, is refused with
    its name and nothing is written."""
    before = snapshot(run_dir)
    saved = load_run(run_dir).cfg
    for key, value, _ in leaf_items(saved):
        if key in RESUME_MAY_CHANGE:
            continue
        new = other_value(key, value)
        with pytest.raises(WganError, match=key.replace(".", r"\.")):
            resume(run_dir, {key: new, "train.steps": 8}, tensorboard=False)
    assert snapshot(run_dir) == before


def test_allowed_changes_apply_from_the_first_resumed_step(run_dir, tmp_path):
    """A learning-rate override changes the updates (before the optimiser kept the old lr);
    cadences and the penalty weight apply; config.yaml then describes the new checkpoint."""
    same, faster, other = (tmp_path / n for n in ("same", "faster", "other"))
    for copy in (same, faster, other):
        shutil.copytree(run_dir, copy)
    resume(same, {"train.steps": 6}, tensorboard=False)
    resume(faster, {"train.steps": 6, "d_optim.lr": 0.05, "g_optim.lr": 0.05}, tensorboard=False)
    a, b = load_checkpoint(same), load_checkpoint(faster)
    assert a["step"] == b["step"] == 6
    assert b["config"]["d_optim"]["lr"] == 0.05 and b["config"]["g_optim"]["lr"] == 0.05
    assert b["opt_g"]["step"].item() == 6  # the optimiser state continued, not restarted
    start = load_checkpoint(run_dir)
    moved_a = a["critic"]["body.0.weight"] - start["critic"]["body.0.weight"]
    moved_b = b["critic"]["body.0.weight"] - start["critic"]["body.0.weight"]
    assert moved_b.abs().max() > 20 * moved_a.abs().max()  # lr 0.05 vs 1e-4
    assert yaml.safe_load((faster / "config.yaml").read_text()) == b["config"]

    changes = {
        "train.steps": 7,
        "train.log_every": 1,
        "train.checkpoint_every": 1,
        "constraint.penalty_weight": 5.0,
        "train.n_critic": 2,
        "train.ema": 0.5,
        "d_optim.betas": [0.5, 0.99],
    }
    resume(other, changes, tensorboard=False)
    c = load_checkpoint(other)
    assert c["step"] == 7 and c["opt_d"]["step"].item() == start["opt_d"]["step"].item() + 3 * 2
    assert c["config"]["constraint"]["penalty_weight"] == 5.0
    assert c["generator_ema"] is not None
    records = [json.loads(line) for line in (other / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records if r["kind"] == "train"]
    assert steps[-3:] == [5, 6, 7]  # log_every=1 applied
    assert yaml.safe_load((other / "config.yaml").read_text()) == c["config"]


def test_resume_needs_steps_beyond_the_checkpoint(run_dir):
    with pytest.raises(ConfigError, match=f"already at step {STEPS}.*train.steps=N with N > 4"):
        resume(run_dir, tensorboard=False)


# -- config.yaml is a record of the checkpoint, not an input ---------------------------------------


def edit_config(run: Path, section: str, key: str, value) -> None:
    data = yaml.safe_load((run / "config.yaml").read_text())
    data[section][key] = value
    (run / "config.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def test_an_edited_config_yaml_is_refused_naming_the_keys(run_dir):
    """Before: the edit was silently ignored and config.yaml overwritten with the old value."""
    lr = load_checkpoint(run_dir)["config"]["d_optim"]["lr"]
    edit_config(run_dir, "d_optim", "lr", 0.001)
    edit_config(run_dir, "critic", "hidden", 32)
    before = snapshot(run_dir)
    with pytest.raises(ConfigError) as err:
        resume(run_dir, {"train.steps": 6}, tensorboard=False)
    message = str(err.value)
    assert "config.yaml was edited" in message and len(message.splitlines()) == 1
    assert f"d_optim.lr: 0.001 in config.yaml, {lr!r} in the checkpoint" in message
    assert "critic.hidden: 32 in config.yaml, 16 in the checkpoint (it cannot change" in message
    assert message.endswith(
        f"pass it as an override: wgan train --resume {run_dir} d_optim.lr=0.001"
    )
    assert snapshot(run_dir) == before
    assert_last_good_state(run_dir)

    # Restoring the shape and passing the lr as an override applies it.
    edit_config(run_dir, "critic", "hidden", 16)
    resume(run_dir, {"train.steps": 6, "d_optim.lr": 0.001}, tensorboard=False)
    state = load_checkpoint(run_dir)
    assert state["config"]["d_optim"]["lr"] == 0.001
    assert yaml.safe_load((run_dir / "config.yaml").read_text()) == state["config"]


def test_a_broken_or_missing_config_yaml(run_dir):
    (run_dir / "config.yaml").write_text("train: {steps: [\n")
    with pytest.raises(ConfigError, match="not valid YAML.*delete it to resume"):
        resume(run_dir, {"train.steps": 6}, tensorboard=False)
    (run_dir / "config.yaml").write_text("train: {stepz: 3}\n")
    with pytest.raises(ConfigError, match="train.stepz.*delete it to resume"):
        resume(run_dir, {"train.steps": 6}, tensorboard=False)
    assert_last_good_state(run_dir)
    (run_dir / "config.yaml").unlink()  # the checkpoint holds the config
    assert resume(run_dir, {"train.steps": 6}, tensorboard=False).step == 6
    assert (
        yaml.safe_load((run_dir / "config.yaml").read_text()) == load_checkpoint(run_dir)["config"]
    )


def test_a_resume_killed_before_its_first_checkpoint_leaves_config_yaml_as_it_was(
    run_dir, monkeypatch
):
    from wgan.training.trainer import Trainer

    before = (run_dir / "config.yaml").read_bytes()
    original = Trainer.train_step

    def crash(self):
        if self.step == STEPS + 1:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(Trainer, "train_step", crash)
    with pytest.raises(KeyboardInterrupt):
        resume(run_dir, {"train.steps": 9, "d_optim.lr": 0.001}, tensorboard=False)
    monkeypatch.setattr(Trainer, "train_step", original)
    assert (run_dir / "config.yaml").read_bytes() == before  # it still describes the checkpoint
    assert resume(run_dir, {"train.steps": 6}, tensorboard=False).step == 6  # not refused


# -- trust: no file named by a checkpoint is ever loaded -------------------------------------------


@pytest.fixture
def image_run(tmp_path):
    """A 1-step image run on a folder of 8x8 grayscale PNGs (no classifier metrics)."""
    from PIL import Image

    from wgan.config import resolve

    folder = tmp_path / "pictures"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8), "L").save(folder / f"{i}.png")
    cfg = resolve(
        "digits-wgan-gp",
        [
            "data.name=folder",
            f"data.path={folder}",
            "data.resolution=8",
            "data.channels=1",
            "data.batch_size=4",
            "generator.width=4",
            "critic.width=4",
            "generator.latent_dim=4",
            "train.steps=1",
            "train.n_critic=1",
            "train.progress=false",
            "train.eval_samples=8",
            "train.figure_every=0",
            "train.eval_every=0",
        ],
    )
    cfg.out_dir = str(tmp_path / "runs")
    return train(cfg, tensorboard=False).run_dir


class Loaded(Exception):
    pass


@pytest.fixture
def spy_inception(monkeypatch):
    """Replace the Inception loader: record the paths it is asked to load, then stop."""
    import wgan.metrics.inception as inception

    calls: list[str] = []

    def fake_load(path=None, *args, **kwargs):
        calls.append(str(path))
        raise Loaded(str(path))

    monkeypatch.setattr(inception, "load_inception", fake_load)
    monkeypatch.delenv("WGAN_INCEPTION_WEIGHTS", raising=False)
    return calls


def test_a_checkpoint_cannot_choose_a_file_for_eval_to_load(
    image_run, spy_inception, tmp_path, capsys, monkeypatch
):
    """Before: the checkpoint's train.inception_weights was handed to torch.jit.load."""
    evil = tmp_path / "evil.pt"
    evil.write_bytes(b"TorchScript that would run code")
    state = load_checkpoint(image_run)
    state["config"]["train"]["inception_weights"] = str(evil)
    save_checkpoint(image_run / "checkpoint.pt", state)

    run = load_run(image_run)
    assert run.cfg.train.inception_weights is None  # cleared on load
    run.evaluate(8)
    assert main(["eval", str(image_run), "--num", "8", "--json"]) == 0
    capsys.readouterr()
    # config.yaml names it too (consistent with the checkpoint, so the resume goes ahead)
    (image_run / "config.yaml").write_text(yaml.safe_dump(state["config"], sort_keys=False))
    resume(image_run, {"train.steps": 2, "train.eval_every": 1}, tensorboard=False)
    assert spy_inception == []

    # The user's own choices are honoured: a call argument, the CLI option, the environment.
    mine = tmp_path / "mine.pt"
    with pytest.raises(Loaded):
        load_run(image_run).evaluate(8, inception_weights=str(mine))
    with pytest.raises(Loaded):
        main(["eval", str(image_run), "--num", "8", "--inception-weights", str(mine)])
    monkeypatch.setenv("WGAN_INCEPTION_WEIGHTS", str(mine))
    with pytest.raises(Loaded):
        load_run(image_run).evaluate(8)
    assert spy_inception == [str(mine)] * 3
    assert str(evil) not in spy_inception


def test_samples_are_checked_with_a_clear_error_for_bad_counts(run_dir):
    run = load_run(run_dir)
    for n, needle in [(0, ">= 1"), (-5, ">= 1"), (2.5, "an integer"), (10**12, "must be <=")]:
        with pytest.raises(WganError, match=needle):
            run.samples(n)
    with pytest.raises(WganError, match=">= 1"):
        run.evaluate(0)  # before: 0 silently meant train.eval_samples
    assert run.samples(np.int64(3)).shape == (3, 2)
    assert torch.isfinite(run.samples(10)).all()


def test_fuzz_bad_values_for_every_key_through_cli_resume(capsys, run_dir):
    """Every key, many bad values, through ``wgan train --resume``: one line, exit 2, the key
    named when its value is what is refused, and the run untouched. ``train.steps`` is left at
    the run's step, so a value that happens to be acceptable ends in "nothing to train"
    instead of training."""
    before = snapshot(run_dir)
    bad_values = ["nan", "-inf", "-1", "0", "99999999999999999999", "[1, 2, 3]", "{a: 1}", "x y"]
    for key, _, _ in leaf_items(Config()):
        if key == "train.steps":
            continue
        for value in bad_values:
            argv = ["train", "--resume", str(run_dir), f"train.steps={STEPS}", f"{key}={value}"]
            code = main(argv)
            err = capsys.readouterr().err
            assert code == 2, (key, value)
            lines = err.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("wgan: error: "), (key, value, err)
            assert "nothing to train" in err or key in err, (key, value, err)
    assert snapshot(run_dir) == before
    assert_last_good_state(run_dir)
