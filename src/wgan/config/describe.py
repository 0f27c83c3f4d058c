"""Every config key with its type, default, range and meaning: ``wgan config [PRESET]``.

The meanings are the comments next to the fields in :mod:`wgan.config.sections` (a trailing
``# comment``, or the comment lines just above a field), read from the source the way
``wgan experiment NAME --help`` reads an experiment's settings; the ranges are the words of
:func:`wgan.config.validate`'s own checks and each field's declared upper bound
(:func:`wgan.config.validate.value_ranges`). One source for the check and its description, so
the listing cannot drift from what is enforced.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import io
import os
import re
import textwrap
import tokenize
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

from wgan.config.resolve import _type_hints, resolve
from wgan.config.sections import Config
from wgan.config.validate import value_ranges
from wgan.errors import ConfigError

__all__ = ["ConfigKey", "config_keys", "config_sections", "format_config_keys"]


@dataclass(frozen=True)
class ConfigKey:
    """One key of a run's config, as ``wgan config`` lists it."""

    key: str  # dotted name, e.g. "train.steps"
    type: str  # int, float, bool, str, choice, "int or null", "[float, float]"
    default: Any  # the value the preset (and overrides) give it
    base_default: Any  # the value of the dataclass, before any preset
    range: str  # the values it may take ("" when any value of its type is valid)
    meaning: str  # the comment next to the field in wgan.config.sections

    def to_dict(self) -> dict[str, Any]:
        """The key as a plain dict (tuples as lists), for JSON."""
        out = dataclasses.asdict(self)
        for name in ("default", "base_default"):
            if isinstance(out[name], tuple):
                out[name] = list(out[name])
        return out


