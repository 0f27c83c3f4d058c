"""IDX files (the MNIST family) and MNIST folders, read from local files.

Nothing is downloaded; the loader checks the file it reads and raises
:class:`wgan.errors.DataError` naming that file when it is missing, corrupt, truncated or of the
wrong shape. Pixels are bytes ``b ∈ {0..255}``, kept as bytes in memory and mapped to
``x = b / 127.5 - 1 ∈ [-1, 1]`` batch by batch (:class:`wgan.data.images.ImageDataset`).

IDX (LeCun et al., the MNIST distribution format, also used by Fashion-MNIST, Xiao et al.
2017, arXiv 1708.07747): a big-endian header ``00 00 <type> <ndim>`` then ``ndim`` uint32
sizes, then the data in row-major order. Type ``0x08`` is unsigned byte; images are
``ndim = 3`` (magic ``0x00000803``), labels ``ndim = 1`` (magic ``0x00000801``). Files may be
gzip-compressed (detected by the magic bytes ``1f 8b``, not the extension). The header is
read first and bounds everything after it: sizes promising more than :data:`IDX_MAX_BYTES`,
or more than the memory available now (:func:`wgan.store.memory.available_memory`), are refused
before anything is allocated or inflated, and a gzip stream is inflated only up to the promised
size (plus one byte to detect excess), so a small file that inflates to gigabytes costs no more
than its header claims, and what it claims must fit. Zero-sized images (``0xN``) are refused.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from wgan.data.images import ImageDataset, check_resolution
from wgan.errors import ConfigError, DataError
from wgan.store import memory

# ----------------------------------------------------------------------------- IDX


#: Most bytes of pixel or label data (after the header) :func:`read_idx` accepts: 4 GiB, over
#: 90 times MNIST's 47 MB of training images. Images stay bytes in memory (a batch at a time
#: becomes float32), so this is also the most a dataset holds. A header that promises more (e.g.
#: sizes whose product overflows int64), or more than the memory available now, is refused
#: before anything is read or allocated.
IDX_MAX_BYTES = 1 << 32

# Deflate's largest expansion: a 258-byte match coded in 2 bits (RFC 1951).
_DEFLATE_MAX_RATIO = 1032

# Bytes asked of a stream at a time: gzip's reader inflates each request into a temporary
# bytes object (zlib grows it up to ~3x the request) before copying it into place, so a
# request is kept small: 256 KiB.
_READ_CHUNK = 1 << 18


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, or a DataError naming the file when it is missing or unreadable."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from exc


def _read_into(stream: BinaryIO, buf: memoryview, path: Path, compressed: bool) -> int:
    """Fill ``buf`` from ``stream`` until it is full or the stream ends; bytes read.

    Never reads more than ``len(buf)`` bytes, so a gzip stream is inflated only as far as the
    header promised, and asks for at most :data:`_READ_CHUNK` at a time, so inflating needs no
    temporary copy larger than that. A corrupt or truncated gzip stream or an I/O error is a
    DataError naming the file.
    """
    filled = 0
    try:
        while filled < len(buf):
            got = stream.readinto(buf[filled : filled + _READ_CHUNK])
            if not got:
                break
            filled += got
    except (OSError, EOFError, zlib.error) as exc:
        if compressed:
            raise DataError(f"{path}: corrupt or truncated gzip data ({exc})") from exc
        raise DataError(f"{path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from exc
    return filled


def _read_exact(stream: BinaryIO, n: int, path: Path, compressed: bool) -> bytes:
    """Up to ``n`` bytes (fewer only at the end of the stream)."""
    buf = bytearray(n)
    return bytes(buf[: _read_into(stream, memoryview(buf), path, compressed)])


def read_idx(path: str | Path, ndim: int) -> np.ndarray:
    """Read an unsigned-byte IDX file with ``ndim`` dimensions as a uint8 array.

    Checks: the two leading zero bytes, type code ``0x08`` (unsigned byte), the number of
    dimensions (3 for images, 1 for labels), and that the (decompressed) size is exactly
    ``4 + 4 * ndim + prod(dims)`` bytes.

    Memory stays bounded by what the header promises: the header is read first, a promise of
    more than :data:`IDX_MAX_BYTES` or more than :func:`wgan.store.memory.available_memory` is
    refused before anything is allocated, and a gzip file is inflated only up to the promised
    size plus one byte (to detect excess), never in full, so a small file that inflates to
    gigabytes (a "gzip bomb") costs at most the promised size, which must fit in memory.
    """
    path = Path(path)
    kind = "images" if ndim == 3 else "labels"
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        raw = path.open("rb")
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    with raw:
        try:
            size = os.fstat(raw.fileno()).st_size
            compressed = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
        except OSError as exc:
            raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from exc
        if compressed:
            with gzip.GzipFile(fileobj=raw, mode="rb") as gz:
                return _read_idx_stream(gz, path, ndim, kind, size, compressed=True)
        return _read_idx_stream(raw, path, ndim, kind, size, compressed=False)


def _read_idx_stream(
    stream: BinaryIO, path: Path, ndim: int, kind: str, size: int, compressed: bool
) -> np.ndarray:
    """The body of :func:`read_idx` on an open stream (the file, or the gzip stream over it);
    ``size`` is the size of the file on disk."""
    head = _read_exact(stream, 4, path, compressed)
    if len(head) < 4:
        raise DataError(f"{path}: too short for an IDX header ({len(head)} bytes)")
    magic = int.from_bytes(head, "big")
    want = 0x00000800 | ndim
    if head[0] != 0 or head[1] != 0 or head[2] != 0x08 or head[3] != ndim:
        hint = ""
        if head[:2] == b"\x00\x00" and head[2] != 0x08:
            hint = f" (type code 0x{head[2]:02x}; only 0x08 unsigned byte is supported)"
        elif head[:2] == b"\x00\x00" and head[2] == 0x08:
            hint = f" ({head[3]} dimensions; IDX {kind} have {ndim})"
        raise DataError(
            f"{path}: not an IDX {kind} file: magic number 0x{magic:08x}, "
            f"expected 0x{want:08x}{hint}"
        )
    header = 4 + 4 * ndim
    sizes = _read_exact(stream, 4 * ndim, path, compressed)
    if len(sizes) < 4 * ndim:
        raise DataError(
            f"{path}: truncated IDX header: expected {header} bytes, got {4 + len(sizes)}"
        )
    dims = [int.from_bytes(sizes[4 * i : 4 * i + 4], "big") for i in range(ndim)]
    shape = "x".join(map(str, dims))
    promised = math.prod(dims)  # a Python int: no overflow, whatever the header says
    if promised > IDX_MAX_BYTES:
        raise DataError(
            f"{path}: IDX header promises {shape} = {promised} bytes of data, more than the "
            f"{IDX_MAX_BYTES}-byte limit of this loader (a corrupt header, or a file too large)"
        )
    expected = header + promised
    if not compressed and size != expected:
        what = "truncated" if size < expected else "has trailing bytes"
        raise DataError(
            f"{path}: IDX file {what}: expected {expected} bytes (header {header} + data "
            f"{shape}), got {size}"
        )
    if compressed and expected > _DEFLATE_MAX_RATIO * size + 1024:
        # Refused before allocating: no deflate stream of this size inflates that far.
        raise DataError(
            f"{path}: IDX file truncated: expected {expected} bytes (header {header} + data "
            f"{shape}), more than a {size}-byte gzip file can hold (deflate expands at most "
            f"{_DEFLATE_MAX_RATIO}:1)"
        )
    free = memory.available_memory()
    if free is not None and promised > free:
        raise DataError(
            f"{path}: IDX header promises {shape} = {memory.format_bytes(promised)} of data, "
            f"more than the {memory.format_bytes(free)} of memory available now; refused "
            f"before reading it"
        )
    data = np.empty(promised, dtype=np.uint8)  # (prod(dims),), filled in place
    got = _read_into(stream, memoryview(data), path, compressed)
    if got < promised:
        raise DataError(
            f"{path}: IDX file truncated: expected {expected} bytes (header {header} + data "
            f"{shape}), got {header + got}"
        )
    if compressed and _read_exact(stream, 1, path, compressed):
        raise DataError(
            f"{path}: IDX file has trailing bytes: expected {expected} bytes (header {header} "
            f"+ data {shape}), got more (decompressed)"
        )
    return data.reshape(dims)


def load_idx(
    images_path: str | Path,
    labels_path: str | Path | None = None,
    resolution: int | None = None,
    n_classes: int | None = None,
    name: str = "idx",
) -> ImageDataset:
    """An IDX images file (``(N, H, W)`` uint8, square) and optional labels file.

    ``resolution`` (8, 16, 32 or 64) resizes bilinearly with antialiasing; ``None`` keeps the
    native size (28 for MNIST). Labels must number ``N``; ``n_classes`` defaults to
    ``max(label) + 1`` and, when given, every label must be below it.
    """
    if resolution is not None:
        resolution = check_resolution(resolution)
    images_path = Path(images_path)
    pix = read_idx(images_path, 3)  # (N, H, W) uint8
    n, h, w = pix.shape
    if n == 0:
        raise DataError(f"{images_path}: the IDX file holds no images")
    if h == 0 or w == 0:
        raise DataError(f"{images_path}: the IDX images are empty ({h}x{w} pixels)")
    if h != w:
        raise DataError(f"{images_path}: images must be square, got {h}x{w}")
    labels = None
    k = 0
    if labels_path is not None:
        labels_path = Path(labels_path)
        lab = read_idx(labels_path, 1)  # (N,) uint8
        if lab.shape[0] != n:
            raise DataError(
                f"{labels_path}: {lab.shape[0]} labels for the {n} images of {images_path.name}"
            )
        top = int(lab.max())
        k = top + 1 if n_classes is None else int(n_classes)
        if top >= k:
            raise DataError(f"{labels_path}: label {top} out of range [0, {k - 1}]")
        labels = torch.from_numpy(lab.astype(np.int64))
    # (N, 1, H, W) uint8: kept as bytes, converted batch by batch (no float copy of the set)
    images = torch.from_numpy(np.require(pix, requirements=["C", "W"])).unsqueeze(1)
    ds = ImageDataset(images, labels, k, name=name, source=str(images_path))
    return ds if resolution is None else ds.resized(resolution)


def _find_idx(directory: Path, prefix: str, kind: str, ndim: int) -> Path:
    """``<prefix>-<kind>-idx<ndim>-ubyte`` in ``directory``, raw or ``.gz`` (or with a dot)."""
    names = [f"{prefix}-{kind}-idx{ndim}-ubyte", f"{prefix}-{kind}.idx{ndim}-ubyte"]
    for base in names:
        for cand in (base, base + ".gz"):
            if (directory / cand).is_file():
                return directory / cand
    raise DataError(f"{directory / names[0]}[.gz]: no such file (MNIST-style {kind} file)")


def load_mnist_dir(
    directory: str | Path, split: str = "train", resolution: int | None = 32
) -> ImageDataset:
    """MNIST or Fashion-MNIST from their directory of IDX files (10 classes).

    ``split='train'`` reads ``train-images-idx3-ubyte`` / ``train-labels-idx1-ubyte``,
    ``split='test'`` the ``t10k-*`` files; each raw or ``.gz``.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory}: not a directory (expected MNIST-style IDX files in it)")
    if split not in ("train", "test"):
        raise ConfigError(f"data split must be 'train' or 'test', got {split!r}")
    prefix = "train" if split == "train" else "t10k"
    images = _find_idx(directory, prefix, "images", 3)
    labels = _find_idx(directory, prefix, "labels", 1)
    return load_idx(images, labels, resolution, n_classes=10, name="mnist")


__all__ = ["IDX_MAX_BYTES", "load_idx", "load_mnist_dir", "read_idx"]
