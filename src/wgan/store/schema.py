"""Records read back from files are data, never trusted: a bounded, strict JSON reader and a
small schema check.

A record file (a study run's ``.study-record.json``, a study's ``study.json``, a run's
``provenance.json``) may be truncated, hand-edited or forged. :func:`read_json` reads at most
:data:`MAX_RECORD_BYTES`, refuses what is not strict JSON (RFC 8259: no ``NaN``/``Infinity``
literals, no repeated keys) and nesting deeper than :data:`MAX_DEPTH`; :func:`check_fields`
checks a mapping's keys against a spec (required keys, types, integers in range, finite numbers,
bounded strings). Every failure is a :class:`RecordError` whose message names the file and what
was wrong, in one line, with file-derived text escaped (:func:`wgan.store.printable.printable`).
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from typing import Any

from wgan.errors import WganError
from wgan.store.printable import printable
from wgan.store.rundirs import os_error_reason

__all__ = [
    "MAX_DEPTH",
    "MAX_RECORD_BYTES",
    "RecordError",
    "check_fields",
    "check_json",
    "read_json",
]

MAX_RECORD_BYTES = 16 << 20
"""The largest record file read (16 MiB; a run's records are a few KB)."""

MAX_DEPTH = 32
"""The deepest nesting of lists and mappings accepted in a record."""

MAX_STRING = 1 << 16
"""The longest string accepted in a record (64 Ki characters)."""

MAX_INT = 2**62
"""The largest integer a record may hold for a count or a step."""


class RecordError(WganError):
    """A record file that cannot be trusted: unreadable, not strict JSON, or not of its schema.
    The message names the file and what was wrong."""


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {json.dumps(key)} is given twice")
        out[key] = value
    return out


def read_json(path: str | Path, max_bytes: int = MAX_RECORD_BYTES) -> Any:
    """The JSON value in ``path``, read strictly and boundedly.

    A missing file raises :class:`FileNotFoundError` (the caller decides what absence means);
    anything else wrong (unreadable, too large, not UTF-8, not strict JSON, too deep, a
    non-finite number such as ``1e999``) raises :class:`RecordError` naming the file.
    """
    path = Path(path)
    try:  # non-blocking open: a FIFO put in a record's place must not hang the reader
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise
    except OSError as err:
        raise RecordError(f"{path}: cannot read it: {os_error_reason(err)}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise RecordError(f"{path}: not a regular file")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(max_bytes + 1)
    except OSError as err:
        raise RecordError(f"{path}: cannot read it: {os_error_reason(err)}") from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise RecordError(f"{path}: larger than {max_bytes:,} bytes, not a record")
    try:
        value = json.loads(
            data.decode("utf-8"), parse_constant=_refuse_constant, object_pairs_hook=_unique_keys
        )
    except UnicodeDecodeError:
        raise RecordError(f"{path}: not UTF-8 text") from None
    except RecursionError:
        raise RecordError(f"{path}: nested too deeply") from None
    except ValueError as err:
        raise RecordError(f"{path}: not valid JSON ({printable(err, 200)})") from None
    try:
        check_json(value, "the file")
    except RecordError as err:
        raise RecordError(f"{path}: {err}") from None
    return value


def check_json(value: Any, where: str, depth: int = 0) -> None:
    """Refuse non-finite numbers, integers beyond 64 bits, strings longer than
    :data:`MAX_STRING` and nesting deeper than :data:`MAX_DEPTH` anywhere in ``value``."""
    if depth > MAX_DEPTH:
        raise RecordError(f"{where} is nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, float) and not math.isfinite(value):
        raise RecordError(f"{where} holds a non-finite number ({value})")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
        raise RecordError(f"{where} holds an integer beyond 64 bits")
    if isinstance(value, str) and len(value) > MAX_STRING:
        raise RecordError(f"{where} holds a string of {len(value):,} characters")
    if isinstance(value, dict):
        for key, item in value.items():
            check_json(item, f"{where}[{printable(json.dumps(key), 60)}]", depth + 1)
    elif isinstance(value, list):
        for item in value:
            check_json(item, where, depth + 1)


def _shown(value: Any) -> str:
    return printable(json.dumps(value) if value is None or isinstance(value, str) else value, 60)


_KINDS: dict[str, tuple[type, str]] = {
    "str": (str, "a string"),
    "bool": (bool, "true or false"),
    "dict": (dict, "a mapping"),
    "list": (list, "a list"),
}


def _type_problem(value: Any, kind: str) -> str | None:
    """Why ``value`` is not of ``kind`` (``str``, ``int``, ``number``, ``bool``, ``dict``,
    ``list``; a trailing ``?`` also allows null), or None."""
    if kind.endswith("?"):
        if value is None:
            return None
        kind = kind[:-1]
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_INT:
            return None
        return f"must be an integer in [0, {MAX_INT}]"
    if kind == "number":
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if numeric and math.isfinite(value) else "must be a finite number"
    expected, words = _KINDS[kind]
    return None if isinstance(value, expected) else f"must be {words}"


def check_fields(
    value: Any, spec: dict[str, str], required: tuple[str, ...], what: str
) -> dict[str, Any]:
    """``value`` if it is a mapping whose keys of ``spec`` have their kinds (see
    :func:`_type_problem`) and that has every ``required`` key; other keys are allowed (a
    later version may add some) but must still be finite JSON (:func:`check_json`). Raises
    :class:`RecordError` ``"WHAT: KEY must be ..., got VALUE"``."""
    if not isinstance(value, dict):
        raise RecordError(f"{what}: must be a JSON object, got {type(value).__name__}")
    for key in required:
        if key not in value:
            raise RecordError(f"{what}: the key {json.dumps(key)} is missing")
    for key, kind in spec.items():
        if key in value:
            problem = _type_problem(value[key], kind)
            if problem is not None:
                raise RecordError(f"{what}: {key} {problem}, got {_shown(value[key])}")
    check_json(value, what)
    return value
