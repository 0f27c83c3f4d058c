"""Image grids with a name beside each row and panels side by side: class rows named after an
image folder's sub-folders, and real images next to generated ones.

Built on :func:`wgan.figures.images.image_grid` and :func:`~wgan.figures.images.upscale`
(nearest-neighbour, so pixels stay pixels); text is drawn with Pillow's default font, as the
titles of :func:`~wgan.figures.images.save_image_grid`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import Tensor

from wgan.errors import WganError
from wgan.figures.images import auto_scale, image_grid, upscale
from wgan.store.printable import printable

__all__ = ["labelled_grid", "save_panels"]

_BAND = 18  # height of a title or header band, pixels
_MARGIN = 4


def _font(size: int = 12):  # noqa: ANN202 - a PIL font
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font only
        return ImageFont.load_default()


def _fit(text: str, width: int) -> str:
    """``text`` made printable and cut (with an ellipsis) to fit ``width`` pixels."""
    from PIL import Image, ImageDraw

    draw, font = ImageDraw.Draw(Image.new("L", (1, 1))), _font()
    text = printable(text, 200)
    shown = text
    while shown and draw.textlength(shown, font=font) > width:
        text = text[:-1]
        shown = text + "…" if text else ""
    return shown


def _text_width(texts: list[str]) -> int:
    from PIL import Image, ImageDraw

    draw, font = ImageDraw.Draw(Image.new("L", (1, 1))), _font()
    return int(max((draw.textlength(printable(t, 200), font=font) for t in texts), default=0))


def _band(text: str, width: int, channels: int) -> np.ndarray:
    """A white ``(18, width, C)`` band with ``text`` in black."""
    from PIL import Image, ImageDraw

    band = Image.new("L", (width, _BAND), 255)
    ImageDraw.Draw(band).text((_MARGIN, 2), _fit(text, width - 2 * _MARGIN), fill=0, font=_font())
    return np.repeat(np.asarray(band)[:, :, None], channels, axis=2)


def labelled_grid(
    images: Tensor,
    nrow: int,
    row_labels: list[str] | None = None,
    scale: int | None = None,
    header: str | None = None,
) -> np.ndarray:
    """A grid of ``(N, C, H, W)`` images in [-1, 1], ``nrow`` per row, as ``(H', W', C)`` uint8:
    upscaled by ``scale`` (default :func:`~wgan.figures.images.auto_scale`), with
    ``row_labels[i]`` written left of row ``i`` and ``header`` in a band above."""
    scale = auto_scale(int(images.shape[-1])) if scale is None else scale
    grid = upscale(image_grid(images, nrow=nrow, pad_value=0.75), scale)  # (C, H', W'), [0, 1]
    arr = (grid * 255.0).round_().byte().permute(1, 2, 0).numpy()  # (H', W', C)
    c = arr.shape[2]
    if row_labels:
        from PIL import Image, ImageDraw

        rows = -(-len(images) // nrow)
        if len(row_labels) != rows:
            raise WganError(f"{len(row_labels)} row labels for {rows} rows")
        width = min(160, _text_width(row_labels) + 2 * _MARGIN)
        side = Image.new("L", (width, arr.shape[0]), 255)
        draw, font = ImageDraw.Draw(side), _font()
        pitch = (arr.shape[0] - 2 * scale) / rows  # the grid's rows, padding included
        for i, label in enumerate(row_labels):
            y = 2 * scale + i * pitch + pitch / 2 - 7
            draw.text((_MARGIN, y), _fit(label, width - 2 * _MARGIN), fill=0, font=font)
        side_arr = np.repeat(np.asarray(side)[:, :, None], c, axis=2)
        arr = np.concatenate([side_arr, arr], axis=1)
    if header:
        arr = np.concatenate([_band(header, arr.shape[1], c), arr], axis=0)
    return arr


def save_panels(panels: list[np.ndarray], path: str | Path, title: str | None = None) -> Path:
    """Write ``panels`` (``(H, W, C)`` uint8 arrays, e.g. :func:`labelled_grid`) side by side,
    top-aligned on white with a gap between them, under ``title``, as a PNG. Returns the path."""
    from PIL import Image

    if not panels:
        raise WganError("save_panels needs at least one panel")
    c = max(p.shape[2] for p in panels)
    height = max(p.shape[0] for p in panels)
    gap = np.full((height, 12, c), 255, dtype=np.uint8)
    parts: list[np.ndarray] = []
    for i, p in enumerate(panels):
        p = np.repeat(p, c // p.shape[2], axis=2) if p.shape[2] != c else p
        pad = np.full((height - p.shape[0], p.shape[1], c), 255, dtype=np.uint8)
        parts += ([gap] if i else []) + [np.concatenate([p, pad], axis=0)]
    arr = np.concatenate(parts, axis=1)
    if title:
        arr = np.concatenate([_band(title, arr.shape[1], c), arr], axis=0)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(np.ascontiguousarray(arr[:, :, 0] if c == 1 else arr))
    img.save(path, format="PNG")
    return path
