"""The architecture options of the WGAN-GP robustness studies (Gulrajani et al. 2017, sec. 5.1):
nonlinearity, depth, normalisation, base filters, constant-width G, MLP image generator, gated
units and deep ResNets, each built from a config and checked for its shapes and structure."""

import math

import pytest
import torch
from torch import nn

from wgan.cli.app import main
from wgan.config import resolve
from wgan.data.build import build_dataset
from wgan.errors import ConfigError
from wgan.gan.players import build_models
from wgan.nets import DCGANCritic, DCGANGenerator, MLPImageGenerator, ResNetCritic, ResNetGenerator
from wgan.nets.mlp import Gated, ShiftedSoftplus, make_activation
from wgan.nets.resnet import DownBlock, OptimizedBlock, UpBlock

B = 3
ACTS = ["relu", "leaky_relu", "softplus", "tanh", "gated"]


def _convs(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]


def test_nonlinearity_values_by_hand():
    x = torch.tensor([[-1.0, 0.0, 2.0]])
    # softplus(2x + 2)/2 - 1 at x = -1, 0, 2: log(2)/2 - 1, log(1 + e^2)/2 - 1, log(1 + e^6)/2 - 1
    want = [math.log(2) / 2 - 1, math.log(1 + math.e**2) / 2 - 1, math.log(1 + math.e**6) / 2 - 1]
    torch.testing.assert_close(ShiftedSoftplus()(x), torch.tensor([want]))
    # gated: the first half is a, the second b; tanh(a) * sigmoid(b)
    ab = torch.tensor([[0.5, -2.0, 1.0, 3.0]])  # a = (0.5, -2), b = (1, 3)
    want = [math.tanh(0.5) / (1 + math.exp(-1.0)), math.tanh(-2.0) / (1 + math.exp(-3.0))]
    torch.testing.assert_close(Gated()(ab), torch.tensor([want]))
    assert isinstance(make_activation("leaky_relu"), nn.LeakyReLU)


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("res", [8, 16, 32])
def test_dcgan_every_nonlinearity_shapes(act, res):
    torch.manual_seed(0)
    gen = DCGANGenerator(6, 1, res, width=8, norm="batch", activation=act)
    critic = DCGANCritic(1, res, width=8, norm="layer", activation=act)
    x = gen(torch.randn(B, 6))
    assert x.shape == (B, 1, res, res) and x.abs().max() <= 1.0
    assert critic(x).shape == (B, 1) and torch.isfinite(critic(x)).all()
    want = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "softplus": ShiftedSoftplus}
    want.update({"tanh": nn.Tanh, "gated": Gated})
    # every hidden nonlinearity of both nets is the chosen one (G's output tanh aside)
    body = [m for m in critic.body if not isinstance(m, (nn.Conv2d, nn.GroupNorm, nn.Identity))]
    assert body and all(isinstance(m, want[act]) for m in body)
    hidden = [m for m in gen.body[:-1] if not isinstance(m, (nn.ConvTranspose2d, nn.BatchNorm2d))]
    assert all(isinstance(m, want[act]) for m in [*hidden, gen.project_act[1]])


def test_gated_doubles_the_pre_activations():
    gen = DCGANGenerator(6, 1, 16, width=8, activation="gated")
    relu = DCGANGenerator(6, 1, 16, width=8, activation="relu")
    assert gen.project.out_features == 2 * relu.project.out_features
    # hidden transposed convs: 2x the channels; the output one: the image channels
    assert [m.out_channels for m in _convs(gen)] == [2 * 8, 1]
    assert [m.out_channels for m in _convs(relu)] == [8, 1]
    critic = DCGANCritic(1, 16, width=8, activation="gated")
    assert [m.out_channels for m in _convs(critic)] == [16, 32]
    assert critic.feature_dim == 16 * 16  # after the gates: 16 channels at 4x4


def test_auto_is_the_architecture_default():
    critic = DCGANCritic(1, 16, width=8)
    gen = DCGANGenerator(6, 1, 16, width=8)
    assert any(isinstance(m, nn.LeakyReLU) for m in critic.modules())
    assert not any(isinstance(m, nn.ReLU) for m in critic.modules())
    assert any(isinstance(m, nn.ReLU) for m in gen.modules())
    assert not any(isinstance(m, nn.LeakyReLU) for m in gen.modules())


def test_default_dcgan_state_dict_unchanged():
    """Checkpoints of the plain DCGAN still load: same parameter names and shapes."""
    gen = DCGANGenerator(64, 1, 16, width=32, norm="batch")
    shapes = {k: tuple(v.shape) for k, v in gen.state_dict().items() if "running" not in k}
    assert shapes == {
        "project.weight": (1024, 64),
        "project_act.0.weight": (64,),
        "project_act.0.bias": (64,),
        "body.0.weight": (64, 32, 4, 4),
        "body.1.weight": (32,),
        "body.1.bias": (32,),
        "body.1.num_batches_tracked": (),
        "project_act.0.num_batches_tracked": (),
        "body.3.weight": (32, 1, 4, 4),
        "body.3.bias": (1,),
    }
    critic = DCGANCritic(1, 16, width=32, norm="layer")
    assert list(critic.state_dict()) == [
        "body.0.weight",
        "body.0.bias",
        "body.3.weight",
        "body.4.weight",
        "body.4.bias",
        "head.weight",
        "head.bias",
    ]


