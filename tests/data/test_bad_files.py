"""Bad data files give one clear error naming the file, in bounded memory (issue 10, 3 and 4).

IDX headers whose size product overflows int64 or is absurd, gzip files that inflate far beyond
what their header promises (a "gzip bomb"), and zero-sized images (0x0 or 0xN in an IDX header,
empty or zero-pixel image files in a folder, an empty image tensor). Every file is written here,
byte by byte, in ``tmp_path``.
"""

from __future__ import annotations

import gzip
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
import torch

from wgan.cli.app import main
from wgan.data import (
    ImageDataset,
    idx,
    load_idx,
    load_image_folder,
    load_mnist_dir,
    make_image_dataset,
)
from wgan.errors import DataError, WganError

# ----------------------------------------------------------------------------- writers


def idx_header(dims: list[int]) -> bytes:
    """``00 00 08 ndim`` then the big-endian uint32 sizes (any values, even absurd ones)."""
    return bytes([0, 0, 0x08, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)


def idx_bytes(arr: np.ndarray) -> bytes:
    return idx_header(list(arr.shape)) + arr.astype(np.uint8).tobytes()


def gzip_stream(head: bytes, zeros: int, chunk: int = 1 << 20) -> bytes:
    """A gzip file holding ``head`` then ``zeros`` zero bytes, compressed chunk by chunk (the
    inflated data is never held in memory here)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: gzip container
    parts = [comp.compress(head)]
    left = zeros
    block = bytes(chunk)
    while left > 0:
        parts.append(comp.compress(block[: min(chunk, left)]))
        left -= chunk
    parts.append(comp.flush())
    return b"".join(parts)


def png_bytes(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares ``width`` x ``height`` grayscale pixels and no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def one_line(exc: BaseException) -> str:
    msg = str(exc)
    assert "\n" not in msg, msg
    return msg


# ----------------------------------------------------------------------------- IDX headers

# (2^31)·(2^31)·4 = 2^64 wraps to 0 in int64: the old size check accepted a 16-byte file and
# numpy then failed to reshape it (a ValueError traceback).
OVERFLOW_DIMS = [2**31, 2**31, 4]
HUGE_DIMS = [2**32 - 1, 2**32 - 1, 2**32 - 1]


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
@pytest.mark.parametrize("dims", [OVERFLOW_DIMS, HUGE_DIMS], ids=["int64-overflow", "huge"])
def test_idx_header_with_absurd_sizes(tmp_path, dims, compress):
    head = idx_header(dims)
    path = tmp_path / "bad-images-idx3-ubyte"
    path.write_bytes(gzip.compress(head) if compress else head)
    with pytest.raises(DataError, match="promises") as info:
        load_idx(path)
    msg = one_line(info.value)
    assert str(path) in msg and str(idx.IDX_MAX_BYTES) in msg
    with pytest.raises(DataError, match="bad-images-idx3-ubyte"):
        make_image_dataset("idx", path=path)


def test_idx_header_over_the_limit_is_refused_before_reading(tmp_path, monkeypatch):
    """A plausible header (100 images of 28x28) over a lowered limit: refused by its promise,
    whatever the file holds."""
    pix = np.zeros((100, 28, 28), dtype=np.uint8)
    path = tmp_path / "imgs"
    path.write_bytes(idx_bytes(pix))
    monkeypatch.setattr(idx, "IDX_MAX_BYTES", 1000)
    with pytest.raises(DataError, match=r"imgs: IDX header promises 100x28x28 = 78400 bytes"):
        load_idx(path)


def test_labels_header_that_overflows_is_refused(tmp_path):
    pix = np.zeros((3, 8, 8), dtype=np.uint8)
    img = tmp_path / "imgs"
    img.write_bytes(idx_bytes(pix))
    lab = tmp_path / "labs"
    lab.write_bytes(gzip.compress(idx_header([2**32 - 1]) + bytes(3)))
    with pytest.raises(DataError, match="labs: IDX file truncated"):
        load_idx(img, lab)


def test_mnist_dir_with_overflowing_header(tmp_path):
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_header(OVERFLOW_DIMS)))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(2, np.uint8)))
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz: IDX header promises"):
        load_mnist_dir(tmp_path)


def test_overflowing_header_through_the_cli_is_one_line(capsys, tmp_path):
    path = tmp_path / "bad-images-idx3-ubyte"
    path.write_bytes(idx_header(OVERFLOW_DIMS))
    code = main(
        [
            "train",
            "digits-wgan-gp",
            "data.name=idx",
            f"data.path={path}",
            "train.steps=1",
            "--out-dir",
            str(tmp_path / "runs"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wgan: error: "), err
    assert "bad-images-idx3-ubyte" in lines[0] and "promises" in lines[0]


# ----------------------------------------------------------------------------- gzip bombs


def _peak_bytes(fn) -> int:
    """Peak of Python-tracked allocations (bytes objects, numpy buffers) while ``fn`` runs."""
    tracemalloc.start()
    try:
        fn()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


def test_gzip_bomb_is_inflated_only_as_far_as_the_header_promises(tmp_path):
    """6 images of 28x28 promised (4,704 bytes), 64 MiB of zeros behind them in ~65 kB."""
    pix = np.zeros((6, 28, 28), dtype=np.uint8)
    path = tmp_path / "bomb-images-idx3-ubyte.gz"
    path.write_bytes(gzip_stream(idx_bytes(pix), 64 << 20))
    assert path.stat().st_size < 200_000

    def load():
        with pytest.raises(DataError, match="trailing bytes") as info:
            load_idx(path)
        assert str(path) in one_line(info.value)

    # The old loader held the whole inflated file (64 MiB) before its size check.
    assert _peak_bytes(load) < 4 << 20


def test_gzip_that_cannot_hold_its_promise_is_refused_before_allocating(tmp_path):
    """A 30-byte gzip file promising 4 GB: no deflate stream that small inflates that far, so
    it is called truncated at once (no 4 GB buffer, no inflating)."""
    path = tmp_path / "liar.gz"
    path.write_bytes(gzip.compress(idx_header([2**16, 2**8, 2**8])))

    def load():
        with pytest.raises(DataError, match=r"liar.gz: IDX file truncated.*gzip file can hold"):
            load_idx(path)

    assert _peak_bytes(load) < 1 << 20


def test_gzip_with_exact_size_still_loads_and_checks_crc(tmp_path):
    pix = np.arange(5 * 8 * 8, dtype=np.uint8).reshape(5, 8, 8)
    good = tmp_path / "good.gz"
    good.write_bytes(gzip.compress(idx_bytes(pix)))
    ds = load_idx(good)
    assert torch.equal(ds.images[:, 0], torch.from_numpy(pix).float() / 127.5 - 1)
    # Flip one CRC byte of the gzip trailer: the data are all there, but damaged.
    raw = bytearray(good.read_bytes())
    raw[-8] ^= 0xFF
    bad = tmp_path / "bad-crc.gz"
    bad.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="bad-crc.gz: corrupt or truncated gzip data"):
        load_idx(bad)


# ----------------------------------------------------------------------------- zero-sized images


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
@pytest.mark.parametrize(
    ("dims", "match"),
    [
        ([3, 0, 0], r"images are empty \(0x0 pixels\)"),
        ([3, 0, 5], r"images are empty \(0x5 pixels\)"),
        ([3, 7, 0], r"images are empty \(7x0 pixels\)"),
        ([0, 28, 28], "holds no images"),
        ([0, 0, 0], "holds no images"),
    ],
)
def test_zero_sized_idx_images(tmp_path, dims, match, compress):
    head = idx_header(dims)
    path = tmp_path / "zero-images-idx3-ubyte"
    path.write_bytes(gzip.compress(head) if compress else head)
    with pytest.raises(DataError, match=match) as info:
        load_idx(path)
    assert str(path) in one_line(info.value)
    # Through the registry (which resized 0x0 images: a RuntimeError traceback before).
    with pytest.raises(DataError, match="zero-images-idx3-ubyte"):
        make_image_dataset("idx", path=path)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("empty.png", b""),
        ("zero.png", png_bytes(0, 0)),
        ("flat.png", png_bytes(0, 5)),
        ("thin.png", png_bytes(5, 0)),
    ],
)
def test_zero_sized_image_files_in_a_folder(tmp_path, name, content):
    root = tmp_path / "pics"
    root.mkdir()
    (root / name).write_bytes(content)
    with pytest.raises(DataError) as info:
        load_image_folder(root, 8)
    assert str(root / name) in one_line(info.value)
    with pytest.raises(DataError, match=name):
        make_image_dataset("folder", path=root, resolution=8)


def test_zero_sized_image_tensor():
    with pytest.raises(DataError, match=r"empty \(0x0 pixels\)"):
        ImageDataset(torch.zeros(2, 1, 0, 0), name="t")
    from wgan.data.images import resize_images

    with pytest.raises(WganError, match="empty images"):
        resize_images(torch.zeros(2, 1, 0, 0), 8)
