"""The embedded coloured-shapes dataset: 16x16 RGB images with an attribute vector each.

Each image holds one shape, drawn in code (nothing is read from disk), described by four
attributes, 3 x 4 x 2 x 2 = 48 combinations:

* shape in {circle, square, triangle} (a one-hot group),
* colour in {red, green, blue, yellow} (a one-hot group; pure, saturated colours),
* size: large (an 11-pixel box) or small (a 7-pixel box) (the flag ``large``),
* filled: solid, or an outline one pixel wide (the flag ``filled``),

on a black background, moved by a uniform jitter of up to 2 pixels either way around the
centre (always inside the frame). The attribute vector c in {0, 1}^9 has the columns circle,
square, triangle, red, green, blue, yellow, large, filled (:data:`SHAPES_SCHEMA`): several
attributes true at once, the "red hair, green eyes" setting of a conditional GAN (Mirza &
Osindero 2014) on which the attributes can also be read back off the pixels exactly
(:func:`read_shape_attributes`).

Pixels are bytes: 0 (channel off) or 255 (channel on), i.e. -1 and 1 once an
:class:`~wgan.data.images.ImageDataset` converts them (``b / 127.5 - 1``). A set of ``n``
images is a pure function of ``(n, seed)``: combination ``i mod 48`` for image ``i`` then
shuffled (so all 48 combinations are equally frequent, to within one image) and the positions
drawn from the same private generator, independent of the training seed.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from wgan.data.attributes import AttributeSchema
from wgan.data.images import ImageDataset
from wgan.errors import ConfigError, WganError

__all__ = [
    "COLOURS",
    "SHAPES",
    "SHAPES_N_DEFAULT",
    "SHAPES_SCHEMA",
    "SHAPES_SPEC",
    "make_shapes",
    "read_shape_attributes",
    "render_shapes",
]

SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
COLOURS: tuple[str, ...] = ("red", "green", "blue", "yellow")
#: The schema's strings as stored in a run's config (``data.attributes``).
SHAPES_SPEC: tuple[str, ...] = (
    "shape:circle|square|triangle",
    "colour:red|green|blue|yellow",
    "large/small",
    "filled/outline",
)
SHAPES_SCHEMA = AttributeSchema.from_spec(SHAPES_SPEC)
SHAPES_N_DEFAULT = 12_000  # images in the set when data.n_train is unset (250 per combination)

SIDE = 16  # image side in pixels
_BOX = (7, 11)  # the shape's box side: index 0 small, 1 large
_JITTER = 2  # the box moves by -2..2 pixels in each direction around the centre
_RGB = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]], dtype=torch.uint8)  # (4, 3)


def _solid(shape: int, box: int) -> Tensor:
    """(box, box) bool: the solid shape, by pixel centres (u, v) in (0, 1)^2 of its box."""
    t = (torch.arange(box, dtype=torch.float64) + 0.5) / box
    v, u = torch.meshgrid(t, t, indexing="ij")  # v: down, u: across
    eps = 1e-9  # pixel centres exactly on an edge belong to the shape
    if shape == 0:  # circle inscribed in the box
        return (u - 0.5) ** 2 + (v - 0.5) ** 2 <= 0.25 + eps
    if shape == 1:  # square: the whole box
        return torch.ones(box, box, dtype=torch.bool)
    return (u - 0.5).abs() <= v / 2 + eps  # triangle: apex at the top centre, base at the bottom


def _outline(mask: Tensor) -> Tensor:
    """The pixels of ``mask`` (h, w) with a 4-neighbour outside it (off the box counts): a
    line one pixel wide, 8-connected."""
    m = torch.nn.functional.pad(mask, (1, 1, 1, 1))  # (h + 2, w + 2), False around
    interior = m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]  # all 4 neighbours in
    return mask & ~interior


@functools.cache
def _templates() -> Tensor:
    """(3, 2, 2, 5, 5, 16, 16) bool: every mask the set can hold, indexed by shape, large,
    filled, row offset and column offset (offsets 0..4 mean -2..2 around the centre)."""
    n_off = 2 * _JITTER + 1
    out = torch.zeros(3, 2, 2, n_off, n_off, SIDE, SIDE, dtype=torch.bool)
    for s in range(3):
        for z, box in enumerate(_BOX):
            solid = _solid(s, box)
            for f, mask in enumerate((_outline(solid), solid)):
                base = (SIDE - box) // 2 - _JITTER  # top-left at offset 0
                for dy in range(n_off):
                    for dx in range(n_off):
                        y, x = base + dy, base + dx
                        out[s, z, f, dy, dx, y : y + box, x : x + box] = mask
    return out


def render_shapes(
    shape: Tensor, colour: Tensor, large: Tensor, filled: Tensor, dy: Tensor, dx: Tensor
) -> Tensor:
    """(N, 3, 16, 16) uint8 images (0 or 255) of the given (N,) int64 attribute indices.

    ``shape`` in 0..2 (:data:`SHAPES`), ``colour`` in 0..3 (:data:`COLOURS`), ``large`` and
    ``filled`` in {0, 1}, ``dy`` and ``dx`` in -2..2 (the jitter, pixels).
    """
    masks = _templates()[shape, large, filled, dy + _JITTER, dx + _JITTER]  # (N, 16, 16)
    rgb = _RGB[colour]  # (N, 3)
    return masks[:, None].to(torch.uint8) * (rgb[:, :, None, None] * 255)  # (N, 3, 16, 16)


def _vectors(shape: Tensor, colour: Tensor, large: Tensor, filled: Tensor) -> Tensor:
    """(N, 9) float32 attribute vectors in :data:`SHAPES_SCHEMA`'s column order."""
    f = torch.nn.functional.one_hot
    parts = [f(shape, 3), f(colour, 4), large[:, None], filled[:, None]]
    return torch.cat(parts, dim=1).to(torch.float32)


