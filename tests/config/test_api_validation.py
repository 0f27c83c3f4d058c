"""The public API checks its arguments like the CLI does (issue 10, class 9).

A bad argument to a public function of :mod:`wgan.data`, :mod:`wgan.metrics`,
:mod:`wgan.constraints`, :mod:`wgan.nets` or :mod:`wgan.objectives` is one line of
:class:`wgan.errors.WganError` (:class:`~wgan.errors.ConfigError` for a bad setting) naming the
argument, not a silently wrong result (``WeightClipping(-1.0)`` set every weight to -1,
``mode_metrics`` of no samples returned numbers), a NaN, or a traceback from deep inside torch or
numpy. The table below runs many bad values through the API; the tests after it check the
cases that need more than one call, and that the checks cost nothing inside the training step.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import wgan.nets.sizes as sizes
from wgan.constraints import (
    GradientPenalty,
    WeightClipping,
    input_gradient_norm,
    input_gradient_norm_func,
    interpolates,
    make_constraints,
)
from wgan.data import ImageDataset, make_dataset, make_image_dataset
from wgan.data.batches import SampledBatches, TensorBatches
from wgan.data.images import resize_images
from wgan.errors import ConfigError, DataError, WganError
from wgan.metrics import (
    as_points,
    class_metrics,
    exact_w1,
    feature_statistics,
    frechet_distance,
    frechet_distance_features,
    inception_score,
    kernel_inception_distance,
    mode_metrics,
    precision_recall,
    sliced_w1,
    toy_metrics,
    wasserstein_1d,
)
from wgan.metrics.grid import grid_divergences
from wgan.metrics.inception import InceptionExtractor, images_to_uint8_range
from wgan.nets import (
    MLP,
    AuxClassifierCritic,
    ConditionalCritic,
    ConditionalGenerator,
    DCGANCritic,
    DCGANGenerator,
    ResNetCritic,
    ResNetGenerator,
    make_activation,
)
from wgan.objectives import (
    hinge_critic_loss,
    least_squares_generator_loss,
    make_objective,
    minimax_critic_loss,
    wasserstein_critic_loss,
)

NAN, INF = math.nan, math.inf
DS = make_dataset("8gaussians")
PTS = torch.randn(50, 2, generator=torch.Generator().manual_seed(0))
FEATS = np.random.default_rng(0).random((8, 3))
MODES, SIGMA = DS.modes, DS.sigma


def lin() -> nn.Module:
    return nn.Linear(2, 1)


# (name, call, error type, message fragment). Before issue 10 every call here was accepted
# silently, returned a NaN or a number, or failed with a traceback that was not a WganError;
# the cases named "(held)" already gave their error then and guard against regressions.
CASES = [
    # ---- wgan.constraints
    ("clip negative", lambda: WeightClipping(-1.0), ConfigError, "c must be a finite number > 0"),
    ("clip zero", lambda: WeightClipping(0.0), ConfigError, "> 0"),
    ("clip nan", lambda: WeightClipping(NAN), ConfigError, "got nan"),
    ("clip inf", lambda: WeightClipping(INF), ConfigError, "got inf"),
    ("clip str", lambda: WeightClipping("0.01"), ConfigError, "must be a number"),
    ("clip bool", lambda: WeightClipping(True), ConfigError, "must be a number"),
    ("gp weight nan", lambda: GradientPenalty(weight=NAN), ConfigError, "lambda"),
    ("gp weight inf", lambda: GradientPenalty(weight=INF), ConfigError, "lambda"),
    ("gp weight negative (held)", lambda: GradientPenalty(weight=-1.0), ConfigError, "lambda"),
    ("gp weight str", lambda: GradientPenalty(weight="10"), ConfigError, "must be a number"),
    ("gp target nan", lambda: GradientPenalty(target=NAN), ConfigError, "penalty target"),
    ("gp target inf", lambda: GradientPenalty(target=INF), ConfigError, "penalty target"),
    ("gp target negative", lambda: GradientPenalty(target=-1.0), ConfigError, "> 0"),
    ("gp target zero", lambda: GradientPenalty(target=0.0), ConfigError, "> 0"),
    ("gp every zero", lambda: GradientPenalty(every=0), ConfigError, "every"),
    ("gp every float", lambda: GradientPenalty(every=1.5), ConfigError, "every"),
    ("gp mode (held)", lambda: GradientPenalty(mode="sideways"), ConfigError, "unknown penalty"),
    ("constraints clip negative", lambda: make_constraints(clip=-1.0), ConfigError, "clip"),
    ("constraints clip nan", lambda: make_constraints(clip=NAN), ConfigError, "clip"),
    (
        "constraints penalty weight inf",
        lambda: make_constraints(penalty="two_sided", penalty_weight=INF),
        ConfigError,
        "lambda",
    ),
    (
        "interpolates shapes (held)",
        lambda: interpolates(torch.zeros(3, 2), torch.zeros(3, 3)),
        WganError,
        "same shape",
    ),
    (
        "interpolates empty (held)",
        lambda: interpolates(torch.zeros(0, 2), torch.zeros(0, 2)),
        WganError,
        "non-empty",
    ),
    (
        "interpolates weights",
        lambda: interpolates(torch.zeros(3, 2), torch.zeros(3, 2), torch.rand(4)),
        WganError,
        "one weight per sample",
    ),
    ("interpolates lists", lambda: interpolates([1.0], [2.0]), WganError, "tensors"),
    (
        "interpolates generator",
        lambda: interpolates(torch.zeros(3, 2), torch.zeros(3, 2), 7),
        WganError,
        "torch.Generator",
    ),
    ("grad norm empty", lambda: input_gradient_norm(lin(), torch.zeros(0, 2)), WganError, "B >= 1"),
    ("grad norm 0-d", lambda: input_gradient_norm(lin(), torch.tensor(1.0)), WganError, "(B, ...)"),
    (
        "grad norm func empty",
        lambda: input_gradient_norm_func(lin(), torch.zeros(0, 2)),
        WganError,
        "B >= 1",
    ),
    # ---- wgan.metrics
    ("modes no samples", lambda: mode_metrics(torch.zeros(0, 2), MODES, SIGMA), WganError, "got 0"),
    ("modes sigma inf", lambda: mode_metrics(PTS, MODES, INF), WganError, "sigma"),
    ("modes sigma nan (held)", lambda: mode_metrics(PTS, MODES, NAN), WganError, "sigma"),
    ("modes threshold inf", lambda: mode_metrics(PTS, MODES, 0.1, INF), WganError, "threshold"),
    ("modes threshold bool", lambda: mode_metrics(PTS, MODES, 0.1, True), WganError, "threshold"),
    ("modes no modes (held)", lambda: mode_metrics(PTS, torch.zeros(0, 2), 0.1), WganError, "mode"),
    ("toy no samples", lambda: toy_metrics(torch.zeros(0, 2), DS), WganError, "at least one"),
    ("toy n_real 0", lambda: toy_metrics(PTS, DS, n_real=0), WganError, "n_real"),
    ("toy max_points 0", lambda: toy_metrics(PTS, DS, max_points=0), WganError, "max_points"),
    ("toy no dataset", lambda: toy_metrics(PTS, None), WganError, "toy dataset"),
    ("toy generator", lambda: toy_metrics(PTS, DS, generator=0), WganError, "torch.Generator"),
    ("w1 empty (held)", lambda: exact_w1(torch.zeros(0, 2), PTS), WganError, "non-empty"),
    ("w1 max_points -1", lambda: exact_w1(PTS, PTS, max_points=-1), WganError, "max_points"),
    ("w1 max_points nan", lambda: exact_w1(PTS, PTS, max_points=NAN), WganError, "max_points"),
    ("w1 strings", lambda: exact_w1("abc", PTS), WganError, "array of numbers"),
    ("w1 objects", lambda: exact_w1(object(), PTS), WganError, "array of numbers"),
    ("w1 complex", lambda: exact_w1(np.ones((3, 2)) * 1j, PTS), WganError, "real"),
    ("w1 no coordinates", lambda: exact_w1(np.zeros((3, 0)), np.zeros((3, 0))), WganError, "coord"),
    ("w1 nan (held)", lambda: exact_w1(PTS * NAN, PTS), WganError, "non-finite"),
    ("1-d w1 empty (held)", lambda: wasserstein_1d([], [1.0]), WganError, "non-empty"),
    ("sliced seed -1", lambda: sliced_w1(PTS, PTS, seed=-1), WganError, "seed"),
    ("sliced seed nan", lambda: sliced_w1(PTS, PTS, seed=NAN), WganError, "seed"),
    ("sliced projections 0 (held)", lambda: sliced_w1(PTS, PTS, 0), WganError, "n_projections"),
    ("sliced projections 1e12", lambda: sliced_w1(PTS, PTS, 10**12), WganError, "<= 1000000"),
    ("as_points (3, 0)", lambda: as_points(np.zeros((3, 0))), WganError, "coordinate"),
    ("fd no dimension", lambda: frechet_distance([], [[]], [], [[]]), WganError, "dimension"),
    (
        "fd strings",
        lambda: frechet_distance("a", np.eye(1), [0.0], np.eye(1)),
        WganError,
        "array of numbers",
    ),
    (
        "fd features no dimension",
        lambda: frechet_distance_features(np.zeros((5, 0)), np.zeros((5, 0))),
        WganError,
        "no feature dimensions",
    ),
    (
        "fd features one sample (held)",
        lambda: frechet_distance_features(FEATS[:1], FEATS),
        WganError,
        "at least 2",
    ),
    ("statistics empty (held)", lambda: feature_statistics(np.zeros((0, 3))), WganError, "2"),
    (
        "kid subsets nan",
        lambda: kernel_inception_distance(FEATS, FEATS, subsets=NAN),
        WganError,
        "subsets",
    ),
    (
        "kid subsets 1.5",
        lambda: kernel_inception_distance(FEATS, FEATS, subsets=1.5),
        WganError,
        "subsets",
    ),
    (
        "kid subsets 1e12",
        lambda: kernel_inception_distance(FEATS, FEATS, subsets=10**12),
        WganError,
        "subsets must be <=",
    ),
    (
        "kid subset_size 1 (held)",
        lambda: kernel_inception_distance(FEATS, FEATS, subset_size=1),
        WganError,
        "subset_size",
    ),
    ("kid seed -1", lambda: kernel_inception_distance(FEATS, FEATS, seed=-1), WganError, "seed"),
    (
        "kid no dimension",
        lambda: kernel_inception_distance(np.zeros((5, 0)), np.zeros((5, 0))),
        WganError,
        "no feature dimensions",
    ),
    ("is splits nan", lambda: inception_score(np.full((4, 2), 0.5), NAN), WganError, "splits"),
    ("is splits 0 (held)", lambda: inception_score(np.full((4, 2), 0.5), 0), WganError, "splits"),
    ("is no classes", lambda: inception_score(np.zeros((4, 0)), 1), WganError, "no feature"),
    ("is empty (held)", lambda: inception_score(np.zeros((0, 2)), 1), WganError, "N=0"),
    ("pr strings", lambda: precision_recall("abc", FEATS), WganError, "array of numbers"),
    (
        "pr no dimension",
        lambda: precision_recall(np.zeros((5, 0)), np.zeros((5, 0))),
        WganError,
        "no feature dimensions",
    ),
    ("pr k 0 (held)", lambda: precision_recall(FEATS, FEATS, k=0), WganError, "k must be"),
    ("pr too few (held)", lambda: precision_recall(FEATS[:2], FEATS), WganError, "more than 3"),
    ("grid bins 1e6", lambda: grid_divergences(PTS, DS, bins=10**6), WganError, "<= 2048"),
    ("grid bins 0 (held)", lambda: grid_divergences(PTS, DS, bins=0), WganError, "bins"),
    ("grid empty (held)", lambda: grid_divergences(torch.zeros(0, 2), DS), WganError, "one"),
    ("class metrics empty (held)", lambda: class_metrics([], 10), WganError, "at least one"),
    (
        "inception images nan",
        lambda: images_to_uint8_range(torch.full((2, 3, 8, 8), NAN)),
        WganError,
        "non-finite",
    ),
    (
        "inception images empty",
        lambda: images_to_uint8_range(torch.zeros(0, 3, 8, 8)),
        WganError,
        "at least one image",
    ),
    (
        "inception images strings",
        lambda: images_to_uint8_range("abc"),
        WganError,
        "array of images",
    ),
    (
        "inception batch size",
        lambda: InceptionExtractor(nn.Identity(), batch_size="64"),
        WganError,
        "batch_size",
    ),
    # ---- wgan.data
    ("ring sigma -1 (held)", lambda: make_dataset("ring", sigma=-1), ConfigError, "sigma"),
    ("ring n_modes 0 (held)", lambda: make_dataset("ring", n_modes=0), ConfigError, "n_modes"),
    ("ring n_modes 1e10", lambda: make_dataset("ring", n_modes=10**10), ConfigError, "<= 10000"),
    ("grid 1e6 per side", lambda: make_dataset("grid", n_per_side=10**6), ConfigError, "<= 100"),
    ("roll noise nan (held)", lambda: make_dataset("swissroll", noise=NAN), ConfigError, "noise"),
    ("unknown dataset (held)", lambda: make_dataset("9gaussians"), ConfigError, "8gaussians"),
    ("sample -1 (held)", lambda: DS.sample(-1), ConfigError, "non-negative integer"),
    ("sample 1.5 (held)", lambda: DS.sample(1.5), ConfigError, "non-negative integer"),
    ("sample generator", lambda: DS.sample(3, generator="0"), WganError, "torch.Generator"),
    (
        "image sample generator",
        lambda: ImageDataset(torch.zeros(2, 1, 4, 4)).sample(3, generator=0),
        WganError,
        "torch.Generator",
    ),
    ("image 0x0", lambda: ImageDataset(torch.zeros(2, 1, 0, 0)), DataError, "empty"),
    (
        "image n_classes str",
        lambda: ImageDataset(torch.zeros(2, 1, 4, 4), torch.zeros(2), "10"),
        WganError,
        "n_classes",
    ),
    ("resize to 0", lambda: resize_images(torch.zeros(1, 1, 4, 4), 0), ConfigError, "resolution"),
    (
        "image resolution 0 (held)",
        lambda: make_image_dataset("digits", resolution=0),
        ConfigError,
        "resolution",
    ),
    (
        "sampled batches of 0",
        lambda: SampledBatches(DS, 0, torch.Generator(), "cpu"),
        ConfigError,
        "batch size",
    ),
    (
        "tensor batches of -1",
        lambda: TensorBatches(torch.zeros(4, 2), -1, torch.Generator(), "cpu"),
        ConfigError,
        "batch size",
    ),
    # ---- wgan.nets
    ("mlp hidden 0", lambda: MLP(2, 1, hidden=0), ConfigError, "MLP: hidden"),
    ("mlp hidden -1", lambda: MLP(2, 1, hidden=-1), ConfigError, "MLP: hidden"),
    ("mlp hidden 2.5", lambda: MLP(2, 1, hidden=2.5), ConfigError, "MLP: hidden"),
    ("mlp hidden 1e9", lambda: MLP(2, 1, hidden=10**9), ConfigError, "weights"),
    ("mlp in_dim 0", lambda: MLP(0, 1), ConfigError, "in_dim"),
    ("mlp out_dim 0", lambda: MLP(2, 0), ConfigError, "out_dim"),
    ("mlp depth -1", lambda: MLP(2, 1, depth=-1), ConfigError, "depth"),
    ("mlp activation (held)", lambda: MLP(2, 1, activation="gelu"), ConfigError, "activation"),
    ("mlp activation list", lambda: make_activation(["relu"]), ConfigError, "activation"),
    ("mlp input", lambda: MLP(2, 1)(torch.zeros(3, 3)), WganError, "(B, 2)"),
    ("dcgan width bool", lambda: DCGANGenerator(8, 1, 16, width=True), ConfigError, "width"),
    ("dcgan width 0 (held)", lambda: DCGANGenerator(8, 1, 16, width=0), ConfigError, "width"),
    ("dcgan width 1e6", lambda: DCGANCritic(3, 64, width=10**6), ConfigError, "weights"),
    ("dcgan resolution (held)", lambda: DCGANCritic(1, 12), ConfigError, "resolution"),
    ("resnet width 1e5", lambda: ResNetGenerator(8, 3, 32, width=10**5), ConfigError, "weights"),
    ("resnet width -1 (held)", lambda: ResNetCritic(1, 16, width=-1), ConfigError, "width"),
    (
        "conditional classes bool",
        lambda: ConditionalCritic(MLP(4, 1), True, 2),
        ConfigError,
        "n_classes",
    ),
    (
        "conditional embedding 1e9",
        lambda: ConditionalGenerator(MLP(4, 2), 10**9, 10**3),
        ConfigError,
        "weights",
    ),
    (
        "aux classifier 1e12 classes",
        lambda: AuxClassifierCritic(MLP(4, 1), 10**12),
        ConfigError,
        "weights",
    ),
    # ---- wgan.objectives
    ("objective name case", lambda: make_objective("Wasserstein"), ConfigError, "did you mean"),
    ("objective unknown (held)", lambda: make_objective("wgan"), ConfigError, "valid choices"),
    ("objective param (held)", lambda: make_objective("hinge", margin=2), ConfigError, "margin"),
    (
        "fgan pi nan",
        lambda: make_objective("fgan", divergence="kl", pi=NAN),
        ConfigError,
        "pi must be",
    ),
    (
        "fgan pi 2 (held)",
        lambda: make_objective("fgan", divergence="weighted_jensen_shannon", pi=2.0),
        ConfigError,
        "pi must be",
    ),
    ("fgan no divergence (held)", lambda: make_objective("fgan"), ConfigError, "divergence"),
    (
        "wasserstein empty batch",
        lambda: wasserstein_critic_loss(torch.zeros(0), torch.zeros(3)),
        WganError,
        "empty batch",
    ),
    (
        "minimax empty batch",
        lambda: minimax_critic_loss(torch.zeros(3), torch.zeros(0, 1)),
        WganError,
        "empty batch",
    ),
    (
        "hinge list",
        lambda: hinge_critic_loss([1.0], torch.zeros(3)),
        WganError,
        "must be a tensor",
    ),
    (
        "lsgan generator empty",
        lambda: least_squares_generator_loss(torch.zeros(0)),
        WganError,
        "empty batch",
    ),
    (
        "objective method empty",
        lambda: make_objective("nonsaturating").generator_loss(torch.zeros(0)),
        WganError,
        "empty batch",
    ),
    (
        "objective shape (held)",
        lambda: make_objective("least_squares").critic_loss(torch.zeros(3, 2), torch.zeros(3)),
        WganError,
        "(B,) or (B, 1)",
    ),
]


@pytest.mark.parametrize(
    ("call", "error", "fragment"),
    [pytest.param(c, e, f, id=n) for n, c, e, f in CASES],
)
def test_bad_argument_is_a_one_line_error(call, error, fragment):
    with pytest.raises(error) as info:
        call()
    message = str(info.value)
    assert fragment in message, message
    assert "\n" not in message and len(message) < 400, message


def test_case_names_are_unique():
    names = [c[0] for c in CASES]
    assert len(names) == len(set(names))


# ----------------------------------------------------------------------------- good values


def test_edge_values_that_stay_valid():
    """What the checks must not refuse: the boundaries the docs allow."""
    assert WeightClipping(1e-8).c == 1e-8 and WeightClipping(np.float32(0.5)).c == 0.5
    assert GradientPenalty(weight=0).weight == 0.0  # lambda = 0: penalty off
    assert GradientPenalty(weight=10, target=1).target == 1.0
    assert make_constraints(clip=0).parts == []  # clip 0: clipping off
    assert DS.sample(0).shape == (0, 2)  # an empty draw is a valid draw
    assert DS.sample(np.int64(3)).shape == (3, 2)  # numpy integers are integers
    assert MLP(2, 3, hidden=4, depth=0)(torch.zeros(5, 2)).shape == (5, 3)
    assert MLP(2, 1)(torch.zeros(0, 2)).shape == (0, 1)  # forward does not check values
    assert make_objective("fgan", divergence="kl", pi=0.5).estimate_name == "kl"
    out = mode_metrics(torch.full((10, 2), 50.0), MODES, SIGMA)  # no HQ sample: still numbers
    assert out["modes_captured"] == 0 and out["kl_to_uniform"] is None


def test_weight_clipping_no_longer_sets_weights_to_minus_c():
    net = nn.Linear(3, 2)
    with pytest.raises(ConfigError):
        WeightClipping(-1.0).project(net)
    WeightClipping(0.5).project(net)
    assert net.weight.abs().max() <= 0.5


def test_sliced_w1_directions_unchanged_by_streaming():
    """The directions are drawn block by block now; for a fixed seed they are the same as one
    (P, d) draw, so the value equals a direct computation with those directions."""
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(40, 3)), rng.normal(size=(30, 3)) + 0.3
    theta = np.random.default_rng(5).standard_normal((300, 3))
    theta /= np.linalg.norm(theta, axis=1, keepdims=True)
    direct = np.mean([wasserstein_1d(x @ t, y @ t) for t in theta])
    assert sliced_w1(x, y, n_projections=300, seed=5)["w1"] == pytest.approx(direct, rel=1e-12)


@pytest.mark.parametrize(
    "build",
    [
        lambda: MLP(2, 1, 64, 3),
        lambda: DCGANGenerator(16, 3, 32, 8),
        lambda: DCGANCritic(1, 16, 8, "layer"),
        lambda: ResNetGenerator(16, 3, 16, 16),
        lambda: ResNetCritic(3, 8, 16),
        lambda: ResNetCritic(1, 32, 16),
        lambda: ResNetCritic(3, 64, 8, "layer"),
    ],
    ids=["mlp", "dcgan-g", "dcgan-c", "resnet-g", "resnet-c8", "resnet-c32", "resnet-c64"],
)
def test_weight_limit_counts_the_weights_before_allocating(build, monkeypatch):
    """The count a constructor checks before allocating is within 10% of (and not above) the
    parameters it then builds: a limit just below the real count refuses, the count passes."""
    n = sum(p.numel() for p in build().parameters())
    monkeypatch.setattr(sizes, "MAX_WEIGHTS", n)
    build()
    monkeypatch.setattr(sizes, "MAX_WEIGHTS", int(0.9 * n))
    with pytest.raises(ConfigError, match="weights"):
        build()


# ----------------------------------------------------------------------------- cheap in the step


def test_checks_in_the_step_work_under_vmap_and_grad():
    """interpolates, the gradient norms and the losses check shapes only, so they run under
    torch.func.vmap (a sweep) with per-run weights, as the training step calls them."""
    runs, b = 3, 5
    real, fake = torch.randn(runs, b, 2), torch.randn(runs, b, 2)
    eps = torch.rand(runs, b)
    x = torch.func.vmap(interpolates)(real, fake, eps)  # (runs, B, 2)
    assert x.shape == (runs, b, 2)
    expect = eps[..., None] * real + (1 - eps[..., None]) * fake
    assert torch.allclose(x, expect)
    critic = nn.Linear(2, 1)
    norms = torch.func.vmap(lambda xi: input_gradient_norm_func(critic, xi))(x)  # (runs, B)
    assert torch.allclose(norms, critic.weight.norm().expand(runs, b))
    losses = torch.func.vmap(lambda r, f: wasserstein_critic_loss(r, f)["loss"])(
        real[..., 0], fake[..., 0]
    )
    assert losses.shape == (runs,)


def test_checks_in_the_step_survive_torch_compile():
    torch._dynamo.reset()

    @torch.compile(backend="eager", fullgraph=True)
    def step(real, fake, eps):
        x = interpolates(real, fake, eps)
        return wasserstein_critic_loss(x.sum(1), fake.sum(1))["loss"]

    real, fake, eps = torch.randn(4, 2), torch.randn(4, 2), torch.rand(4)
    x = eps[:, None] * real + (1 - eps[:, None]) * fake
    assert torch.allclose(step(real, fake, eps), -(x.sum(1).mean() - fake.sum(1).mean()))
