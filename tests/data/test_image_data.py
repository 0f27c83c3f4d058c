"""Tests of the image datasets (wgan.data.images / digits / image_files) and wgan.figures.images.

Every file format is written here by small independent writers, then loaded back.
"""

from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import cifar_batch, idx_bytes, mnist_like, write_idx, write_png
from PIL import Image

from wgan.data import (
    IMAGE_DATASETS,
    ImageDataset,
    StackedDigits,
    load_cifar,
    load_digits_dataset,
    load_idx,
    load_image_folder,
    make_image_dataset,
)
from wgan.data.cifar import safe_unpickle
from wgan.errors import ConfigError, DataError
from wgan.figures.images import image_grid, save_image_grid, to_uint8


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def to_bytes(x: torch.Tensor) -> np.ndarray:
    """Inverse of the loaders' b / 127.5 - 1."""
    return ((x.double() + 1.0) * 127.5).round().to(torch.uint8).numpy()


# ----------------------------------------------------------------------------- writers


def write_pickle(path: Path, obj, protocol: int = pickle.DEFAULT_PROTOCOL) -> Path:
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


def make_cifar10_dir(root: Path) -> tuple[Path, dict[str, tuple[np.ndarray, list[int]]]]:
    d = root / "cifar-10-batches-py"
    d.mkdir()
    parts = {
        "data_batch_1": cifar_batch(5, 10, 1),
        "data_batch_2": cifar_batch(4, 10, 2),
        "test_batch": cifar_batch(3, 10, 3),
    }
    for i, (name, (data, labels)) in enumerate(parts.items()):
        # Mix pickle protocols: 2 (bytes via _codecs.encode), 4 (_reconstruct), 5 (_frombuffer).
        write_pickle(d / name, {b"data": data, b"labels": labels}, protocol=(2, 4, 5)[i])
    return d, parts


class Evil:
    """Unpickling this would run a shell command that creates a sentinel file."""

    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self):
        return (os.system, (f"touch {self.sentinel}",))


# ----------------------------------------------------------------------------- digits


def test_digits_dataset():
    ds = load_digits_dataset(8)
    assert isinstance(ds, ImageDataset) and ds.is_image
    assert len(ds) == 1797 and ds.shape == (1, 8, 8) and ds.dim == 64
    assert ds.channels == 1 and ds.resolution == 8
    assert ds.images.dtype == torch.float32 and ds.labels.dtype == torch.int64
    assert ds.n_classes == 10 and ds.source == "sklearn"
    assert ds.images.min() == -1.0 and ds.images.max() == 1.0
    assert set(ds.labels.tolist()) == set(range(10))
    # Native resolution is the exact affine image of the 0..16 pixel values.
    from sklearn.datasets import load_digits

    raw = torch.from_numpy(load_digits().images).float()
    assert torch.equal(ds.images[:, 0], raw / 16 * 2 - 1)
    for r in (16, 32):
        big = load_digits_dataset(r)
        assert big.images.shape == (1797, 1, r, r)
        assert big.images.min() >= -1.0 and big.images.max() <= 1.0
        # Mean intensity is (nearly) preserved by bilinear resizing.
        assert abs(big.images.mean().item() - ds.images.mean().item()) < 0.02
    with pytest.raises(ConfigError, match="resolution"):
        load_digits_dataset(12)


def test_image_dataset_sampling_and_split():
    ds = load_digits_dataset(8)
    torch.manual_seed(5)
    state = torch.get_rng_state()
    a = ds.sample(64, gen(3))
    x, y = ds.sample_with_labels(64, gen(3))
    assert torch.equal(torch.get_rng_state(), state)  # only the given generator is used
    assert a.shape == (64, 1, 8, 8) and torch.equal(a, x)
    assert not torch.equal(a, ds.sample(64, gen(4)))
    # The labels belong to the drawn images: same indices as torch.randint on the generator.
    idx = torch.randint(len(ds), (64,), generator=gen(3))
    assert torch.equal(x, ds.images[idx]) and torch.equal(y, ds.labels[idx])
    assert ds.sample(0, gen(0)).shape == (0, 1, 8, 8)
    with pytest.raises(ConfigError):
        ds.sample(-1)

    train, hold = ds.split(300, seed=7)
    assert len(train) == 1497 and len(hold) == 300
    t2, h2 = ds.split(300, seed=7)
    assert torch.equal(hold.images, h2.images) and torch.equal(train.labels, t2.labels)
    assert not torch.equal(hold.images, ds.split(300, seed=8)[1].images)
    # Disjoint and complete: the rows of train and hold together are exactly the dataset's.
    flat = lambda d: {tuple(r) for r in d.images.flatten(1).tolist()}  # noqa: E731
    assert flat(train) | flat(hold) == flat(ds)
    assert sum(torch.bincount(s.labels, minlength=10) for s in (train, hold)).tolist() == (
        torch.bincount(ds.labels, minlength=10).tolist()
    )
    assert hold.n_classes == 10 and hold.is_image
    with pytest.raises(ConfigError, match="n_holdout"):
        ds.split(1797, 0)


