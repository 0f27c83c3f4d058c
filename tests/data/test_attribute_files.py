"""Attribute data from the user's files (issue 26): a tiny CelebA-shaped folder and a folder with
a CSV, written by the tests, parsed right (crop, resize, values); every kind of malformed
attribute file is one line and exit status 2 naming the file and the line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from wgan.cli.app import main
from wgan.config import DataConfig, resolve
from wgan.data.attribute_files import load_celeba, read_celeba_attributes
from wgan.data.build import build_dataset
from wgan.errors import DataError

NAMES = ("Smiling", "Male", "Eyeglasses")
# Each CelebA image is 20 wide and 24 high: its centre 12x12 (columns 4-15, rows 6-17) has one
# colour per image and the border around it is black.
COLOURS = [(200, 40, 10), (10, 200, 40), (40, 10, 200), (250, 250, 0), (0, 250, 250), (90, 90, 90)]


def _values(i: int) -> list[int]:
    return [(i >> j) & 1 for j in range(3)]  # image i has attribute j when bit j of i is set


def _face(i: int) -> np.ndarray:
    arr = np.zeros((24, 20, 3), dtype=np.uint8)
    arr[6:18, 4:16] = COLOURS[i]
    return arr


def _celeba(root: Path) -> Path:
    (root / "img_align_celeba").mkdir(parents=True)
    rows = []
    for i in range(6):
        Image.fromarray(_face(i)).save(root / "img_align_celeba" / f"{i + 1:06d}.png")
        signs = "  ".join("1" if v else "-1" for v in _values(i))  # CelebA pads with spaces
        rows.append(f"{i + 1:06d}.png {signs}")
    text = "6\n" + " ".join(NAMES) + " \n" + "\n".join(rows) + "\n"
    (root / "list_attr_celeba.txt").write_text(text)
    return root


@pytest.fixture
def celeba(tmp_path):
    return _celeba(tmp_path / "celeba")


def _csv_folder(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    lines = ["filename,smiling,hat"]
    for i in range(5):
        name = f"sub/{i}.png" if i % 2 else f"{i}.jpg"
        arr = np.full((10, 10, 3), COLOURS[i], dtype=np.uint8)
        Image.fromarray(arr).save(root / name)
        lines.append(f"{name},{i % 2},{1 if i >= 3 else 0}")
    (root / "attrs.csv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def folder(tmp_path):
    return _csv_folder(tmp_path / "pics")


def test_celeba_is_read_with_its_attributes_crop_and_resolution(celeba):
    ds = build_dataset(DataConfig(name="celeba", path=str(celeba), crop=12, resolution=8))
    assert (ds.name, len(ds), ds.shape, ds.pixels.dtype) == ("celeba", 6, (3, 8, 8), torch.uint8)
    assert ds.attribute_schema.to_spec() == NAMES  # 3 flags, in the file's order
    assert ds.attributes.tolist() == [[float(v) for v in _values(i)] for i in range(6)]
    # the centre 12x12 crop is one colour, so every pixel of the 8x8 image is that colour
    want = torch.tensor(COLOURS, dtype=torch.uint8)[:, :, None, None].expand(6, 3, 8, 8)
    assert torch.equal(ds.pixels, want)
    # a larger crop takes in the black border
    wider = load_celeba(celeba, resolution=8, crop=16)
    assert int(wider.pixels[:, :, 0, 0].max()) < int(want[:, :, 0, 0].max())


def test_celeba_n_train_reads_the_first_images_of_the_list(celeba):
    ds = build_dataset(
        DataConfig(name="celeba", path=str(celeba), crop=12, resolution=8, n_train=4)
    )
    assert len(ds) == 4
    assert ds.attributes.tolist() == [[float(v) for v in _values(i)] for i in range(4)]
    table = read_celeba_attributes(celeba / "list_attr_celeba.txt", 2)
    assert (table.files, table.lines) == (("000001.png", "000002.png"), (3, 4))


def test_celeba_dry_run_through_the_cli(celeba, capsys):
    args = [f"data.path={celeba}", "data.crop=12", "data.resolution=8"]
    assert main(["train", "digits-cgan", "--dry-run", "data.name=celeba", *args]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == (
        "# data checked: celeba: 6 images of 3x8x8, 3 attributes (Smiling, Male, Eyeglasses)"
    )
    assert "  attributes:\n  - Smiling\n  - Male\n  - Eyeglasses\n" in out


def test_the_csv_folder_reads_listed_files_with_their_size_and_colour(folder, capsys):
    cfg = DataConfig(name="folder", path=str(folder), attribute_file=str(folder / "attrs.csv"))
    ds = build_dataset(cfg)
    assert (len(ds), ds.shape, ds.attribute_schema.to_spec()) == (5, (3, 8, 8), ("smiling", "hat"))
    assert ds.attributes.tolist() == [[i % 2, 1.0 if i >= 3 else 0.0] for i in range(5)]
    png = torch.tensor(COLOURS[1], dtype=torch.uint8)[:, None, None].expand(3, 8, 8)
    assert torch.equal(ds.pixels[1], png)  # sub/1.png, a uniform PNG
    held = build_dataset(
        DataConfig(
            name="folder",
            path=str(folder),
            attribute_file=cfg.attribute_file,
            holdout_combos=("smiling,hat",),
        )
    )
    assert held.attributes.tolist() == [[0, 0], [1, 0], [0, 0], [0, 1]]  # row 3 (1, 1) removed
    argv = ["train", "--dry-run", "data.name=folder", f"data.path={folder}"]
    assert main([*argv, f"data.attribute_file={folder / 'attrs.csv'}"]) == 0
    captured = capsys.readouterr()
    assert "folder: 5 images of 3x8x8, 2 attributes (smiling, hat)" in captured.out
    assert "2 attributes: smiling, hat" in captured.err  # what the files decided


CELEBA_BAD = {
    "missing file": (None, "list_attr_celeba.txt: no such file"),
    "empty file": ("", "line 1: empty file"),
    "count not a number": ("six\n", "line 1: expected the number of images, got 'six'"),
    "no names": ("6\n\n", "line 2: expected the attribute names"),
    "a name twice": ("6\nSmiling Male smiling\n", "line 2: attribute 'smiling' is named twice"),
    "wrong number of values": (
        "2\nSmiling Male Eyeglasses\n000001.png 1 -1 1\n000002.png 1 -1\n",
        "line 4: 2 values for the 3 attributes",
    ),
    "a value not 1 or -1": (
        "2\nSmiling Male Eyeglasses\n000001.png 1 -1 1\n000002.png 1 0 1\n",
        "line 4: value '0' of 'Male' is not 1 or -1",
    ),
    "a missing image": (
        "2\nSmiling Male Eyeglasses\n000001.png 1 -1 1\n000009.png 1 -1 1\n",
        "line 4: image '000009.png' not found in",
    ),
    "a duplicated filename": (
        "3\nSmiling Male Eyeglasses\n000001.png 1 -1 1\n000002.png 1 1 1\n000001.png 1 1 1\n",
        "line 5: '000001.png' is listed again (first on line 3)",
    ),
    "fewer rows than declared": (
        "4\nSmiling Male Eyeglasses\n000001.png 1 -1 1\n000002.png 1 1 1\n",
        "line 4: the file ends after 2 of the 4 images line 1 declares",
    ),
    "more rows than declared": (
        "1\nSmiling Male Eyeglasses\n000001.png 1 -1 1\n000002.png 1 1 1\n",
        "line 4: more image rows than the 1 line 1 declares",
    ),
    "an escape in a filename": (
        "1\nSmiling Male Eyeglasses\n\x1b[31mx.png 1 -1 1\n",
        "line 3: image '\\x1b[31mx.png' not found in",
    ),
}


@pytest.mark.parametrize("kind", list(CELEBA_BAD))
def test_a_malformed_celeba_list_is_one_line_naming_file_and_line(kind, celeba, capsys):
    text, message = CELEBA_BAD[kind]
    attr = celeba / "list_attr_celeba.txt"
    if text is None:
        attr.unlink()
    else:
        attr.write_text(text)
    argv = ["train", "--dry-run", "data.name=celeba", f"data.path={celeba}", "data.crop=12"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"wgan: error: {attr}: ") and err.count("\n") == 1, err
    assert message in err
    assert "\x1b" not in err


CSV_BAD = {
    "missing file": (None, "attrs.csv: no such file"),
    "empty file": ("\n", "line 1: empty file"),
    "a header without filename": ("name,smiling\n0.jpg,1\n", "line 1: expected the header"),
    "wrong number of values": (
        "filename,smiling,hat\n0.jpg,1,0\nsub/1.png,1\n",
        "line 3: 1 values for the 2 attributes",
    ),
    "a value not 0 or 1": (
        "filename,smiling,hat\n0.jpg,1,0\nsub/1.png,-1,0\n",
        "line 3: value '-1' of 'smiling' is not 0 or 1",
    ),
    "a missing image": ("filename,smiling\n0.jpg,1\n\nnope.png,0\n", "line 4: image 'nope.png'"),
    "a duplicated filename": (
        "filename,smiling\n0.jpg,1\n0.jpg,0\n",
        "line 3: '0.jpg' is listed again (first on line 2)",
    ),
    "no rows": ("filename,smiling\n", "line 2: no image rows after the header"),
    "a path out of the folder": ("filename,smiling\n../x.png,1\n", "line 2: filename '../x.png'"),
}


@pytest.mark.parametrize("kind", list(CSV_BAD))
def test_a_malformed_csv_is_one_line_naming_file_and_line(kind, folder, capsys):
    text, message = CSV_BAD[kind]
    attr = folder / "attrs.csv"
    if text is None:
        attr.unlink()
    else:
        attr.write_text(text)
    argv = ["train", "--dry-run", "data.name=folder", f"data.path={folder}"]
    assert main([*argv, f"data.attribute_file={attr}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"wgan: error: {attr}: ") and err.count("\n") == 1, err
    assert message in err


def test_strings_from_the_file_are_escaped_in_the_message(celeba):
    attr = celeba / "list_attr_celeba.txt"
    attr.write_text("1\nSmiling\n\x1b]0;owned\x07.png 1\n")
    with pytest.raises(DataError) as err:
        build_dataset(DataConfig(name="celeba", path=str(celeba), crop=12))
    assert "image '\\x1b]0;owned\\x07.png' not found" in str(err.value)
    assert "\x1b" not in str(err.value) and "\x07" not in str(err.value)


def test_a_set_larger_than_free_memory_is_refused_before_reading(celeba, monkeypatch):
    from wgan.data import attribute_files

    def no_reading(*args, **kwargs):
        raise AssertionError("an image was read")

    monkeypatch.setattr(attribute_files.memory, "available_memory", lambda: 1000)
    monkeypatch.setattr(attribute_files, "read_image_files", no_reading)
    with pytest.raises(DataError, match=r"6 images at 64x64x3 need 73,728 bytes .* 1,000 bytes"):
        load_celeba(celeba, crop=12)


def test_a_run_refuses_a_csv_whose_attributes_changed(folder, tmp_path):
    from wgan.data.adopt import adopt_data
    from wgan.training.run import Run

    attr = folder / "attrs.csv"
    tiny = ["generator.width=4", "critic.width=4", "data.batch_size=4", "train.progress=false"]
    over = ["data.name=folder", f"data.path={folder}", f"data.attribute_file={attr}", *tiny]
    cfg = resolve("digits-cgan", over)
    adopt_data(cfg)
    assert cfg.data.attributes == ("smiling", "hat") and cfg.data.resolution == 8
    attr.write_text(attr.read_text().replace("filename,smiling,hat", "filename,smiling,cap"))
    with pytest.raises(DataError, match=r"attributes are smiling, cap, but .* are smiling, hat"):
        Run(cfg, tmp_path / "r")
