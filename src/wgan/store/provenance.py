"""Where a run came from: ``provenance.json`` in its run directory, one entry per session.

A session is one ``wgan train`` (or :func:`wgan.training.train.train`) or one resume of the run.
Each entry records what is needed to tell later how the run's numbers were produced:

* ``command``: the command line (``wgan train ...``, or the Python program's ``sys.argv``)
  and ``cwd``, the folder it ran in;
* ``kind``: ``new`` or ``resume``; ``start_step`` and ``end_step``;
* ``versions``: wgan, torch, Python and NumPy;
* ``host`` (the machine's name and platform) and ``device`` (e.g. ``cuda:0``, with the GPU's
  name), and the number of processes of a data-parallel job;
* ``git``: the commit (and whether the tree had uncommitted changes) when wgan runs from a git
  checkout, else null;
* ``start`` and ``end`` (UTC, ISO 8601) and ``status``: ``running`` until the session ends, then
  ``completed``, ``diverged``, ``interrupted`` or ``failed: <error type>``; ``pid``, the process.

A resume appends an entry; earlier ones are never rewritten, except a ``running`` status that a
killed process (SIGKILL, a lost machine) could not complete: the next session, holding the run's
lock, knows no process is in it and marks it ``killed``. The file is data, not trusted
(:func:`read` checks it against a schema); one that fails the check is reported in one line and
kept beside the new one as ``provenance.json.unreadable``. The file is
replaced atomically, so a kill leaves the previous version whole. Per-step wall-clock time is in
``metrics.jsonl`` (``wall_s``, ``time/step_s``), not here.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from wgan.errors import TrainingDiverged, WganError
from wgan.store import rundirs
from wgan.store.printable import printable
from wgan.store.schema import RecordError, check_fields, read_json

FILE = "provenance.json"

_command: list[str] | None = None  # set by the ``wgan`` command; otherwise sys.argv


def set_command(argv: Sequence[str]) -> None:
    """Record ``argv`` (without the program name) as the ``wgan`` command line of this process."""
    global _command
    _command = ["wgan", *argv]


def command_line() -> str:
    """The command line of this process, shell-quoted."""
    return shlex.join(_command if _command is not None else [sys.executable, *sys.argv])


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def git_commit(path: Path | None = None) -> dict[str, Any] | None:
    """The commit of the git checkout that holds ``path`` (default: this package), or None.

    ``dirty`` says whether tracked files differ from the commit. Git missing, not a checkout,
    or a git that hangs (5 s) all give None: provenance never stops a run.
    """
    where = str(path or Path(__file__).resolve().parent)

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", "-C", where, *args], capture_output=True, text=True, timeout=5
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def versions() -> dict[str, str]:
    """The versions of wgan, torch, NumPy and Python."""
    import numpy
    import torch

    from wgan import __version__

    return {
        "wgan": __version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }


def describe_device(device: Any) -> str:
    """``cpu``, or ``cuda:0 (NVIDIA H200)``: the device and, for a GPU, its name."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return str(device)


STATUSES = ("running", "completed", "diverged", "interrupted", "killed")
"""A session's status, or ``failed: <error type>``. ``killed``: the session's process died
without recording its end (SIGKILL, a lost machine); the next session of the run, holding its
lock, finds its ``running`` state stale and marks it so."""

ENTRY_SPEC = {
    "session": "int",
    "kind": "str",
    "command": "str",
    "cwd": "str",
    "start": "str",
    "end": "str?",
    "status": "str",
    "start_step": "int",
    "end_step": "int?",
    "versions": "dict",
    "host": "dict",
    "device": "str",
    "processes": "int",
    "git": "dict?",
    "threads": "dict?",
    "pid": "int?",
}
"""The keys of a session entry and their kinds (:func:`wgan.store.schema.check_fields`);
other keys are kept as they are."""


def _check_entry(entry: Any, where: str) -> dict[str, Any]:
    entry = check_fields(entry, ENTRY_SPEC, ("session", "kind", "status", "start_step"), where)
    status = entry["status"]
    if status not in STATUSES and not status.startswith("failed: "):
        raise RecordError(
            f"{where}: unknown status '{printable(status, 60)}' (one of {', '.join(STATUSES)}, "
            "or failed: ERROR)"
        )
    return entry


