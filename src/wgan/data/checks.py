"""Checks of the arguments of the toy datasets: one clear :class:`wgan.errors.ConfigError`
or :class:`wgan.errors.WganError` naming the argument, before any tensor is made."""

from __future__ import annotations

import math
from typing import Any

import torch

from wgan.errors import ConfigError, WganError

# ----------------------------------------------------------------------------- validation


def check_real(name: str, value: Any) -> float:
    """Return ``value`` as a finite float or raise ConfigError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"parameter {name!r} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ConfigError(f"parameter {name!r} must be finite, got {value!r}")
    return value


def check_positive(name: str, value: Any) -> float:
    value = check_real(name, value)
    if value <= 0:
        raise ConfigError(f"parameter {name!r} must be > 0, got {value!r}")
    return value


def check_nonnegative(name: str, value: Any) -> float:
    value = check_real(name, value)
    if value < 0:
        raise ConfigError(f"parameter {name!r} must be >= 0, got {value!r}")
    return value


def check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        # Accept integral floats such as 8.0 coming from a YAML/JSON config.
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ConfigError(f"parameter {name!r} must be an integer, got {value!r}")
    if value < minimum:
        raise ConfigError(f"parameter {name!r} must be >= {minimum}, got {value!r}")
    return value


def check_generator(generator: Any) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise WganError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}"
        )


def check_points(points: Any, dim: int = 2) -> torch.Tensor:
    """``points`` as an ``(N, dim)`` tensor (any float dtype), or raise WganError."""
    if not isinstance(points, torch.Tensor):
        raise WganError(f"points must be a torch.Tensor of shape (N, {dim}), got {type(points)}")
    if points.ndim != 2 or points.shape[1] != dim:
        raise WganError(f"points must have shape (N, {dim}), got {tuple(points.shape)}")
    if points.is_complex():
        raise WganError("points must be real, got a complex tensor")
    return points


def check_edges(edges: Any, name: str) -> torch.Tensor:
    """Bin edges as a float64 CPU tensor ``(E,)``: 1-D, finite, strictly increasing, E >= 2."""
    try:
        e = torch.as_tensor(edges, dtype=torch.float64).cpu()
    except (TypeError, ValueError, RuntimeError) as exc:
        raise WganError(f"{name} must be a 1-D sequence of numbers: {exc}") from exc
    if e.ndim != 1 or e.shape[0] < 2:
        raise WganError(f"{name} must be 1-D with at least 2 edges, got shape {tuple(e.shape)}")
    if not torch.isfinite(e).all():
        raise WganError(f"{name} must be finite")
    if not (e[1:] > e[:-1]).all():
        raise WganError(f"{name} must be strictly increasing")
    return e
