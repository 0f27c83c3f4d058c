"""CIFAR-10/100 batches, read from local files without running their pickles.

Nothing is downloaded; the loader checks the file it reads and raises
:class:`wgan.errors.DataError` naming that file when it is missing, corrupt, truncated or of the
wrong shape. Pixels are bytes ``b ∈ {0..255}``, kept as bytes in memory and mapped to
``x = b / 127.5 - 1 ∈ [-1, 1]`` batch by batch (:class:`wgan.data.images.ImageDataset`).

CIFAR-10/100 "python version" (Krizhevsky 2009): pickled dicts with ``b'data'`` of shape
``(N, 3072)`` uint8 (1024 red, then 1024 green, then 1024 blue values of a 32x32 image, each
row-major) and ``b'labels'`` (CIFAR-10) or ``b'fine_labels'`` (CIFAR-100). A pickle can run
arbitrary code when loaded, so these are read with an unpickler that resolves only the
numpy array-reconstruction globals; any other global is refused before it is imported.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wgan.data.idx import _read_bytes
from wgan.data.images import ImageDataset, check_resolution
from wgan.errors import ConfigError, DataError

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
        torch.from_numpy(np.require(pix, requirements=["C", "W"])),  # bytes, converted per batch
        torch.from_numpy(lab),
        n_classes,
        name=f"cifar{n_classes}",
        source=str(path),
    )
    return ds if resolution is None else ds.resized(resolution)


__all__ = ["load_cifar", "safe_unpickle"]
