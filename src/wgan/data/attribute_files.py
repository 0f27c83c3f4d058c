"""Attribute-labelled images from the user's files: the CelebA layout, or a folder and a CSV.

Two layouts, each giving an :class:`~wgan.data.images.ImageDataset` whose ``attributes`` are
(N, k) binary flags (:meth:`wgan.data.attributes.AttributeSchema.flags`, one column per named
attribute):

* **CelebA** (Liu et al. 2015, "Deep Learning Face Attributes in the Wild"): a directory with
  ``img_align_celeba/`` (the aligned JPEG/PNG faces) and ``list_attr_celeba.txt``: line 1 the
  number of images, line 2 the attribute names (40 in CelebA), then one line per image,
  ``filename v1 ... vk`` with values 1 (has the attribute) or -1, separated by whitespace.
  Each image is centre-cropped to ``crop`` x ``crop`` pixels (default 140, the usual crop of
  the 178x218 aligned faces) and resized to ``resolution`` (default 64), in RGB.
* **A folder and a CSV**: ``filename,attr1,attr2,...`` on the first line, then one row per
  image with 0/1 values; each filename is a path under the folder. Images are read like an
  image folder's (:mod:`wgan.data.image_files`): size and colour default to what the listed
  files say.

The attribute file is read whole and checked line by line before any image is read: a missing
or empty file, a malformed header, a row with the wrong number of values, a value other than
1/-1 (CelebA) or 0/1 (CSV), a filename listed twice, a listed image that is not there, or (CelebA)
a count on line 1 that the rows do not match is one :class:`~wgan.errors.DataError` naming the
file, the line and what was wrong (text from the file escaped,
:func:`wgan.store.printable.printable`). ``n`` keeps the first ``n`` rows (only their images are
looked up and read). Pixels stay bytes (N, C, R, R) uint8; a set larger than the memory available
now is refused before any image is read (:func:`wgan.store.memory.available_memory`).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from wgan.data.attributes import AttributeSchema
from wgan.data.image_files import read_image_files, scan_image_files
from wgan.data.images import ImageDataset, check_resolution
from wgan.errors import ConfigError, DataError
from wgan.store import memory
from wgan.store.printable import printable

__all__ = [
    "CELEBA_ATTR_FILE",
    "CELEBA_CROP",
    "CELEBA_IMAGES",
    "CELEBA_RESOLUTION",
    "AttributeTable",
    "load_attribute_folder",
    "load_celeba",
    "read_attribute_csv",
    "read_celeba_attributes",
]

CELEBA_ATTR_FILE = "list_attr_celeba.txt"
CELEBA_IMAGES = "img_align_celeba"
CELEBA_CROP = 140  # side of the centre crop of the 178x218 aligned faces
CELEBA_RESOLUTION = 64
_BAD_NAME = set(",:|/=")  # characters the schema's spec strings and --attrs requests use
_PLUS_MINUS = frozenset(("1", "-1"))


def _q(text: str) -> str:
    """A string from a file, quoted and escaped for a message."""
    return f"'{printable(text, 80)}'"


@dataclass(frozen=True)
class AttributeTable:
    """An attribute file's contents (its first ``n`` rows when capped).

    Attributes:
        source: the attribute file.
        names: the k attribute names, in column order.
        files: the image filenames, as listed.
        lines: the line of the file each row is on (1-based).
        values: (N, k) uint8 in {0, 1}.
    """

    source: Path
    names: tuple[str, ...]
    files: tuple[str, ...]
    lines: tuple[int, ...]
    values: np.ndarray

    @property
    def schema(self) -> AttributeSchema:
        """One flag per attribute name."""
        return AttributeSchema.flags(self.names)

    def paths(self, image_dir: Path) -> list[Path]:
        """The image file of each row under ``image_dir``; a filename that leaves the folder
        or names no file is refused with its line."""
        out = []
        for name, line in zip(self.files, self.lines, strict=True):
            rel = PurePosixPath(name)
            if rel.is_absolute() or ".." in rel.parts:
                raise self.error(line, f"filename {_q(name)} is not a path inside {image_dir}")
            path = image_dir / rel
            if not path.is_file():
                raise self.error(line, f"image {_q(name)} not found in {image_dir}")
            out.append(path)
        return out

    def error(self, line: int, what: str) -> DataError:
        return _error(self.source, line, what)


def _error(path: Path, line: int, what: str) -> DataError:
    return DataError(f"{printable(path)}: line {line}: {what}")


def _lines(path: Path) -> list[str]:
    """The file's lines (without their ends), each decoded as UTF-8."""
    if not path.is_file():
        what = "not a file" if path.exists() else "no such file"
        raise DataError(f"{printable(path)}: {what} (the attribute file)")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{printable(path)}: cannot be read ({exc.strerror or exc})") from None
    if not data.strip():
        raise DataError(f"{printable(path)}: line 1: empty file (expected attribute names)")
    out = []
    for i, raw in enumerate(data.split(b"\n"), start=1):
        try:
            out.append(raw.decode("utf-8-sig" if i == 1 else "utf-8").rstrip("\r"))
        except UnicodeDecodeError:
            raise _error(path, i, "not UTF-8 text") from None
    return out


