"""Helpers shared by several test modules: small writers of image files and a stand-in
Inception network (test modules import these, never each other)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def idx_bytes(arr: np.ndarray) -> bytes:
    """IDX encoding of a uint8 array: 00 00 08 ndim, big-endian uint32 dims, data."""
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def write_idx(path: Path, arr: np.ndarray, compress: bool = False) -> Path:
    data = idx_bytes(arr)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def mnist_like(n: int, side: int = 28, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (
        rng.integers(0, 256, size=(n, side, side), dtype=np.uint8),
        rng.integers(0, 10, size=n, dtype=np.uint8),
    )


def cifar_batch(n: int, n_classes: int, seed: int) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    return data, [int(v) for v in rng.integers(0, n_classes, size=n)]


def write_png(path: Path, arr: np.ndarray) -> Path:
    Image.fromarray(arr).save(path, format="PNG")
    return path


class FakeInception(torch.nn.Module):
    """Same call convention as inception-2015-12-05.pt, with transparent outputs."""

    def forward(
        self, x: torch.Tensor, return_features: bool = False, no_output_bias: bool = False
    ) -> torch.Tensor:
        mean = x.mean(dim=(2, 3))  # (B, 3)
        if return_features:
            lo = x.amin(dim=(2, 3))  # (B, 3)
            hi = x.amax(dim=(2, 3))  # (B, 3)
            pad = torch.zeros(x.shape[0], 2048 - 9, dtype=x.dtype)
            return torch.cat([mean, lo, hi, pad], dim=1)  # (B, 2048)
        logits = torch.zeros(x.shape[0], 1008, dtype=x.dtype)
        logits[:, :3] = mean / 25.5  # up to e^10 on a class
        return torch.softmax(logits, dim=1)  # (B, 1008)


#: Training that prints, evaluates, plots and checkpoints nothing on its own.
QUIET = [
    "train.progress=false",
    "train.eval_every=0",
    "train.figure_every=0",
    "train.checkpoint_every=0",
]


def tiny(
    *extra: str,
    hidden: int | None = None,
    width: int | None = None,
    depth: int | None = None,
    batch: int | None = None,
    steps: int | None = None,
    eval_samples: int | None = None,
    quiet: bool = True,
) -> list[str]:
    """Overrides of a config small enough for a test: MLP ``hidden`` width or conv ``width``
    and ``depth`` of both players, the batch, the budget and the evaluation samples (each only
    when given), :data:`QUIET` unless ``quiet=False``, then ``extra`` (which wins: a key of
    ``extra`` replaces the same key before it, so the list gives each key once, as the command
    line wants: it warns about a key given twice)."""
    out = []
    for key, value in (("hidden", hidden), ("width", width), ("depth", depth)):
        if value is not None:
            out += [f"generator.{key}={value}", f"critic.{key}={value}"]
    for key, value in (
        ("data.batch_size", batch),
        ("train.steps", steps),
        ("train.eval_samples", eval_samples),
    ):
        if value is not None:
            out.append(f"{key}={value}")
    items = [*out, *(QUIET if quiet else []), *extra]
    last = {item.partition("=")[0].strip(): i for i, item in enumerate(items)}
    return [item for i, item in enumerate(items) if last[item.partition("=")[0].strip()] == i]


def toy_long(*extra: str) -> list[str]:
    """Overrides of a toy run of many cheap steps, for interrupt and resume tests: one thread
    (bit-exact across processes), no learning-rate decay (so that train.steps may change on
    resume without changing the maths), logs every 5 steps, no evaluation, figure or checkpoint
    on its own; then ``extra``, each key given once (a repeated key is warned about)."""
    keys = {o.split("=", 1)[0] for o in extra}
    base = tiny(
        "train.threads=1",
        "train.lr_decay=none",
        "train.log_every=5",
        "train.eval_samples=200",
        hidden=16,
    )
    return [o for o in base if o.split("=", 1)[0] not in keys] + list(extra)


#: A step count no test reaches: the run stops only when it is interrupted.
FOREVER = "train.steps=100000000"


def checkpoint_tensors(state: dict) -> dict[str, torch.Tensor]:
    """Every tensor of a loaded checkpoint that training changes (models, optimisers, streams)."""
    out = {}
    for part in ("generator", "critic"):
        out.update({f"{part}.{k}": v for k, v in state[part].items()})
    for part in ("opt_d", "opt_g"):
        leaves = torch.utils._pytree.tree_leaves(state[part])
        out.update({f"{part}.{i}": v for i, v in enumerate(leaves)})
    out["rng"] = state["rng"]
    return out


def assert_same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    """``a`` and ``b`` hold the same keys and bit-identical tensors."""
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