def test_stacked_digits():
    sd = make_image_dataset("stacked_digits")
    assert isinstance(sd, StackedDigits) and sd.is_image
    assert sd.shape == (3, 16, 16) and sd.channels == 3 and sd.resolution == 16
    assert sd.dim == 768 and sd.n_classes == 1000 and sd.base.channels == 1
    x, y = sd.sample_with_labels(500, gen(11))
    assert x.shape == (500, 3, 16, 16) and y.shape == (500,) and y.dtype == torch.int64
    assert torch.equal(x, sd.sample(500, gen(11)))
    assert not torch.equal(x, sd.sample(500, gen(12)))
    assert 0 <= y.min() and y.max() < 1000
    assert len(set(y.tolist())) > 300  # 500 draws over ~uniform 1000 modes: ~393 distinct
    # Channel k of sample j is the base image drawn at idx[j, k], whose label is digit k.
    idx = torch.randint(len(sd.base), (500, 3), generator=gen(11))
    digits = [y // 100, (y // 10) % 10, y % 10]
    for k in range(3):
        assert torch.equal(x[:, k], sd.base.images[idx[:, k], 0])
        assert torch.equal(sd.base.labels[idx[:, k]], digits[k])
    train, hold = sd.split(200, seed=0)
    assert isinstance(hold, StackedDigits) and len(hold.base) == 200
    assert len(train.base) == 1597 and hold.n_classes == 1000
    assert hold.sample(7, gen(0)).shape == (7, 3, 16, 16)


# ----------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("compress", [False, True])
def test_idx_round_trip(tmp_path, compress):
    pix, lab = mnist_like(20, seed=int(compress))
    # Extension deliberately misleading: gzip is detected from the bytes, not the name.
    img_path = write_idx(tmp_path / "imgs.bin", pix, compress)
    lab_path = write_idx(tmp_path / "labs.bin", lab, compress)
    ds = load_idx(img_path, lab_path)
    assert ds.shape == (1, 28, 28) and len(ds) == 20
    assert ds.images.min() >= -1 and ds.images.max() <= 1
    assert np.array_equal(to_bytes(ds.images[:, 0]), pix)
    assert ds.labels.tolist() == lab.tolist() and ds.n_classes == int(lab.max()) + 1
    small = load_idx(img_path, lab_path, resolution=8)
    assert small.images.shape == (20, 1, 8, 8) and torch.equal(small.labels, ds.labels)
    unl = load_idx(img_path)
    assert unl.labels is None and unl.n_classes == 0
    x, y = unl.sample_with_labels(4, gen(0))
    assert x.shape == (4, 1, 28, 28) and y is None


def test_mnist_registry(tmp_path):
    pix, lab = mnist_like(12)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", pix, True)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", lab, True)
    tpix, tlab = mnist_like(5, seed=9)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", tpix)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", tlab)
    ds = make_image_dataset("mnist", path=str(tmp_path))
    assert ds.name == "mnist" and ds.shape == (1, 32, 32) and ds.n_classes == 10
    assert ds.labels.tolist() == lab.tolist()
    test = make_image_dataset("fashion-mnist", path=tmp_path, resolution=16, split="test")
    assert test.name == "fashion_mnist" and test.images.shape == (5, 1, 16, 16)
    raw = make_image_dataset("idx", path=tmp_path / "t10k-images-idx3-ubyte")
    assert raw.resolution == 32 and raw.labels.tolist() == tlab.tolist()  # found beside it
    sm = make_image_dataset("stacked_mnist", path=tmp_path, resolution=8)
    assert sm.shape == (3, 8, 8) and sm.n_classes == 1000
    with pytest.raises(ConfigError, match="data.path must be set"):
        make_image_dataset("mnist")
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte"):
        make_image_dataset("mnist", path=tmp_path, split="test")


