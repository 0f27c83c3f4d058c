"""Studies: many ordinary runs, each in its own run directory, carried out by a launcher.

A study is a list of ``(name, config)`` pairs. Run ``name`` lives in ``STUDY_DIR/name/``, a
normal run directory (``config.yaml``, ``metrics.jsonl``, ``tb/``, ``figures/``,
``checkpoint.pt``) that ``wgan eval``, ``wgan sample`` and ``wgan train --resume`` accept.
:func:`run_study` carries the runs out through a launcher (:mod:`wgan.scale.launchers`:
``local`` processes, or ``ray``) and writes ``STUDY_DIR/study.json`` with one record per run
after each run ends.

Re-running a study with the same settings continues it: a finished run (its checkpoint loads
and is at ``train.steps``, the step its record names; records are checked, never trusted:
:mod:`wgan.scale.records`) is skipped, an interrupted one resumes from its last checkpoint
(bit-exact: the checkpoint holds the models, optimisers and random streams), and one killed
before its first checkpoint, or whose checkpoint does not load, trains again from the start.
An interruption of the study (Ctrl-C, a killed machine) therefore loses at most the iterations
since the last checkpoint of the runs in flight.

One study directory is run by one process at a time (its ``.lock``, as a run's): a second
``run_study`` on it is refused at once; each run is locked by its own worker too.

A name already in the study directory must come with the config it was trained with, up to
:data:`IGNORED` and the keys a resume may change (:data:`wgan.config.RESUME_MAY_CHANGE`): a
study run again with ``train.steps=N`` (or another such key) extends its runs, each resumed from
its checkpoint as ``wgan train --resume RUN train.steps=N`` would (:mod:`wgan.scale.study_extend`).
A config that differs in any other key is refused, naming the key and both values, before
anything runs (give the changed run another name, or delete its directory).

With a ``progress`` writer, a line says when each run starts and when it ends, with its step and
metrics (:mod:`wgan.scale.study_progress`).
"""

from __future__ import annotations

import copy
import json
import os
import re
import socket
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from wgan.config import Config, apply_mapping, validate
from wgan.errors import ConfigError, WganError
from wgan.scale.launchers import LAUNCHERS, RUN_RECORD, check_launcher, launch
from wgan.scale.records import check_run_record, finished_record, stale_note
from wgan.scale.stack import stack_groups
from wgan.scale.study_extend import describe_changes, study_changes
from wgan.scale.study_progress import StudyProgress
from wgan.store import rundirs
from wgan.store.printable import printable
from wgan.store.schema import RecordError
from wgan.store.tracking import json_safe
from wgan.training.threads import cpu_cores

__all__ = ["IGNORED", "LAUNCHERS", "MAX_JOBS", "MAX_RUNS", "STATUSES", "run_study"]

STATUSES = ("done", "skipped", "resumed", "failed")
"""A run's status in its record: trained from scratch now, already finished, continued from
its last checkpoint, or stopped by an error (``error`` holds the message; ``diverged`` is set
for a divergence, which is final while the run's checkpoint is the one the divergence left: a
re-run reports it again without training it). While the study
runs, ``study.json`` shows the runs not yet ended as ``"pending"``, and after an interruption
(Ctrl-C) as ``"interrupted"``."""

IGNORED = ("out_dir", "train.progress", "train.device", "train.inception_weights")
"""Config keys that may differ from the config an existing run of the study was trained with:
where the study directory is, the progress bar, the device it computes on, and the user's
Inception weights file. Any other difference is refused."""

MAX_RUNS = 100_000
"""The most runs one study takes."""

MAX_JOBS = 1024
"""The most runs a launcher keeps in flight at once."""

RECORDS = "study.json"
WORK = ".study"  # the local launcher's task, record and log files
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name) or len(name) > 200:
        raise ConfigError(
            f"study run name {name!r} is not a folder name: use letters, digits, '.', '_' and "
            "'-', starting with a letter or digit (at most 200 characters)"
        )
    if name == RECORDS:
        raise ConfigError(f"study run name '{name}' is reserved (the study's records file)")
    return name


