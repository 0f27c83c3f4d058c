"""Every run under a folder, one row each: what ``wgan runs`` prints (:func:`list_runs`); the
runs a command that reads runs is given are :func:`wgan.store.run_targets.run_targets`.

Runs come in three layouts, all ordinary run directories (``config.yaml``, ``metrics.jsonl``,
``provenance.json``, ``checkpoint.pt``):

* a single run, ``runs/00000-toy-wgan-gp``;
* a member of a stacked sweep, ``runs/00005-toy-wgan-gp-sweep/00000-seed0`` (the sweep's folder
  holds ``sweep.json``);
* a member of a study, ``runs/toy-wgan-gp-study/toy-wgan-gp-seed0`` (the study's folder holds
  ``study.json``; a sweep that could not be stacked is a study too).

A row says what the run is (its config's name and data), how far it got (``step`` of
``steps``), its ``status`` (the last session of its ``provenance.json``: ``finished``,
``interrupted``, ``diverged``, ``running``, ``killed`` or ``failed``; a ``running`` session
whose process is gone is ``killed``), whether ``wgan train --resume`` can continue it, and its
last evaluation with the real-vs-real baselines recorded beside the metrics (``w1_baseline``,
``js1_baseline``, ...). Every file is data, read boundedly and never trusted
(:mod:`wgan.store.schema`): a file that cannot be read gives the row a note instead of stopping
the listing. Experiments' own training cells (folders ``NNNNN-exp-NAME``) are not listed.

Only the standard library and PyYAML are imported: listing runs loads neither torch nor NumPy.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import stat
from pathlib import Path
from typing import Any

import yaml

from wgan.errors import WganError
from wgan.store import provenance
from wgan.store.printable import printable
from wgan.store.rundirs import CHECKPOINT, CONFIG, LOCK, pid_alive
from wgan.store.schema import RecordError

try:  # POSIX; elsewhere a run's lock is not probed
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "BASELINE_SUFFIXES",
    "GROUP_FILES",
    "group_kind",
    "group_members",
    "is_run_dir",
    "list_runs",
    "metric_pairs",
    "metrics_summary",
    "read_records",
    "row_summary",
    "run_row",
]

GROUP_FILES = {"sweep.json": "sweep", "study.json": "study"}
"""The file that makes a folder a group of runs, and the group's kind."""

BASELINE_SUFFIXES = ("_baseline", "_floor")
"""A metric ``K`` recorded with ``K_baseline`` (or ``K_floor``): the value two independent sets
of real data reach, the best a perfect generator can do at that sample size."""

MAX_DEPTH = 4
"""How deep below the folder runs are looked for (a run inside a sweep inside ``runs/report``
is three levels down)."""

MAX_FOLDERS = 100_000
"""The most folders one listing visits."""

TAIL_BYTES = 4 << 20
"""How much of the end of ``metrics.jsonl`` a row reads (its last evaluation is there)."""

MAX_CONFIG_BYTES = 1 << 20
"""The largest ``config.yaml`` read (a run's is a few KB)."""

STATUS = {
    "completed": "finished",
    "diverged": "diverged",
    "interrupted": "interrupted",
    "killed": "killed",
    "running": "running",
}
"""A session's status in ``provenance.json`` -> the row's (``failed: X`` -> ``failed``)."""

_EXPERIMENT = re.compile(r"^\d{5}-exp-")

# --------------------------------------------------------------------------------- finding runs


def is_run_dir(path: str | Path) -> bool:
    """Whether ``path`` is a run directory (it holds ``config.yaml`` or ``checkpoint.pt``)."""
    path = Path(path)
    return (path / CONFIG).is_file() or (path / CHECKPOINT).is_file()


def group_kind(path: str | Path) -> str | None:
    """``"sweep"`` or ``"study"`` for the folder of a sweep or a study, else None."""
    for name, kind in GROUP_FILES.items():
        if (Path(path) / name).is_file():
            return kind
    return None


