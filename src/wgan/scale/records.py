"""A study's records, read back as data and checked against the runs they describe.

Three kinds of record files come back to :func:`wgan.scale.study.run_study`: each run's
``.study-record.json`` (written by the worker when the run finished or diverged, so that a
re-run of the study need not start a worker for it), the records a worker returns, and the
study's own ``study.json`` (rewritten as runs end). Any of them may be truncated, edited by hand
or forged, so none is trusted:

* each is read strictly and boundedly and checked against :data:`RECORD_SPEC`
  (:mod:`wgan.store.schema`): required keys, types, finite numbers, a known status, the name of
  the run it sits in;
* "finished" means more than a record that says so: the run's checkpoint loads
  (:func:`wgan.store.checkpoints.load_checkpoint`, as ``wgan eval`` loads it) and holds the
  record's step, which is the run's last (:func:`finished_record`);
* "diverged" (final: training is deterministic) holds only while the run's checkpoint is the one
  the divergence left (``checkpoint_step``: its step, or null for none) and is not at the run's
  last step, so a forged record cannot condemn a healthy run;
* a ``pending`` or ``running`` state in ``study.json`` was left by a launcher that stopped
  without recording its runs' end (killed: SIGKILL, a lost machine); the next launcher, which
  holds the study's lock, recognises it as stale (:func:`stale_note`). ``interrupted`` runs are
  retried as any unfinished run.

A record that fails a check is reported in one line naming the file and what was wrong, and the
run goes to a worker, which decides from the checkpoint alone; nothing here blocks a study.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wgan.errors import WganError
from wgan.store import checkpoints, rundirs
from wgan.store.printable import printable
from wgan.store.schema import RecordError, check_fields, read_json

__all__ = [
    "FINISHED",
    "RECORD_SPEC",
    "RUN_STATUSES",
    "check_run_record",
    "checkpoint_step",
    "finished_record",
    "stale_note",
]

RUN_STATUSES = ("done", "skipped", "resumed", "failed", "pending", "interrupted", "running")
"""The statuses a run's record may hold: ended (the first four), not started or in flight
(``pending``, ``running``), or stopped by a signal (``interrupted``)."""

FINISHED = ("done", "resumed", "skipped")
"""Statuses of a run that reached its last step (if its checkpoint agrees)."""

STALE = ("pending", "running")
"""States that only a live launcher may leave in ``study.json``."""

RECORD_SPEC = {
    "name": "str",
    "run_dir": "str?",
    "status": "str",
    "step": "int",
    "metrics": "dict",
    "error": "str?",
    "diverged": "bool",
    "seconds": "number",
    "stacked": "int?",
    "checkpoint_step": "int?",
}
"""The keys of a run's record and their kinds (:func:`wgan.store.schema.check_fields`)."""

_REQUIRED = ("name", "status", "step", "metrics", "diverged")


def check_run_record(value: Any, name: str | None, what: str) -> dict[str, Any]:
    """``value`` if it is a valid record of the run ``name`` (any run if None); else
    :class:`RecordError` ``"WHAT: what is wrong"``."""
    record = check_fields(value, RECORD_SPEC, _REQUIRED, what)
    if name is not None and record["name"] != name:
        raise RecordError(
            f"{what}: it is the record of run '{printable(record['name'], 60)}', not of {name!r}"
        )
    if record["status"] not in RUN_STATUSES:
        raise RecordError(
            f"{what}: unknown status '{printable(record['status'], 60)}' (one of "
            f"{', '.join(RUN_STATUSES)})"
        )
    if record["diverged"] and record["status"] != "failed":
        raise RecordError(f"{what}: diverged is true but the status is {record['status']!r}")
    return record


def checkpoint_step(path: Path) -> int:
    """The step of the checkpoint at ``path``, loaded as ``wgan eval`` loads it; WganError if
    it is missing, truncated, corrupt, foreign, or its step is not a count."""
    step = checkpoints.load_checkpoint(path)["step"]
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise WganError(f"checkpoint {path}: its step is not a count ({printable(step, 60)})")
    return step


