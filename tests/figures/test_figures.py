"""Figures: no legend covers data, every axis is labelled, digit grids are upscaled and titled.

The checks (:func:`wgan.figures.plotting.legend_covers_data`,
:func:`wgan.figures.plotting.missing_axis_labels`) are first shown to catch a legend over data and a
missing label, then run on the figures of training runs, of ``wgan interpolate`` and of the
experiments (drawn from synthetic results, the figure captured instead of saved).
"""

import numpy as np
import pytest
import torch
from PIL import Image

from wgan.config import resolve
from wgan.figures import plotting
from wgan.figures.images import auto_scale, image_grid, save_image_grid, to_uint8
from wgan.figures.plotting import legend_beside, legend_covers_data, missing_axis_labels, subplots


def _busy_axes(ax):
    """Points all over the axes, so any legend inside covers some."""
    g = np.random.default_rng(0)
    x = g.uniform(0, 1, (400, 2))
    ax.scatter(x[:, 0], x[:, 1], s=2, label="points")
    ax.plot([0, 1], [0, 1], label="diagonal")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)


def test_the_checks_catch_a_legend_over_data_and_a_missing_label():
    fig, ax = subplots(figsize=(4, 3))
    _busy_axes(ax)
    ax.legend(loc="upper right")
    assert legend_covers_data(fig)  # inside, over the points
    assert missing_axis_labels(fig) == ["axes '' has no x label", "axes '' has no y label"]
    fig, ax = subplots(figsize=(4, 3))
    _busy_axes(ax)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    legend_beside(ax)
    fig.tight_layout()
    assert legend_covers_data(fig) == [] and missing_axis_labels(fig) == []
    # a line crossing the legend between two vertices counts too
    fig, ax = subplots(figsize=(4, 3))
    ax.plot([0, 1], [0.93, 0.93], label="flat line near the top")
    ax.set_ylim(0, 1)
    ax.legend(loc="upper center")
    assert legend_covers_data(fig)


def test_legend_beside_a_twin_axes_clears_its_labels():
    fig, axes = subplots(1, 2, figsize=(9, 3))
    for ax in axes:
        _busy_axes(ax)
        twin = ax.twinx()
        twin.plot([0, 1], [5, 9], c="r", label="twin line")
        twin.set_ylabel("a long right-hand label")
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        (h1, l1), (h2, l2) = ax.get_legend_handles_labels(), twin.get_legend_handles_labels()
        legend_beside(ax, h1 + h2, l1 + l2)
    fig.tight_layout()
    assert legend_covers_data(fig) == [] and missing_axis_labels(fig) == []
    renderer = fig.canvas.get_renderer()
    for ax in axes:
        twin = next(a for a in ax.get_shared_x_axes().get_siblings(ax) if a is not ax)
        right = twin.yaxis.label.get_window_extent(renderer).x1
        assert ax.get_legend().get_window_extent(renderer).x0 >= right


def test_toy_training_figure(tmp_path):
    from wgan.training.run import Run

    run = Run(resolve(None, ["generator.hidden=16", "critic.hidden=16"]), tmp_path / "r")
    g = torch.Generator().manual_seed(0)
    real = run.dataset.sample(500, generator=g).numpy()
    fig = plotting.plot_toy(run.critic, real, run.samples(500).numpy(), run.dataset.bounds(), "t")
    assert legend_covers_data(fig) == [] and missing_axis_labels(fig) == []
    assert fig.legends  # the legend exists, beside the colorbar


def test_latent_figures(tmp_path):
    images = torch.rand(3, 5, 1, 8, 8) * 2 - 1
    fig = plotting.plot_image_grid(images, ["a", "b", "c"], list("01234"), "grid", "t", "path")
    assert missing_axis_labels(fig) == []
    paths = np.cumsum(np.full((4, 6, 2), 0.1), axis=1)  # (R, S, 2)
    real = np.random.default_rng(0).normal(size=(300, 2))
    fig = plotting.plot_latent_paths(
        real, real[:100], paths, ["linear 1", "slerp 1", "linear 2", "slerp 2"],
        ["linear", "slerp"] * 2, (-3, 3, -3, 3), "paths",
    )  # fmt: skip
    assert legend_covers_data(fig) == [] and missing_axis_labels(fig) == []


