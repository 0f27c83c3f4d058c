"""What a checkpoint file may ask for, checked before torch reads a tensor of it; and whether its
models fit the run's, checked before they are copied in.

``torch.save`` writes a zip archive (PKWARE APPNOTE.TXT): ``<name>/data.pkl``, the pickled
structure, one record ``<name>/data/<k>`` per tensor storage, and a few small records, with the
archive's central directory written last. :func:`check_archive` reads only that directory and
``data.pkl``, never a tensor:

* a file whose directory is missing was cut short (or is not an archive): it is reported as
  truncated, not with the error torch would give on the missing bytes;
* the sum of the entries' uncompressed sizes (``file_size`` in the directory: what reading them
  takes; torch and :mod:`zipfile` inflate an entry no further than that) must be at most
  :func:`checkpoint_limit`. A deflated entry counts at its inflated size, so a small file
  cannot ask for gigabytes;
* ``data.pkl`` itself may take at most :data:`PICKLE_MAX_BYTES`, and its top-level keys must
  be those of :data:`CHECKPOINT_KEYS`: an unknown key is refused by name before anything is
  loaded. The keys are read by an unpickler that imports and calls nothing (every global and
  every storage becomes an inert placeholder).

:func:`state_mismatch` compares a saved state dict with a model's, naming each parameter whose
shape differs (with both shapes) and the missing and unexpected ones, in one line.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wgan.errors import WganError
from wgan.store import memory
from wgan.store.rundirs import os_error_reason

__all__ = [
    "CHECKPOINT_KEYS",
    "CHECKPOINT_MAX_BYTES",
    "PICKLE_MAX_BYTES",
    "check_archive",
    "checkpoint_limit",
    "state_mismatch",
]

#: The top-level keys a wgan checkpoint may hold (those :meth:`Trainer.state` writes; the
#: minimal checkpoints of tests and old versions hold a subset).
CHECKPOINT_KEYS = frozenset(
    {
        "format",
        "step",
        "config",
        "generator",
        "critic",
        "opt_d",
        "opt_g",
        "rng",
        "torch_rng",
        "train_set",
        "generator_ema",
        "scalers",
        "historical",
    }
)

#: Most bytes the entries of a checkpoint may hold uncompressed: 4 GiB, ten times the largest
#: checkpoint a preset writes (``text-wgan-gp-paper``: 28.4 M parameters, about 0.4 GB with
#: its Adam states). A larger model is refused at load with a message naming this limit.
CHECKPOINT_MAX_BYTES = 1 << 32

#: Most bytes the pickled structure (``data.pkl``: the config, the names of the tensors, no
#: tensor data) may take: 16 MiB, over 1,000 times the 10 KB a preset's checkpoint holds. A
#: pickle builds Python objects many times its own size, so it gets its own, smaller bound.
PICKLE_MAX_BYTES = 16 << 20

_SHOWN = 3  # mismatched parameters named in one message; the rest are counted


def checkpoint_limit() -> tuple[int, str]:
    """The most bytes a checkpoint may unpack to, and what sets it: :data:`CHECKPOINT_MAX_BYTES`
    or, when smaller, the memory available now (:func:`wgan.store.memory.available_memory`)."""
    free = memory.available_memory()
    if free is not None and free < CHECKPOINT_MAX_BYTES:
        return free, f"the {memory.format_bytes(free)} of memory available now"
    return CHECKPOINT_MAX_BYTES, (
        f"the {memory.format_bytes(CHECKPOINT_MAX_BYTES)} limit of a checkpoint"
    )


def _escaped(text: str, limit: int = 200) -> str:
    """A message from a library that may quote the file (a zip entry's name): printable only."""
    text = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
    return text if len(text) <= limit else text[:limit] + "…"


def _shown(key: object, limit: int = 80) -> str:
    """A key read from a file, for a message: quoted, escaped (``repr``), at most ``limit``."""
    if isinstance(key, str) and len(key) > limit:
        return repr(key[:limit]) + "…"
    return repr(key)[: limit + 2]


class _Inert:
    """Stands for every object the key scan does not build: a global, a storage, a tensor."""

    def __new__(cls, *args: Any, **kwargs: Any) -> _Inert:
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __call__(self, *args: Any, **kwargs: Any) -> _Inert:
        return _Inert()

    def __setstate__(self, state: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def append(self, value: Any) -> None:
        pass

    def extend(self, values: Any) -> None:
        pass


class _KeyScan(pickle.Unpickler):
    """Unpickles ``data.pkl`` without importing or calling anything outside this module."""

    def find_class(self, module: str, name: str) -> Any:
        return _Inert

    def persistent_load(self, pid: Any) -> Any:
        return _Inert()


def _truncated(path: Path, reason: str) -> WganError:
    return WganError(
        f"cannot load checkpoint {path}: the file is truncated or not a checkpoint: {reason}"
    )


def check_archive(path: str | Path) -> None:
    """Refuse ``path`` (a zip archive) before torch reads it, by the checks of the module
    docstring. Raises :class:`WganError` with one line naming the file; returns None."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            for info in infos:
                if info.header_offset + info.compress_size > size:
                    raise _truncated(
                        path,
                        f"its entry {_shown(info.filename)} ends past the end of the file "
                        f"({size:,} bytes)",
                    )
            total = sum(info.file_size for info in infos)
            limit, what = checkpoint_limit()
            if total > limit:
                raise WganError(
                    f"cannot load checkpoint {path}: its entries take "
                    f"{memory.format_bytes(total)} unpacked, more than {what}; refused before "
                    "reading them"
                )
            pickles = [i for i in infos if i.filename.rsplit("/", 1)[-1] == "data.pkl"]
            if len(pickles) != 1:
                raise WganError(
                    f"cannot load checkpoint {path}: not a wgan checkpoint (a zip archive "
                    f"with {len(pickles)} data.pkl records, not one written by torch.save)"
                )
            if pickles[0].file_size > PICKLE_MAX_BYTES:
                raise WganError(
                    f"cannot load checkpoint {path}: its data.pkl takes "
                    f"{memory.format_bytes(pickles[0].file_size)} unpacked, more than the "
                    f"{memory.format_bytes(PICKLE_MAX_BYTES)} a wgan checkpoint's structure may "
                    "take; refused before reading it"
                )
            raw = archive.read(pickles[0])
    except WganError:
        raise
    except zipfile.BadZipFile as exc:
        text = str(exc)
        if text == "File is not a zip file":
            text = (
                f"no zip directory at its end ({size:,} bytes; torch.save writes it last, so a "
                "file cut short has none)"
            )
        raise _truncated(path, _escaped(text[:1].lower() + text[1:])) from None
    except OSError as exc:
        raise WganError(f"cannot read checkpoint {path}: {os_error_reason(exc)}") from None
    except (ValueError, EOFError, NotImplementedError, RuntimeError) as exc:  # zlib, methods
        raise _truncated(path, _escaped(f"{type(exc).__name__}: {exc}")) from None
    _check_keys(path, raw)


def _check_keys(path: Path, raw: bytes) -> None:
    """The top-level keys of the pickled structure ``raw`` are checkpoint keys."""
    import io

    try:
        top = _KeyScan(io.BytesIO(raw)).load()
    except Exception as exc:  # any damage of the stream: it builds nothing, so nothing leaks
        raise _truncated(path, f"its data.pkl cannot be read ({type(exc).__name__})") from None
    if not isinstance(top, dict) or "step" not in top or "generator" not in top:
        raise WganError(f"{path} is not a wgan checkpoint")
    unknown = [key for key in top if key not in CHECKPOINT_KEYS]
    if unknown:
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise WganError(
            f"cannot load checkpoint {path}: unknown key {_shown(unknown[0])}{more}; a wgan "
            f"checkpoint holds only {', '.join(sorted(CHECKPOINT_KEYS))}"
        )


def _shape(value: Any) -> str:
    return "(" + ", ".join(str(int(d)) for d in value.shape) + ")"


def state_mismatch(model: Mapping[str, Any], saved: Any, what: str) -> str | None:
    """Why the state dict ``saved`` cannot be loaded into a module whose state dict is
    ``model``, in one line naming the parameters (``what``: e.g. ``"critic"``); None if it can.

    Names up to three differences: a parameter whose shape differs (with the checkpoint's and
    the model's shapes), one the checkpoint lacks, one the model lacks, one that is not a tensor.
    """
    import torch

    if not isinstance(saved, Mapping):
        return f"the checkpoint's {what} is a {type(saved).__name__}, not a state dict"
    problems: list[str] = []
    for name, tensor in model.items():
        if name not in saved:
            problems.append(f"{what} parameter {_shown(name)} is missing from the checkpoint")
        elif not isinstance(saved[name], torch.Tensor):
            kind = type(saved[name]).__name__
            problems.append(f"{what} parameter {_shown(name)} is a {kind} in the checkpoint")
        elif tuple(saved[name].shape) != tuple(tensor.shape):
            problems.append(
                f"{what} parameter {_shown(name)} has shape {_shape(saved[name])} in the "
                f"checkpoint and {_shape(tensor)} in this run's model"
            )
    extra = [name for name in saved if name not in model]
    problems += [f"the checkpoint's {what} has an unexpected {_shown(n)}" for n in extra]
    if not problems:
        return None
    more = len(problems) - _SHOWN
    return "; ".join(problems[:_SHOWN]) + (f"; and {more} more" if more > 0 else "")
