"""Checking a config's data before any training: what ``wgan train --dry-run`` builds.

:func:`check_data` builds the dataset the config names exactly as a run would (an unknown name
is refused with close matches, a missing or corrupt file with its path) and says in one line
what it holds; nothing is trained, no network is built and nothing is written.
"""

from __future__ import annotations

from typing import Any

from wgan.config import DataConfig
from wgan.data.build import build_dataset, is_image_dataset, is_text_dataset
from wgan.errors import ConfigError

__all__ = ["check_data", "describe_dataset"]


def describe_dataset(dataset: Any) -> str:
    """One line saying what ``dataset`` holds: images and their shape, text sequences and the
    vocabulary, or the toy distribution."""
    name = getattr(dataset, "name", type(dataset).__name__)
    if is_image_dataset(dataset):
        c, h, w = dataset.shape
        classes = int(getattr(dataset, "n_classes", 0) or 0)
        count = f"{len(dataset):,} " if hasattr(dataset, "__len__") else ""
        with_classes = f", {classes} classes" if classes else ""
        schema = getattr(dataset, "attribute_schema", None)
        if schema is not None:  # e.g. ", 9 attributes (shape, colour, large, filled)"
            groups = ", ".join(g.name for g in schema.groups[:8])
            more = ", ..." if len(schema.groups) > 8 else ""
            with_classes += f", {schema.dim} attributes ({groups}{more})"
        removed, combos = getattr(dataset, "held_out", (0, ()))
        if combos:  # each entry is one combination: [green,triangle] holds out two
            with_classes += f"; {removed:,} held out matching {' or '.join(combos)}"
        return f"{name}: {count}images of {c}x{h}x{w}{with_classes}"
    if is_text_dataset(dataset):
        train = getattr(dataset, "train", None)
        count = f"{len(train):,} " if train is not None else ""
        size = dataset.vocab.size
        return f"{name}: {count}sequences of {dataset.seq_len} characters, {size} symbols"
    return f"{name}: {getattr(dataset, 'dim', 2)}-D samples drawn in code"


def check_data(cfg: DataConfig) -> str:
    """Build the dataset ``cfg`` names, as a run would, and describe it in one line.

    Raises what the run would raise before training: :class:`ConfigError` for an unknown
    dataset (naming close matches) or a setting it does not take, :class:`wgan.errors.DataError`
    for a missing, unreadable or corrupt file.
    """
    if not isinstance(cfg, DataConfig):
        raise ConfigError(f"check_data takes a DataConfig (cfg.data), got {type(cfg).__name__}")
    return describe_dataset(build_dataset(cfg))
