"""What a refused config says next: close matches across sections, the command for a list of
values, and the types the Python API expects.

An unknown key is matched against every key of the config, not only the keys of the section it
names: ``steps=100`` suggests ``train.steps`` and ``train.lr`` suggests ``g_optim.lr`` and
``d_optim.lr``. A list of values given to a key that takes one (the Hydra multirun habit
``train.seed=0,1``) names the command that trains one run per value.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from typing import Any

from wgan.config.sections import Config
from wgan.errors import ConfigError


def _leaf_keys(obj: Any, prefix: str = "") -> list[str]:
    """The dotted keys of every value (not section) of dataclass instance ``obj``."""
    out: list[str] = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            out.extend(_leaf_keys(value, f"{prefix}{f.name}."))
        else:
            out.append(f"{prefix}{f.name}")
    return out


def close_keys(root: Any, key: str, valid: list[str]) -> list[str]:
    """Dotted keys of ``root`` that an unknown ``key`` may have meant, best first (at most 4).

    First the close names in the section ``key`` names (``train.stepz`` -> ``train.steps``;
    ``valid`` are that section's names), then keys anywhere whose last part is the last part of
    ``key`` (``steps`` -> ``train.steps``, ``train.lr`` -> ``g_optim.lr``, ``d_optim.lr``), then
    keys anywhere whose last part is close to it (``stepz`` -> ``train.steps``)."""
    head, _, last = key.rpartition(".")
    prefix = f"{head}." if head else ""
    out = [prefix + c for c in difflib.get_close_matches(last, valid, n=3, cutoff=0.5)]
    leaves = _leaf_keys(root) if dataclasses.is_dataclass(root) else []
    by_last: dict[str, list[str]] = {}
    for leaf in leaves:
        by_last.setdefault(leaf.rpartition(".")[2], []).append(leaf)
    same = by_last.get(last, [])
    near = [
        leaf
        for name in difflib.get_close_matches(last, list(by_last), n=3, cutoff=0.8)
        for leaf in by_last[name]
    ]
    for candidate in [*same, *near]:
        if candidate not in out and candidate != key:
            out.append(candidate)
    return out[:4]


def unknown_key(root: Any, key: str, valid: list[str]) -> ConfigError:
    """The error for an unknown dotted ``key`` (``valid``: the names of the section it names),
    naming close matches anywhere in ``root`` and where the keys are listed."""
    close = close_keys(root, key, valid)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    listed = ""
    if _is_run_config(root):
        head = key.rpartition(".")[0]
        where = f" --section {head}" if head and "." not in head else ""
        listed = f"; 'wgan config{where}' lists them with their meanings"
    return ConfigError(f"unknown config key '{key}'{hint} (valid here: {', '.join(valid)}){listed}")


def _is_run_config(root: Any) -> bool:
    return isinstance(root, Config)


def several_values_hint(root: Any, key: str, value: Any, fits: Any) -> str:
    """A pointer to the command that trains one run per value when ``value`` is several values
    for ``key`` of a run's config: ``0,1`` (Hydra's multirun syntax) or a list ``[0, 1]``, each
    item of which ``fits`` (returns True when one item is a valid value of the key). "" else."""
    if not _is_run_config(root):
        return ""
    if isinstance(value, str) and "," in value:
        import yaml

        items: list[Any] = []
        for text in value.split(","):
            try:
                items.append(yaml.safe_load(text) if text.strip() else None)
            except yaml.YAMLError:
                return ""
    elif isinstance(value, list):
        items = value
    else:
        return ""
    if len(items) < 2 or not all(fits(item) for item in items):
        return ""
    shown = value if isinstance(value, str) else ",".join(str(item) for item in items)
    if key == "train.seed":
        return (
            f"; a key takes one value: for one run per seed use "
            f"'wgan sweep PRESET --seeds {shown}' (or 'wgan study PRESET --seeds {shown}')"
        )
    return (
        f"; a key takes one value: for one run per value use "
        f"'wgan study PRESET --vary {key}={shown}' (or 'wgan sweep', for the keys it stacks)"
    )


# ----------------------------------------------------------------------------------------------
# The types the Python API expects
# ----------------------------------------------------------------------------------------------


def type_and_value(value: Any) -> str:
    """``int 5``, ``str 'train.steps=5'``: what a wrong argument was, for an error (cut to one
    short line)."""
    text = repr(value)
    shown = text if len(text) <= 40 else text[:37] + "..."
    return f"{type(value).__name__} {shown}"


def check_source(source: Any) -> str | None:
    """``resolve``'s ``source`` as a string: a preset name, a YAML path (``str`` or
    ``os.PathLike``) or None; anything else is a :class:`ConfigError` saying what is expected."""
    if source is None or isinstance(source, str):
        return source
    if isinstance(source, os.PathLike):
        path = os.fspath(source)
        if isinstance(path, str):
            return path
    raise ConfigError(
        "the config source must be a preset name or the path of a YAML file (str or "
        f"pathlib.Path) or None, got {type_and_value(source)}"
    )


def path_argument(value: Any, what: str) -> str:
    """``value`` as a path string: a ``str`` or ``os.PathLike`` (e.g. :class:`pathlib.Path`);
    anything else is a :class:`ConfigError` naming ``what`` and the type expected."""
    if isinstance(value, str):
        return value
    if isinstance(value, os.PathLike):
        path = os.fspath(value)
        if isinstance(path, str):
            return path
    raise ConfigError(f"{what} must be a path (str or pathlib.Path), got {type_and_value(value)}")


def device_argument(value: Any) -> str:
    """A device for the Python API: a name (``cpu``, ``cuda``, ``cuda:N``, ``mps``, ``auto``) or
    a ``torch.device`` (its name); anything else is a :class:`ConfigError` saying so."""
    if isinstance(value, str):
        return value
    kind = type(value)
    if kind.__module__ == "torch" and kind.__name__ == "device":  # without importing torch
        return str(value)
    raise ConfigError(
        "device must be a str such as 'cpu', 'cuda' or 'auto' (or a torch.device), got "
        f"{type_and_value(value)}"
    )


def config_argument(value: Any, who: str) -> Config:
    """``value`` if it is a :class:`Config`, else a :class:`ConfigError` saying that ``who``
    (e.g. ``train()``) takes one and how to make it."""
    if isinstance(value, Config):
        return value
    raise ConfigError(
        f"{who} takes a Config, e.g. wgan.resolve('toy-wgan-gp', ['train.steps=500']), "
        f"got {type_and_value(value)}"
    )
