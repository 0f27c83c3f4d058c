"""Crash-safe checkpoints: an atomic save and a safe load.

Checkpoints are written to a temporary file in the same folder, flushed to disk, and then moved
over the old one with ``os.replace``, which is atomic: a crash while saving leaves the previous
checkpoint intact, and a save that fails (a full disk, a read-only folder) removes its temporary
file and raises :class:`CheckpointSaveError` saying that the previous checkpoint is kept. A
temporary file left by a process killed during a save (``.checkpoint.pt.tmp-PID``) is removed
by the next save or run lock in that folder once its process is gone.

Checkpoints are loaded with ``torch.load(weights_only=True)``, which unpickles only tensors and
plain containers, so a checkpoint from an untrusted source cannot run code; a file that is not a
``torch.save`` archive is refused before torch reads it, and so is one whose zip directory is
missing (a truncated file), whose entries would unpack to more than
:func:`wgan.store.checkpoint_checks.checkpoint_limit`, or whose top-level keys are not those of
a wgan checkpoint (named in the message): :func:`wgan.store.checkpoint_checks.check_archive`.

``torch`` is imported by the functions that need it, so that the command line can use the path
checks of :mod:`wgan.store.rundirs` without loading it.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any

from wgan.errors import RunFailure, WganError
from wgan.store.checkpoint_checks import check_archive
from wgan.store.rundirs import (
    CHECKPOINT,
    os_error_in,
    os_error_reason,
    remove_stale_temporaries,
    unlink_quietly,
)

__all__ = ["CheckpointSaveError", "load_checkpoint", "save_checkpoint"]

_ZIP_MAGIC = b"PK\x03\x04"  # torch.save writes a zip archive


class CheckpointSaveError(RunFailure):
    """A checkpoint could not be written (full disk, read-only folder); the previous one is kept.

    A run-time failure (exit status 1): a checkpoint is written after training steps ran, so
    "nothing was run" (exit 2) would not be true. ``errno`` is the operating system's error
    number (e.g. ``errno.ENOSPC``), if known.
    """

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Atomically write ``state`` to ``path`` (temporary file, fsync, ``os.replace``).

    If writing fails for a reason of the file system (a full disk, a read-only folder), the
    temporary file is removed and :class:`CheckpointSaveError` says that the previous
    checkpoint is kept. Temporary files of dead processes in the folder are removed too.
    """
    import torch

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with tmp.open("wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        # Make the rename itself durable.
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except Exception as err:
        cause = os_error_in(err)
        if cause is None:
            raise
        kept = (
            f"the last checkpoint {path} is kept"
            if path.exists()
            else "no checkpoint was saved before"
        )
        raise CheckpointSaveError(
            f"cannot save checkpoint {path}: {os_error_reason(cause)}; {kept}", cause.errno
        ) from None
    finally:
        if tmp.exists():
            unlink_quietly(tmp)
    remove_stale_temporaries(path.parent)


def _file_kind(head: bytes) -> str:
    """What the first bytes of a file that is not a torch.save archive look like."""
    if not head:
        return "the file is empty"
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        return "a plain pickle file"
    if head.startswith(b"\x93NUMPY"):
        return "a NumPy .npy file"
    if head.startswith(b"\x1f\x8b"):
        return "a gzip file"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return "an unknown binary format"
    if all(ch.isprintable() or ch in "\t\r\n" for ch in text):
        return "a text file"
    return "an unknown binary format"


def _first_sentence(text: str) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", text).strip()
    line = text.splitlines()[0] if text else ""
    return re.split(r"(?<=[a-z0-9)])\. ", line)[0].rstrip(".")


def _unpickling_detail(text: str) -> str:
    """The reason in torch's weights-only refusal, without its advice to load unsafely."""
    match = re.search(r"WeightsUnpickler error:\s*(.+)", re.sub(r"\x1b\[[0-9;]*m", "", text), re.S)
    detail = _first_sentence(match.group(1)) if match else ""
    return detail or "an object that is not a tensor or a plain container"


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely (no code execution); raise WganError if missing or corrupt.

    Torch's warnings are not printed and its advice to load with ``weights_only=False`` is not
    repeated: the one-line error says what the file is and why it is refused. Before torch
    reads anything, :func:`wgan.store.checkpoint_checks.check_archive` refuses a truncated
    archive, one that would unpack to too many bytes, and unknown top-level keys (by name).
    """
    import torch

    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.is_file():
        raise WganError(f"no checkpoint at {path}")
    try:
        with path.open("rb") as fh:
            head = fh.read(64)
    except OSError as err:
        raise WganError(f"cannot read checkpoint {path}: {os_error_reason(err)}") from None
    if not head.startswith(_ZIP_MAGIC):
        raise WganError(
            f"cannot load checkpoint {path}: not a wgan checkpoint ({_file_kind(head)}, not an "
            "archive written by torch.save)"
        )
    check_archive(path)  # reads the zip directory and data.pkl only, never a tensor
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=map_location, weights_only=True)
    except OSError as err:
        raise WganError(f"cannot read checkpoint {path}: {os_error_reason(err)}") from None
    except Exception as err:  # torch raises several types for truncated or foreign files
        if "WeightsUnpickler" in str(err) or "Weights only load failed" in str(err):
            raise WganError(
                f"cannot load checkpoint {path}: it holds something other than tensors and plain "
                f"containers ({_unpickling_detail(str(err))}); refused, as loading it could run "
                "code"
            ) from None
        first = _first_sentence(str(err)) or type(err).__name__
        raise WganError(
            f"cannot load checkpoint {path}: the file is truncated or corrupt ({first})"
        ) from None
    if not isinstance(state, dict) or "step" not in state or "generator" not in state:
        raise WganError(f"{path} is not a wgan checkpoint")
    return state