def _check_names(path: Path, line: int, names: list[str]) -> tuple[str, ...]:
    """Attribute names that a schema and an ``--attrs`` request can hold, all distinct."""
    if not names:
        raise _error(path, line, "no attribute names")
    seen: dict[str, str] = {}
    for name in names:
        if not name or set(name) & _BAD_NAME or not name.isprintable():
            what = f"attribute name {_q(name)} is empty or holds one of , : | / ="
            raise _error(path, line, what)
        if name.lower() in seen:
            raise _error(path, line, f"attribute {_q(name)} is named twice (names ignore case)")
        seen[name.lower()] = name
    return tuple(names)


class _Rows:
    """Collects the rows of an attribute file: duplicate filenames refused, the first ``n``
    kept."""

    def __init__(self, path: Path, names: tuple[str, ...], n: int | None) -> None:
        self.path, self.names, self.n = path, names, n
        self.first: dict[str, int] = {}  # filename -> line it is first listed on
        self.files: list[str] = []
        self.lines: list[int] = []
        self.values: list[list[int]] = []

    def add(self, line: int, name: str, values: list[bool] | list[int]) -> None:
        if not name:
            raise _error(self.path, line, "empty filename")
        if name in self.first:
            raise _error(
                self.path, line, f"{_q(name)} is listed again (first on line {self.first[name]})"
            )
        self.first[name] = line
        if self.n is None or len(self.files) < self.n:
            self.files.append(name)
            self.lines.append(line)
            self.values.append(values)

    def table(self) -> AttributeTable:
        if not self.first:
            raise _error(self.path, 2, "no image rows after the header")
        vals = np.asarray(self.values, dtype=np.uint8).reshape(len(self.files), len(self.names))
        return AttributeTable(self.path, self.names, tuple(self.files), tuple(self.lines), vals)


def _check_n(n: int | None) -> int | None:
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ConfigError(f"data.n_train must be an integer >= 1, got {n!r}")
    return n


def read_celeba_attributes(path: str | Path, n: int | None = None) -> AttributeTable:
    """CelebA's ``list_attr_celeba.txt`` (the module docstring's layout), every line checked;
    values 1 -> 1 and -1 -> 0. ``n`` keeps the first ``n`` rows."""
    path, n = Path(path), _check_n(n)
    lines = _lines(path)
    head = lines[0].split()
    if len(head) != 1 or not head[0].isdigit() or int(head[0]) < 1:
        raise _error(path, 1, f"expected the number of images, got {_q(lines[0].strip())}")
    declared = int(head[0])
    if len(lines) < 2 or not lines[1].split():
        raise _error(path, 2, "expected the attribute names (5_o_Clock_Shadow Arched_Eyebrows ...)")
    names = _check_names(path, 2, lines[1].split())
    k = len(names)
    rows = _Rows(path, names, n)
    last = 2
    for i, text in enumerate(lines[2:], start=3):
        tokens = text.split()
        if not tokens:
            continue  # blank lines (the file's final newline) are not rows
        last = i
        if len(rows.first) == declared:
            raise _error(path, i, f"more image rows than the {declared} line 1 declares")
        if len(tokens) != k + 1:
            raise _error(
                path,
                i,
                f"{len(tokens) - 1} values for the {k} attributes of line 2 (expected "
                "a filename then one value per attribute)",
            )
        if not _PLUS_MINUS.issuperset(tokens[1:]):  # (one set test per row: 200,000 rows)
            bad = next(j for j, t in enumerate(tokens[1:]) if t not in _PLUS_MINUS)
            raise _error(path, i, f"value {_q(tokens[bad + 1])} of {_q(names[bad])} is not 1 or -1")
        rows.add(i, tokens[0], [t == "1" for t in tokens[1:]])
    if len(rows.first) < declared:
        raise _error(
            path,
            last,
            f"the file ends after {len(rows.first)} of the {declared} images line 1 "
            "declares (a partial file?)",
        )
    return rows.table()


