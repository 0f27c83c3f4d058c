"""Errors that the CLI reports as one clear line (exit code 2) instead of a traceback."""

from __future__ import annotations


class WganError(ValueError):
    """A user-facing error: bad config, bad input file, impossible shape, diverged training.

    The CLI prints ``wgan: error: <message>`` and exits with status 2.
    """


class ConfigError(WganError):
    """An invalid configuration: unknown key, wrong type or out-of-range value."""


class TrainingDiverged(WganError):
    """Training produced a non-finite loss; the last good checkpoint is kept."""


class DataError(WganError):
    """A data file that is missing, corrupt, truncated or of the wrong shape (names the file)."""


class MissingWeightsError(WganError):
    """A metric needs weights the user must provide (nothing is downloaded)."""
