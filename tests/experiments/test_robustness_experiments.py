"""The WGAN-GP robustness experiments: the architecture sampler, the per-method configs, the
success table, the verdicts, and tiny end-to-end runs through the study."""

import json
from collections import Counter
from dataclasses import astuple, fields
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from wgan.data.build import build_dataset
from wgan.errors import ConfigError
from wgan.experiments import EXPERIMENTS, architectures
from wgan.experiments.common import apply_overrides
from wgan.experiments.random_architectures import (
    Architecture,
    RandomArchitecturesSettings,
    draw,
    sample_architectures,
    success_table,
)
from wgan.experiments.robustness import method_config
from wgan.gan.players import build_models
from wgan.nets import MLPImageGenerator, ResNetCritic
from wgan.nets.mlp import Gated, ShiftedSoftplus

SPACE = {
    "g_activation": {"relu", "leaky_relu", "softplus", "tanh"},
    "d_activation": {"relu", "leaky_relu", "softplus", "tanh"},
    "g_depth": {4, 8, 12, 20},
    "d_depth": {4, 8, 12, 20},
    "g_batch_norm": {True, False},
    "d_batch_norm": {True, False},
    "g_filters": {32, 64, 128},
    "d_filters": {32, 64, 128},
}


def test_sampler_covers_the_space_with_a_seed():
    archs = sample_architectures(200, seed=3)
    for f in fields(Architecture):
        counts = Counter(getattr(a, f.name) for a in archs)
        assert set(counts) == SPACE[f.name], f.name
        # balanced: each of the k values 200 / k times, up to one
        assert max(counts.values()) - min(counts.values()) <= 1, (f.name, counts)
    # already 4 architectures show every value of every option with at most 4 values
    few = sample_architectures(4, seed=0)
    for f in fields(Architecture):
        assert {getattr(a, f.name) for a in few} == SPACE[f.name], f.name
    # a seed gives one list; another seed another one; the options are drawn independently
    assert sample_architectures(200, seed=3) == archs
    assert sample_architectures(200, seed=4) != archs
    assert [a.g_activation for a in archs] != [a.d_activation for a in archs]
    assert len({astuple(a) for a in archs}) > 190  # nearly all distinct, as uniform draws


def test_success_table_by_hand():
    scores = [(6.0, 7.0), (2.0, 5.5), (None, 8.0), (5.0, 1.5), (1.2, None)]
    rows = success_table(scores, [2.0, 5.0, 7.5])
    # success is IS > t (Gulrajani et al. 2017, Table 2): GAN 2.0 at t=2 and 5.0 at t=5 fail
    assert rows[0] == {"threshold": 2.0, "only_gan": 1, "only_wgan_gp": 2, "both": 1, "neither": 1}
    assert rows[1] == {"threshold": 5.0, "only_gan": 0, "only_wgan_gp": 2, "both": 1, "neither": 2}
    assert rows[2] == {"threshold": 7.5, "only_gan": 0, "only_wgan_gp": 1, "both": 0, "neither": 4}


def test_per_method_optimisers_and_norms():
    arch = Architecture("tanh", "softplus", 8, 4, True, True, 32, 64)
    gan = method_config("gan", "a-gan", arch.overrides(), _SIZE, seed=0)
    wgp = method_config("wgan-gp", "a-wgp", arch.overrides(), _SIZE, seed=0)
    assert gan.objective.name == "nonsaturating" and gan.train.n_critic == 1
    assert (gan.d_optim.name, gan.d_optim.lr, tuple(gan.d_optim.betas)) == (
        "adam",
        2e-4,
        (0.5, 0.999),
    )
    assert (gan.g_optim.lr, tuple(gan.g_optim.betas)) == (2e-4, (0.5, 0.999))
    assert wgp.objective.name == "wasserstein" and wgp.train.n_critic == 5
    assert wgp.constraint.penalty == "two_sided" and wgp.constraint.penalty_weight == 10.0
    assert (wgp.d_optim.lr, tuple(wgp.d_optim.betas)) == (1e-4, (0.0, 0.9))
    assert (wgp.g_optim.lr, tuple(wgp.g_optim.betas)) == (1e-4, (0.0, 0.9))
    # batch norm in D: kept for the GAN, layer norm under the gradient penalty
    assert (gan.critic.norm, wgp.critic.norm) == ("batch", "layer")
    assert gan.generator.norm == wgp.generator.norm == "batch"
    assert (gan.critic.layers, gan.generator.layers, gan.critic.width) == (4, 8, 64)
    assert gan.train.ema == 0 and gan.data.name == "digits"