def _saved_config(run_dir: Path) -> Config | None:
    """The config an existing run directory was trained with (None: nothing there yet)."""
    if not run_dir.exists():
        return None
    if not run_dir.is_dir():
        raise WganError(f"{run_dir} is a file, not a run directory of this study")
    if not (run_dir / rundirs.CONFIG).is_file():
        leftovers = [p.name for p in run_dir.iterdir() if p.name != rundirs.LOCK]
        if leftovers:
            raise WganError(
                f"{run_dir} exists and is not a run directory (no {rundirs.CONFIG}); move it away "
                "or give the run another name"
            )
        return None
    saved = Config()
    try:
        apply_mapping(saved, rundirs.read_config(run_dir))
    except ConfigError as err:
        raise ConfigError(f"{err} (in {run_dir / rundirs.CONFIG})") from None
    return saved


def _check_same(name: str, run_dir: Path, cfg: Config) -> dict[str, tuple[Any, Any]]:
    """Refuse a config that differs from the one ``run_dir`` was trained with in a key that a
    resume may not change; return the keys it may change that differ (the run is extended:
    :mod:`wgan.scale.study_extend`), ``key -> (old, new)``."""
    saved = _saved_config(run_dir)
    if saved is None:
        return {}
    extends, diff = study_changes(saved, cfg, IGNORED)
    if not diff:
        return extends
    key, (old, new) = next(iter(diff.items()))
    more = f" (and {len(diff) - 1} more keys)" if len(diff) > 1 else ""
    raise ConfigError(
        f"study run '{name}' in {run_dir} was trained with {key}={old!r}, now {key}={new!r}"
        f"{more}; a study does not mix configs under one name (only keys a resume may change, "
        f"such as train.steps, extend its runs): give the run another name, or delete "
        f"{run_dir} to train it again"
    )


def _note(text: str) -> None:
    """One line to stderr; ``text`` may hold what a file said, so it is escaped."""
    sys.stderr.write(f"wgan: {printable(text, 1000)}\n")


def _finished(run_dir: Path, cfg: Config, quiet: bool = False) -> dict[str, Any] | None:
    """The record a finished run left (:data:`RUN_RECORD`), as a "skipped" record (a diverged
    run's stays "failed", with ``diverged``), once checked against the run's checkpoint
    (:func:`wgan.scale.records.finished_record`); None if a worker must decide. A record that
    was not trusted is reported in one line (unless ``quiet``: a run the study extends to more
    steps), and the run goes to a worker."""
    name = run_dir.name
    record, note = finished_record(run_dir, run_dir / RUN_RECORD, name, cfg.train.steps)
    if note is not None and not quiet:
        _note(note)
    return record