@pytest.mark.parametrize("layers", [4, 5, 8, 12, 20])
def test_dcgan_depth_counts_convolutions(layers):
    gen = DCGANGenerator(6, 1, 16, width=4, activation="softplus", layers=layers)
    critic = DCGANCritic(1, 16, width=4, activation="tanh", layers=layers)
    assert len(_convs(gen)) == layers and len(_convs(critic)) == layers
    assert gen(torch.randn(B, 6)).shape == (B, 1, 16, 16)
    assert critic(torch.zeros(B, 1, 16, 16)).shape == (B, 1)
    # the extra 3x3 convs go to the smallest map first: at 16x16 (maps 4x4 and 8x8) the
    # generator's 4x4 map (2 * width channels) gets ceil(extra / 2) of them
    extra = [m for m in gen.modules() if isinstance(m, nn.Conv2d)]
    assert sum(m.in_channels == 8 for m in extra) == math.ceil((layers - 2) / 2)
    extra_d = [m for m in critic.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    assert sum(m.in_channels == 8 for m in extra_d) == math.ceil((layers - 2) / 2)  # at 4x4


def test_constant_width_generator_without_batch_norm():
    gen = DCGANGenerator(6, 1, 32, width=16, norm="none", constant_width=True)
    assert [(m.in_channels, m.out_channels) for m in _convs(gen)] == [(16, 16), (16, 16), (16, 1)]
    assert gen.project.out_features == 16 * 16
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) for m in gen.modules())
    assert gen(torch.randn(B, 6)).shape == (B, 1, 32, 32)


def test_mlp_image_generator_is_the_papers_4x512_relu_mlp():
    gen = MLPImageGenerator(64, 1, 16, hidden=512, depth=4)
    linears = [m for m in gen.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (64, 512),
        (512, 512),
        (512, 512),
        (512, 512),
        (512, 256),
    ]
    assert sum(isinstance(m, nn.ReLU) for m in gen.modules()) == 4
    x = gen(torch.randn(B, 64))
    assert x.shape == (B, 1, 16, 16) and x.abs().max() <= 1.0 and x.std() > 0


@pytest.mark.parametrize("act", ["relu", "leaky_relu", "softplus", "tanh"])
def test_resnet_nonlinearity_and_block_count(act):
    gen = ResNetGenerator(6, 1, 16, width=8, activation=act, blocks=5)
    critic = ResNetCritic(1, 16, width=8, activation=act, blocks=6)
    assert sum(isinstance(m, UpBlock) for m in gen.modules()) == 5
    assert sum(m.up for m in gen.modules() if isinstance(m, UpBlock)) == 2  # 4 -> 8 -> 16
    blocks = list(critic.blocks)
    assert isinstance(blocks[0], OptimizedBlock) and len(blocks) == 6
    assert all(isinstance(b, DownBlock) for b in blocks[1:])
    x = gen(torch.randn(B, 6))
    assert x.shape == (B, 1, 16, 16) and critic(x).shape == (B, 1)
    kind = type(make_activation(act))
    assert any(isinstance(m, kind) for m in critic.modules())
    if act != "relu":
        assert not any(isinstance(m, nn.ReLU) for m in [*gen.modules(), *critic.modules()])


def test_deep_resnet_101_layers():
    """blocks=50: 100 convolutions on the residual paths of the critic plus its linear head."""
    critic = ResNetCritic(1, 16, width=4, blocks=50)
    gen = ResNetGenerator(6, 1, 16, width=4, blocks=50)
    paths = [m for m in critic.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(paths) + 1 == 101
    gpaths = [m for m in gen.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(gpaths) + 1 == 102  # plus the projection: the output conv is the extra one
    x = gen(torch.randn(2, 6))
    assert x.shape == (2, 1, 16, 16) and torch.isfinite(critic(x)).all()


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: ResNetCritic(1, 16, width=4, activation="gated"), "gated activation is for"),
        (lambda: ResNetGenerator(2, 1, 16, width=4, blocks=1), "blocks=1 is fewer than the 2"),
        (lambda: ResNetCritic(1, 16, width=4, blocks=-1), "blocks must be an integer >= 0"),
        (lambda: DCGANGenerator(2, 1, 32, width=4, layers=2), "layers=2 is fewer than the 3"),
        (lambda: DCGANCritic(1, 16, width=4, layers=-3), "layers must be an integer >= 0"),
        (lambda: DCGANCritic(1, 16, width=4, activation="swish"), "unknown activation 'swish'"),
    ],
)
def test_bad_options_are_one_line_config_errors(make, match):
    with pytest.raises(ConfigError, match=match) as info:
        make()
    assert "\n" not in str(info.value)


