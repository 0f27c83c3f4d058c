"""What a run's data decides in its config: an image folder's size, colour and classes, and
whether ``conditional.mode=auto`` conditions on classes.

A run's config records these once they are known (like a text run's vocabulary), so that its
``config.yaml``, every checkpoint, ``wgan eval`` and ``wgan sample`` see the same shape and the
same class names however the folder changes later:

* ``data.resolution`` and ``data.channels`` of an image folder, when unset: the most common
  image side rounded to a supported power of two, and RGB if any file is stored in colour
  (:class:`wgan.data.image_files.FolderScan`);
* ``data.classes``: the folder's class sub-folders in label order. A run whose config already
  lists classes refuses a folder whose sub-folders differ, since its labels would then mean
  other classes;
* ``data.attributes``: the attribute layout of attribute data (shapes, celeba, a folder with
  ``data.attribute_file``; :meth:`wgan.data.attributes.AttributeSchema.to_spec`). A run whose
  config already holds one refuses data whose attributes differ (its conditions would mean
  other attributes); the attribute file is read and checked before the run starts;
* ``conditional.mode=auto`` becomes ``concat`` (G(c, z) and D(c, x), Mirza & Osindero 2014) when
  the data has two classes or more or attribute vectors, else ``none``. The critic then scores
  (class, image) pairs, so a generator that draws another class for a label is told apart from
  the data; with an auxiliary classifier instead (``acgan``, the WGAN-GP paper's model,
  generator weight 0.1), the preset ``images-wgan-gp`` drew each class well but for a permuted
  label after 2,000 steps on three coloured shapes (conditional accuracy 0.33, against 0.98 with
  ``concat`` at step 400).

:func:`adopt_data` fills them from the file headers before a run exists (``wgan train``, its
``--dry-run``, :func:`wgan.training.train.train`) and from the loaded dataset when a run is built
(:class:`wgan.training.run.Run`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wgan.config import Config
from wgan.data.attribute_files import (
    CELEBA_ATTR_FILE,
    read_attribute_csv,
    read_celeba_attributes,
)
from wgan.data.image_files import FolderScan, scan_image_files, scan_image_folder
from wgan.data.shapes import SHAPES_SPEC
from wgan.errors import DataError

__all__ = ["adopt_data", "folder_summary", "old_folder_defaults"]


def _record(cfg: Config, key: str, values: tuple[str, ...] | None, where: str, what: str) -> None:
    """Record ``values`` as ``data.<key>`` (``classes``: the class sub-folders in label order;
    ``attributes``: the attribute layout), or refuse values that differ from those recorded:
    the run's labels or conditions would then mean other things."""
    if values is None:
        return
    recorded = getattr(cfg.data, key)
    if recorded is None:
        setattr(cfg.data, key, values)
    elif tuple(recorded) != values:
        raise DataError(
            f"{where}: its {what} are {', '.join(values)}, but this config's data.{key} (those "
            f"the run was trained on) are {', '.join(recorded)}; the run's conditions would mean "
            "other things: restore the data, or start a new run"
        )


def _check_classes(cfg: Config, names: tuple[str, ...] | None, where: str) -> None:
    """Record ``names`` as ``data.classes``, or refuse names that differ from those recorded."""
    _record(cfg, "classes", names, where, "class sub-folders")


def _check_attributes(cfg: Config, spec: tuple[str, ...] | None, where: str) -> None:
    """Record ``spec`` as ``data.attributes``, or refuse one that differs from that recorded."""
    _record(cfg, "attributes", spec, where, "attributes")


def _resolve_auto(cfg: Config, n_classes: int, attributes: bool = False) -> None:
    if cfg.conditional.mode == "auto":
        cfg.conditional.mode = "concat" if n_classes >= 2 or attributes else "none"


def _adopt_attribute_files(cfg: Config) -> FolderScan | None:
    """Before a run: the attribute layout of shapes and of attribute files (read and checked
    whole), and a CSV folder's size and colour from the files it lists (returned, a scan)."""
    data = cfg.data
    if data.name == "shapes":
        _check_attributes(cfg, SHAPES_SPEC, "shapes")
        _resolve_auto(cfg, 0, attributes=True)
        return None
    if not data.path:
        return None
    path = Path(data.path).expanduser()
    n = data.n_train
    if data.name == "celeba":
        table = read_celeba_attributes(path / CELEBA_ATTR_FILE, n)
        scan = None
    else:  # a folder with data.attribute_file
        table = read_attribute_csv(Path(str(data.attribute_file)).expanduser(), n)
        scan = scan_image_files(path, table.paths(path))
        data.resolution = scan.resolution if data.resolution is None else data.resolution
        data.channels = scan.channels if data.channels is None else data.channels
    _check_attributes(cfg, table.schema.to_spec(), str(table.source))
    _resolve_auto(cfg, 0, attributes=True)
    return scan


