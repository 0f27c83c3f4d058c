"""The lines a study prints while it runs: one when a run starts, one when it ends.

``wgan study`` hands :func:`wgan.scale.study.run_study` a line writer (stderr); the study calls
:class:`StudyProgress` as its launcher starts each run (``[2/8] toy-wgan-gp-seed1: started,
training to step 2000``) and as each run's record comes back (``[2/8] toy-wgan-gp-seed1: done
at step 2000 in 81.4 s: modes 8/8, hq 0.94, w1 0.052 (real 0.047)``), so that a long study
shows what it is doing and what each run reached while the others train. File text is escaped.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from wgan.store.printable import printable
from wgan.store.run_index import metrics_summary
from wgan.store.rundirs import CHECKPOINT

__all__ = ["StudyProgress"]


class StudyProgress:
    """Progress lines of a study of the runs ``names`` (in the study's order), each training to
    ``steps[name]``, written with ``write`` (one line, without its newline)."""

    def __init__(
        self, names: list[str], steps: dict[str, int], write: Callable[[str], None]
    ) -> None:
        self.index = {name: i + 1 for i, name in enumerate(names)}
        self.steps = steps
        self.write = write
        self.ended_count = 0

    def _line(self, name: str, text: str) -> None:
        where = f"[{self.index.get(name, '?')}/{len(self.index)}] {printable(name, 200)}"
        self.write(f"wgan: study: {where}: {text}")

    def begin(self, finished: list[dict[str, Any]], todo: int) -> None:
        """Before the first run starts: how many runs are finished already, how many to go."""
        self.ended_count = len(finished)
        names = ", ".join(printable(r.get("name"), 60) for r in finished[:5])
        more = f", ... ({len(finished)} in all)" if len(finished) > 5 else ""
        done = f"; already finished: {names}{more}" if finished else ""
        self.write(f"wgan: study: {todo} of {len(self.index)} runs to train{done}")

    def started(self, task: dict[str, Any]) -> None:
        """A launcher started ``task`` (one run, or a group of runs stacked together)."""
        members = task.get("group", [task])
        stacked = f" (stacked with {len(members) - 1} more)" if len(members) > 1 else ""
        for member in members:
            name = member["name"]
            has = " (it has a checkpoint)" if self._has_checkpoint(member) else ""
            self._line(name, f"started, training to step {self.steps.get(name, '?')}{has}{stacked}")

    @staticmethod
    def _has_checkpoint(task: dict[str, Any]) -> bool:
        return (Path(task["run_dir"]) / CHECKPOINT).is_file()

    def ended(self, record: dict[str, Any]) -> None:
        """A run's record came back (checked by the study)."""
        self.ended_count += 1
        seconds = record.get("seconds")
        took = f" in {seconds:.1f} s" if isinstance(seconds, (int, float)) else ""
        step = record.get("step")
        if record.get("diverged"):
            text = f"diverged by step {step}{took}"
        elif record.get("status") == "failed":
            text = f"failed{took}: {printable(record.get('error'), 300)}"
        else:
            summary = metrics_summary(record.get("metrics") or {})
            text = f"{printable(record.get('status'), 20)} at step {step}{took}: {summary}"
        self._line(record["name"], f"{text} ({self.ended_count} of {len(self.index)} ended)")