def read(run_dir: str | Path) -> list[dict[str, Any]]:
    """The sessions recorded in ``run_dir`` (none if there is no file).

    The file is data, not trusted: read strictly and boundedly, and each entry checked against
    :data:`ENTRY_SPEC` and :data:`STATUSES`; anything wrong raises
    :class:`wgan.store.schema.RecordError` naming the file and what was wrong.
    """
    path = Path(run_dir) / FILE
    try:
        entries = read_json(path)
    except FileNotFoundError:
        return []
    if not isinstance(entries, list):
        raise RecordError(f"{path}: does not hold a list of sessions")
    return [_check_entry(e, f"{path}, entry {i + 1}") for i, e in enumerate(entries)]


def _set_aside(path: Path, why: str) -> None:
    """Keep an unreadable ``provenance.json`` beside the new one (never over an earlier one),
    saying so in one line."""
    target = path.with_name(f"{FILE}.unreadable")
    n = 1
    while target.exists() and n < 100:
        n += 1
        target = path.with_name(f"{FILE}.unreadable-{n}")
    os.replace(path, target)
    sys.stderr.write(f"wgan: {printable(why, 1000)}; it is kept as {target.name}\n")


def _mark_stale(run_dir: Path, entries: list[dict[str, Any]]) -> None:
    """Mark ``running`` entries ``killed``: called holding the run's lock, so the processes
    that wrote them are gone without having recorded their end."""
    if not rundirs.holds_lock(run_dir):
        return  # another process may be training the run: its "running" may be true
    for entry in entries:
        if entry["status"] == "running":
            entry["status"] = "killed"
            who = f" (pid {entry['pid']})" if entry.get("pid") is not None else ""
            sys.stderr.write(
                f"wgan: {printable(run_dir / FILE, 300)}: session {entry['session']}{who} ended "
                "without recording its end (killed); marked killed\n"
            )


def _write(run_dir: Path, entries: list[dict[str, Any]]) -> None:
    rundirs.write_text_atomic(run_dir / FILE, json.dumps(entries, indent=2) + "\n")


def _status(error: BaseException | None) -> str:
    if error is None:
        return "completed"
    if isinstance(error, TrainingDiverged):
        return "diverged"
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    return f"failed: {type(error).__name__}"


@contextmanager
def session(
    run_dir: str | Path, kind: str, device: Any, step: int, world_size: int = 1
) -> Iterator[dict[str, Any]]:
    """Record one training session of the run in ``run_dir`` around the ``with`` block.

    The entry is written (status ``running``) before the block and completed after it, whether
    the block returns or raises; the caller sets ``entry["end_step"]`` (else ``step``).
    """
    run_dir = Path(run_dir)
    try:
        entries = read(run_dir)
    except RecordError as err:  # keep what could not be read rather than overwrite it
        _set_aside(run_dir / FILE, str(err))
        entries = []
    _mark_stale(run_dir, entries)
    entry: dict[str, Any] = {
        "session": len(entries) + 1,
        "kind": kind,
        "command": command_line(),
        "cwd": os.getcwd(),  # relative paths in the command are relative to it
        "start": _now(),
        "end": None,
        "status": "running",
        "start_step": step,
        "end_step": None,
        "versions": versions(),
        "host": {"name": socket.gethostname(), "platform": platform.platform()},
        "device": describe_device(device),
        "processes": world_size,
        "git": git_commit(),
        "pid": os.getpid(),
    }
    entries.append(entry)
    _write(run_dir, entries)
    error: BaseException | None = None
    try:
        yield entry
    except BaseException as err:
        error = err
        raise
    finally:
        entry["end"] = _now()
        entry["status"] = _status(error)
        if entry["end_step"] is None:
            entry["end_step"] = step
        try:
            _write(run_dir, entries)
        except WganError:
            if error is None:  # a failure to record must not hide the run's own error
                raise