def adopt_data(cfg: Config, dataset: Any = None) -> FolderScan | None:
    """Fill in, in place, what ``cfg``'s data decides (see the module docstring).

    With ``dataset`` (the run's loaded data) the values come from it; without, an image folder's
    file headers are read (:func:`wgan.data.image_files.scan_image_folder`; no pixel decoded)
    and the scan is returned, for a summary; otherwise None. ``conditional.mode=auto`` stays
    unresolved only for data other than a folder when no ``dataset`` is given.

    Raises:
        DataError: an unreadable folder, or class sub-folders that differ from ``data.classes``.
    """
    data = cfg.data
    if dataset is not None:
        if data.name == "folder" and getattr(dataset, "is_image", False):
            data.resolution = (
                int(dataset.resolution) if data.resolution is None else data.resolution
            )
            data.channels = int(dataset.channels) if data.channels is None else data.channels
        names = getattr(dataset, "class_names", None)
        _check_classes(cfg, tuple(names) if names else None, f"{data.path or data.name}")
        schema = getattr(dataset, "attribute_schema", None)
        spec = None if schema is None else schema.to_spec()
        _check_attributes(cfg, spec, f"{data.path or data.name}")
        _resolve_auto(cfg, int(getattr(dataset, "n_classes", 0) or 0), schema is not None)
        return None
    if data.name in ("shapes", "celeba") or (data.name == "folder" and data.attribute_file):
        return _adopt_attribute_files(cfg)
    if data.name != "folder" or not data.path:
        return None
    known = None not in (data.resolution, data.channels, data.classes)
    if known and cfg.conditional.mode != "auto":  # nothing left to read (the run checks classes)
        return None
    scan = scan_image_folder(data.path)
    data.resolution = scan.resolution if data.resolution is None else data.resolution
    data.channels = scan.channels if data.channels is None else data.channels
    _check_classes(cfg, scan.class_names, str(scan.path))
    _resolve_auto(cfg, len(scan.class_names or ()))
    return scan


def old_folder_defaults(cfg: Config) -> Config:
    """A stored config of an image-folder run made before folders took their shape from their
    files: an unset ``data.resolution`` was 64 and an unset ``data.channels`` 3 (RGB). Every
    run made since records both (:func:`adopt_data`), so this changes only older runs."""
    if cfg.data.name == "folder":
        cfg.data.resolution = 64 if cfg.data.resolution is None else cfg.data.resolution
        cfg.data.channels = 3 if cfg.data.channels is None else cfg.data.channels
    return cfg


def folder_summary(scan: FolderScan, cfg: Config, most: int = 20) -> str:
    """One line on what a folder's files decided: ``data: DIR: 600 images, read at 32x32 RGB
    (most common size 32 px), 3 classes (label name): 0 circles, 1 squares, 2 triangles``
    (unescaped: the caller prints it with :func:`wgan.store.printable.printable`)."""
    c, r = cfg.data.channels, cfg.data.resolution
    colour = "RGB" if c == 3 else "grayscale"
    line = (
        f"data: {scan.path}: {scan.n_images:,} images, read at {r}x{r} {colour} "
        f"(most common size {scan.common_side} px, {'colour' if scan.colour else 'grayscale'} "
        "files)"
    )
    names = scan.class_names
    attrs = cfg.data.attributes
    if not names and attrs:
        more = f", ... ({len(attrs) - most} more)" if len(attrs) > most else ""
        return f"{line}, {len(attrs)} attributes: {', '.join(attrs[:most])}{more}"
    if not names:
        return line + ", no class sub-folders"
    shown = ", ".join(f"{i} {name}" for i, name in enumerate(names[:most]))
    more = f", ... ({len(names) - most} more)" if len(names) > most else ""
    return f"{line}, {len(names)} classes (label name): {shown}{more}"