def make_shapes(n: int | None = None, seed: int = 0, resolution: int | None = None) -> ImageDataset:
    """The coloured-shapes set: ``n`` images (default :data:`SHAPES_N_DEFAULT`) from ``seed``.

    Combination ``i mod 48`` goes to image ``i``, then a permutation and the jitter are drawn
    from ``torch.Generator().manual_seed(seed)``: the same ``(n, seed)`` gives the same images
    on every machine, and each combination has ``n // 48`` or ``n // 48 + 1`` images.
    ``resolution`` (default 16) resizes batches as they are drawn (the bytes stay 16x16).
    """
    n = SHAPES_N_DEFAULT if n is None else n
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"shapes: the number of images must be an integer >= 1, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"shapes: data.seed must be an integer >= 0, got {seed!r}")
    g = torch.Generator().manual_seed(seed)
    combo = torch.arange(n)[torch.randperm(n, generator=g)] % 48  # (N,)
    # combo = ((shape * 4 + colour) * 2 + large) * 2 + filled
    filled, large = combo % 2, combo // 2 % 2
    colour, shape = combo // 4 % 4, combo // 16
    dy, dx = torch.randint(-_JITTER, _JITTER + 1, (2, n), generator=g)
    images = render_shapes(shape, colour, large, filled, dy, dx)
    return ImageDataset(
        images,
        name="shapes",
        source=f"generated (seed {seed})",
        resolution=resolution,
        attributes=_vectors(shape, colour, large, filled),
        attribute_schema=SHAPES_SCHEMA,
    )


def read_shape_attributes(images: Tensor) -> Tensor:
    """The attributes of shapes images read off their pixels: (N, 3, 16, 16) in [-1, 1] ->
    (N, 9) float32 in :data:`SHAPES_SCHEMA`'s columns.

    The rule (nearest template; exact on every image :func:`make_shapes` draws):

    1. foreground strength f = clip((max_channel(x) + 1) / 2, 0, 1) per pixel (1 on a shape
       pixel of any of the four colours, 0 on the black background);
    2. shape, size, filled and position: the template T (one of the 3 x 2 x 2 x 25 binary masks
       the set can hold, :func:`render_shapes`) nearest in squared distance sum (f - T)^2.
       A real image matches its own mask at distance 0 (the 300 masks are distinct); a
       blurred or noisy one takes the mask it is closest to pixel by pixel;
    3. colour: the mean channel levels (x + 1) / 2 over T's pixels, divided by their largest
       (so a dim or blurred shape keeps its hue), then the nearest (Euclidean) of red
       (1, 0, 0), green (0, 1, 0), blue (0, 0, 1) and yellow (1, 1, 0).

    An image with no foreground at all reads as the nearest mask with the fewest pixels (a
    small outline). Works in chunks on the images' device.
    """
    if not isinstance(images, Tensor) or images.ndim != 4 or tuple(images.shape[1:]) != (3, 16, 16):
        got = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise WganError(f"read_shape_attributes takes (N, 3, 16, 16) images, got {got}")
    dev = images.device
    table = _templates().reshape(-1, SIDE * SIDE).to(dev, torch.float32)  # (300, 256)
    sq = table.sum(1)  # (300,): |T|^2 = the template's pixel count
    palette = _RGB.to(dev, torch.float32)  # (4, 3): the channels on, in {0, 1}
    grid = (3, 2, 2, (2 * _JITTER + 1) ** 2)  # the template index as shape, large, filled, pos
    out = []
    for x in images.split(4096):
        x = x.to(torch.float32)
        f = ((x.amax(1) + 1) / 2).clamp(0, 1).reshape(len(x), -1)  # (b, 256)
        # sum (f - T)^2 = |f|^2 - 2 f.T + |T|^2; |f|^2 does not change the argmin
        best = (sq[None] - 2 * f @ table.T).argmin(1)  # (b,)
        mask = table[best]  # (b, 256)
        on = ((x + 1) / 2).clamp(0, 1).reshape(len(x), 3, -1)  # (b, 3, 256) channel levels
        mean = (on * mask[:, None]).sum(2) / mask.sum(1, keepdim=True)  # (b, 3)
        # scaled so its strongest channel is 1: a dim or blurred shape keeps its hue
        hue = mean / mean.amax(1, keepdim=True).clamp_min(1e-6)
        colour = torch.cdist(hue, palette).argmin(1)  # (b,)
        s, z, fl, _ = torch.unravel_index(best, grid)
        out.append(_vectors(s, colour, z, fl))
    return torch.cat(out) if out else torch.zeros(0, SHAPES_SCHEMA.dim)