def _type_text(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "choice"
    if origin in (Union, types.UnionType):
        return " or ".join(_type_text(a) for a in get_args(tp))
    if origin is tuple:
        items = [("..." if a is Ellipsis else _type_text(a)) for a in get_args(tp)]
        return "[" + ", ".join(items) + "]"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _choices(tp: Any) -> tuple[Any, ...]:
    """The values of a ``Literal`` type (inside an optional one too), else ()."""
    if get_origin(tp) is Literal:
        return get_args(tp)
    if get_origin(tp) in (Union, types.UnionType):
        return tuple(v for a in get_args(tp) for v in _choices(a))
    return ()


def field_meanings(cls: type) -> dict[str, str]:
    """The meaning of each field of dataclass ``cls`` from its source, for every class of its
    hierarchy (the subclass's winning): the ``#`` comment on the field's line, else the comment
    lines just above it."""
    out: dict[str, str] = {}
    for klass in cls.__mro__:
        try:
            source = inspect.getsource(klass)
        except (OSError, TypeError):  # builtins, or defined in an interactive session
            continue
        trailing: dict[int, str] = {}  # line (1-based) -> a comment after code on that line
        alone: dict[int, str] = {}  # line -> a comment on a line of its own
        lines = source.splitlines()
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                text = tok.string.lstrip("#").strip()
                own_line = lines[tok.start[0] - 1].strip().startswith("#")
                (alone if own_line else trailing)[tok.start[0]] = text
        own = vars(klass).get("__annotations__", {})
        for number, line in enumerate(lines, start=1):
            head = line.strip().split(":", 1)[0]
            if head not in own or head in out:
                continue
            above: list[str] = []
            n = number - 1
            while n in alone:
                above.insert(0, alone[n])
                n -= 1
            parts = [" ".join(above), trailing.get(number, "")]
            text = "; ".join(p for p in parts if p)
            if text:
                out[head] = text
    return out


def config_sections() -> dict[str, str]:
    """Each section of a run's config (``data``, ``generator``, ...) with the first line of its
    class's docstring."""
    out = {}
    for name, tp in _type_hints(Config).items():
        if dataclasses.is_dataclass(tp):
            out[name] = (inspect.getdoc(tp) or "").split("\n\n")[0].replace("\n", " ")
    return out


def _rows(obj: Any, prefix: str, base: Any, ranges: dict[str, str]) -> list[ConfigKey]:
    hints = _type_hints(type(obj))
    meanings = field_meanings(type(obj))
    out: list[ConfigKey] = []
    for f in dataclasses.fields(obj):
        value, dotted = getattr(obj, f.name), f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            out.extend(_rows(value, f"{dotted}.", getattr(base, f.name), ranges))
            continue
        tp = hints[f.name]
        rules = [", ".join(str(c) for c in _choices(tp))] if _choices(tp) else []
        if dotted in ranges:
            rules.append(ranges[dotted])
        out.append(
            ConfigKey(
                key=dotted,
                type=_type_text(tp),
                default=value,
                base_default=getattr(base, f.name),
                range="; ".join(rules),
                meaning=meanings.get(f.name, ""),
            )
        )
    return out


def config_keys(
    source: str | os.PathLike[str] | None = None,
    overrides: Sequence[str] | Mapping[str, Any] = (),
    section: str | None = None,
) -> list[ConfigKey]:
    """Every key of the config that ``source`` and ``overrides`` give (see
    :func:`wgan.config.resolve`; default: the preset ``toy-wgan-gp``), with its type, default
    (the preset's value), range and meaning, in the order of the sections.

    ``section`` keeps one section (``"train"``) or one key (``"train.steps"``); an unknown name
    is a :class:`ConfigError` naming close matches.
    """
    cfg = resolve(source, overrides)
    rows = _rows(cfg, "", Config(), value_ranges(cfg))
    if section is None:
        return rows
    if not isinstance(section, str):
        raise ConfigError(f"section must be a str (e.g. 'train'), got {type(section).__name__}")
    kept = [r for r in rows if r.key == section or r.key.startswith(f"{section}.")]
    if not kept:
        names = list(config_sections()) + [r.key for r in rows]
        close = difflib.get_close_matches(section, names, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(
            f"unknown section or key '{section}'{hint} (sections: {', '.join(config_sections())})"
        )
    return kept


def _shown(value: Any, most: int = 40) -> str:
    """A value as YAML writes it (null, true, [0.0, 0.9]), cut to ``most`` characters."""
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, tuple | list):
        text = "[" + ", ".join(_shown(v) for v in value) + "]"
    else:
        text = str(value)
    text = text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text
    return text if len(text) <= most else text[: most - 3] + "..."


def _plain_text(doc: str) -> str:
    """A docstring line without its reStructuredText: ``x`` and :mod:`x` become x."""
    return re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", doc).replace("``", "")


def format_config_keys(rows: Sequence[ConfigKey], width: int = 100) -> str:
    """``rows`` as ``wgan config`` prints them: per section a heading with its description,
    then one line per key (key, type, default, range) and its meaning below, wrapped to
    ``width`` columns."""
    sections = config_sections()
    cells = [(r.key, r.type, _shown(r.default)) for r in rows]
    widths = [max([len(h), *(len(c[i]) for c in cells)]) for i, h in enumerate(_HEAD[:3])]
    indent = " " * (2 + sum(w + 2 for w in widths))
    lines: list[str] = []
    current: str | None = None
    for row, cell in zip(rows, cells, strict=True):
        head = row.key.split(".", 1)[0] if "." in row.key else ""
        if head != current:
            current = head
            about = sections.get(head, "the run's name and where its folder goes")
            lines += ["", *textwrap.wrap(f"{head or 'top level'}: {_plain_text(about)}", width)]
            titles = "  ".join(h.ljust(w) for h, w in zip(_HEAD[:3], widths, strict=True))
            lines.append(f"  {titles}  {_HEAD[3]}")
        text = "  " + "  ".join(c.ljust(w) for c, w in zip(cell, widths, strict=True)) + "  "
        ranges = textwrap.wrap(row.range, max(20, width - len(text)))
        lines.append((text + (ranges[0] if ranges else "")).rstrip())
        lines += [indent + more for more in ranges[1:]]
        meaning = row.meaning or "-"
        lines += textwrap.wrap(meaning, width, initial_indent="      ", subsequent_indent="      ")
    return "\n".join(lines[1:])


_HEAD = ("key", "type", "default", "range")
