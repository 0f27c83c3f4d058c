"""Image datasets read from local files: IDX (MNIST family), CIFAR pickles, image folders.

Nothing is downloaded; every loader checks the file it reads and raises
:class:`wgan.errors.DataError` naming that file when it is missing, corrupt, truncated or of the
wrong shape. Pixels are bytes ``b ∈ {0..255}`` mapped to ``x = b / 127.5 - 1 ∈ [-1, 1]``.

Formats
-------
* IDX (LeCun et al., the MNIST distribution format, also used by Fashion-MNIST, Xiao et al.
  2017, arXiv 1708.07747): a big-endian header ``00 00 <type> <ndim>`` then ``ndim`` uint32
  sizes, then the data in row-major order. Type ``0x08`` is unsigned byte; images are
  ``ndim = 3`` (magic ``0x00000803``), labels ``ndim = 1`` (magic ``0x00000801``). Files may be
  gzip-compressed (detected by the magic bytes ``1f 8b``, not the extension). The header is
  read first and bounds everything after it: sizes promising more than :data:`IDX_MAX_BYTES`
  are refused, and a gzip stream is inflated only up to the promised size (plus one byte to
  detect excess), so a small file that inflates to gigabytes costs no more than its header
  claims. Zero-sized images (``0xN``) are refused.
* CIFAR-10/100 "python version" (Krizhevsky 2009): pickled dicts with ``b'data'`` of shape
  ``(N, 3072)`` uint8 (1024 red, then 1024 green, then 1024 blue values of a 32x32 image, each
  row-major) and ``b'labels'`` (CIFAR-10) or ``b'fine_labels'`` (CIFAR-100). A pickle can run
  arbitrary code when loaded, so these are read with an unpickler that resolves only the
  numpy array-reconstruction globals; any other global is refused before it is imported.
* Image folders: PNG/JPEG (anything Pillow decodes), center-cropped to a square and resized.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import pickle
import zlib
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from wgan.data.images import ImageDataset, check_resolution
from wgan.errors import ConfigError, DataError

__all__ = [
    "IDX_MAX_BYTES",
    "IMAGE_EXTENSIONS",
    "load_cifar",
    "load_idx",
    "load_image_folder",
    "load_mnist_dir",
    "read_idx",
    "safe_unpickle",
]

#: File name endings treated as images when listing a folder (case-insensitive).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


def _bytes_to_unit(pixels: np.ndarray) -> torch.Tensor:
    """uint8 array -> float32 tensor in [-1, 1] (``b / 127.5 - 1``), same shape."""
    # np.frombuffer views are read-only, which torch.from_numpy warns about: copy those.
    pixels = np.require(pixels, dtype=np.uint8, requirements=["C", "W"])
    return torch.from_numpy(pixels).to(torch.float32).div_(127.5).sub_(1.0)


# ----------------------------------------------------------------------------- IDX


#: Most bytes of pixel or label data (after the header) :func:`read_idx` accepts: 4 GiB, over
#: 90 times MNIST's 47 MB of training images (and 4x that again once converted to float32).
#: A header that promises more (e.g. sizes whose product overflows int64) is refused before
#: anything is read or allocated.
IDX_MAX_BYTES = 1 << 32

# Deflate's largest expansion: a 258-byte match coded in 2 bits (RFC 1951).
_DEFLATE_MAX_RATIO = 1032


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
    header promised. A corrupt or truncated gzip stream or an I/O error is a DataError naming
    the file.
    """
    filled = 0
    try:
        while filled < len(buf):
            got = stream.readinto(buf[filled:])
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
    more than :data:`IDX_MAX_BYTES` is refused, and a gzip file is inflated only up to the
    promised size plus one byte (to detect excess), never in full, so a small file that
    inflates to gigabytes (a "gzip bomb") costs at most the promised size.
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
    images = _bytes_to_unit(pix).unsqueeze(1)  # (N, 1, H, W)
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


# ----------------------------------------------------------------------------- CIFAR pickles


def _numpy_globals() -> dict[tuple[str, str], Any]:
    """The only globals a CIFAR pickle may name: numpy array/dtype reconstruction."""
    try:  # numpy >= 2 (also present as a forward-compat alias in numpy 1.26)
        from numpy._core import multiarray, numeric
    except ImportError:  # pragma: no cover - older numpy
        from numpy.core import multiarray, numeric  # type: ignore[no-redef]
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        # Python-3 protocol-2 pickles encode bytes as _codecs.encode(str, 'latin1').
        ("_codecs", "encode"): _text_encode,
    }
    for mod in ("numpy.core", "numpy._core"):
        allowed[(f"{mod}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{mod}.multiarray", "scalar")] = multiarray.scalar
        # Protocol-5 pickles rebuild arrays with numeric._frombuffer(buffer, dtype, shape, order).
        allowed[(f"{mod}.numeric", "_frombuffer")] = numeric._frombuffer
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only whitelisted numpy globals; anything else raises before import."""

    _allowed: dict[tuple[str, str], Any] | None = None

    def find_class(self, module: str, name: str) -> Any:
        if _RestrictedUnpickler._allowed is None:
            _RestrictedUnpickler._allowed = _numpy_globals()
        obj = _RestrictedUnpickler._allowed.get((module, name))
        if obj is None:
            raise pickle.UnpicklingError(f"disallowed global {module}.{name}")
        return obj


def _text_encode(obj: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` restricted to the text encodings pickle itself uses for bytes."""
    if encoding not in ("latin1", "latin-1", "utf-8", "utf8", "ascii") or not isinstance(obj, str):
        raise pickle.UnpicklingError(f"disallowed _codecs.encode(..., {encoding!r})")
    return obj.encode(encoding, errors)


