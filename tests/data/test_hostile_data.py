"""Hostile and unusual data files (issue 24, rows 1 and 6).

Row 1: memory is bounded by what the data is, not by what a header claims. An IDX header's
promise is checked against the memory available before anything is inflated (a small limit is
injected: no test allocates what it refuses), and image datasets stay bytes in memory, each
batch converted to the same floats as converting the whole set at once gave.

Row 6: every image mode Pillow opens becomes the right 8-bit values (16-bit and 32-bit
grayscale scaled, not clipped; transparency over white; palettes, CMYK, 1-bit).
"""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import tracemalloc

import numpy as np
import pytest
import torch
from helpers import idx_bytes, mnist_like, write_idx
from PIL import Image

from wgan.data.batches import TensorBatches
from wgan.data.build import build_batches, build_dataset, make_image_dataset
from wgan.data.cifar import load_cifar
from wgan.data.idx import read_idx
from wgan.data.image_files import bytes_to_unit, load_image_folder
from wgan.data.image_modes import ALPHA_BACKGROUND, to_8bit
from wgan.data.images import ImageDataset, resize_images
from wgan.errors import DataError
from wgan.store import memory

# ------------------------------------------------------------------ row 1: promises and memory


def gzip_idx_promising(path, dims, body: bytes = b"", pad_to: int = 0):
    """A gzip IDX file whose header promises ``dims`` bytes, with ``body`` after the header,
    padded with random bytes (not valid deflate data) to ``pad_to`` bytes on disk."""
    header = bytes([0, 0, 0x08, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)
    data = gzip.compress(header + body)
    pad = max(0, pad_to - len(data))
    path.write_bytes(data + np.random.default_rng(0).integers(0, 256, pad, np.uint8).tobytes())
    return path


def peak_traced(fn):
    """Run ``fn`` (which must raise DataError) and return (error, peak bytes it allocated,
    as tracemalloc sees them: numpy reports its buffers to it, untouched pages included)."""
    tracemalloc.start()
    try:
        with pytest.raises(DataError) as exc:
            fn()
        return exc.value, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_an_honest_promise_beyond_free_memory_is_refused_before_inflating(tmp_path, monkeypatch):
    # 20,000 28x28 images of zeros: 15.7 MB of data in a 15 KB file, with 8 MB free.
    pix = np.zeros((20_000, 28, 28), np.uint8)
    path = write_idx(tmp_path / "train-images-idx3-ubyte.gz", pix, compress=True)
    assert path.stat().st_size < 100_000
    monkeypatch.setattr(memory, "available_memory", lambda: 8_000_000)
    err, peak = peak_traced(lambda: read_idx(path, 3))
    assert str(err) == (
        f"{path}: IDX header promises 20000x28x28 = 15,680,000 bytes (15.0 MiB) of data, more "
        "than the 8,000,000 bytes (7.6 MiB) of memory available now; refused before reading it"
    )
    assert peak < 1_000_000  # nothing of the promised size was allocated


def test_a_4_mb_file_cannot_ask_for_gigabytes(tmp_path, monkeypatch):
    # The attack's numbers: ~4 MB on disk (enough for deflate's 1032:1 to allow the promise),
    # a header promising 4.2 GB, here with 1 GiB free. Refused before allocating or inflating.
    dims = (60_000, 1_000, 70)
    path = gzip_idx_promising(tmp_path / "big.gz", dims, pad_to=4_100_000)
    monkeypatch.setattr(memory, "available_memory", lambda: 1 << 30)
    err, peak = peak_traced(lambda: read_idx(path, 3))
    assert "promises 60000x1000x70 = 4,200,000,000 bytes" in str(err)
    assert "of memory available now; refused before reading it" in str(err)
    assert peak < 10_000_000


def test_inflating_costs_the_data_and_no_second_copy(tmp_path):
    # 16 MB of zeros in a 16 KB gzip file: read_idx holds the 16 MB it returns and, while
    # inflating, temporaries of about 1 MB (gzip's reader copies each 256 KiB request once).
    pix = np.zeros((20_000, 28, 28), np.uint8)
    path = write_idx(tmp_path / "zeros.gz", pix, compress=True)
    tracemalloc.start()
    try:
        got = read_idx(path, 3)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got.shape == pix.shape and not got.any()
    assert pix.nbytes <= peak < pix.nbytes + (2 << 20)


def stored_bytes(ds) -> int:
    """Bytes of the image tensors a dataset keeps (its labels excepted)."""
    seen = {}
    for name, value in vars(ds).items():
        if isinstance(value, torch.Tensor) and name != "labels":
            seen[value.untyped_storage().data_ptr()] = value.untyped_storage().nbytes()
    return sum(seen.values())


@pytest.fixture
def mnist_dir(tmp_path):
    pix, lab = mnist_like(300, seed=3)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", pix, compress=True)
    write_idx(tmp_path / "train-labels-idx1-ubyte", lab)
    return tmp_path, pix, lab


def test_image_datasets_keep_one_byte_per_value(mnist_dir, tmp_path):
    directory, pix, _ = mnist_dir
    mnist = make_image_dataset("mnist", path=directory, resolution=32)  # 28 -> 32 per batch
    assert mnist.shape == (1, 32, 32) and stored_bytes(mnist) == pix.size  # 300 * 28 * 28

    data = np.random.default_rng(1).integers(0, 256, (7, 3072), np.uint8)
    (tmp_path / "batch").write_bytes(pickle.dumps({b"data": data, b"labels": [1] * 7}))
    cifar = load_cifar(tmp_path / "batch", resolution=16)
    assert cifar.shape == (3, 16, 16) and stored_bytes(cifar) == data.size

    folder = tmp_path / "pics"
    folder.mkdir()
    for i in range(5):
        Image.new("RGB", (40, 30), (i, 2 * i, 3 * i)).save(folder / f"{i}.png")
    pics = load_image_folder(folder, 8, channels=3)
    assert stored_bytes(pics) == 5 * 3 * 8 * 8


def test_batches_are_the_floats_of_the_whole_set_converted_at_once(mnist_dir):
    """Each batch (training, sampling, stacked) holds exactly the floats that converting and
    resizing every image up front gave: ``b / 127.5 - 1``, then the bilinear resize."""
    directory, pix, lab = mnist_dir
    ds = make_image_dataset("mnist", path=directory, resolution=32)
    whole = resize_images(bytes_to_unit(pix).unsqueeze(1), 32)  # (300, 1, 32, 32), as before
    assert torch.equal(ds.images, whole)

    batches = build_batches(ds, 64, torch.Generator().manual_seed(5), "cpu")
    assert isinstance(batches, TensorBatches) and batches.examples.dtype == torch.uint8
    idx = torch.randint(300, (64,), generator=torch.Generator().manual_seed(5))
    x, y = batches.next_labelled()
    assert torch.equal(x, whole[idx]) and torch.equal(
        y, torch.from_numpy(lab.astype(np.int64))[idx]
    )

    assert torch.equal(
        ds.sample(50, torch.Generator().manual_seed(2)),
        whole[torch.randint(300, (50,), generator=torch.Generator().manual_seed(2))],
    )
    stacked = make_image_dataset("stacked_mnist", path=directory, resolution=16)
    small = resize_images(bytes_to_unit(pix).unsqueeze(1), 16)
    three = torch.randint(300, (9, 3), generator=torch.Generator().manual_seed(4))
    expected = small[three].squeeze(2)  # (9, 3, 16, 16)
    assert torch.equal(stacked.sample(9, torch.Generator().manual_seed(4)), expected)


def test_the_embedded_digits_batches_are_unchanged():
    """The digits are made in code (float, already at their resolution): batches gather them as
    before, so digits training is bit for bit what it was."""
    from wgan.config import resolve
    from wgan.metrics.classifier import digits_split

    ds = build_dataset(resolve("digits-wgan-gp").data)
    x_train = digits_split(16)[0]
    assert ds.pixels.dtype == torch.float32 and torch.equal(ds.images, x_train)
    got = build_batches(ds, 64, torch.Generator().manual_seed(9), "cpu").next_batch()
    idx = torch.randint(len(x_train), (64,), generator=torch.Generator().manual_seed(9))
    assert torch.equal(got, x_train[idx])


def test_float_images_cannot_claim_another_resolution():
    with pytest.raises(Exception, match="stored at their resolution"):
        ImageDataset(torch.zeros(2, 1, 8, 8), resolution=16)
    ok = ImageDataset(torch.zeros(2, 1, 8, 8, dtype=torch.uint8), resolution=16)
    assert ok.sample(3).shape == (3, 1, 16, 16) and ok.sample(3).min() == -1


# ------------------------------------------------------------------ row 6: every image mode


def two_valued(mode: str, a, b, size: int = 8):
    """A ``size`` x ``size`` image of ``mode``: value ``a`` in the left half, ``b`` in the right."""
    img = Image.new(mode, (size, size))
    for x in range(size):
        for y in range(size):
            img.putpixel((x, y), a if x < size // 2 else b)
    return img


def palette(transparent: bool):
    img = two_valued("P", 0, 1)
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)  # 0 red, 1 blue
    if transparent:
        img.info["transparency"] = 0
    return img


def pgm16(a: int, b: int) -> bytes:
    row = [a] * 4 + [b] * 4
    return b"P5 8 8 65535\n" + np.array(row * 8, ">u2").tobytes()


W = ALPHA_BACKGROUND
# (case, how the file is made, file format, channels, (left value, right value) after loading)
MODES = [
    ("I;16 16-bit PNG", lambda: two_valued("I;16", 65535, 32768), "PNG", 1, (255, 128)),
    ("I;16 in RGB", lambda: two_valued("I;16", 65535, 32768), "PNG", 3, ((255,) * 3, (128,) * 3)),
    ("I;16 small values", lambda: two_valued("I;16", 257, 0), "PNG", 1, (1, 0)),
    ("I;16B 16-bit TIFF", lambda: two_valued("I;16B", 65535, 257), "TIFF", 1, (255, 1)),
    ("I 32-bit TIFF", lambda: two_valued("I", 65535, 32768), "TIFF", 1, (255, 128)),
    ("I 16-bit PGM", lambda: pgm16(65535, 32768), "PGM", 1, (255, 128)),
    ("F float TIFF", lambda: two_valued("F", 1.0, 0.5), "TIFF", 1, (255, 128)),
    ("P palette", lambda: palette(False), "PNG", 3, ((255, 0, 0), (0, 0, 255))),
    ("P transparency", lambda: palette(True), "PNG", 3, ((W, W, W), (0, 0, 255))),
    ("PA palette alpha", lambda: palette(True).convert("PA"), "TIFF", 3, ((W, W, W), (0, 0, 255))),
    (
        "CMYK white/cyan",
        lambda: two_valued("CMYK", (0, 0, 0, 0), (255, 0, 0, 0)),
        "TIFF",
        3,
        ((255, 255, 255), (0, 255, 255)),
    ),
    ("CMYK black", lambda: two_valued("CMYK", (0, 0, 0, 255), (0, 0, 0, 0)), "TIFF", 1, (0, 255)),
    ("LA transparent/half", lambda: two_valued("LA", (100, 0), (100, 128)), "PNG", 1, (W, 177)),
    (
        "LA opaque",
        lambda: two_valued("LA", (100, 255), (0, 255)),
        "PNG",
        3,
        ((100,) * 3, (0, 0, 0)),
    ),
    (
        "RGBA over white",
        lambda: two_valued("RGBA", (200, 10, 20, 0), (200, 10, 20, 128)),
        "PNG",
        3,
        ((W, W, W), (227, 132, 137)),
    ),
    (
        "RGBA opaque",
        lambda: two_valued("RGBA", (200, 10, 20, 255), (1, 2, 3, 255)),
        "PNG",
        3,
        ((200, 10, 20), (1, 2, 3)),
    ),
    ("1 bilevel", lambda: two_valued("1", 1, 0), "PNG", 1, (255, 0)),
    (
        "YCbCr white",
        lambda: two_valued("YCbCr", (255, 128, 128), (0, 128, 128)),
        "TIFF",
        3,
        ((255, 255, 255), (0, 0, 0)),
    ),
    ("L grey", lambda: two_valued("L", 200, 7), "PNG", 1, (200, 7)),
]


def load_one(tmp_path, make, fmt: str, channels: int) -> np.ndarray:
    folder = tmp_path / "one"
    folder.mkdir()
    made = make()
    path = folder / f"image.{fmt.lower()}"
    if isinstance(made, bytes):
        path.write_bytes(made)
    else:
        made.save(path, format=fmt)
    ds = load_image_folder(folder, 8, channels=channels)  # 8x8: no resize, exact values
    values = torch.round((ds.images[0] + 1) * 127.5).to(torch.int64)  # (C, 8, 8) bytes
    return values.permute(1, 2, 0).numpy()  # (8, 8, C)


@pytest.mark.parametrize("case,make,fmt,channels,expected", MODES, ids=[m[0] for m in MODES])
def test_every_image_mode_loads_as_its_values(tmp_path, case, make, fmt, channels, expected):
    got = load_one(tmp_path, make, fmt, channels)
    want = [np.atleast_1d(np.array(v)) for v in expected]
    assert got[0, 0].tolist() == want[0].tolist(), case
    assert got[7, 7].tolist() == want[1].tolist(), case
    assert (got[:, :4] == want[0]).all() and (got[:, 4:] == want[1]).all(), case


@pytest.mark.parametrize(
    "make,needle",
    [
        (
            lambda: two_valued("I", 70_000, 0),
            "read as 16-bit (0..65535), found values in [0, 70000]",
        ),
        (lambda: two_valued("I", -5, 0), "found values in [-5, 0]"),
        (
            lambda: two_valued("F", 255.0, 0.0),
            "must hold values in [0, 1] (0 black, 1 white), found [0, 255]",
        ),
        (lambda: two_valued("F", float("nan"), 0.5), "and NaN"),
    ],
)
def test_values_no_rule_can_read_are_refused_not_clipped(tmp_path, make, needle):
    with pytest.raises(DataError, match="image.tiff: ") as exc:
        load_one(tmp_path, make, "TIFF", 1)
    assert needle in str(exc.value) and len(str(exc.value).splitlines()) == 1


def test_premultiplied_modes_only_pillow_holds_in_memory():
    rgba = Image.new("RGBa", (2, 1))
    rgba.putpixel((0, 0), (0, 0, 0, 0))
    rgba.putpixel((1, 0), (10, 20, 30, 255))
    assert np.asarray(to_8bit(rgba, "RGB")).tolist() == [[[W, W, W], [10, 20, 30]]]
    la = Image.new("La", (2, 1))
    la.putpixel((0, 0), (0, 0))
    la.putpixel((1, 0), (50, 255))
    assert np.asarray(to_8bit(la, "L")).tolist() == [[W, 50]]
    grey = Image.frombytes("I;16", (2, 1), np.array([65535, 32768], "<u2").tobytes())
    grey.info["transparency"] = 32768  # a PNG tRNS entry of a 16-bit grayscale image
    assert np.asarray(to_8bit(grey, "L")).tolist() == [[255, W]]


def test_a_16_bit_png_is_not_white(tmp_path):
    """The issue's case: a 16-bit grayscale gradient loaded as pure white."""
    folder = tmp_path / "pngs"
    folder.mkdir()
    ramp = np.tile(np.linspace(0, 65535, 8).astype(np.uint16), (8, 1))  # (8, 8)
    buf = io.BytesIO()
    Image.fromarray(ramp).save(buf, format="PNG")
    (folder / "ramp.png").write_bytes(buf.getvalue())
    ds = load_image_folder(folder, 8, channels=1)
    row = torch.round((ds.images[0, 0, 0] + 1) * 127.5).to(torch.int64).tolist()
    assert row == [round(v / 257) for v in ramp[0]] == [0, 36, 73, 109, 146, 182, 219, 255]


def test_idx_helper_round_trip_still_exact(tmp_path):
    pix = np.arange(2 * 8 * 8, dtype=np.uint8).reshape(2, 8, 8)
    (tmp_path / "x-images-idx3-ubyte").write_bytes(idx_bytes(pix))
    ds = make_image_dataset("idx", path=tmp_path / "x-images-idx3-ubyte", resolution=8)
    assert torch.equal(ds.pixels[:, 0], torch.from_numpy(pix))