def _diverged_problem(run_dir: Path, record: dict[str, Any], steps: int) -> str | None:
    """Why the run's state contradicts a "diverged" record (None: it agrees)."""
    if "checkpoint_step" not in record:
        return "it does not say which checkpoint the divergence left (checkpoint_step)"
    expected = record["checkpoint_step"]
    ckpt = run_dir / rundirs.CHECKPOINT
    if not ckpt.exists():
        return None if expected is None else f"there is no checkpoint (it names step {expected})"
    if expected is None:
        return "it names no checkpoint, but the run has one"
    try:
        step = checkpoint_step(ckpt)
    except WganError as err:
        return str(err)
    if step >= steps:
        return f"the run's checkpoint is at its last step ({step}, train.steps={steps})"
    if step != expected:
        return f"the run's checkpoint is at step {step}, not {expected}"
    return None


def finished_record(
    run_dir: Path, record_path: Path, name: str, steps: int
) -> tuple[dict[str, Any] | None, str | None]:
    """``(record, note)`` for the run ``name`` in ``run_dir`` that trains to ``steps``.

    ``record`` is what to report without starting a worker: a "skipped" record of a finished
    run, or the "failed" record of a diverged one; None when a worker must decide. ``note`` is
    one line saying why a record that exists was not trusted (None when there was nothing to
    say: no record, or a run that had not finished).
    """
    try:
        record = check_run_record(read_json(record_path), name, str(record_path))
    except FileNotFoundError:
        return None, None
    except RecordError as err:
        return None, f"{err}; a worker checks the run again"
    record = {k: record[k] for k in RECORD_SPEC if k in record}  # nothing else is carried on
    here = {"run_dir": str(run_dir), "seconds": 0.0}
    if record["status"] == "failed" and record["diverged"]:
        problem = _diverged_problem(run_dir, record, steps)
        if problem is None:
            return {**record, **here}, None
        return None, f"{record_path} says the run diverged, but {problem}; it is tried again"
    if record["status"] not in FINISHED:
        return None, None  # failed, interrupted, pending: a worker retries or resumes it
    if record["step"] < steps:
        return None, (
            f"{record_path} says the run finished at step {record['step']}, but it trains to "
            f"step {steps}; a worker checks the run again"
        )
    try:
        step = checkpoint_step(run_dir / rundirs.CHECKPOINT)
    except WganError as err:
        return None, f"study run '{name}' is recorded as finished, but {err}; it is trained again"
    if step != record["step"]:
        return None, (
            f"{record_path} says the run finished at step {record['step']}, but its checkpoint "
            f"is at step {step}; a worker checks the run again"
        )
    return {**record, **here, "status": "skipped", "error": None}, None


_STUDY_SPEC = {"runs": "list", "pid": "int?", "host": "str?", "started": "number?"}


def stale_note(path: Path) -> str | None:
    """One line if the earlier ``study.json`` at ``path`` left runs ``pending`` or ``running``
    (the launcher that wrote it stopped without recording their end: killed), or if it is not
    a valid record; None otherwise. Call it holding the study's lock: no live launcher can be
    writing the file then."""
    try:
        head = check_fields(read_json(path), _STUDY_SPEC, ("runs",), str(path))
        runs = [check_fields(r, {"status": "str"}, ("status",), str(path)) for r in head["runs"]]
    except FileNotFoundError:
        return None
    except RecordError as err:
        return f"{err}; it is written anew"
    left = [r for r in runs if r["status"] in STALE]
    if not left:
        return None
    who = "an earlier launcher"
    if head.get("pid") is not None:
        host = f" on {printable(head['host'], 80)}" if head.get("host") else ""
        who = f"the launcher pid {head['pid']}{host}"
    return (
        f"{path}: {len(left)} of {len(runs)} runs were left pending by {who}, which stopped "
        "without recording their end (killed); each is checked again"
    )
