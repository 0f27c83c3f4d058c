"""Errors that the CLI reports as one clear line instead of a traceback.

Two classes, told apart by the exit status of the ``wgan`` command:

* :class:`WganError` (and :class:`ConfigError`, :class:`DataError`, ...): the user's input is
  wrong (a config key, a file, a path, a size); exit status 2, like a usage error.
* :class:`RunFailure`: the input was fine but the work failed while running (training diverged,
  the requested device is not there, an evaluation could not be computed, the disk filled up:
  :class:`StorageFull`); exit status 1.

:class:`Interrupted` (a :class:`KeyboardInterrupt`) is the work stopped by SIGINT or SIGTERM; the
command exits with 128 + the signal's number (130, 143).
"""

from __future__ import annotations


class WganError(ValueError):
    """A user-facing error: bad config, bad input file, impossible shape, unusable path.

    The CLI prints ``wgan: error: <message>`` and exits with status :attr:`exit_code` (2).
    """

    exit_code: int = 2


class ConfigError(WganError):
    """An invalid configuration: unknown key, wrong type or out-of-range value."""


class DataError(WganError):
    """A data file that is missing, corrupt, truncated or of the wrong shape (names the file)."""


class MissingWeightsError(WganError):
    """A metric needs weights the user must provide (nothing is downloaded)."""


class RunFailure(WganError):
    """The work failed at run time although its input was valid; the CLI exits with status 1."""

    exit_code = 1


class TrainingDiverged(RunFailure):
    """Training produced a non-finite loss; the last good checkpoint is kept."""


class DeviceUnavailable(RunFailure):
    """The device asked for (``cuda``, ``cuda:N``, ``mps``) does not exist on this machine."""


class StorageFull(RunFailure):
    """The disk (or the user's quota) filled up while the work wrote its results; what was
    written before is kept (a run's last checkpoint). A run-time failure (exit status 1): the
    input was fine, and the same command (or ``--resume``) succeeds once there is room."""


class Interrupted(KeyboardInterrupt):
    """The work was stopped by a signal: SIGINT (Ctrl-C) or SIGTERM (``kill``, ``docker stop``,
    systemd, Slurm's ``scancel``), at a step boundary (:mod:`wgan.training.interrupt`).

    A :class:`KeyboardInterrupt`, so that everything that cleans up after Ctrl-C does so after
    SIGTERM too. ``step`` is the step reached (None: stopped outside a training loop),
    ``run_dir`` the run (or sweep) it belongs to, ``kept`` says what was saved (e.g. "the
    checkpoint ... holds step 37") and ``resume`` is the command that continues the work (None
    when there is none). The ``wgan`` command exits with :attr:`exit_code`, 128 + the signal's
    number (POSIX shells' convention for a process ended by a signal): 130 for SIGINT, 143 for
    SIGTERM.
    """

    def __init__(
        self,
        signum: int,
        step: int | None = None,
        run_dir: object = None,
        kept: str | None = None,
        resume: str | None = None,
    ) -> None:
        super().__init__(signum)
        self.signum, self.step, self.run_dir = int(signum), step, run_dir
        self.kept, self.resume = kept, resume

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def signal_name(self) -> str:
        import signal

        try:
            return signal.Signals(self.signum).name
        except ValueError:
            return f"signal {self.signum}"