# ------------------------------------------------------------------------------- digit grids


def test_saved_grid_is_upscaled_by_nearest_neighbour_with_a_title(tmp_path):
    x = torch.linspace(-1, 1, 6 * 64).reshape(6, 1, 8, 8)
    assert auto_scale(8) == 6 and auto_scale(16) == 3 and auto_scale(64) == 1
    with Image.open(save_image_grid(x, tmp_path / "raw.png", nrow=3)) as im:
        raw = np.array(im)
    p = save_image_grid(x, tmp_path / "big.png", nrow=3, scale=4, title="run: step 12")
    with Image.open(p) as im:
        big = np.array(im)
    band = big.shape[0] - 4 * raw.shape[0]
    assert big.shape[1] == 4 * raw.shape[1] and 10 <= band <= 30
    torch.testing.assert_close(  # every pixel became a 4 x 4 block of the same value
        torch.from_numpy(big[band:]),
        torch.from_numpy(raw).repeat_interleave(4, 0).repeat_interleave(4, 1),
    )
    assert big[:band].min() < 100  # the title is written (dark text on white)
    tile = to_uint8(x)[0, :, :, 0]  # (8, 8)
    assert np.array_equal(big[band + 8 : band + 8 + 32 : 4, 8 : 8 + 32 : 4], tile)
    assert image_grid(x, nrow=3).shape == (1, 22, 32)  # the tensor grid keeps its size


def test_training_digit_grid_has_run_and_step(tmp_path):
    from wgan.training.evaluation import sample_grid
    from wgan.training.run import Run

    cfg = resolve("digits-dcgan", ["data.resolution=8", "generator.width=8", "critic.width=8"])
    run = Run(cfg, tmp_path / "r")
    run.step = 7
    with Image.open(sample_grid(run)) as im:
        arr = np.asarray(im)
    raw = image_grid(run.samples(64, seed=2), nrow=8)  # (1, 82, 82)
    assert arr.shape[1] == 6 * raw.shape[2] and arr.shape[0] > 6 * raw.shape[1]  # x6 and a band
    assert arr[: arr.shape[0] - 6 * raw.shape[1]].min() < 100  # title text


# ---------------------------------------------------------------------- experiment figures


@pytest.fixture
def captured(monkeypatch):
    """Figures handed to save_figure, instead of writing them."""
    figs = []

    def keep(fig, path):
        figs.append(fig)
        return path

    monkeypatch.setattr(plotting, "save_figure", keep)
    return figs


def _check(figs):
    assert figs
    for fig in figs:
        assert legend_covers_data(fig) == [], legend_covers_data(fig)
        assert missing_axis_labels(fig) == [], missing_axis_labels(fig)


def test_parallel_lines_figure(captured, monkeypatch, tmp_path):
    from wgan.experiments import parallel_lines_figures

    monkeypatch.setattr(parallel_lines_figures, "save_figure", plotting.save_figure)
    thetas = [-1.0, -0.5, 0.0, 0.5, 1.0]
    per = {
        "gp": [{"estimate": abs(t), "grad": np.sign(t)} for t in thetas],
        "minimax": [{"estimate": 0.69, "grad": 0.0, "grad_nonsaturating": 3 * t} for t in thetas],
        "clip": [{"estimate": 0.01 * abs(t), "grad": 0.01 * np.sign(t)} for t in thetas],
    }
    xs = np.linspace(-1, 1.5, 50)
    profile = {"xs": xs, "theta": 1.0, "minimax": 1 / (1 + np.exp(xs)), "gp": -xs, "clip": -xs}
    parallel_lines_figures.plot_results(thetas, per, 0.01, profile, tmp_path / "f.png")
    _check(captured)


def test_discrete_data_figure(captured, tmp_path):
    from wgan.experiments import get_experiment
    from wgan.experiments.discrete_data import DiscreteDataSettings

    curve = [
        {"step": s, **{f"js{n}": 1 / (s + n) for n in range(1, 5)},
         **{f"js{n}_baseline": 0.01 * n for n in range(1, 5)}}
        for s in (1, 5, 10, 20)
    ]  # fmt: skip
    numbers = {"methods": [{"label": "wgan-gp", "curve": curve, "samples": {}, "error": None}]}
    get_experiment("discrete-data").figures(DiscreteDataSettings(), numbers, [], tmp_path)
    _check(captured)