def safe_unpickle(path: str | Path) -> Any:
    """Unpickle ``path`` allowing only plain containers and numpy arrays.

    Python-2 strings become ``bytes`` (``encoding='bytes'``, as the CIFAR files need). A
    disallowed global, a corrupt or truncated stream raise DataError naming the file; nothing
    outside the whitelist is imported or called.
    """
    path = Path(path)
    raw = _read_bytes(path)
    try:
        return _RestrictedUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except pickle.UnpicklingError as exc:
        if "disallowed" in str(exc):
            raise DataError(
                f"{path}: refused to unpickle: {exc} (only numpy arrays and plain containers "
                f"are allowed)"
            ) from exc
        raise DataError(f"{path}: corrupt pickle ({exc})") from exc
    except Exception as exc:  # EOFError, ValueError, TypeError, ... from a damaged stream
        raise DataError(
            f"{path}: corrupt or truncated pickle ({type(exc).__name__}: {exc})"
        ) from exc


def _str_keys(d: dict) -> dict[str, Any]:
    return {(k.decode("latin1") if isinstance(k, bytes) else str(k)): v for k, v in d.items()}


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """One CIFAR pickle -> ``(pixels (N, 3, 32, 32) uint8, labels (N,) int64, n_classes)``."""
    obj = safe_unpickle(path)
    if not isinstance(obj, dict):
        raise DataError(f"{path}: expected a pickled dict, got {type(obj).__name__}")
    d = _str_keys(obj)
    if "data" not in d:
        raise DataError(f"{path}: no 'data' entry (keys: {sorted(d)})")
    if "fine_labels" in d:
        labels, n_classes = d["fine_labels"], 100
    elif "labels" in d:
        labels, n_classes = d["labels"], 10
    else:
        raise DataError(f"{path}: no 'labels' or 'fine_labels' entry (keys: {sorted(d)})")
    data = d["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        desc = (
            f"{data.dtype} array of shape {data.shape}"
            if isinstance(data, np.ndarray)
            else type(data).__name__
        )
        raise DataError(f"{path}: 'data' must be a (N, 3072) uint8 array, got {desc}")
    if data.shape[1] != 3072:
        raise DataError(f"{path}: 'data' must have shape (N, 3072), got {data.shape}")
    try:
        lab = np.asarray(labels, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{path}: labels are not integers ({exc})") from exc
    if lab.shape[0] != data.shape[0]:
        raise DataError(f"{path}: {lab.shape[0]} labels for {data.shape[0]} images")
    if lab.size and (lab.min() < 0 or lab.max() >= n_classes):
        raise DataError(
            f"{path}: labels must lie in [0, {n_classes - 1}], found "
            f"[{int(lab.min())}, {int(lab.max())}]"
        )
    # Each row is 1024 R, then 1024 G, then 1024 B values, each a row-major 32x32 plane.
    return data.reshape(-1, 3, 32, 32), lab, n_classes


def _cifar_files(path: Path, split: str) -> tuple[list[Path], str]:
    """The batch files of a CIFAR directory for ``split`` and the dataset name."""
    if (path / "data_batch_1").is_file() or (path / "test_batch").is_file():
        if split == "test":
            return [path / "test_batch"], "cifar10"
        numbered = sorted(
            (p for p in path.glob("data_batch_*") if p.name[11:].isdigit()),
            key=lambda p: int(p.name[11:]),
        )
        if not numbered:
            raise DataError(f"{path / 'data_batch_1'}: no such file (CIFAR-10 training batch)")
        for i, p in enumerate(numbered, start=1):
            if p.name != f"data_batch_{i}":
                raise DataError(f"{path / f'data_batch_{i}'}: no such file (CIFAR-10 batch)")
        return numbered, "cifar10"
    if (path / "train").is_file() or (path / "test").is_file():
        return [path / split], "cifar100"
    raise DataError(
        f"{path}: not a CIFAR directory (expected data_batch_1..5 and test_batch for "
        f"CIFAR-10, or train and test for CIFAR-100)"
    )


def load_cifar(
    path: str | Path, resolution: int | None = None, split: str = "train"
) -> ImageDataset:
    """CIFAR-10 or CIFAR-100 from the python-pickle distribution.

    ``path`` is ``cifar-10-batches-py`` (``split='train'``: ``data_batch_1``.. in order;
    ``'test'``: ``test_batch``), ``cifar-100-python`` (``train`` / ``test``, fine labels), or a
    single batch file (``split`` is then ignored). ``n_classes`` is 10 or 100; images are
    ``(N, 3, 32, 32)``, resized when ``resolution`` is given.
    """
    if resolution is not None:
        resolution = check_resolution(resolution)
    if split not in ("train", "test"):
        raise ConfigError(f"data split must be 'train' or 'test', got {split!r}")
    path = Path(path)
    if path.is_dir():
        files, _ = _cifar_files(path, split)
    elif path.is_file():
        files = [path]
    else:
        raise DataError(f"{path}: no such file or directory")
    parts = [_read_cifar_batch(f) for f in files]
    kinds = {k for _, _, k in parts}
    if len(kinds) != 1:
        raise DataError(f"{path}: mixes CIFAR-10 and CIFAR-100 batches")
    n_classes = kinds.pop()
    pix = np.concatenate([p for p, _, _ in parts])  # (N, 3, 32, 32) uint8
    lab = np.concatenate([lab for _, lab, _ in parts])  # (N,)
    if pix.shape[0] == 0:
        raise DataError(f"{path}: the CIFAR batches hold no images")
    ds = ImageDataset(
        _bytes_to_unit(pix),
        torch.from_numpy(lab),
        n_classes,
        name=f"cifar{n_classes}",
        source=str(path),
    )
    return ds if resolution is None else ds.resized(resolution)


# ----------------------------------------------------------------------------- image folders


def _visible(p: Path) -> bool:
    return not p.name.startswith(".")


def _load_image(path: Path, resolution: int, mode: str) -> np.ndarray:
    """One image file -> ``(R, R, C)`` uint8: center square crop, then resize (bilinear)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            img = img.convert(mode)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        raise DataError(
            f"{path}: not a readable image ({type(exc).__name__}: {exc}); an image folder "
            f"must hold only PNG/JPEG files"
        ) from exc
    except Image.DecompressionBombError as exc:
        raise DataError(f"{path}: image too large ({exc})") from exc
    w, h = img.size
    s = min(w, h)
    if s == 0:
        raise DataError(f"{path}: empty image ({w}x{h})")
    if w != h:
        left, top = (w - s) // 2, (h - s) // 2
        img = img.crop((left, top, left + s, top + s))
    if s != resolution:
        # Pillow's bilinear filter widens its support when shrinking (antialiased).
        img = img.resize((resolution, resolution), Image.Resampling.BILINEAR)
    arr = np.asarray(img, dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr  # (R, R, C)


def _list_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if _visible(p) and p.is_file())


def load_image_folder(path: str | Path, resolution: int, channels: int = 3) -> ImageDataset:
    """A directory of images as an :class:`ImageDataset` of shape ``(N, channels, R, R)``.

    With sub-folders, each (non-hidden) sub-folder is a class: sorted names give labels
    ``0..K-1`` and ``class_names``; image files must then all live in the sub-folders. Without
    sub-folders the data is unlabeled. Every non-hidden file must be an image Pillow can read;
    each is converted to RGB (``channels=3``) or grayscale ``L`` (``channels=1``),
    center-cropped to a square and resized to ``resolution`` (bilinear; no resize if it
    already has that size, so pixels round-trip exactly). Files are read in sorted order.
    """
    resolution = check_resolution(resolution)
    if isinstance(channels, bool) or channels not in (1, 3):
        raise ConfigError(f"channels must be 1 or 3, got {channels!r}")
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path}: not a directory (expected a folder of images)")
    subdirs = sorted(p for p in path.iterdir() if _visible(p) and p.is_dir())
    entries: list[tuple[Path, int]] = []
    class_names: list[str] | None = None
    if subdirs:
        stray = _list_files(path)
        if stray:
            raise DataError(
                f"{stray[0]}: a folder with class sub-folders must not hold files at its top "
                f"level (move it into a class sub-folder)"
            )
        class_names = [d.name for d in subdirs]
        for k, d in enumerate(subdirs):
            files = _list_files(d)
            if not files:
                raise DataError(f"{d}: class folder holds no images")
            entries.extend((f, k) for f in files)
    else:
        entries = [(f, -1) for f in _list_files(path)]
    if not entries:
        raise DataError(f"{path}: the folder holds no images")
    mode = "RGB" if channels == 3 else "L"
    pix = np.empty((len(entries), resolution, resolution, channels), dtype=np.uint8)
    for i, (f, _) in enumerate(entries):
        pix[i] = _load_image(f, resolution, mode)
    images = _bytes_to_unit(pix).permute(0, 3, 1, 2).contiguous()  # (N, C, R, R)
    labels = None
    if class_names is not None:
        labels = torch.tensor([k for _, k in entries], dtype=torch.int64)
    return ImageDataset(
        images,
        labels,
        len(class_names) if class_names is not None else 0,
        name="folder",
        source=str(path),
        class_names=class_names,
    )
