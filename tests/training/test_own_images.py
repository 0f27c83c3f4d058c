"""A new user's path with a folder of their own images (issue 25): 32-px coloured shapes in three
class sub-folders, the ``images-wgan-gp`` preset, ``figures/reals.png``, ``wgan eval`` with FD,
precision and recall beside their real-vs-real floors, and ``wgan sample --label squares``.

The slow test trains the preset at its default budget and checks that the samples are coloured
like the data: their mean-colour distance to the real images (``colour_distance``, an exact W1
between per-image mean colours) is within twice the real-vs-real floor. It saves a grid of
real and generated images as ``/tmp/own_images_grid.png``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image, ImageDraw

from wgan.cli.app import main
from wgan.training.run import load_run

CLASSES = ("circles", "squares", "triangles")  # sorted: labels 0, 1, 2
SMALL = [  # a tiny DCGAN: the path is tested, not the quality
    "generator.width=8",
    "critic.width=8",
    "generator.latent_dim=8",
    "data.batch_size=8",
    "train.steps=3",
    "train.n_critic=1",
    "train.progress=false",
    "train.eval_samples=60",
]


def write_shapes(root: Path, n_per_class: int, size: int = 32, seed: int = 0) -> Path:
    """``root/{circles,squares,triangles}/NNNN.png``: green discs, red squares and blue
    triangles of random size, place and shade on white, ``size`` x ``size`` RGB."""
    rng = np.random.default_rng(seed)
    for cls in CLASSES:
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            img = Image.new("RGB", (size, size), (255, 255, 255))
            draw = ImageDraw.Draw(img)
            s = int(rng.integers(size // 3, size * 2 // 3))
            x0, y0 = (int(v) for v in rng.integers(1, size - s - 1, size=2))
            v = int(rng.integers(170, 256))
            if cls == "squares":
                draw.rectangle([x0, y0, x0 + s, y0 + s], fill=(v, 0, 0))
            elif cls == "circles":
                draw.ellipse([x0, y0, x0 + s, y0 + s], fill=(0, v, 0))
            else:
                draw.polygon([(x0 + s / 2, y0), (x0, y0 + s), (x0 + s, y0 + s)], fill=(0, 0, v))
            img.save(root / cls / f"{i:04d}.png")
    return root


def _train(data: Path, out: Path, *extra: str) -> Path:
    argv = ["train", "images-wgan-gp", f"data.path={data}", *SMALL, *extra, "--out-dir", str(out)]
    assert main(argv) == 0
    (run,) = list(out.iterdir())
    return run


def test_a_new_user_trains_the_images_preset_on_a_folder(tmp_path, capsys):
    data = write_shapes(tmp_path / "myshapes", n_per_class=20)
    run = _train(data, tmp_path / "runs")
    err = capsys.readouterr().err
    # The run is named after the folder; the files decided the shape; the mapping is printed.
    assert run.name == "00000-myshapes"
    assert "60 images, read at 32x32 RGB" in err
    assert "3 classes (label name): 0 circles, 1 squares, 2 triangles" in err
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["name"] == "myshapes"
    assert (config["data"]["resolution"], config["data"]["channels"]) == (32, 3)
    assert config["data"]["classes"] == list(CLASSES)
    assert config["conditional"]["mode"] == "concat"
    # reals.png: titled, upscaled, one row per class; and real beside generated.
    with Image.open(run / "figures" / "reals.png") as img:
        assert img.mode == "RGB" and img.width > 10 * 32 * 2 and img.height > 3 * 32 * 2
    assert (run / "figures" / "real_vs_generated.png").is_file()

    # eval: FD, precision and recall in the data's own features, each with its floor.
    assert main(["eval", str(run), "--json"]) == 0
    out, err = capsys.readouterr()
    record = json.loads(out)
    for key in ("fd_features", "precision", "recall", "colour_distance"):
        assert isinstance(record[key], float) and isinstance(record[f"{key}_baseline"], float)
    assert "not comparable with Inception FID" in record["feature_space"]
    assert "classifier of its 3 classes" in record["feature_space"]
    assert record["feature_samples"] == 30  # half of a small set held out
    assert record["classes"] == "0 circles, 1 squares, 2 triangles"
    assert main(["eval", str(run)]) == 0
    text = capsys.readouterr().out
    line = next(x for x in text.splitlines() if x.strip().startswith("fd_features"))
    assert "real-vs-real" in line

    # --label by name: the samples of class 1, squares; a misspelt name gets close matches.
    path = tmp_path / "squares.npy"
    args = ["sample", str(run), "--label", "squares", "--num", "10", "--out", str(path)]
    assert main(args) == 0
    assert "of class squares" in capsys.readouterr().out
    expected = load_run(run).samples(10, labels=1)
    assert torch.equal(torch.from_numpy(np.load(path)), expected)
    args = ["sample", str(run), "--label", "sqaures", "--num", "10", "--out", str(path)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("wgan: error: unknown class 'sqaures'; did you mean squares?")
    assert "0 circles, 1 squares, 2 triangles" in err and len(err.splitlines()) == 1

    # wgan runs: the run, finished, with its last metrics and their floors.
    assert main(["runs", str(run.parent), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["runs"]
    assert (row["run"], row["status"], row["step"]) == ("00000-myshapes", "finished", 3)
    assert row["baselines"]["fd_features"] == record["fd_features_baseline"]


@pytest.mark.slow
def test_the_images_preset_colours_its_samples_like_the_data(tmp_path, capsys):
    """At the preset's default budget, on 600 shapes: colour distance within 2x its floor."""
    data = write_shapes(tmp_path / "myshapes", n_per_class=200)
    argv = ["train", "images-wgan-gp", f"data.path={data}", "train.progress=false"]
    assert main([*argv, "--out-dir", str(tmp_path / "runs")]) == 0
    (run,) = list((tmp_path / "runs").iterdir())
    capsys.readouterr()
    assert main(["eval", str(run), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    shutil.copyfile(run / "figures" / "real_vs_generated.png", "/tmp/own_images_grid.png")
    numbers = {k: v for k, v in record.items() if isinstance(v, float)}
    print(json.dumps(numbers, indent=1))
    assert record["colour_distance"] <= 2 * record["colour_distance_baseline"], numbers