def test_f_divergence_and_mode_collapse_figures(captured, tmp_path):
    from wgan.data import make_dataset
    from wgan.experiments import get_experiment, mode_collapse
    from wgan.experiments.common import sample_grid
    from wgan.experiments.f_divergences import FDivergencesSettings
    from wgan.experiments.improved_techniques import ImprovedTechniquesSettings

    data = make_dataset("8gaussians")
    fake = data.sample(500, generator=torch.Generator().manual_seed(1)).numpy()
    metrics = {"modes_captured": 8, "n_modes": 8, "high_quality_fraction": 0.9, "w1": 0.05}
    results = [
        {"divergence": d, "method": d, "dataset": "8gaussians", "_samples": fake,
         "metrics": metrics, "final_estimate": 0.5, "held_out_estimate": 0.4, "diverged_at": None}
        for d in ("kl", "jensen_shannon", "pearson")
    ] + [{"divergence": "total_variation", "method": "total_variation", "dataset": "8gaussians",
          "_samples": None, "metrics": None, "final_estimate": float("nan"),
          "held_out_estimate": float("nan"), "diverged_at": 12}]  # fmt: skip
    get_experiment("f-divergences").figures(FDivergencesSettings(), {}, results, tmp_path)
    runs = [
        {"seed": 0, "dataset": "8gaussians", "method": m, "_samples": fake, "metrics": metrics}
        for m in ("gan", "wgan-gp")
    ]
    sample_grid(runs, mode_collapse.METHODS, "samples", tmp_path / "c.png")
    it = ImprovedTechniquesSettings(datasets="8gaussians")
    key = {"dataset": "8gaussians", "objective": "minimax"}
    runs = [{**runs[0], **key, "method": t, "technique": t, "diverged_at": None}
            for t in ("none", "wgan-gp")]  # fmt: skip
    summary = [
        {**key, "technique": t, "n_modes": 8, "modes": (8.0, 0.0)} for t in ("none", "wgan-gp")
    ]
    get_experiment("improved-techniques").figures(it, {"summary": summary}, runs, tmp_path)
    _check(captured)


def test_loss_vs_quality_figure_with_twin_axes(captured, tmp_path):
    from wgan.data import make_dataset
    from wgan.experiments import loss_vs_quality

    data = make_dataset("8gaussians")
    steps = [0, 10, 100, 1000]
    history = {
        "step": steps,
        "estimate": [2.0, 1.0, 0.5, 0.2],
        "run_estimate": [2.0, 1.0, 0.4, 0.3],
        "d_loss": [-2.0, -1.0, -0.5, -0.2],
        "w1": [1.5, 0.9, 0.4, 0.1],
    }
    results = [
        {"method": m, "estimate_of": "W1", "spearman_estimate_w1": 0.9, "history": history,
         "_samples": data.sample(300, generator=torch.Generator().manual_seed(k)).numpy()}
        for k, m in enumerate(("wgan-gp", "wgan-clip"))
    ]  # fmt: skip
    loss_vs_quality.plot(results, data, tmp_path / "f.png")
    _check(captured)


def test_clipping_vs_penalty_figures(captured, tmp_path):
    from wgan.experiments import clipping_vs_penalty as cvp

    s = cvp.ClippingVsPenaltySettings()
    X, Y = np.meshgrid(np.linspace(-3, 3, 20), np.linspace(-3, 3, 20))
    pts = np.random.default_rng(0).normal(size=(200, 2))
    weights = {"clip": np.random.default_rng(1).uniform(-0.01, 0.01, 500), "GP": pts.ravel()}
    records = [
        {"dataset": "8gaussians", "method": m, "_surface": (X, Y, X + Y), "_samples": (pts, pts),
         "_weights": weights[m], "_clip": 0.01 if m == "clip" else None}
        for m in ("clip", "GP")
    ]  # fmt: skip
    cvp.surfaces_figure(records, s, tmp_path / "a.png")
    deep = {m: {"layers": [1.0, 0.5, 0.1, 0.01]} for m in ("clip", "GP")}
    cvp.gradients_figure(deep, s, tmp_path / "b.png")
    cvp.histogram_figure(records, "swissroll", tmp_path / "c.png")
    _check(captured)