def _default_threads(launcher: str, jobs: int) -> int | None:
    if launcher == "ray":
        return 1
    if jobs == 1:
        return None  # as a plain `wgan train`: as many as other processes leave free
    return max(1, cpu_cores() // jobs)


def _write_records(study_dir: Path, head: dict[str, Any], records: list[dict[str, Any]]) -> None:
    text = json.dumps(json_safe({**head, "runs": records}), indent=1)
    rundirs.write_text_atomic(study_dir / RECORDS, text)


def run_study(
    runs: Sequence[tuple[str, Config]],
    study_dir: str | Path,
    launcher: str = "local",
    jobs: int = 1,
    address: str | None = None,
    threads: int | None = None,
    stack: bool = False,
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Train every ``(name, config)`` run in ``study_dir/name/`` through ``launcher``.

    ``launcher="local"`` runs ``jobs`` worker processes at a time on this machine;
    ``launcher="ray"`` runs the runs as Ray tasks (``jobs`` in flight) on the cluster at
    ``address``, or on a local Ray. ``threads`` is the number of CPU threads each run's torch
    uses (default: torch's own for one local job, the CPU count / ``jobs`` for several, 1 per
    Ray task); runs of the same config give identical results under either launcher at the
    same ``threads``, equal to a plain ``wgan train`` with that many threads.

    ``stack=True`` trains the fresh runs that share shapes (configs that differ only in
    :data:`wgan.scale.sweep_plan.MAY_DIFFER` keys) together, one vectorised step per group
    (:mod:`wgan.scale.stack`; equal to separate runs up to float rounding, not bit for bit).

    ``progress`` (e.g. a function that writes to stderr) is given a line as each run starts
    and ends, with its step and metrics (:class:`wgan.scale.study_progress.StudyProgress`).

    Everything is checked before any run starts: names (unique folder names), configs
    (validated; a name already in ``study_dir`` must have the same config up to
    :data:`IGNORED`, or differ only in keys a resume may change, such as ``train.steps``: the
    run is then resumed to the new values, as ``wgan train --resume`` would,
    :mod:`wgan.scale.study_extend`), ``launcher``, ``jobs`` and ``threads``. Returns one
    record per run, in the order given: ``name``, ``run_dir``, ``status`` (one of
    :data:`STATUSES`), ``step``, ``metrics`` (the final evaluation), ``error`` (None unless
    failed), ``diverged``, ``seconds``. A failed run does not stop the others and is not
    raised; the records are also written to ``study_dir/study.json`` as runs end.
    """
    if launcher not in LAUNCHERS:
        raise ConfigError(f"unknown launcher '{launcher}' (choose {', '.join(LAUNCHERS)})")
    if not isinstance(jobs, int) or not 1 <= jobs <= MAX_JOBS:
        raise ConfigError(f"jobs must be an integer in [1, {MAX_JOBS}], got {jobs!r}")
    if threads is not None and (not isinstance(threads, int) or not 1 <= threads <= 1024):
        raise ConfigError(f"threads must be an integer in [1, 1024], got {threads!r}")
    if address is not None and launcher != "ray":
        raise ConfigError("an address is for the ray launcher (launcher='ray')")
    runs = list(runs)
    if not runs:
        raise ConfigError("a study needs at least one run")
    if len(runs) > MAX_RUNS:
        raise ConfigError(f"a study takes at most {MAX_RUNS:,} runs, got {len(runs):,}")
    check_launcher(launcher, address)  # Ray installed, its address reachable
    study_dir = Path(study_dir).expanduser()
    seen: set[str] = set()
    planned: list[tuple[str, Config]] = []
    for item in runs:
        if not (isinstance(item, (tuple, list)) and len(item) == 2):
            raise ConfigError(f"a study run is a (name, Config) pair, got {type(item).__name__}")
        if not isinstance(item[1], Config):
            raise ConfigError(
                f"study run {item[0]!r}: its config must be a wgan.config.Config, got "
                f"{type(item[1]).__name__}"
            )
        name, cfg = _check_name(item[0]), copy.deepcopy(item[1])
        if name in seen:
            raise ConfigError(f"study run name '{name}' is given twice")
        seen.add(name)
        cfg.out_dir = str(study_dir)
        planned.append((name, validate(cfg)))
    rundirs.check_out_dir(study_dir, "study directory")
    try:
        with rundirs.lock_run(study_dir):  # one launcher per study directory at a time
            return _run_locked(
                planned, study_dir, launcher, jobs, address, threads, stack, progress
            )
    except rundirs.RunLockedError:
        raise WganError(
            f"study {study_dir} is being run by another process "
            f"({_holder(study_dir)}); wait for it to finish or stop it first"
        ) from None


def _holder(study_dir: Path) -> str:
    try:
        text = (study_dir / rundirs.LOCK).read_text().strip()
    except OSError:
        text = ""
    return f"pid {text}" if text.isdigit() else "pid unknown"


def _run_locked(
    planned: list[tuple[str, Config]],
    study_dir: Path,
    launcher: str,
    jobs: int,
    address: str | None,
    threads: int | None,
    stack: bool = False,
    progress: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """:func:`run_study` once its arguments are checked, holding the study's lock."""
    tasks = []
    records: dict[str, dict[str, Any]] = {}
    todo = []
    # Every config is compared before any run starts; keys a resume may change extend a run.
    extends = {name: _check_same(name, study_dir / name, cfg) for name, cfg in planned}
    for name, cfg in planned:
        task = {
            "name": name,
            "run_dir": str(study_dir / name),
            "config": cfg.to_dict(),
            "threads": threads or _default_threads(launcher, jobs),
        }
        tasks.append(task)
        done = _finished(study_dir / name, cfg, quiet="train.steps" in extends[name])
        records[name] = done or {"name": name, "run_dir": task["run_dir"], "status": "pending"}
        if done is None:
            todo.append(task)
    changes = [describe_changes(extends[t["name"]]) for t in todo if extends[t["name"]]]
    for change in sorted(set(changes)):  # the runs a worker resumes with new values
        _note(f"{changes.count(change)} study run(s) continue with {change}, as a resume would")
    stale = stale_note(study_dir / RECORDS)  # we hold the lock: no launcher writes it now
    if stale is not None:
        _note(stale)
    head = {
        "launcher": launcher,
        "jobs": jobs,
        "started": time.time(),
        "pid": os.getpid(),
        "host": socket.gethostname(),
    }
    _write_records(study_dir, head, list(records.values()))
    lines = None
    if progress is not None:
        steps = {name: cfg.train.steps for name, cfg in planned}
        lines = StudyProgress([name for name, _ in planned], steps, progress)
        lines.begin([r for r in records.values() if r["status"] != "pending"], len(todo))
    if not todo:
        return [records[t["name"]] for t in tasks]
    if stack:
        todo = stack_groups(todo)
    stream = launch(
        launcher,
        todo,
        min(jobs, len(todo)),
        study_dir / WORK,
        address=address,
        threads=threads or 1,
        **({} if lines is None else {"on_start": lines.started}),
    )
    try:
        for record in stream:
            checked = _checked(record, records)
            if checked is not None:
                records[checked["name"]] = checked
                _write_records(study_dir, head, list(records.values()))
                if lines is not None:
                    lines.ended(checked)
    except BaseException:  # Ctrl-C: the runs in flight keep their last checkpoints
        for name, record in records.items():
            if record.get("status") == "pending":
                records[name] = {**record, "status": "interrupted"}
        _write_records(study_dir, head, list(records.values()))
        raise
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()  # stops the workers still running if we leave early (Ctrl-C)
    lost = [name for name, r in records.items() if r.get("status") == "pending"]
    for name in lost:  # its worker's record was refused (reported) or never came back
        records[name] = {
            **records[name],
            "status": "failed",
            "step": 0,
            "metrics": {},
            "error": "no valid record came back from its worker; run the study again to retry it",
            "diverged": False,
            "seconds": 0.0,
        }
    if lost:
        _write_records(study_dir, head, list(records.values()))
    return [records[t["name"]] for t in tasks]


def _checked(record: Any, records: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """A worker's record if it is valid and names a run of this study still pending; else one
    line saying what was wrong, and None (the run stays pending, and then fails)."""
    try:
        checked = check_run_record(record, None, "a worker's record")
    except RecordError as err:
        _note(f"{err}; it is ignored")
        return None
    if records.get(checked["name"], {}).get("status") != "pending":
        _note(
            f"a worker's record of run '{printable(checked['name'], 60)}' is ignored: no such "
            "run is in flight"
        )
        return None
    return {**checked, "run_dir": records[checked["name"]]["run_dir"]}