def test_idx_errors(tmp_path):
    pix, lab = mnist_like(6)
    good = idx_bytes(pix)
    bad_magic = tmp_path / "bad-magic"
    bad_magic.write_bytes(b"\x00\x00\x08\x02" + good[4:])
    with pytest.raises(DataError, match=r"bad-magic.*0x00000802.*0x00000803"):
        load_idx(bad_magic)
    bad_type = tmp_path / "bad-type"
    bad_type.write_bytes(b"\x00\x00\x0d\x03" + good[4:])
    with pytest.raises(DataError, match="type code 0x0d"):
        load_idx(bad_type)

    # Truncated: the message names the file and expected vs actual byte counts.
    trunc = tmp_path / "trunc-images-idx3-ubyte"
    trunc.write_bytes(good[:-100])
    expected = 16 + 6 * 28 * 28
    with pytest.raises(DataError, match=rf"trunc-images-idx3-ubyte.*{expected}.*{expected - 100}"):
        load_idx(trunc)
    trunc_gz = tmp_path / "trunc.gz"
    trunc_gz.write_bytes(gzip.compress(good[:-1]))
    with pytest.raises(DataError, match=rf"trunc.gz.*{expected - 1}"):
        load_idx(trunc_gz)
    broken_gz = tmp_path / "broken.gz"
    broken_gz.write_bytes(gzip.compress(good)[:50])
    with pytest.raises(DataError, match="broken.gz"):
        load_idx(broken_gz)

    img = write_idx(tmp_path / "imgs", pix)
    few = write_idx(tmp_path / "few-labels", lab[:5])
    with pytest.raises(DataError, match="5 labels for the 6 images"):
        load_idx(img, few)
    big = write_idx(tmp_path / "big-labels", np.array([0, 1, 2, 3, 4, 12], dtype=np.uint8))
    with pytest.raises(DataError, match="label 12 out of range"):
        load_idx(img, big, n_classes=10)
    with pytest.raises(DataError, match="not an IDX labels file"):
        load_idx(img, img)  # an images file where labels were expected
    rect = write_idx(tmp_path / "rect", np.zeros((2, 4, 6), dtype=np.uint8))
    with pytest.raises(DataError, match="square"):
        load_idx(rect)
    with pytest.raises(DataError, match="nope"):
        load_idx(tmp_path / "nope")
    with pytest.raises(ConfigError):
        load_idx(img, resolution=28)


# ----------------------------------------------------------------------------- CIFAR


def test_cifar10_dir(tmp_path):
    d, parts = make_cifar10_dir(tmp_path)
    ds = load_cifar(d)
    assert ds.shape == (3, 32, 32) and len(ds) == 9 and ds.n_classes == 10
    data = np.concatenate([parts["data_batch_1"][0], parts["data_batch_2"][0]])
    assert np.array_equal(to_bytes(ds.images).reshape(9, 3072), data)
    # Channel layout: first 1024 values of a row are the red plane, row-major.
    assert np.array_equal(to_bytes(ds.images[0, 0]).ravel(), data[0, :1024])
    assert ds.labels.tolist() == parts["data_batch_1"][1] + parts["data_batch_2"][1]
    assert ds.images.min() >= -1 and ds.images.max() <= 1
    test = load_cifar(d, split="test", resolution=16)
    assert test.images.shape == (3, 3, 16, 16)
    assert test.labels.tolist() == parts["test_batch"][1]
    one = load_cifar(d / "data_batch_2")
    assert len(one) == 4 and one.n_classes == 10
    reg = make_image_dataset("cifar10", path=d)
    assert reg.name == "cifar10" and torch.equal(reg.images, ds.images)
    with pytest.raises(DataError, match="CIFAR-10"):
        make_image_dataset("cifar100", path=d)
    # A gap in the numbered batches (incomplete extraction) is reported.
    (d / "data_batch_1").rename(d / "data_batch_3")
    with pytest.raises(DataError, match="data_batch_1"):
        load_cifar(d)


