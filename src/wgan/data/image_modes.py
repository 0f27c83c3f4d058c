"""Every image mode Pillow opens, as 8-bit grayscale ``L`` or colour ``RGB``.

Pillow's ``convert`` is right between its 8-bit modes but not for the others: it clips 16- and
32-bit grayscale (``I;16``, ``I``) and float (``F``) images to 0..255 instead of scaling them
(a 16-bit image of mid grey 32768 comes out white), and it drops an alpha channel, so what shows
through a transparent pixel is whatever colour happens to be stored under it. Here each family of
modes has one rule (``v`` a stored value):

* 16-bit grayscale ``I;16``, ``I;16L``, ``I;16B``, ``I;16N``: ``round(v * 255 / 65535)``
  (65535 -> 255, 32768 -> 128, 257 -> 1).
* ``I`` (32-bit signed integers): Pillow's mode for 16-bit PGM/PPM files (which it scales to
  0..65535 whatever their maxval) and for integer TIFFs; read as 16-bit, as above. A value
  outside 0..65535 is refused (:class:`wgan.errors.DataError`), not clipped.
* ``F`` (32-bit float): the usual range of float images, 0.0 (black) to 1.0 (white):
  ``round(v * 255)``. NaN, inf or a value outside [0, 1] is refused, not clipped.
* ``1`` (bilevel): 0 -> 0, 1 -> 255.
* Anything with alpha (``RGBA``, premultiplied ``RGBa``, ``LA``, ``La``, ``PA``, and a palette,
  grayscale or RGB image with a ``transparency`` entry, e.g. a PNG ``tRNS`` chunk) is composited
  over an opaque :data:`ALPHA_BACKGROUND` (white) with the "over" operator of Porter and Duff
  (1984, "Compositing Digital Images", SIGGRAPH): ``round((c * a + bg * (255 - a)) / 255)``
  per channel, on the stored (gamma-encoded) values, as the W3C's Compositing and Blending
  Level 1 specifies for browsers. A fully transparent pixel is white, an opaque one unchanged.
* ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``, ``RGBX`` and palettes: Pillow's conversion to RGB
  (CMYK without an ICC profile: ``R = 255 - C`` scaled by ``1 - K / 255``).

Colour becomes grayscale (``mode="L"``) with Pillow's ITU-R BT.601 luma
``L = (299 R + 587 G + 114 B) / 1000``, which leaves a grey ``(v, v, v)`` at ``v``; grayscale
becomes colour by repeating it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from wgan.errors import DataError

__all__ = ["ALPHA_BACKGROUND", "to_8bit"]

#: The grey level (0..255, here white) a transparent pixel shows: images with alpha are
#: composited over an opaque background of this value in every channel.
ALPHA_BACKGROUND = 255

_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")
_WIDE = (*_SIXTEEN_BIT, "I", "F")


def _wide_to_bytes(img: Any, where: str) -> np.ndarray:
    """A 16-bit, 32-bit integer or float grayscale image as ``(H, W)`` uint8 (rules above)."""
    arr = np.asarray(img)  # (H, W): uint16 (either byte order), int32 or float32
    if img.mode == "F":
        values = arr.astype(np.float64)
        if values.size and not (
            np.isfinite(values).all() and 0 <= values.min() <= values.max() <= 1
        ):
            lo, hi = np.nanmin(values), np.nanmax(values)
            raise DataError(
                f"{where}: a float (mode F) image must hold values in [0, 1] (0 black, 1 white), "
                f"found [{lo:g}, {hi:g}]{' and NaN' if np.isnan(values).any() else ''}; rescale it"
            )
        return np.rint(values * 255).astype(np.uint8)
    values = arr.astype(np.int64)
    if values.size and (values.min() < 0 or values.max() > 65535):
        raise DataError(
            f"{where}: a 32-bit integer (mode I) image is read as 16-bit (0..65535), found values "
            f"in [{values.min()}, {values.max()}]; rescale it to 16 bits"
        )
    return ((values * 255 + 32767) // 65535).astype(np.uint8)  # round(v / 257), never a tie


def _has_alpha(img: Any) -> bool:
    bands = img.getbands()
    return "A" in bands or "a" in bands or "transparency" in img.info


def _over_background(img: Any) -> np.ndarray:
    """An image with alpha as ``(H, W, 3)`` uint8, composited over :data:`ALPHA_BACKGROUND`."""
    rgba = np.asarray(img.convert("RGBA")).astype(np.int32)  # (H, W, 4), straight alpha
    colour, alpha = rgba[..., :3], rgba[..., 3:]
    out = (colour * alpha + ALPHA_BACKGROUND * (255 - alpha) + 127) // 255  # never a tie
    return out.astype(np.uint8)


def to_8bit(img: Any, mode: str, where: str = "image") -> Any:
    """``img`` (a loaded ``PIL.Image.Image`` of any mode) as a new 8-bit image of ``mode``
    (``"L"`` or ``"RGB"``), by the rules of the module docstring.

    Raises:
        DataError: naming ``where``, for values a rule refuses or a mode Pillow cannot convert.
    """
    from PIL import Image

    if mode not in ("L", "RGB"):
        raise ValueError(f"mode must be 'L' or 'RGB', got {mode!r}")
    try:
        if img.mode in _WIDE:
            grey = Image.fromarray(_wide_to_bytes(img, where), "L")
            trns = img.info.get("transparency")
            if isinstance(trns, int) and img.mode != "F":  # one grey value marks transparency
                hole = np.asarray(img).astype(np.int64) == trns  # (H, W)
                alpha = Image.fromarray(np.where(hole, 0, 255).astype(np.uint8), "L")
                grey = Image.merge("LA", (grey, alpha))
            img = grey
        elif img.mode == "La":  # premultiplied: Pillow converts it only to LA
            img = img.convert("LA")
        if _has_alpha(img):
            img = Image.fromarray(_over_background(img), "RGB")
        return img.convert(mode)
    except DataError:
        raise
    except (ValueError, OSError, TypeError) as exc:
        raise DataError(
            f"{where}: cannot convert an image of mode {img.mode!r} to {mode} ({exc})"
        ) from exc
