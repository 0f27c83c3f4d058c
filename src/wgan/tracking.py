"""Where named statistics go: a JSONL file, TensorBoard, and the console progress bar.

The training loop is handed a :class:`Tracker` and calls ``log(step, values)``; it never touches
files or module globals itself. Values are plain Python numbers by the time they arrive here.
"""

from __future__ import annotations

import json
import math
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
    """Appends one JSON object per line; each line is flushed so a crash loses nothing logged."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def write(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as fh:
            fh.write(json.dumps(json_safe(record)) + "\n")

    def truncate_after(self, step: int) -> None:
        """Drop records logged after ``step`` (used when resuming from a checkpoint at ``step``)."""
        if not self.path.exists():
            return
        kept = [line for line in self.path.read_text().splitlines() if _step_of(line) <= step]
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("".join(line + "\n" for line in kept))
        tmp.replace(self.path)


def _step_of(line: str) -> int:
    try:
        return int(json.loads(line).get("step", -1))
    except (ValueError, AttributeError):
        return -1


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """All records of a JSONL file (lines that are not valid JSON are skipped)."""
    records = []
    if Path(path).exists():
        for line in Path(path).read_text().splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    return records


class Tracker:
    """Sends ``log(step, values, kind)`` to a metrics JSONL file and TensorBoard scalars."""

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
                if isinstance(value, (int, float)) and not isinstance(value, bool):
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