_SIZE = SimpleNamespace(resolution=8, batch_size=8, steps=2, device="cpu", eval_samples=50)


def test_weight_decay_only_on_a_normalised_critic():
    settings = RandomArchitecturesSettings(n_architectures=8)
    archs, runs = draw(settings), EXPERIMENTS["random-architectures"].study_runs(settings)
    assert [n for n, _ in runs[:2]] == ["arch000-gan", "arch000-wgan-gp"]
    for i, arch in enumerate(archs):
        for _, cfg in runs[2 * i : 2 * i + 2]:
            assert cfg.d_optim.weight_decay == (1e-3 if arch.d_batch_norm else 0.0)
            assert cfg.g_optim.weight_decay == 0.0
            assert cfg.train.seed == i and cfg.data.resolution == 8


def test_sampled_architectures_build_and_run():
    settings = RandomArchitecturesSettings(n_architectures=4, filters="4,8")
    archs, runs = draw(settings), EXPERIMENTS["random-architectures"].study_runs(settings)
    dataset = build_dataset(runs[0][1].data)
    kinds = {"softplus": ShiftedSoftplus, "tanh": nn.Tanh, "relu": nn.ReLU}
    kinds["leaky_relu"] = nn.LeakyReLU
    for arch, (_, cfg) in zip(archs, runs[1::2], strict=True):  # the WGAN-GP configs
        gen, critic, _ = build_models(cfg, dataset, "cpu")
        x = gen.sample(3)
        assert x.shape == (3, 1, 8, 8) and critic(x).shape == (3, 1)
        convs = [m for m in critic.modules() if isinstance(m, nn.Conv2d)]
        assert len(convs) == arch.d_depth
        assert any(isinstance(m, kinds[arch.d_activation]) for m in critic.modules())
        assert any(isinstance(m, nn.GroupNorm) for m in critic.modules()) == arch.d_batch_norm


def test_the_seven_settings_build_with_every_method():
    settings = architectures.ArchitecturesSettings(width=4, resnet_blocks=5, resolution=8)
    runs = EXPERIMENTS["architectures"].study_runs(settings)
    assert len(runs) == 28
    dataset = build_dataset(runs[0][1].data)
    built = {}
    for name, cfg in runs:
        gen, critic, _ = build_models(cfg, dataset, "cpu")
        x = gen.sample(2)
        assert x.shape == (2, 1, 8, 8) and critic(x).shape == (2, 1), name
        built[name] = (gen, critic)
    assert isinstance(built["mlp_g-gan"][0].net, MLPImageGenerator)
    assert any(isinstance(m, Gated) for m in built["gated-lsgan"][1].modules())
    resnet = [m for m in built["resnet-wgan-clip"][1].modules() if isinstance(m, ResNetCritic)]
    assert resnet and len(resnet[0].blocks) == 5
    no_norm = built["no_norm-gan"]
    norms = (nn.BatchNorm2d, nn.GroupNorm)
    assert not any(isinstance(m, norms) for net in no_norm for m in net.modules())
    const = built["no_bn_const_g-gan"][0]
    assert not any(isinstance(m, norms) for m in const.modules())
    # the clipping method's config is the WGAN paper's
    clip = dict(runs)["tanh-wgan-clip"]
    assert (clip.constraint.clip, clip.d_optim.name, clip.d_optim.lr) == (0.01, "rmsprop", 5e-5)


def _first_conv_std(net: nn.Module) -> float:
    conv = next(m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)))
    return float(conv.weight.std())


@pytest.mark.parametrize(
    "setting, g_std, d_std",
    [
        ("dcgan", "dcgan", "dcgan"),  # normalised nets: DCGAN's N(0, 0.02)
        ("gated", "dcgan", "dcgan"),
        ("no_bn_const_g", "he", "dcgan"),  # G has no normalisation: He init
        ("no_norm", "he", "he"),
    ],
)
def test_normalised_nets_start_from_dcgan_init_the_others_from_he(setting, g_std, d_std):
    settings = architectures.ArchitecturesSettings(width=32, resolution=16)
    runs = dict(EXPERIMENTS["architectures"].study_runs(settings))
    cfg = runs[f"{setting}-wgan-gp"]
    gen, critic, _ = build_models(cfg, build_dataset(cfg.data), "cpu")
    # He's std for a conv layer is sqrt(2 / fan_in) with fan_in >= 16: at most 0.36 and well
    # above 0.02 for every layer here (fan_in <= 32 * 16 = 512 gives >= 0.0625)
    for net, want in ((gen, g_std), (critic, d_std)):
        std = _first_conv_std(net)
        if want == "dcgan":
            assert std == pytest.approx(0.02, rel=0.15), (setting, std)
        else:
            assert 0.05 < std < 0.4, (setting, std)


