"""Errors that the CLI reports as one clear line instead of a traceback.

Two classes, told apart by the exit status of the ``wgan`` command:

* :class:`WganError` (and :class:`ConfigError`, :class:`DataError`, ...): the user's input is
  wrong (a config key, a file, a path, a size); exit status 2, like a usage error.
* :class:`RunFailure`: the input was fine but the work failed while running (training diverged,
  the requested device is not there, an evaluation could not be computed); exit status 1.
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
