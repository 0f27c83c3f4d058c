"""Settings that follow the data a command points at, e.g. a preset made for the digits pointed
at a folder of the user's own images.

* A preset's ``data.resolution`` and ``data.channels`` describe the preset's own data (the digits
  presets: 16x16 grayscale). When the overrides switch ``data.name`` to another dataset and do
  not give them too, they are dropped, so that the new data's own shape applies: an image
  folder is read at the size and colour its files have
  (:func:`wgan.data.image_files.scan_image_folder`), MNIST at 32x32, and so on.
* A run of a preset on an image folder, whose ``name`` was not given, is named after the folder:
  ``<folder>`` for a preset made for folders (``images-wgan-gp``), ``<folder>-<preset>`` for a
  preset made for other data. A YAML file's run keeps its own name (the file's stem by default).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from wgan.config.sections import Config

__all__ = ["SHAPE_KEYS", "DataBefore", "data_before", "folder_run_name", "follow_data"]

SHAPE_KEYS = ("resolution", "channels")
"""The ``data`` keys that describe one dataset's images and do not carry over to another."""


@dataclass(frozen=True)
class DataBefore:
    """The data a config named before its overrides were applied."""

    name: str


def data_before(cfg: Config) -> DataBefore:
    """A note of ``cfg``'s data before the overrides (for :func:`follow_data`)."""
    return DataBefore(cfg.data.name)


def folder_run_name(path: str) -> str:
    """A run name from an image folder's path: its last part, with anything but letters,
    digits, ``.``, ``_`` and ``-`` replaced by ``-`` (``images`` when nothing is left)."""
    name = Path(path).name
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "images"


def follow_data(cfg: Config, before: DataBefore, source: str, given: set[str]) -> Config:
    """Apply the rules of the module docstring to ``cfg`` in place and return it.

    ``before``: the data before the overrides; ``source``: the preset name or YAML path the
    config came from; ``given``: the dotted keys the overrides set. ``data.path`` must already
    be absolute (:func:`wgan.config.absolute_data_path`), so that ``data.path=.`` names the
    folder it is.
    """
    if cfg.data.name != before.name:
        for key in SHAPE_KEYS:
            if f"data.{key}" not in given:
                setattr(cfg.data, key, None)
    from_file = source.endswith((".yaml", ".yml")) or "/" in source
    if from_file or "name" in given or cfg.data.name != "folder" or not cfg.data.path:
        return cfg
    folder = folder_run_name(cfg.data.path)
    cfg.name = folder if before.name == "folder" else f"{folder}-{source}"
    return cfg