def test_cifar100_and_python2_style_pickle(tmp_path):
    d = tmp_path / "cifar-100-python"
    d.mkdir()
    data, labels = cifar_batch(6, 100, 4)
    labels[0] = 99
    # A Python-2 style pickle names numpy.core.multiarray (the real CIFAR files do).
    blob = pickle.dumps({b"data": data, b"fine_labels": labels, b"coarse_labels": [0] * 6}, 2)
    blob = blob.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
    assert b"numpy.core.multiarray" in blob
    (d / "train").write_bytes(blob)
    tdata, tlabels = cifar_batch(2, 100, 5)
    write_pickle(d / "test", {"data": tdata, "fine_labels": tlabels})  # str keys work too
    ds = make_image_dataset("cifar100", path=d)
    assert ds.n_classes == 100 and len(ds) == 6 and ds.labels.tolist() == labels
    assert np.array_equal(to_bytes(ds.images).reshape(6, 3072), data)
    test = load_cifar(d, split="test")
    assert test.labels.tolist() == tlabels and np.array_equal(
        to_bytes(test.images).reshape(2, 3072), tdata
    )


def test_cifar_malicious_and_corrupt(tmp_path):
    sentinel = tmp_path / "pwned"
    data, labels = cifar_batch(2, 10, 0)
    evil = write_pickle(tmp_path / "evil_batch", {b"data": data, b"labels": Evil(sentinel)})
    with pytest.raises(DataError, match=r"evil_batch.*disallowed global (posix|nt)\.system"):
        load_cifar(evil)
    assert not sentinel.exists()
    # A nested disallowed class (e.g. a builtins callable) is also refused.
    with pytest.raises(DataError, match="disallowed"):
        safe_unpickle(write_pickle(tmp_path / "p2", {"f": eval}))

    good = pickle.dumps({b"data": data, b"labels": labels})
    (tmp_path / "trunc_batch").write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match="trunc_batch"):
        load_cifar(tmp_path / "trunc_batch")
    (tmp_path / "garbage").write_bytes(b"\x00\x01not a pickle at all")
    with pytest.raises(DataError, match="garbage"):
        load_cifar(tmp_path / "garbage")
    shape = write_pickle(tmp_path / "shape_batch", {b"data": data[:, :100], b"labels": labels})
    with pytest.raises(DataError, match=r"shape_batch.*3072"):
        load_cifar(shape)
    count = write_pickle(tmp_path / "count_batch", {b"data": data, b"labels": [1]})
    with pytest.raises(DataError, match="1 labels for 2 images"):
        load_cifar(count)
    rng = write_pickle(tmp_path / "range_batch", {b"data": data, b"labels": [1, 10]})
    with pytest.raises(DataError, match="range_batch"):
        load_cifar(rng)
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(DataError, match="not a CIFAR directory"):
        load_cifar(tmp_path / "empty_dir")


# ----------------------------------------------------------------------------- image folders