def _subfolders(path: Path) -> list[Path]:
    try:
        entries = sorted(os.scandir(path), key=lambda e: e.name)
    except OSError:
        return []
    out = []
    for entry in entries:
        try:
            if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
                continue
        except OSError:
            continue
        out.append(Path(entry.path))
    return out


def group_members(path: str | Path) -> list[Path]:
    """The run directories directly inside the folder ``path`` (a sweep's or a study's), by
    name."""
    return [p for p in _subfolders(Path(path)) if is_run_dir(p)]


def find_runs(root: str | Path) -> list[tuple[Path, Path | None]]:
    """``(run_dir, group)`` for every run under ``root`` (``root`` itself if it is a run), by
    path; ``group`` is the sweep or study folder the run is a member of, or None."""
    root = Path(root)
    if is_run_dir(root):
        parent = root.parent
        return [(root, parent if group_kind(parent) else None)]
    found: list[tuple[Path, Path | None]] = []
    queue, visited = [(root, 0)], 0
    while queue and visited < MAX_FOLDERS:
        folder, depth = queue.pop()
        visited += 1
        group = folder if group_kind(folder) else None
        for sub in _subfolders(folder):
            if is_run_dir(sub):
                found.append((sub, group))
            elif depth + 1 < MAX_DEPTH and not _EXPERIMENT.match(sub.name):
                queue.append((sub, depth + 1))
    return sorted(found, key=lambda item: str(item[0]))


# ------------------------------------------------------------------------------------ reading files


