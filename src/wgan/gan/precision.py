"""Mixed precision: autocast to bf16 or fp16, with loss scaling for fp16.

* ``fp32``: no autocast (the default; the reference for every equivalence test).
* ``bf16``: ``torch.autocast`` to bfloat16. bf16 has fp32's exponent range, so no loss scaling
  is needed. It runs on CUDA and on the CPU (PyTorch's CPU autocast); on CPUs without native
  bf16 units it is slower than fp32, so on the CPU it is a correctness option, not a speed one.
* ``fp16``: autocast to float16 plus a :class:`torch.amp.GradScaler` per optimiser. The gradient
  penalty needs the gradient of D with respect to its *input*: it is taken of the scaled output
  and divided by the scale before the norm (:func:`wgan.constraints.input_gradient_norm`), so the
  penalty is computed on unscaled gradients and then scaled once with the rest of the loss.
  fp16 is CUDA only: on the CPU it is a clear error.

Losses, penalties and statistics are always reduced in float32.
"""

from __future__ import annotations

import contextlib

import torch

from wgan.errors import ConfigError

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision: str, device: torch.device) -> None:
    """Raise :class:`ConfigError` for a precision the device cannot run."""
    if precision not in DTYPES:
        raise ConfigError(f"train.precision must be one of {', '.join(DTYPES)}, got {precision!r}")
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError(
            "train.precision=fp16 needs a CUDA device (fp16 autocast with loss scaling is a GPU "
            "feature); on the CPU use train.precision=bf16 or fp32"
        )


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The autocast context for ``precision`` (a no-op context for fp32)."""
    dtype = DTYPES[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def make_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler | None:
    """A gradient scaler for fp16 (None otherwise), with its scale tensor already created."""
    if precision != "fp16":
        return None
    scaler = torch.amp.GradScaler(device.type)
    scaler.scale(torch.zeros((), device=device))  # creates the scale tensor on the device
    return scaler


def scale_tensor(scaler: torch.amp.GradScaler | None) -> torch.Tensor | None:
    """The current loss scale as a device tensor (no host sync), or None without a scaler."""
    if scaler is None:
        return None
    return scaler._get_scale_async()
