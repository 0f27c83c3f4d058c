"""When a training loop logs, checks, evaluates, plots and saves, and its clock of training time.

One schedule serves the single-run loop (:meth:`wgan.training.trainer.Trainer.fit`) and the
stacked sweep (:meth:`wgan.scale.sweep.SweepTrainer.fit`), so both write ``metrics.jsonl``,
figures and checkpoints at the same steps and time them the same way.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from time import monotonic
from typing import Any


@dataclass(frozen=True)
class Due:
    """What the loop does after a generator iteration.

    ``log``: read the running statistics back (every ``log_every`` and ``checkpoint_every``
    steps, and at the last); ``evaluate``, ``figure``, ``save``: every ``eval_every``,
    ``figure_every``, ``checkpoint_every`` steps and at the last; ``check``: look for non-finite
    weights first, whenever one of those three is due (a non-finite state is never evaluated,
    drawn or saved).
    """

    log: bool
    evaluate: bool
    figure: bool
    save: bool

    @property
    def check(self) -> bool:
        return self.evaluate or self.figure or self.save


class Cadence:
    """The schedule of ``train`` (a :class:`wgan.config.TrainConfig`) and one clock.

    The clock measures training only: :meth:`outside` wraps what is not training (evaluation,
    figures, checkpoints), whose seconds are left out of ``time/step_s`` and counted in
    :attr:`outside_seconds`.

    Besides the steps, a checkpoint is due when ``train.checkpoint_minutes`` have passed since
    the last one (:meth:`checkpoint_due`, :meth:`saved`), so that a kill loses minutes of work,
    not a ``checkpoint_every`` interval that can be long on a slow machine. Such a checkpoint is
    a save only (no log, evaluation or figure), so it changes nothing in the training.
    """

    def __init__(self, train: Any) -> None:
        self.steps = int(train.steps)
        self.log_every, self.eval_every = int(train.log_every), int(train.eval_every)
        self.figure_every = int(train.figure_every)
        self.checkpoint_every = int(train.checkpoint_every)
        self.checkpoint_seconds = 60.0 * float(getattr(train, "checkpoint_minutes", 0.0) or 0.0)
        self._saved_at = monotonic()
        self.outside_seconds = 0.0
        self._start = self._then = time.perf_counter()
        self._then_step = 0

    def due(self, step: int) -> Due:
        """What is due after generator iteration ``step`` (1-based: the step just finished)."""

        def every(n: int) -> bool:
            return n > 0 and step % n == 0

        last = step == self.steps
        save = every(self.checkpoint_every) or last
        return Due(
            log=every(self.log_every) or save,
            evaluate=every(self.eval_every) or last,
            figure=every(self.figure_every) or last,
            save=save,
        )

    def checkpoint_due(self) -> bool:
        """Whether ``train.checkpoint_minutes`` (> 0) have passed since the last checkpoint (or
        since this clock was made)."""
        return self.checkpoint_seconds > 0 and monotonic() - self._saved_at >= (
            self.checkpoint_seconds
        )

    def saved(self) -> None:
        """A checkpoint was just written: the time-based cadence counts from now."""
        self._saved_at = monotonic()

    # -- the clock ------------------------------------------------------------------------------

    def start(self, step: int) -> None:
        """Start the clock at ``step`` (a fit begins, or a resumed run continues)."""
        self._start = self._then = time.perf_counter()
        self._then_step = step
        self.outside_seconds = 0.0

    def timing(self, step: int) -> dict[str, float]:
        """``wall_s`` (seconds since :meth:`start`) and ``time/step_s`` (training seconds per
        generator iteration since the last call), for ``metrics.jsonl``."""
        now = time.perf_counter()
        out = {"wall_s": now - self._start}
        if step > self._then_step:
            out["time/step_s"] = (now - self._then) / (step - self._then_step)
        self._then, self._then_step = now, step
        return out

    @contextmanager
    def outside(self) -> Iterator[None]:
        """Time spent in the block is not training time."""
        begin = time.perf_counter()
        try:
            yield
        finally:
            spent = time.perf_counter() - begin
            self.outside_seconds += spent
            self._then += spent


__all__ = ["Cadence", "Due"]
