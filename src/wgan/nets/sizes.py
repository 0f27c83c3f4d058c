"""Size checks shared by the network constructors: positive integer sizes, bounded weight count.

Every constructor checks its sizes before it allocates anything, so a zero, negative, boolean or
fractional size, or an absurd one (``hidden=10**9`` would need 10^18 weights), is a one-line
:class:`wgan.errors.ConfigError` naming the network and the argument instead of a traceback from
``torch.empty`` or an out-of-memory kill. Only Python integers are inspected: nothing here runs
in ``forward``.
"""

from __future__ import annotations

from wgan.errors import ConfigError

__all__ = ["MAX_WEIGHTS", "check_positive", "check_weights"]

#: Most weights one network may have: 2^30 (about a billion, 4 GiB in float32 before gradients
#: and optimiser states), a thousand times the largest network of the presets.
MAX_WEIGHTS = 1 << 30


def check_positive(owner: str, **values: object) -> None:
    """ConfigError unless every named value is an int >= 1 (``True`` is not a size)."""
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{owner}: {key} must be a positive integer, got {value!r}")


def check_weights(owner: str, count: int, what: str) -> None:
    """ConfigError when a network would hold more than :data:`MAX_WEIGHTS` weights.

    ``count`` is the number of weights the sizes imply (computed before anything is allocated)
    and ``what`` names the sizes that produced it, for the message.
    """
    if count > MAX_WEIGHTS:
        raise ConfigError(
            f"{owner}: {what} would need {count:.3g} weights, more than the limit of "
            f"{MAX_WEIGHTS:.3g} (2^30); choose smaller sizes"
        )