def _read_config(run_dir: Path, notes: list[str]) -> dict[str, Any]:
    path = run_dir / CONFIG
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            notes.append(f"{CONFIG} is larger than {MAX_CONFIG_BYTES:,} bytes; not read")
            return {}
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        notes.append(f"no {CONFIG}")
        return {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        notes.append(f"{CONFIG} cannot be read: {str(err).splitlines()[0] if str(err) else err}")
        return {}
    if not isinstance(data, dict):
        notes.append(f"{CONFIG} does not hold a config mapping")
        return {}
    return data


def _open_regular(path: Path) -> int:
    """A file descriptor of the regular file ``path`` (a FIFO in its place must not hang)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{path} is not a regular file")
    os.set_blocking(fd, True)
    return fd


def read_records(path: str | Path, max_bytes: int | None = None) -> list[dict[str, Any]]:
    """The JSON objects of the lines of a ``metrics.jsonl`` (its last ``max_bytes`` only, when
    given): torn, invalid and non-object lines are skipped, a missing file has none. An
    unreadable file raises :class:`OSError`."""
    try:
        fd = _open_regular(Path(path))
    except FileNotFoundError:
        return []
    with os.fdopen(fd, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if max_bytes is not None and size > max_bytes:
            fh.seek(size - max_bytes)
            fh.readline()  # a partial first line
        data = fh.read()
    out = []
    for line in data.decode("utf-8", errors="replace").split("\n"):
        try:
            record = json.loads(line) if line.strip() else None
        except ValueError:
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


def _count(value: Any) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return value if ok else None


def _lock_held(run_dir: Path) -> bool | None:
    """Whether a process holds the run's lock (None: cannot tell); nothing is written."""
    if fcntl is None:  # pragma: no cover
        return None
    try:
        fd = _open_regular(run_dir / LOCK)
    except FileNotFoundError:
        return False
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return None
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _pid_alive(pid: Any) -> bool:
    """Whether ``pid``, as read from a record (any type), is a live process here."""
    return _count(pid) is not None and pid != 0 and pid_alive(pid)


def _running_or_killed(run_dir: Path, entry: dict[str, Any], notes: list[str]) -> str:
    """A session recorded as ``running``: ``running`` if its process is alive (it holds the
    run's lock, or its pid is alive on this machine), else ``killed``. On another machine it
    cannot be told, and the record is believed."""
    host = entry.get("host", {}).get("name")
    if isinstance(host, str) and host != socket.gethostname():
        notes.append(f"running on {printable(host, 80)}, by its record (not checked from here)")
        return "running"
    if _lock_held(run_dir) or _pid_alive(entry.get("pid")):
        return "running"
    return "killed"


# -------------------------------------------------------------------------------------------- rows


def metric_pairs(metrics: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(name, value, baseline)`` for each metric of an evaluation record, in its order; the
    baseline (``NAME_baseline`` or ``NAME_floor``) is None when none was recorded, and the
    baselines themselves are not listed on their own."""
    keys = set(metrics)
    out = []
    for key, value in metrics.items():
        if any(key.endswith(s) and key[: -len(s)] in keys for s in BASELINE_SUFFIXES):
            continue
        base = next((metrics[key + s] for s in BASELINE_SUFFIXES if key + s in metrics), None)
        out.append((key, value, base))
    return out


_HEADLINE = (
    "modes_captured",
    "high_quality_fraction",
    "w1",
    "classes_covered",
    "fd_classifier",
    "fd_features",
    "fd",
    "fid",
    "kid",
    "inception_score",
    "precision",
    "recall",
    "js1",
    "js4",
    "modes_covered",
    "conditional_accuracy",
)
_SHORT = {"high_quality_fraction": "hq", "inception_score": "IS", "kl_to_uniform": "kl"}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else printable(value, 40)


def metrics_summary(metrics: dict[str, Any], limit: int = 5) -> str:
    """A few headline metrics of an evaluation record on one line, each baseline beside its
    metric: ``modes 8/8, hq 0.93, w1 0.061 (real 0.048)``; ``-`` for none. File text is
    escaped."""
    pairs = {k: (v, b) for k, v, b in metric_pairs(metrics) if _number(v)}
    keys = [k for k in _HEADLINE if k in pairs]
    keys += [k for k, (v, _) in pairs.items() if isinstance(v, float) and k not in keys]
    parts = []
    for key in keys[:limit]:
        value, base = pairs[key]
        if key == "modes_captured":
            parts.append(f"modes {_fmt(value)}/{_fmt(metrics.get('n_modes', '?'))}")
            continue
        text = f"{printable(_SHORT.get(key, key), 40)} {_fmt(value)}"
        if _number(base):
            text += f" (real {_fmt(base)})"
        parts.append(text)
    return ", ".join(parts) or "-"


def row_summary(row: dict[str, Any]) -> str:
    """A row's last metrics on one line (:func:`metrics_summary`), or, for a run not evaluated
    yet, the critic's last estimate (``critic estimate 0.091``)."""
    if row["metrics"] or row.get("critic_estimate") is None:
        return metrics_summary(row["metrics"])
    return f"critic estimate {_fmt(float(row['critic_estimate']))}"


def _provenance_status(run_dir: Path, notes: list[str]) -> tuple[str | None, dict[str, Any]]:
    """(status, last session) from ``provenance.json``; (None, {}) when there is none."""
    try:
        entries = provenance.read(run_dir)
    except RecordError as err:
        notes.append(str(err))
        return "unreadable", {}
    if not entries:
        return None, {}
    last = entries[-1]
    status = last["status"]
    if status == "running":
        return _running_or_killed(run_dir, last, notes), last
    if status.startswith("failed: "):
        notes.append(f"its last session {printable(status, 100)}")
        return "failed", last
    return STATUS.get(status, "unknown"), last


def run_row(run_dir: str | Path, root: str | Path | None = None, group: Path | None = None) -> dict:
    """One row of :func:`list_runs` for the run in ``run_dir`` (paths shown relative to
    ``root``; ``group``: the sweep's or study's folder it belongs to)."""
    run_dir = Path(run_dir)
    notes: list[str] = []
    cfg = _read_config(run_dir, notes)
    train = cfg.get("train") if isinstance(cfg.get("train"), dict) else {}
    data = cfg.get("data") if isinstance(cfg.get("data"), dict) else {}
    try:
        records = read_records(run_dir / "metrics.jsonl", TAIL_BYTES)
    except OSError as err:
        notes.append(f"metrics.jsonl cannot be read: {printable(err, 200)}")
        records = []
    evals = [r for r in records if r.get("kind") == "eval"]
    trains = [r for r in records if r.get("kind") == "train"]
    steps_seen = [s for s in (_count(r.get("step")) for r in records) if s is not None]
    status, last = _provenance_status(run_dir, notes)
    step = _count(last.get("end_step")) if status not in ("running", "killed") else None
    if step is None:  # in flight, or killed before recording its end: the last step logged
        step = max(steps_seen, default=_count(last.get("start_step")) or 0)
    steps = _count(train.get("steps"))
    if status is None:  # no provenance.json (a run of an older version, an experiment's cell)
        diverged = any(r.get("kind") == "error" and r.get("event") == "diverged" for r in records)
        status = "diverged" if diverged else "finished" if steps and step >= steps else "unknown"
        notes.append("no provenance.json; the status is read from metrics.jsonl")
    has_ckpt = (run_dir / CHECKPOINT).is_file()
    resumable = has_ckpt or (run_dir / CONFIG).is_file()
    metrics = {k: v for k, v in evals[-1].items() if k not in ("kind", "step")} if evals else {}
    estimate = trains[-1].get("d/estimate") if trains else None
    shown = run_dir if root is None else _relative(run_dir, Path(root))
    source = data.get("path")
    return {
        "run": str(shown),
        "path": str(run_dir),
        "group": None if group is None else str(group),
        "layout": group_kind(group) if group is not None else "single",
        "preset": cfg.get("name") if isinstance(cfg.get("name"), str) else None,
        "data": data.get("name") if isinstance(data.get("name"), str) else None,
        "data_path": source if isinstance(source, str) else None,
        "step": step,
        "steps": steps,
        "status": status,
        "resumable": resumable,
        "checkpoint": has_ckpt,
        "resume": shlex.join(["wgan", "train", "--resume", str(run_dir)]) if resumable else None,
        "metrics": metrics,
        "metrics_step": _count(evals[-1].get("step")) if evals else None,
        "baselines": {k: b for k, _, b in metric_pairs(metrics) if b is not None},
        "critic_estimate": estimate if _number(estimate) else None,
        "notes": notes,
    }


def _relative(path: Path, root: Path) -> Path:
    try:
        rel = path.relative_to(root)
    except ValueError:
        return path
    return rel if str(rel) != "." else Path(path.name)


def list_runs(root: str | Path = "runs") -> list[dict[str, Any]]:
    """One row per run under the folder ``root`` (or ``root`` itself if it is a run, a sweep or
    a study), by path: single runs, sweep members and study members alike.

    Each row is a dict: ``run`` (its path relative to ``root``), ``path``, ``group`` (its
    sweep's or study's folder, or None) and ``layout`` (``single``, ``sweep`` or ``study``),
    ``preset`` (the config's name), ``data`` and ``data_path``, ``step`` (reached) and
    ``steps`` (``train.steps``), ``status`` (``finished``, ``interrupted``, ``diverged``,
    ``running``, ``killed``, ``failed``; ``unknown`` without a record of it, ``unreadable`` for
    a record that is not valid), ``resumable`` and ``resume`` (the command that continues it),
    ``checkpoint``, ``metrics`` (the last evaluation) and ``metrics_step``, ``baselines``
    (metric -> real-vs-real value), ``critic_estimate`` (the critic's last logged estimate of
    the divergence, ``d/estimate``) and ``notes`` (what could not be read).

    Raises :class:`WganError` if ``root`` is not a folder.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise WganError(f"runs folder not found: {printable(root)}")
    return [run_row(run, root, group) for run, group in find_runs(root)]
