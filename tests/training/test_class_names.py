"""Class names from an image folder's sub-folders are kept by the run (issue 25): asked for by
name from Python and the command line, written beside each row of the figures."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from wgan.config import resolve
from wgan.errors import WganError
from wgan.figures.images import image_grid
from wgan.training.evaluation import sample_grid
from wgan.training.run import Run

TINY = ["generator.width=4", "critic.width=4", "generator.latent_dim=4", "train.progress=false"]


def _folder(root, side=8):
    rng = np.random.default_rng(0)
    for k, cls in enumerate(("ants", "bees", "wasps")):
        (root / cls).mkdir(parents=True)
        for i in range(4):
            arr = np.full((side, side, 3), 255, dtype=np.uint8)
            arr[2:6, 2:6, k] = rng.integers(0, 100)
            Image.fromarray(arr).save(root / cls / f"{i}.png")
    return root


@pytest.fixture
def run(tmp_path):
    cfg = resolve("images-wgan-gp", [f"data.path={_folder(tmp_path / 'insects')}", *TINY])
    return Run(cfg, tmp_path / "run")


def test_a_class_is_asked_for_by_name(run):
    assert run.cfg.data.classes == ("ants", "bees", "wasps")
    assert run.cfg.conditional.mode == "concat"  # auto: the folder has classes
    assert torch.equal(run.samples(5, labels="bees"), run.samples(5, labels=1))
    assert torch.equal(run.samples(5, labels="2"), run.samples(5, labels=2))
    with pytest.raises(WganError, match=r"unknown class 'bess'; did you mean bees\? .*0 ants"):
        run.samples(5, labels="bess")


def test_runs_without_class_names_say_what_a_label_is(tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(3):
        Image.new("RGB", (8, 8), (i, 0, 0)).save(flat / f"{i}.png")
    plain = Run(resolve("images-wgan-gp", [f"data.path={flat}", *TINY]), tmp_path / "a")
    assert plain.cfg.conditional.mode == "none" and plain.cfg.data.classes is None
    with pytest.raises(WganError, match="not conditional"):
        plain.samples(2, labels="bees")
    digits = Run(resolve("digits-cgan", ["data.resolution=8", *TINY]), tmp_path / "d")
    with pytest.raises(WganError, match=r"have no names; give a class index \(0 to 9\)"):
        digits.samples(2, labels="three")


def _label_band(path, grid_width):
    """The columns left of the grid, below the title: white with dark text."""
    with Image.open(path) as im:
        arr = np.asarray(im.convert("L"))
    return arr, arr[20:, : arr.shape[1] - grid_width]


def test_figures_name_the_rows_and_show_real_beside_generated(run):
    from wgan.training.own_images import write_real_vs_generated, write_reals

    run.step = 3
    raw = image_grid(run.samples(30, seed=2), nrow=10)  # (3, 3 rows, 10 columns)
    width = 6 * raw.shape[2]  # 8-px images are upscaled x6
    arr, band = _label_band(sample_grid(run), width)
    assert band.shape[1] > 20 and band.min() < 100 and arr.shape[0] > 6 * raw.shape[1]
    arr, band = _label_band(write_reals(run), width)
    assert band.shape[1] > 20 and band.min() < 100
    with Image.open(write_real_vs_generated(run)) as im:
        assert im.width > 2 * width  # two grids side by side, each with its names
