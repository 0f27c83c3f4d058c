"""One style for the figures of training, ``wgan sample`` and ``wgan interpolate`` (issue 25,
friction 9): real points stay visible over generated ones, legends stand outside the axes,
colours differ within a legend and are the same in every figure, and image grids are upscaled
and titled.

The new checks (:func:`wgan.figures.checks.visibility`,
:func:`~wgan.figures.checks.legend_colour_clashes`) are first shown to catch a hidden layer and a
shared colour, then run on the figures, which are captured instead of saved.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import tiny
from matplotlib.colors import to_rgb
from PIL import Image

from wgan.cli.app import main
from wgan.config import resolve
from wgan.figures import plotting
from wgan.figures.checks import legend_colour_clashes, legends_over_axes, visibility
from wgan.figures.images import auto_scale, image_grid
from wgan.figures.plotting import legend_covers_data, missing_axis_labels, subplots


@pytest.fixture
def captured(monkeypatch):
    """Figures handed to plotting.save_figure, kept as well as written."""
    figs = []
    save = plotting.save_figure

    def keep(fig, path):
        figs.append(fig)
        return save(fig, path)

    monkeypatch.setattr(plotting, "save_figure", keep)
    return figs


def _colour(fig, label: str) -> tuple[float, float, float]:
    """The RGB colour (alpha dropped) of the scatter labelled ``label``."""
    (art,) = [a for ax in fig.axes for a in ax.collections if a.get_label() == label]
    return tuple(np.round(art.get_facecolor()[0][:3], 3))


def _toy_points(n: int = 1000):
    """Real points and a perfect generator's (another draw of the same data)."""
    from wgan.data import make_dataset

    data = make_dataset("8gaussians")
    g = torch.Generator().manual_seed(0)
    return data, data.sample(n, generator=g).numpy(), data.sample(n, generator=g).numpy()


# ------------------------------------------------------------------------------- the checks


def test_the_checks_catch_a_hidden_layer_and_a_shared_colour():
    _, real, fake = _toy_points()
    fig, ax = subplots(figsize=(4, 4))
    ax.scatter(real[:, 0], real[:, 1], s=6, c="tab:orange", label="real")
    ax.scatter(real[:, 0], real[:, 1], s=12, c="tab:blue", label="generated")  # on top, opaque
    assert visibility(fig, "real") < 0.05 and visibility(fig, "generated") > 0.9
    with pytest.raises(ValueError, match="labelled 'modes'"):
        visibility(fig, "modes")
    fig, ax = subplots(figsize=(4, 4))
    ax.plot([0, 1], [0, 1], c="C2", label="linear 1")
    ax.plot([0, 1], [1, 0], "--", c="C2", label="slerp 1")  # a dash is not a colour
    ax.plot([0, 1], [0.5, 0.5], c="C3", label="linear 2")
    ax.legend(loc="center")
    assert legend_colour_clashes(fig) == [
        "'linear 1' and 'slerp 1' have nearly the same colour (0.00)"
    ]
    assert legends_over_axes(fig) == ["the legend of '' is over axes ''"]


# --------------------------------------------------------------------------- training figure


def test_training_plot_shows_the_real_points_over_a_perfect_generator(tmp_path):
    from wgan.training.run import Run

    run = Run(resolve(None, ["generator.hidden=16", "critic.hidden=16"]), tmp_path / "r")
    data, real, fake = _toy_points()
    fig = plotting.plot_toy(run.critic, real, fake, data.bounds(), "t")
    assert visibility(fig, "real") >= 0.8  # was 0.33: under opaque white dots
    assert visibility(fig, "generated") >= 0.3  # and the generated ones still show
    assert legend_colour_clashes(fig) == [] and legends_over_axes(fig) == []
    assert legend_covers_data(fig) == [] and missing_axis_labels(fig) == []


# ------------------------------------------------------------------ wgan sample, interpolate


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    argv = ["train", *tiny(hidden=16, steps=2, batch=32, eval_samples=100), "--out-dir", str(out)]
    assert main(argv) == 0
    (run,) = Path(out).iterdir()
    return run


def test_sample_scatter_has_the_training_style(toy_run, tmp_path, captured):
    assert main(["sample", str(toy_run), "--num", "500", "--out", str(tmp_path / "s.png")]) == 0
    (fig,) = captured
    assert legends_over_axes(fig) == []  # was inside, at the upper right
    assert legend_covers_data(fig) == [] and missing_axis_labels(fig) == []
    assert visibility(fig, "real") >= 0.8  # was 0.2: grey under blue
    assert legend_colour_clashes(fig) == []
    from wgan.training.run import load_run

    run = load_run(toy_run)
    _, real, fake = _toy_points(200)
    training = plotting.plot_toy(run.critic, real, fake, run.dataset.bounds(), "t")
    for label in ("real", "generated"):  # the colours of the training plot
        assert _colour(fig, label) == _colour(training, label)


@pytest.mark.parametrize("num_paths", [4, 7])
def test_interpolation_paths_have_their_own_colours(toy_run, tmp_path, captured, num_paths):
    out = tmp_path / "walk.png"
    argv = ["interpolate", str(toy_run), "--num-paths", str(num_paths), "--out", str(out)]
    assert main(argv) == 0
    (fig,) = captured
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert "linear 1" in labels and "slerp 1" in labels and len(labels) == 2 + 2 * num_paths
    assert legend_colour_clashes(fig) == []  # linear k and slerp k shared one before
    assert legends_over_axes(fig) == [] and missing_axis_labels(fig) == []
    training = plotting.plot_toy(torch.nn.Linear(2, 1), *_toy_points(50)[1:], (-2, 2, -2, 2), "t")
    for label in ("real", "generated"):
        assert _colour(fig, label) == _colour(training, label)
    assert _colour(fig, "real") == tuple(np.round(to_rgb("tab:orange"), 3))


# ----------------------------------------------------------------------------- image grids


def test_sample_image_grid_is_upscaled_and_titled(tmp_path):
    argv = [
        "train", "digits-dcgan",
        *tiny("data.resolution=8", width=8, steps=1, batch=16, eval_samples=64),
        "--out-dir", str(tmp_path / "runs"),
    ]  # fmt: skip
    assert main(argv) == 0
    (run,) = (tmp_path / "runs").iterdir()
    out = tmp_path / "grid.png"
    assert main(["sample", str(run), "--num", "16", "--out", str(out), "--seed", "3"]) == 0
    with Image.open(out) as im:
        arr = np.asarray(im)
    from wgan.training.run import load_run

    raw = image_grid(load_run(run).samples(16, seed=3))  # (1, 42, 42): the grid at 1x
    scale = auto_scale(8)
    assert scale == 6 and arr.shape[1] == scale * raw.shape[2]  # was 42 px wide: not upscaled
    band = arr.shape[0] - scale * raw.shape[1]
    assert 10 <= band <= 30 and arr[:band].min() < 100  # a title band with text
    expected = (raw[0] * 255).round().to(torch.uint8).numpy()
    expected = expected.repeat(scale, 0).repeat(scale, 1)
    assert np.array_equal(arr[band:], expected)  # the samples, each pixel a 6 x 6 block