def test_image_folder_with_classes(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "imgs"
    arrays = {}
    for cls in ("cat", "ant"):
        (root / cls).mkdir(parents=True)
        for i in range(2):
            a = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
            arrays[(cls, i)] = a
            write_png(root / cls / f"{i}.png", a)
    (root / ".DS_Store").write_bytes(b"ignored hidden file")
    ds = load_image_folder(root, 16)
    assert ds.class_names == ["ant", "cat"] and ds.n_classes == 2
    assert ds.labels.tolist() == [0, 0, 1, 1] and ds.shape == (3, 16, 16)
    # No resize needed: exact pixels, files in sorted order.
    got = to_uint8(ds.images)
    for j, key in enumerate([("ant", 0), ("ant", 1), ("cat", 0), ("cat", 1)]):
        assert np.array_equal(got[j], arrays[key])
    gray = make_image_dataset("folder", path=root, resolution=8, channels=1)
    assert gray.images.shape == (4, 1, 8, 8) and gray.images.min() >= -1
    # Grayscale of a constant colour image is Pillow's L = (299R + 587G + 114B) / 1000.
    flat = tmp_path / "flat" / "c"
    flat.mkdir(parents=True)
    write_png(flat / "x.png", np.full((8, 8, 3), (200, 100, 50), dtype=np.uint8))
    g = load_image_folder(tmp_path / "flat", 8, channels=1)
    assert to_uint8(g.images)[0, 0, 0, 0] == round((299 * 200 + 587 * 100 + 114 * 50) / 1000)


def test_image_folder_unlabeled_crop_and_resize(tmp_path):
    root = tmp_path / "plain"
    root.mkdir()
    # 30 wide, 20 high: the centre 20x20 square (columns 5..24) is white, the margins black.
    a = np.zeros((20, 30, 3), dtype=np.uint8)
    a[:, 5:25] = 255
    write_png(root / "wide.png", a)
    b = np.zeros((40, 40), dtype=np.uint8)  # a grayscale JPEG, converted to RGB
    Image.fromarray(b).save(root / "dark.jpg", format="JPEG")
    ds = load_image_folder(root, 8)
    assert ds.labels is None and ds.n_classes == 0 and ds.class_names is None
    assert ds.images.shape == (2, 3, 8, 8)
    # sorted: dark.jpg then wide.png; the crop kept only the white centre.
    assert ds.images[1].min() == 1.0 and ds.images[0].max() <= -0.95


def test_image_folder_errors(tmp_path):
    root = tmp_path / "f"
    root.mkdir()
    with pytest.raises(DataError, match="holds no images"):
        load_image_folder(root, 8)
    write_png(root / "ok.png", np.zeros((8, 8, 3), dtype=np.uint8))
    (root / "notes.txt").write_text("not an image")
    with pytest.raises(DataError, match="notes.txt"):
        load_image_folder(root, 8)
    (root / "notes.txt").unlink()
    (root / "fake.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(DataError, match="fake.png"):
        load_image_folder(root, 8)
    with pytest.raises(DataError, match="missing"):
        make_image_dataset("folder", path=tmp_path / "missing")
    with pytest.raises(ConfigError, match="data.path must be set"):
        make_image_dataset("folder")
    with pytest.raises(ConfigError, match="channels"):
        load_image_folder(root, 8, channels=2)


def test_registry_errors():
    assert set(IMAGE_DATASETS) >= {"digits", "stacked_digits", "mnist", "cifar10", "folder"}
    assert make_image_dataset("digits").shape == (1, 16, 16)
    assert make_image_dataset("digits", resolution=32).shape == (1, 32, 32)
    with pytest.raises(ConfigError, match="did you mean 'digits'"):
        make_image_dataset("digts")
    with pytest.raises(ConfigError, match="resolution"):
        make_image_dataset("digits", resolution=20)
    with pytest.raises(ConfigError, match="channel"):
        make_image_dataset("digits", channels=3)
    with pytest.raises(ConfigError, match="split"):
        make_image_dataset("cifar10", path="x", split="val")


# ----------------------------------------------------------------------------- imaging


def test_image_grid_and_png(tmp_path):
    x = torch.linspace(-1, 1, 10 * 3 * 4 * 4).reshape(10, 3, 4, 4)
    g = image_grid(x, nrow=4, padding=2)
    # 4 columns, ceil(10/4) = 3 rows: H' = 3*(4+2)+2, W' = 4*(4+2)+2.
    assert g.shape == (3, 20, 26) and g.min() >= 0 and g.max() <= 1
    assert torch.allclose(g[:, 2:6, 8:12], (x[1] + 1) / 2)  # tile 1 = row 0, column 1
    assert torch.all(g[:, 14:18, 14:] == 1.0)  # empty cells of the last row stay padding
    assert image_grid(x[:9]).shape == (3, 3 * 6 + 2, 3 * 6 + 2)  # default: ceil(sqrt(9)) = 3
    assert image_grid(x, padding=0).shape == (3, 12, 16)

    u8 = to_uint8(x)
    assert u8.shape == (10, 4, 4, 3) and u8.dtype == np.uint8
    assert u8.min() == 0 and u8.max() == 255

    p = save_image_grid(x, tmp_path / "sub" / "grid.png", nrow=5)
    with Image.open(p) as im:
        assert im.mode == "RGB" and im.size == (5 * 6 + 2, 2 * 6 + 2)
        arr = np.asarray(im)
    assert np.array_equal(arr[2:6, 2:6], u8[0])
    digits = load_digits_dataset(8).images[:16]
    q = save_image_grid(digits, tmp_path / "digits.png")
    with Image.open(q) as im:
        assert im.mode == "L" and im.size == (4 * 10 + 2, 4 * 10 + 2)
        arr = np.asarray(im)
    assert np.array_equal(arr[2:10, 2:10], to_uint8(digits)[0, :, :, 0])
