"""Stopping on a signal: SIGINT (Ctrl-C) and SIGTERM become a request to stop at a step boundary.

SIGTERM is what ``kill``, ``docker stop``, systemd and Slurm's ``scancel`` send before they kill a
process; SIGINT is Ctrl-C. Both are handled alike:

* :func:`install` (the ``wgan`` command calls it first): from then on either signal raises
  :class:`wgan.errors.Interrupted` (a :class:`KeyboardInterrupt`) wherever the process is, so
  every ``finally`` and ``except BaseException`` that cleans up after Ctrl-C (the run's
  ``provenance.json``, a study's ``study.json``, a run directory left empty by a failed start)
  also runs after SIGTERM, and the command exits with 128 + the signal's number (130, 143).
* :func:`deferred` (around a training loop): while the block runs, a signal only records a
  request, which :func:`requested` reports. The loop looks at it between two iterations, writes
  a checkpoint of that step and raises :class:`~wgan.errors.Interrupted` (see
  :meth:`wgan.training.trainer.Trainer.fit`, :meth:`wgan.scale.sweep.SweepTrainer.fit`), so the
  run resumes exactly where it stopped. A second signal at least :data:`REPEAT_SECONDS` after the
  first raises at once (someone insists); one sooner is the same request delivered twice (a
  terminal signals the whole process group, and ``torchrun`` or a launcher forwards it too).
  A request not acted upon when the block ends (it came after the last iteration) stays, and the
  next loop of the same process stops at its first boundary.

Handlers are installed only in the main thread (Python runs signal handlers there alone); in
another thread both functions do nothing. A signal that the process was started ignoring (SIGINT
in a job that a non-interactive shell put in the background, ``nohup``) stays ignored.
"""

from __future__ import annotations

import shlex
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from wgan.errors import Interrupted
from wgan.store.printable import printable

__all__ = [
    "REPEAT_SECONDS",
    "SIGNALS",
    "deferred",
    "install",
    "message",
    "requested",
    "resume_command",
    "study_run_error",
    "take",
]

SIGNALS = (signal.SIGINT, signal.SIGTERM)
REPEAT_SECONDS = 1.0
"""A second signal this long after the first one stops the process at once."""

_depth = 0  # nesting of deferred() blocks
_pending: int | None = None  # the signal of a request not yet acted upon
_pending_at = 0.0


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _raise_now(signum: int, frame: Any) -> None:
    raise Interrupted(signum)


def _defer(signum: int, frame: Any) -> None:
    global _pending, _pending_at
    if _pending is None:
        _pending, _pending_at = signum, time.monotonic()
    elif time.monotonic() - _pending_at >= REPEAT_SECONDS:
        raise Interrupted(signum)


def _handled() -> list[int]:
    """The signals of :data:`SIGNALS` that this process does not ignore."""
    return [s for s in SIGNALS if signal.getsignal(s) is not signal.SIG_IGN]


def install() -> None:
    """SIGINT and SIGTERM raise :class:`~wgan.errors.Interrupted` from now on (main thread)."""
    if _in_main_thread():
        for signum in _handled():
            signal.signal(signum, _defer if _depth else _raise_now)


def requested() -> int | None:
    """The signal of a pending request to stop (None: none)."""
    return _pending


def take() -> int | None:
    """The pending request's signal, which is then cleared (the caller acts on it)."""
    global _pending
    signum, _pending = _pending, None
    return signum


@contextmanager
def deferred() -> Iterator[None]:
    """While the block runs, SIGINT and SIGTERM record a request (:func:`requested`) instead of
    interrupting; the previous handlers come back after it. Blocks nest."""
    global _depth
    if not _in_main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in _handled()} if _depth == 0 else {}
    for signum in previous:
        signal.signal(signum, _defer)
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            for signum, handler in previous.items():
                signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


def study_run_error(err: BaseException) -> str:
    """The error of a study's run that a signal stopped (its checkpoint is of the step reached)."""
    step = getattr(err, "step", None)
    at = f" at step {step}, where its checkpoint is" if step is not None else ""
    return f"interrupted{at}; run the study again to resume it"


def resume_command(*words: str | Path) -> str:
    """A command line to print, e.g. ``wgan train --resume 'runs/my run'`` (shell-quoted)."""
    return shlex.join(str(w) for w in words)


def _how(signum: int) -> str:
    if signum == signal.SIGINT:
        return "Ctrl-C (SIGINT)"
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def message(err: KeyboardInterrupt) -> list[str]:
    """What the ``wgan`` command prints for an interruption: the signal, the step reached and
    what was kept; then the command that continues the work, if there is one."""
    if not isinstance(err, Interrupted):
        return ["wgan: interrupted (Ctrl-C)"]
    at = f" at step {err.step}" if err.step is not None else ""
    first = f"wgan: interrupted by {_how(err.signum)}{at}"
    if err.kept:
        first += f"; {printable(err.kept)}"
    lines = [first]
    if err.resume:
        lines.append(f"wgan: to continue: {printable(err.resume)}")
    return lines