@pytest.mark.parametrize(
    "name, override, match",
    [
        ("random-architectures", "resolution=32 depths=2,4", "depths must be >= 3 at"),
        ("random-architectures", "nonlinearities=relu,gelu", "nonlinearities must be among"),
        ("random-architectures", "thresholds=0.5,3", "thresholds must be numbers in"),
        ("random-architectures", "launcher=slurm", "launcher must be local or ray"),
        ("architectures", "architectures=dcgan,vit", "architectures must be among"),
        ("architectures", "resnet_blocks=2", "resnet_blocks must be >= 3 at resolution 16"),
    ],
)
def test_bad_settings(name, override, match):
    with pytest.raises(ConfigError, match=match):
        apply_overrides(EXPERIMENTS[name].settings(), override.split())


def _verdict(settings, row):
    return EXPERIMENTS["random-architectures"].verdicts({"success": [row]}, settings)[0]


def test_verdict_outcomes():
    row = {"threshold": 5.0, "only_gan": 1, "only_wgan_gp": 9, "both": 5, "neither": 5}
    big = RandomArchitecturesSettings(n_architectures=20, steps=2000)
    assert _verdict(big, row).holds is True
    flipped = {**row, "only_gan": 9, "only_wgan_gp": 1}
    assert _verdict(big, flipped).holds is False
    tie = {**row, "only_gan": 4, "only_wgan_gp": 4}  # as many successes: not "more"
    assert _verdict(big, tie).holds is False
    small = RandomArchitecturesSettings(n_architectures=4, steps=600)
    assert _verdict(small, row).holds is None
    none = {**row, "only_gan": 0, "only_wgan_gp": 0, "both": 0, "neither": 20}
    assert _verdict(big, none).holds is None


def test_random_architectures_end_to_end_and_rerun_skips(tmp_path):
    settings = RandomArchitecturesSettings(
        n_architectures=1, steps=2, batch_size=8, filters="4", eval_samples=50, jobs=1
    )
    result = EXPERIMENTS["random-architectures"].run(settings, tmp_path)
    numbers = json.loads((tmp_path / "results.json").read_text())["results"]
    assert [r["status"] for r in numbers["runs"]] == ["done", "done"]
    assert len(numbers["success"]) == 8 and numbers["success"][3]["threshold"] == 5.0
    arch = numbers["architectures"][0]
    assert 1.0 <= arch["gan_is"] <= 10.0 and 1.0 <= arch["wgan_gp_is"] <= 10.0
    assert arch["gan_is"] == numbers["runs"][0]["metrics"]["digit_is"]
    assert (tmp_path / "random_architectures.png").stat().st_size > 0
    assert "only WGAN-GP" in result.table and "5 (paper" in result.table
    assert result.verdicts[0].holds is None
    # the same settings in the same folder: both runs are skipped, the numbers are the same
    again = EXPERIMENTS["random-architectures"].run(settings, tmp_path)
    assert [r["status"] for r in again.numbers["runs"]] == ["skipped", "skipped"]
    assert again.numbers["architectures"] == result.numbers["architectures"]


@pytest.mark.slow
def test_architectures_end_to_end(tmp_path):
    settings = architectures.ArchitecturesSettings(
        architectures="dcgan,gated",
        methods="gan,wgan-gp",
        steps=2,
        width=4,
        batch_size=8,
        eval_samples=50,
        jobs=2,
    )
    result = EXPERIMENTS["architectures"].run(settings, tmp_path)
    assert set(result.numbers["scores"]) == {
        "dcgan/gan",
        "dcgan/wgan-gp",
        "gated/gan",
        "gated/wgan-gp",
    }
    assert all(1.0 <= v <= 10.0 for v in result.numbers["scores"].values())
    assert (tmp_path / "architectures.png").stat().st_size > 0
    assert "gated tanh*sigmoid" in result.table
    torch.testing.assert_close(
        torch.tensor(result.numbers["real_digit_is"]), torch.tensor(8.96), atol=0.01, rtol=0
    )


@pytest.mark.parametrize("name", ["architectures", "random-architectures"])
def test_the_studies_take_the_train_keys_they_mirror(name):
    """Each run's iterations, batch, resolution, samples and device, under their train keys."""
    from wgan.experiments.framework import make_settings

    s = make_settings(
        EXPERIMENTS[name],
        ["train.steps=7", "data.batch_size=16", "data.resolution=8", "train.eval_samples=99"],
    )
    assert (s.steps, s.batch_size, s.resolution, s.eval_samples) == (7, 16, 8, 99)
