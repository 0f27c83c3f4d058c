"""FLOP counting and dense-op replay of :mod:`wgan.scale.bench`.

:func:`count_flops` runs a function under ``torch.utils.flop_counter.FlopCounterMode``: only
matrix products and convolutions are counted (2 FLOPs per multiply-add), forward and backward,
the gradient penalty's double backward (Gulrajani et al. 2017, Alg. 1) included. With a
``record`` list it also records every counted op with the shapes, strides and dtypes of its
tensor arguments; :func:`replay_dense_ops` re-runs those ops alone on random tensors, the time a
step would take if only its dense algebra cost anything.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map
from torch.utils.flop_counter import FlopCounterMode, flop_registry

from wgan.scale.bench.timing import time_ms

__all__ = ["count_flops", "replay_dense_ops"]


class _GlobalOnly:
    """Stand-in for FlopCounterMode's module tracker: every FLOP is counted as 'Global'.

    The tracker's backward hooks break ``torch.autograd.grad`` (PyTorch issue #131753: "A leaf
    node was passed to _will_engine_execute_node"), which the gradient penalty calls; the
    per-module breakdown is not needed here.
    """

    parents = frozenset({"Global"})

    def __enter__(self) -> _GlobalOnly:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


@dataclasses.dataclass(frozen=True)
class _TensorSpec:
    """Shape, strides, dtype and device of a tensor argument (a pytree leaf, hashable)."""

    shape: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: torch.dtype
    device: torch.device


def _spec(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return _TensorSpec(tuple(x.shape), tuple(x.stride()), x.dtype, x.device)
    return x


class _DenseOpRecorder(TorchDispatchMode):
    """Records every op FlopCounterMode counts (mm, addmm, convolution, ...) with the shapes,
    strides and dtypes of its tensor arguments, for :func:`replay_dense_ops`."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[Any, Any, Any]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func.overloadpacket in flop_registry:
            self.calls.append((func, tree_map(_spec, args), tree_map(_spec, kwargs)))
        return func(*args, **kwargs)


def count_flops(fn: Callable[[], Any], record: list | None = None) -> int:
    """FLOPs of the matrix products and convolutions ``fn`` runs (forward and backward).

    Uses :class:`torch.utils.flop_counter.FlopCounterMode` (2 FLOPs per multiply-add: an
    ``(m x k) @ (k x n)`` product counts ``2 m k n``); double backward (``create_graph=True``)
    is counted like any other op it runs. With ``record`` (a list), the counted calls are
    appended to it for :func:`replay_dense_ops`.
    """
    counter = FlopCounterMode(display=False)
    if hasattr(counter, "mod_tracker"):
        counter.mod_tracker = _GlobalOnly()  # see _GlobalOnly
    recorder = _DenseOpRecorder() if record is not None else contextlib.nullcontext()
    with counter, recorder:
        fn()
    if record is not None:
        record.extend(recorder.calls)
    return int(counter.get_total_flops())


def replay_dense_ops(calls: list, passes: int = 3) -> float:
    """Milliseconds the recorded dense ops take alone: the best of ``passes`` back-to-back runs.

    Every call is re-run on random tensors with the recorded shapes, strides and dtypes
    (operands with equal specs share one tensor); nothing else runs in between. This is the
    time a step would take if only its matrix products and convolutions cost anything, with
    caches as warm as back-to-back calls make them: an optimistic bound.
    """
    if not calls:
        return 0.0
    g = torch.Generator().manual_seed(0)
    cache: dict[_TensorSpec, torch.Tensor] = {}

    def materialise(x: Any) -> Any:
        if not isinstance(x, _TensorSpec):
            return x
        if x not in cache:
            size = 1 + sum((n - 1) * st for n, st in zip(x.shape, x.stride, strict=True))
            base = torch.randn(max(size, 1), generator=g).to(device=x.device, dtype=x.dtype)
            cache[x] = base.as_strided(x.shape, x.stride)
        return cache[x]

    runs = [(f, tree_map(materialise, a), tree_map(materialise, k)) for f, a, k in calls]
    device = next(iter(cache.values())).device if cache else torch.device("cpu")

    def run() -> None:
        for func, args, kwargs in runs:
            func(*args, **kwargs)

    run()  # warm-up
    return min(time_ms(run, device) for _ in range(max(1, passes)))
