"""Image grids and PNG files from ``(N, C, H, W)`` batches in ``[-1, 1]``.

A generator with a ``tanh`` output (DCGAN, Radford et al. 2016, arXiv 1511.06434) produces
pixels ``x ∈ [-1, 1]``; for display they map to ``u = (x + 1) / 2 ∈ [0, 1]`` and to bytes
``round(255 u)``. Values outside the range (an untrained generator without ``tanh``) are
clamped and NaNs shown as black, so a grid is always writable.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from wgan.errors import WganError

__all__ = ["auto_scale", "image_grid", "save_image_grid", "to_uint8", "upscale"]

MIN_TILE = 48
"""Smallest side, in pixels, a tile of a saved sample grid is upscaled to (:func:`auto_scale`)."""


def _check_batch(images: object) -> Tensor:
    if not isinstance(images, Tensor):
        raise WganError(f"images must be a torch.Tensor (N, C, H, W), got {type(images)}")
    if images.ndim != 4:
        raise WganError(f"images must have shape (N, C, H, W), got {tuple(images.shape)}")
    if images.shape[1] not in (1, 3):
        raise WganError(f"images must have 1 or 3 channels, got shape {tuple(images.shape)}")
    if images.is_complex():
        raise WganError("images must be real, got a complex tensor")
    return images


def _to_unit(images: Tensor) -> Tensor:
    """``[-1, 1]`` -> ``[0, 1]`` float32 on the CPU, NaN -> 0, clamped."""
    x = images.detach().to("cpu", torch.float32)
    return torch.nan_to_num((x + 1.0) * 0.5, nan=0.0).clamp_(0.0, 1.0)


def to_uint8(images: Tensor) -> np.ndarray:
    """``(N, C, H, W)`` in ``[-1, 1]`` -> numpy ``(N, H, W, C)`` uint8, ``round(255 (x+1)/2)``.

    Exact inverse of the loaders' ``x = b / 127.5 - 1`` for data that came from bytes.
    """
    x = _to_unit(_check_batch(images))  # (N, C, H, W) in [0, 1]
    return (x * 255.0).round_().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def image_grid(
    images: Tensor, nrow: int | None = None, padding: int = 2, pad_value: float = 1.0
) -> Tensor:
    """Tile ``(N, C, H, W)`` images in ``[-1, 1]`` into one ``(C, H', W')`` image in ``[0, 1]``.

    ``nrow`` is the number of images per row (default ``ceil(sqrt(N))``, a near-square grid);
    there are ``ceil(N / nrow)`` rows. Every tile is surrounded by ``padding`` pixels of
    ``pad_value`` (white by default, so dark digits stay separated), giving
    ``H' = rows (H + p) + p`` and ``W' = cols (W + p) + p``. Unfilled cells of the last row
    are left as padding colour.
    """
    images = _check_batch(images)
    n, c, h, w = images.shape
    if n == 0:
        raise WganError("cannot make an image grid from 0 images")
    if nrow is None:
        nrow = math.ceil(math.sqrt(n))
    if isinstance(nrow, bool) or not isinstance(nrow, int) or nrow < 1:
        raise WganError(f"nrow must be a positive integer, got {nrow!r}")
    if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        raise WganError(f"padding must be a non-negative integer, got {padding!r}")
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    x = _to_unit(images)  # (N, C, H, W)
    grid = torch.full(
        (c, rows * (h + padding) + padding, cols * (w + padding) + padding),
        float(pad_value),
        dtype=torch.float32,
    )
    for i in range(n):
        r, col = divmod(i, cols)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[:, top : top + h, left : left + w] = x[i]
    return grid.clamp_(0.0, 1.0)


def auto_scale(size: int, min_tile: int = MIN_TILE) -> int:
    """The integer factor that makes a ``size``-pixel image at least ``min_tile`` pixels wide:
    ``ceil(min_tile / size)`` (8x8 digits x6, 16x16 x3, 32x32 x2, 64x64 and above x1)."""
    return max(1, math.ceil(min_tile / max(1, int(size))))


def upscale(grid: Tensor, factor: int) -> Tensor:
    """Nearest-neighbour upscaling of a ``(C, H, W)`` image: every pixel becomes a
    ``factor`` x ``factor`` block, ``(C, factor H, factor W)`` (no smoothing of the pixels)."""
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
        raise WganError(f"scale must be a positive integer, got {factor!r}")
    return grid.repeat_interleave(factor, dim=-2).repeat_interleave(factor, dim=-1)


def _title_band(text: str, width: int, channels: int) -> np.ndarray:
    """A white ``(h, width, C)`` uint8 band with ``text`` in black, cut to fit ``width``."""
    from PIL import Image, ImageDraw, ImageFont

    try:
        font = ImageFont.load_default(size=12)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font only
        font = ImageFont.load_default()
    draw = ImageDraw.Draw(Image.new("L", (1, 1)))
    shown = text
    while shown and draw.textlength(shown, font=font) > width - 8:
        text = text[:-1]
        shown = text + "…" if text else ""
    band = Image.new("L", (width, 18), 255)
    ImageDraw.Draw(band).text((4, 2), shown, fill=0, font=font)
    arr = np.asarray(band)[:, :, None]  # (18, width, 1)
    return np.repeat(arr, channels, axis=2)


def save_image_grid(
    images: Tensor,
    path: str | Path,
    nrow: int | None = None,
    padding: int = 2,
    *,
    scale: int = 1,
    title: str | None = None,
) -> Path:
    """Write :func:`image_grid` of ``images`` as a PNG (8-bit grayscale for 1 channel, else RGB).

    ``scale`` upscales the grid by nearest neighbour (:func:`upscale`; see :func:`auto_scale`);
    ``title`` (e.g. the run and the step) is written in a white band above the grid. Parent
    directories are created. Returns the path written.
    """
    from PIL import Image

    grid = upscale(image_grid(images, nrow=nrow, padding=padding), scale)  # (C, H', W') in [0, 1]
    arr = (grid * 255.0).round_().to(torch.uint8).permute(1, 2, 0).numpy()  # (H', W', C)
    if title:
        arr = np.concatenate([_title_band(title, arr.shape[1], arr.shape[2]), arr], axis=0)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(np.ascontiguousarray(arr[:, :, 0] if arr.shape[2] == 1 else arr))
    img.save(path, format="PNG")  # L or RGB
    return path
