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

import math
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wgan.data.image_modes import to_8bit
from wgan.data.images import RESOLUTIONS, ImageDataset, check_resolution
from wgan.errors import ConfigError, DataError

__all__ = [
    "IMAGE_EXTENSIONS",
    "FolderScan",
    "bytes_to_unit",
    "load_image_folder",
    "nearest_resolution",
    "read_image_files",
    "scan_image_files",
    "scan_image_folder",
]

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


@contextmanager
def _opened(path: Path) -> Iterator[Any]:
    """The PIL image at ``path``, open for the block; a file PIL cannot read (or one beyond its
    decompression-bomb limit), also while the block reads it, is one DataError naming it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            yield img
    except DataError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        raise DataError(
            f"{path}: not a readable image ({type(exc).__name__}: {exc}); an image folder "
            f"must hold only PNG/JPEG files"
        ) from exc
    except Image.DecompressionBombError as exc:
        raise DataError(f"{path}: image too large ({exc})") from exc


def _load_image(path: Path, resolution: int, mode: str, crop: int | None = None) -> np.ndarray:
    """One image file -> ``(R, R, C)`` uint8: center square crop (the largest square, or
    ``crop`` x ``crop`` pixels), then resize (bilinear)."""
    from PIL import Image

    with _opened(path) as img:
        img.load()
        img = to_8bit(img, mode, str(path))  # every mode, by wgan.data.image_modes' rules
    w, h = img.size
    s = min(w, h)
    if s == 0:
        raise DataError(f"{path}: empty image ({w}x{h})")
    if crop is not None:
        if crop > s:
            raise DataError(
                f"{path}: a {w}x{h} image is smaller than the {crop}-pixel crop (data.crop)"
            )
        s = crop
    if w != s or h != s:
        left, top = (w - s) // 2, (h - s) // 2
        img = img.crop((left, top, left + s, top + s))
    if s != resolution:
        # Pillow's bilinear filter widens its support when shrinking (antialiased).
        img = img.resize((resolution, resolution), Image.Resampling.BILINEAR)
    arr = np.asarray(img, dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr  # (R, R, C)


def _list_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if _visible(p) and p.is_file())


def _folder_entries(path: Path) -> tuple[list[tuple[Path, int]], list[str] | None]:
    """The image files of a folder with their class index (-1 without classes), and the class
    names (sorted sub-folder names) or None; refuses an empty folder or class folder."""
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
    return entries, class_names


# ----------------------------------------------------------------------------- shape from files


def nearest_resolution(side: int) -> int:
    """The entry of :data:`wgan.data.images.RESOLUTIONS` nearest to ``side`` on a log scale
    (a tie goes to the larger): 28 -> 32, 24 -> 32, 12 -> 16, 100 -> 64, 4 -> 8."""
    if isinstance(side, bool) or not isinstance(side, int) or side < 1:
        raise DataError(f"an image side must be a positive integer, got {side!r}")
    return min(RESOLUTIONS, key=lambda r: (abs(math.log2(side / r)), -r))


_GREY_MODES = ("1", "L", "LA", "La", "I", "F", "I;16", "I;16L", "I;16B", "I;16N")


def _stored_in_colour(img) -> bool:  # noqa: ANN001 - a PIL image
    """Whether an opened image is stored in colour: any mode but the grayscale ones, where a
    palette counts as colour when one of its entries is not grey (reading a palette may decode
    the image)."""
    if img.mode in _GREY_MODES:
        return False
    if img.mode in ("P", "PA"):
        pal = (img.getpalette() or [])[: 3 * 256]
        pal = pal[: len(pal) - len(pal) % 3]
        return any(not r == g == b for r, g, b in zip(pal[0::3], pal[1::3], pal[2::3], strict=True))
    return True


@dataclass(frozen=True)
class FolderScan:
    """What the file headers of an image folder say (no pixel is decoded, palettes aside).

    Attributes:
        path: the folder.
        n_images: the number of image files.
        class_names: the class sub-folders' names in label order, or None without sub-folders.
        sides: how many images have each square side after the centre crop (min of w and h).
        colour: whether any image is stored in colour (:func:`_stored_in_colour`).
    """

    path: Path
    n_images: int
    class_names: tuple[str, ...] | None
    sides: Counter
    colour: bool

    @property
    def common_side(self) -> int:
        """The most common side (a tie goes to the larger)."""
        return max(self.sides.items(), key=lambda kv: (kv[1], kv[0]))[0]

    @property
    def resolution(self) -> int:
        """The resolution the folder is read at when none is given: the most common side,
        rounded to the nearest supported power of two (:func:`nearest_resolution`)."""
        return nearest_resolution(self.common_side)

    @property
    def channels(self) -> int:
        """3 (RGB) if any image is stored in colour, else 1 (grayscale)."""
        return 3 if self.colour else 1


def scan_image_folder(path: str | Path) -> FolderScan:
    """Read the headers of every image in a folder (see :func:`load_image_folder` for the
    layout): sizes, colour, classes. Unreadable files raise :class:`DataError` naming them."""
    path = Path(path)
    entries, class_names = _folder_entries(path)
    names = tuple(class_names) if class_names is not None else None
    return scan_image_files(path, [f for f, _ in entries], names)


def scan_image_files(
    path: str | Path, files: list[Path], class_names: tuple[str, ...] | None = None
) -> FolderScan:
    """:func:`scan_image_folder` for a given list of files (e.g. those an attribute file
    lists) under the folder ``path``."""
    sides: Counter = Counter()
    colour = False
    for f in files:
        with _opened(f) as img:
            w, h = img.size
            colour = colour or _stored_in_colour(img)
        if min(w, h) == 0:
            raise DataError(f"{f}: empty image ({w}x{h})")
        sides[min(w, h)] += 1
    return FolderScan(Path(path), len(files), class_names, sides, colour)


def read_image_files(
    files: list[Path], resolution: int, channels: int, crop: int | None = None
) -> torch.Tensor:
    """Image files -> ``(N, channels, R, R)`` uint8, each converted to RGB (3) or grayscale
    (1) by :mod:`wgan.data.image_modes`' rules, centre-cropped to its largest square (or to
    ``crop`` x ``crop`` pixels) and resized to ``resolution`` (bilinear); in the given order."""
    mode = "RGB" if channels == 3 else "L"
    pix = np.empty((len(files), resolution, resolution, channels), dtype=np.uint8)
    for i, f in enumerate(files):
        pix[i] = _load_image(f, resolution, mode, crop)
    return torch.from_numpy(pix).permute(0, 3, 1, 2).contiguous()  # (N, C, R, R) uint8


def load_image_folder(
    path: str | Path, resolution: int | None = None, channels: int | None = None
) -> ImageDataset:
    """A directory of images as an :class:`ImageDataset` of shape ``(N, channels, R, R)``.

    With sub-folders, each (non-hidden) sub-folder is a class: sorted names give labels
    ``0..K-1`` and ``class_names``; image files must then all live in the sub-folders. Without
    sub-folders the data is unlabeled. Every non-hidden file must be an image Pillow can read;
    each is converted to RGB (``channels=3``) or grayscale ``L`` (``channels=1``) by the rules
    of :mod:`wgan.data.image_modes` (any bit depth, palette or colour space; transparency over
    white),
    center-cropped to a square and resized to ``resolution`` (bilinear; no resize if it
    already has that size, so pixels round-trip exactly). Files are read in sorted order.

    ``resolution`` and ``channels`` default to what the files say (:func:`scan_image_folder`):
    the most common side rounded to a supported power of two, and RGB if any image is stored in
    colour, else grayscale.
    """
    if resolution is not None:
        resolution = check_resolution(resolution)
    if channels is not None and (isinstance(channels, bool) or channels not in (1, 3)):
        raise ConfigError(f"channels must be 1 or 3, got {channels!r}")
    path = Path(path)
    if resolution is None or channels is None:
        scan = scan_image_folder(path)
        resolution = scan.resolution if resolution is None else resolution
        channels = scan.channels if channels is None else channels
    entries, class_names = _folder_entries(path)
    images = read_image_files([f for f, _ in entries], resolution, channels)
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