def read_attribute_csv(path: str | Path, n: int | None = None) -> AttributeTable:
    """A CSV ``filename,attr1,...,attrk`` with 0/1 values, every line checked. ``n`` keeps
    the first ``n`` rows."""
    path, n = Path(path), _check_n(n)
    lines = _lines(path)
    reader = csv.reader(lines)
    try:
        header = [h.strip() for h in next(reader)]
        if not header or header[0].lower() != "filename":
            got = _q(lines[0][:60])
            raise _error(path, 1, f"expected the header filename,attr1,attr2,... got {got}")
        names = _check_names(path, 1, header[1:])
        k = len(names)
        rows = _Rows(path, names, n)
        for row in reader:
            i = reader.line_num
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != k + 1:
                raise _error(
                    path,
                    i,
                    f"{len(row) - 1} values for the {k} attributes of the header "
                    "(expected a filename then one 0/1 value per attribute)",
                )
            values = []
            for name, cell in zip(names, row[1:], strict=True):
                if cell.strip() not in ("0", "1"):
                    raise _error(path, i, f"value {_q(cell)} of {_q(name)} is not 0 or 1")
                values.append(int(cell.strip()))
            rows.add(i, row[0].strip(), values)
    except csv.Error as exc:
        raise _error(path, reader.line_num, f"malformed CSV ({exc})") from None
    return rows.table()


def _check_memory(where: Path, n: int, resolution: int, channels: int) -> None:
    """Refuse, before reading, a set of bytes larger than the memory available now."""
    need = n * resolution * resolution * channels
    free = memory.available_memory()
    if free is not None and need > free:
        raise DataError(
            f"{printable(where)}: {n:,} images at {resolution}x{resolution}x{channels} need "
            f"{memory.format_bytes(need)}, more than the {memory.format_bytes(free)} of memory "
            "available now; read fewer with data.n_train"
        )


def load_celeba(
    directory: str | Path,
    resolution: int | None = None,
    crop: int | None = None,
    n: int | None = None,
) -> ImageDataset:
    """CelebA (Liu et al. 2015) from ``directory`` (``img_align_celeba/`` and
    ``list_attr_celeba.txt``): the first ``n`` images of the list (all when None), each
    centre-cropped to ``crop`` (default 140) and resized to ``resolution`` (default 64), RGB,
    with the 40 attributes as flags."""
    directory = Path(directory).expanduser()
    res = CELEBA_RESOLUTION if resolution is None else check_resolution(resolution)
    crop = CELEBA_CROP if crop is None else crop
    if isinstance(crop, bool) or not isinstance(crop, int) or crop < 1:
        raise ConfigError(f"data.crop must be an integer >= 1, got {crop!r}")
    if not directory.is_dir():
        raise DataError(f"{printable(directory)}: not a directory (expected the CelebA folder)")
    table = read_celeba_attributes(directory / CELEBA_ATTR_FILE, n)
    image_dir = directory / CELEBA_IMAGES
    if not image_dir.is_dir():
        raise DataError(f"{printable(image_dir)}: no such directory (CelebA's aligned images)")
    files = table.paths(image_dir)
    _check_memory(directory, len(files), res, 3)
    return ImageDataset(
        read_image_files(files, res, 3, crop),
        name="celeba",
        source=str(directory),
        attributes=torch.from_numpy(table.values).float(),
        attribute_schema=table.schema,
    )


def load_attribute_folder(
    directory: str | Path,
    attribute_file: str | Path,
    resolution: int | None = None,
    channels: int | None = None,
    n: int | None = None,
) -> ImageDataset:
    """The images a CSV ``attribute_file`` lists under ``directory``, with its 0/1 attributes.

    ``resolution`` and ``channels`` default to what the listed files say
    (:func:`wgan.data.image_files.scan_image_files`); images are centre-cropped to a square
    and resized like an image folder's."""
    directory = Path(directory).expanduser()
    if not directory.is_dir():
        raise DataError(f"{printable(directory)}: not a directory (expected a folder of images)")
    table = read_attribute_csv(Path(attribute_file).expanduser(), n)
    files = table.paths(directory)
    if resolution is not None:
        resolution = check_resolution(resolution)
    if channels is not None and (isinstance(channels, bool) or channels not in (1, 3)):
        raise ConfigError(f"data.channels must be 1 or 3, got {channels!r}")
    if resolution is None or channels is None:
        scan = scan_image_files(directory, files)
        resolution = scan.resolution if resolution is None else resolution
        channels = scan.channels if channels is None else channels
    _check_memory(directory, len(files), resolution, channels)
    return ImageDataset(
        read_image_files(files, resolution, channels),
        name="folder",
        source=str(directory),
        attributes=torch.from_numpy(table.values).float(),
        attribute_schema=table.schema,
    )
