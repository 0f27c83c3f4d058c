"""Image folders read from local files: PNG/JPEG (anything Pillow decodes), centre-cropped to a
square and resized; sub-folders are classes. IDX files are read by :mod:`wgan.data.idx`, CIFAR
batches by :mod:`wgan.data.cifar`.

Nothing is downloaded; the loader checks the file it reads and raises
:class:`wgan.errors.DataError` naming that file when it is missing, corrupt, truncated or of the
wrong shape. Every image mode Pillow opens (16-bit and float grayscale, palettes, CMYK,
transparency, ...) becomes 8-bit grayscale or RGB by the rules of
:mod:`wgan.data.image_modes` (transparent pixels show white). Pixels are bytes
``b ∈ {0..255}``, kept as bytes in memory and mapped to ``x = b / 127.5 - 1 ∈ [-1, 1]`` batch by
batch (:class:`wgan.data.images.ImageDataset`; :func:`bytes_to_unit` is the same formula).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from wgan.data.image_modes import to_8bit
from wgan.data.images import ImageDataset, check_resolution
from wgan.errors import ConfigError, DataError

__all__ = ["IMAGE_EXTENSIONS", "bytes_to_unit", "load_image_folder"]

#: File name endings treated as images when listing a folder (case-insensitive).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


def bytes_to_unit(pixels: np.ndarray) -> torch.Tensor:
    """uint8 array -> float32 tensor in [-1, 1] (``b / 127.5 - 1``), same shape."""
    # np.frombuffer views are read-only, which torch.from_numpy warns about: copy those.
    pixels = np.require(pixels, dtype=np.uint8, requirements=["C", "W"])
    return torch.from_numpy(pixels).to(torch.float32).div_(127.5).sub_(1.0)


# ----------------------------------------------------------------------------- image folders


def _visible(p: Path) -> bool:
    return not p.name.startswith(".")


def _load_image(path: Path, resolution: int, mode: str) -> np.ndarray:
    """One image file -> ``(R, R, C)`` uint8: center square crop, then resize (bilinear)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            img = to_8bit(img, mode, str(path))  # every mode, by wgan.data.image_modes' rules
    except DataError:
        raise
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
    each is converted to RGB (``channels=3``) or grayscale ``L`` (``channels=1``) by the rules
    of :mod:`wgan.data.image_modes` (any bit depth, palette or colour space; transparency over
    white),
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
    images = torch.from_numpy(pix).permute(0, 3, 1, 2).contiguous()  # (N, C, R, R) uint8
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
