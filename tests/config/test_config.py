"""Config: presets, overrides with type checks, helpful errors."""

import pytest

from wgan.config import Config, dump_yaml, from_dict, preset_names, resolve
from wgan.errors import ConfigError


def test_default_is_main_job():
    cfg = resolve()
    assert cfg.name == "toy-wgan-gp"
    assert cfg.objective.name == "wasserstein" and cfg.constraint.penalty == "two_sided"
    assert cfg.data.name == "8gaussians" and cfg.data.batch_size == 256


def test_paper_defaults_per_method():
    wgan = resolve("wgan")
    assert (wgan.d_optim.name, wgan.d_optim.lr, wgan.constraint.clip) == ("rmsprop", 5e-5, 0.01)
    assert (wgan.train.n_critic, wgan.data.batch_size) == (5, 64)
    gp = resolve("wgan-gp")
    assert gp.constraint.penalty_weight == 10.0 and gp.d_optim.betas == (0.0, 0.9)
    assert gp.d_optim.lr == 1e-4 and gp.train.n_critic == 5
    gan = resolve("gan")
    assert gan.d_optim.lr == 2e-4 and gan.d_optim.betas == (0.5, 0.999) and gan.train.n_critic == 1


def test_every_preset_resolves():
    for name in preset_names():
        cfg = resolve(name)
        assert isinstance(cfg, Config)


def test_overrides_are_typed():
    cfg = resolve(None, ["critic.hidden=64", "d_optim.betas=[0.5, 0.99]", "d_optim.lr=1"])
    assert cfg.critic.hidden == 64 and cfg.d_optim.betas == (0.5, 0.99)
    assert isinstance(cfg.d_optim.lr, float)
    with pytest.raises(ConfigError, match="must be int"):
        resolve(None, ["critic.hidden=wide"])
    with pytest.raises(ConfigError, match="one of"):
        resolve(None, ["critic.activation=gelu"])
    with pytest.raises(ConfigError, match="must be int"):
        resolve(None, ["train.steps=1.5"])
    # train.compile: the whole generator iteration as one compiled graph (off by default)
    assert resolve().train.compile is False
    assert resolve(None, ["train.compile=true"]).train.compile is True
    with pytest.raises(ConfigError, match="train.compile"):
        resolve(None, ["train.compile=fast"])


def test_unknown_key_names_close_matches():
    with pytest.raises(ConfigError, match="did you mean constraint.penalty_weight"):
        resolve(None, ["constraint.penalty_wieght=1"])
    with pytest.raises(ConfigError, match="unknown config key 'trian'"):
        resolve(None, ["trian.steps=1"])


def test_range_checks():
    with pytest.raises(ConfigError, match="lambda"):
        resolve(None, ["constraint.penalty_weight=-1"])
    with pytest.raises(ConfigError, match="n_critic"):
        resolve(None, ["train.n_critic=0"])


def test_unknown_preset_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="did you mean toy-wgan-gp"):
        resolve("toy-wgan-pg")
    with pytest.raises(ConfigError, match="not found"):
        resolve(str(tmp_path / "missing.yaml"))


def test_yaml_file_with_extends(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("extends: toy-wgan-gp\ntrain: {steps: 7}\ncritic: {hidden: 32}\n")
    cfg = resolve(str(path))
    assert cfg.name == "mine" and cfg.train.steps == 7 and cfg.critic.hidden == 32
    assert cfg.constraint.penalty_weight == 0.1
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {stepz: 7}\n")
    with pytest.raises(ConfigError, match="train.stepz"):
        resolve(str(bad))
    broken = tmp_path / "broken.yaml"
    broken.write_text("train: {steps: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        resolve(str(broken))


def test_round_trip_through_dict():
    cfg = resolve(None, ["critic.hidden=48"])
    again = from_dict(cfg.to_dict())
    assert again == cfg
    assert "hidden: 48" in dump_yaml(cfg)
