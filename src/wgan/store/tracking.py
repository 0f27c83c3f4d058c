"""Where named statistics go: a JSONL file, TensorBoard, and the console progress bar.

The training loop is handed a :class:`Tracker` and calls ``log(step, values)``; it never touches
files or module globals itself. Values are plain Python numbers by the time they arrive here.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any


def json_safe(value: Any) -> Any:
    """NaN/inf are not JSON: write them as strings so every line stays parseable."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


class JsonlWriter:
    """Appends one JSON object per line; each line is flushed so a crash loses nothing logged.

    A process killed in the middle of a write leaves a torn last line (no newline). Such a line
    is cut off before the first new record is appended, so it never ends up in the middle of
    the file; :meth:`truncate_after` and :func:`read_jsonl` drop it too.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._checked_tail = False

    def write(self, record: dict[str, Any]) -> None:
        if not self._checked_tail:
            drop_torn_tail(self.path)
            self._checked_tail = True
        with self.path.open("a") as fh:
            fh.write(json.dumps(json_safe(record)) + "\n")

    def truncate_after(self, step: int) -> None:
        """Drop records logged after ``step`` (used when resuming from a checkpoint at ``step``),
        and lines that are not JSON objects (a torn line of a killed process).

        The file is rewritten atomically (temporary file, fsync, ``os.replace``).
        """
        if not self.path.exists():
            return
        kept = [line for line, record in _parsed_lines(self.path) if _step_of(record) <= step]
        tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        try:
            with tmp.open("w") as fh:
                fh.write("".join(line + "\n" for line in kept))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        finally:
            if tmp.exists():
                tmp.unlink()
        self._checked_tail = True


def drop_torn_tail(path: Path) -> bool:
    """Cut a torn last line (no newline, not a complete JSON object: a write interrupted by a
    kill) off ``path``; a complete last record that only lacks its newline gets one.

    Returns whether the file was changed. A missing or empty file is left alone.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError:
        return False
    if size == 0:
        return False
    with path.open("rb+") as fh:
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return False
        # Find the last newline, reading backwards in blocks.
        end, cut = size, 0
        while end > 0:
            start = max(0, end - 65536)
            fh.seek(start)
            block = fh.read(end - start)
            i = block.rfind(b"\n")
            if i >= 0:
                cut = start + i + 1
                break
            end = start
        fh.seek(cut)
        if _record(fh.read(size - cut).decode("utf-8", errors="replace")) is not None:
            fh.seek(size)
            fh.write(b"\n")
        else:
            fh.truncate(cut)
    return True


def _record(line: str) -> dict[str, Any] | None:
    """``line`` as a JSON object, or None (not JSON, torn, or not an object)."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _parsed_lines(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(line, record) for each line of ``path`` that is a JSON object.

    Other lines are dropped: a torn last line (the writer was killed mid-write) and anything
    that is not valid JSON; bytes that are not UTF-8 do not raise.
    """
    data = Path(path).read_bytes().decode("utf-8", errors="replace")
    out = []
    for line in data.split("\n"):
        record = _record(line) if line.strip() else None
        if record is not None:
            out.append((line, record))
    return out


def _step_of(record: dict[str, Any]) -> int:
    try:
        return int(record.get("step", -1))
    except (ValueError, TypeError, OverflowError):
        return -1


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """All records of a JSONL file: its complete lines that are JSON objects (a torn last line,
    invalid JSON and non-object lines are skipped; a missing file has none)."""
    if not Path(path).exists():
        return []
    return [record for _, record in _parsed_lines(Path(path))]


def is_count(name: str) -> bool:
    """Whether a statistic is a size of the measurement (``n_samples``, ``n_modes``, ...): set
    by the config, the same at every evaluation, so it is kept out of TensorBoard, where a flat
    line says nothing (metrics.jsonl still has it)."""
    return name.startswith("n_")


class Tracker:
    """Sends ``log(step, values, kind)`` to a metrics JSONL file and TensorBoard scalars.

    Every value goes to the JSONL file; numbers that are not counts (:func:`is_count`) also
    become TensorBoard scalars tagged ``<kind>/<name>`` (e.g. ``train/lr/d``, ``eval/w1``).
    """

    def __init__(self, run_dir: Path, tensorboard: bool = True, purge_step: int | None = None):
        self.jsonl = JsonlWriter(Path(run_dir) / "metrics.jsonl")
        self.tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(Path(run_dir) / "tb"), purge_step=purge_step)

    def log(self, step: int, values: dict[str, Any], kind: str = "train") -> None:
        self.jsonl.write({"kind": kind, "step": step, **values})
        if self.tb is not None:
            for name, value in values.items():
                number = isinstance(value, (int, float)) and not isinstance(value, bool)
                if number and not is_count(name):
                    self.tb.add_scalar(f"{kind}/{name}", value, step)

    def figure(self, tag: str, fig, step: int) -> None:
        if self.tb is not None:
            self.tb.add_figure(tag, fig, step, close=False)

    def image(self, tag: str, grid, step: int) -> None:
        """A (C, H, W) image in [0, 1], e.g. a grid of samples, to TensorBoard."""
        if self.tb is not None:
            self.tb.add_image(tag, grid, step, dataformats="CHW")

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
