"""An image folder's shape comes from its files, not from the preset it is given to (issue 25):
``wgan train digits-wgan-gp data.name=folder data.path=myshapes`` once trained 32-px colour
images at the digits' 16x16 grayscale, in a run called "digits"."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from wgan.cli.app import main
from wgan.config import resolve
from wgan.data.image_files import load_image_folder
from wgan.errors import DataError
from wgan.store import checkpoints
from wgan.training.run import Run, load_run

TINY = [
    "generator.width=4",
    "critic.width=4",
    "generator.latent_dim=4",
    "data.batch_size=4",
    "train.steps=1",
    "train.n_critic=1",
    "train.progress=false",
    "train.eval_samples=8",
    "train.figure_every=0",
]


def _colour_folder(root, n=6, side=32, seed=0):
    rng = np.random.default_rng(seed)
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            arr = rng.integers(0, 256, size=(side, side, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / cls / f"{i}.png")
    return root


def test_the_resolution_is_the_most_common_side_rounded_to_a_power_of_two():
    from wgan.data.image_files import nearest_resolution

    table = {1: 8, 4: 8, 8: 8, 11: 8, 12: 16, 16: 16, 24: 32, 28: 32, 32: 32, 45: 32, 46: 64}
    table.update({64: 64, 100: 64, 4000: 64})
    assert {side: nearest_resolution(side) for side in table} == table


def test_a_scan_reads_sizes_colour_and_classes_from_the_headers(tmp_path):
    from wgan.data.image_files import scan_image_folder

    root = tmp_path / "mixed"
    root.mkdir()
    for i in range(3):  # grayscale 28x28 (the most common side) ...
        Image.fromarray(np.full((28, 28), 40 * i, dtype=np.uint8)).save(root / f"g{i}.png")
    Image.new("RGB", (64, 40), (200, 10, 10)).save(root / "wide.png")  # ... and one colour file
    scan = scan_image_folder(root)
    assert (scan.n_images, scan.common_side, scan.resolution) == (4, 28, 32)
    assert scan.colour and scan.channels == 3 and scan.class_names is None
    ds = load_image_folder(root)  # unset resolution and channels: the scan's
    assert ds.shape == (3, 32, 32)

    grey = tmp_path / "grey"
    grey.mkdir()
    for i in range(2):
        Image.fromarray(np.full((12, 12), 9 * i, dtype=np.uint8)).save(grey / f"{i}.png")
    pal = Image.new("P", (12, 12))
    pal.putpalette([v for g in range(256) for v in (g, g, g)])  # a grey palette: grayscale
    pal.save(grey / "p.png")
    scan = scan_image_folder(grey)
    assert (scan.resolution, scan.channels) == (16, 1)
    assert load_image_folder(grey).shape == (1, 16, 16)
    coloured = Image.new("P", (12, 12))
    coloured.putpalette([0, 0, 0, 255, 0, 0])  # one red entry: colour
    coloured.save(grey / "q.png")
    assert scan_image_folder(grey).channels == 3


def test_a_preset_for_other_data_adopts_the_folders_shape_and_name(tmp_path):
    """The issue's case: the digits preset pointed at 32-px colour shapes."""
    data = _colour_folder(tmp_path / "myshapes")
    cfg = resolve("digits-wgan-gp", ["data.name=folder", f"data.path={data}", *TINY])
    run = Run(cfg, tmp_path / "run")
    assert tuple(run.dataset.shape) == (3, 32, 32)
    assert tuple(run.samples(2).shape) == (2, 3, 32, 32)
    assert cfg.name == "myshapes-digits-wgan-gp"
    assert (cfg.data.resolution, cfg.data.channels, cfg.data.classes) == (32, 3, ("a", "b"))
    # What the user gives explicitly is kept, in any order on the command line.
    cfg = resolve(
        "digits-wgan-gp", ["data.resolution=8", "data.name=folder", f"data.path={data}", "name=x"]
    )
    assert (cfg.data.resolution, cfg.name) == (8, "x")
    assert Run(resolve("digits-wgan-gp", [*TINY]), tmp_path / "digits").dataset.shape == (1, 16, 16)


def test_the_cli_run_is_named_after_the_folder_and_records_its_shape(tmp_path, capsys):
    data = _colour_folder(tmp_path / "my shapes!")
    out = tmp_path / "runs"
    argv = ["train", "digits-wgan-gp", "data.name=folder", f"data.path={data}", *TINY]
    assert main([*argv, "--out-dir", str(out)]) == 0
    (run,) = list(out.iterdir())
    assert run.name == "00000-my-shapes-digits-wgan-gp"
    assert "12 images, read at 32x32 RGB" in capsys.readouterr().err
    data_cfg = yaml.safe_load((run / "config.yaml").read_text())["data"]
    assert (data_cfg["resolution"], data_cfg["channels"], data_cfg["classes"]) == (
        32,
        3,
        ["a", "b"],
    )
    assert (
        main(["train", "digits-wgan-gp", "data.name=folder", f"data.path={data}", "--dry-run"]) == 0
    )
    dry = yaml.safe_load(capsys.readouterr().out)["data"]
    assert (dry["resolution"], dry["channels"]) == (32, 3)


def test_a_folder_run_from_before_keeps_its_64px_rgb_shape(tmp_path):
    """A run saved when an unset resolution meant 64 and unset channels RGB still loads so."""
    data = _colour_folder(tmp_path / "shapes", side=64)
    over = ["data.name=folder", f"data.path={data}", "data.resolution=64", "data.channels=3"]
    cfg = resolve("digits-wgan-gp", [*over, *TINY, "generator.width=2", "critic.width=2"])
    run = Run(cfg, tmp_path / "r")
    path = tmp_path / "r" / "checkpoint.pt"
    state = {
        "config": cfg.to_dict(),
        "step": 0,
        "generator": run.gen.state_dict(),
        "critic": run.critic.state_dict(),
        "generator_ema": run.ema.state_dict(),
    }
    for key in ("resolution", "channels", "classes"):
        state["config"]["data"][key] = None  # as such a run stored it
    checkpoints.save_checkpoint(path, state)
    # The files are 64-px colour, but the old defaults are 64 and RGB whatever the files say:
    for f in sorted(data.rglob("*.png"))[:8]:
        Image.fromarray(np.zeros((16, 16), dtype=np.uint8)).save(f)  # now mostly 16-px grey
    loaded = load_run(tmp_path / "r")
    assert tuple(loaded.dataset.shape) == (3, 64, 64)
    assert torch.equal(loaded.samples(2), run.samples(2))


def test_a_run_refuses_a_folder_whose_classes_changed(tmp_path):
    from wgan.data.adopt import adopt_data

    data = _colour_folder(tmp_path / "shapes")
    cfg = resolve("digits-wgan-gp", ["data.name=folder", f"data.path={data}", *TINY])
    adopt_data(cfg)
    (data / "b").rename(data / "c")
    with pytest.raises(DataError, match=r"sub-folders are a, c, but .* are a, b"):
        Run(cfg, tmp_path / "r")