def _digits_models(*overrides):
    cfg = resolve("digits-wgan-gp", ["train.device=cpu", *overrides])
    return build_models(cfg, build_dataset(cfg.data), "cpu")


def test_the_random_architecture_space_as_config():
    gen, critic, _ = _digits_models(
        "generator.activation=softplus",
        "generator.layers=12",
        "generator.norm=none",
        "generator.width=16",
        "critic.activation=tanh",
        "critic.layers=8",
        "critic.norm=layer",
        "critic.width=8",
    )
    assert len(_convs(gen)) == 12 and len(_convs(critic)) == 8
    assert any(isinstance(m, ShiftedSoftplus) for m in gen.modules())
    assert any(isinstance(m, nn.Tanh) for m in critic.modules())
    assert any(isinstance(m, nn.GroupNorm) for m in critic.modules())
    x = gen.sample(B)
    assert x.shape == (B, 1, 16, 16) and critic(x).shape == (B, 1)


def test_fixed_architectures_as_config():
    gen, _, _ = _digits_models("generator.arch=mlp", "generator.depth=4", "generator.hidden=32")
    assert isinstance(gen.net, MLPImageGenerator) and gen.sample(B).shape == (B, 1, 16, 16)
    gen, critic, _ = _digits_models(
        "generator.arch=resnet", "generator.blocks=4", "critic.arch=resnet", "critic.blocks=5"
    )
    assert sum(isinstance(m, UpBlock) for m in gen.modules()) == 4
    assert len(critic.blocks) == 5
    gen, _, _ = _digits_models("generator.constant_width=true", "generator.norm=none")
    assert {m.in_channels for m in _convs(gen)} == {32}


@pytest.mark.parametrize(
    "override, needle",
    [
        ("critic.blocks=3", "critic.blocks=3 is an option of resnet, not of critic.arch=dcgan"),
        ("critic.constant_width=true", "is an option of a dcgan generator"),
        ("generator.layers=1", "layers=1 is fewer than the 2"),
        ("generator.activation=swish", "generator.activation"),
    ],
)
def test_cli_bad_architecture_options(capsys, tmp_path, override, needle):
    code = main(["train", "digits-wgan-gp", override, "--out-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wgan: error: ") and needle in lines[0], err
    assert not any(tmp_path.iterdir())  # a failed start leaves no run directory


def test_he_init_keeps_a_deep_net_without_norm_alive():
    """init=he: weights ~ N(0, 2 / fan_in); 20 layers without batch norm still vary with z,
    where DCGAN's N(0, 0.02) leaves an output that does not depend on z (spread ~1e-18)."""
    torch.manual_seed(0)
    z = torch.randn(64, 16)
    with torch.no_grad():
        spread = {}
        for init in ("dcgan", "he"):
            gen = DCGANGenerator(
                16, 1, 8, width=16, norm="none", activation="tanh", layers=20, init=init
            )
            spread[init] = gen(z).std(dim=0).mean().item()
    assert spread["dcgan"] < 1e-6 < 0.1 < spread["he"]
    critic = DCGANCritic(1, 16, width=32, init="he")
    conv = [m for m in critic.modules() if isinstance(m, nn.Conv2d)][1]  # 32 -> 64, 4x4
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / (32 * 16)), rel=0.05)
    with pytest.raises(ConfigError, match="unknown init 'xavier'"):
        DCGANCritic(1, 16, width=4, init="xavier")


def test_a_config_saved_before_the_activation_options_rebuilds_the_same_nets():
    """Runs saved before ``layers``/``blocks``/``init`` existed said ``activation: relu``
    for every net (ignored by the image nets): they must load with DCGAN's LeakyReLU critic."""
    from torch import nn

    from wgan.config import from_dict, resolve
    from wgan.gan.players import build_models

    cfg = resolve("digits-wgan-gp")
    old = cfg.to_dict()
    for player in ("generator", "critic"):
        old[player] = {
            k: v
            for k, v in old[player].items()
            if k not in ("layers", "blocks", "init", "constant_width")
        }
        old[player]["activation"] = "relu"
    loaded = from_dict(old)
    assert loaded.critic.activation == "auto"
    from wgan.data.build import build_dataset

    _, critic, _ = build_models(loaded, build_dataset(loaded.data), "cpu")
    kinds = {type(m) for m in critic.modules()}
    assert nn.LeakyReLU in kinds and nn.ReLU not in kinds
    # a new config that asks for ReLU keeps it
    new = cfg.to_dict()
    new["critic"]["activation"] = "relu"
    assert from_dict(new).critic.activation == "relu"
