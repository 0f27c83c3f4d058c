"""The files of ``wgan sample``, written chunk by chunk.

``.npy`` (NumPy's format: its header, then the float32 values in C order), ``.csv`` (a header
row ``x1,x2,...``, then one row per sample, 7 significant digits: float32's) and ``.txt`` (one
argmax-decoded sequence per line, for text runs) are written as the samples are drawn
(:meth:`wgan.training.run.Run.sample_chunks`), :data:`CHUNK_BYTES` of samples at a time, with a
progress bar on stderr: the memory used does not grow with ``--num``, and the time grows in
proportion to it. The file is the one that writing all the samples at once would give, byte for
byte (the same samples in the same order: the chunks do not change the random draws).

``.png`` files (an image grid, a scatter plot) and refined samples (``--refine``: the refinement
moves all samples together, continuing one random stream) are made from all the samples at once.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

STREAMED = (".npy", ".csv", ".txt")
"""The formats written chunk by chunk."""
CHUNK_BYTES = 2**24
"""Generated values per chunk, in bytes of float32 (16 MiB): ``CHUNK_BYTES // (4 * values per
sample)`` samples, at least one."""
PROGRESS_DELAY_S = 1.0
"""The progress bar shows once writing has taken this long (a small file prints nothing)."""


def chunk_samples(shape: tuple[int, ...]) -> int:
    """Samples per chunk for samples of ``shape``: :data:`CHUNK_BYTES` of float32, at least 1."""
    return max(1, CHUNK_BYTES // (4 * math.prod(shape)))


def stream_samples(
    run: Any, path: Path, n: int, shape: tuple[int, ...], seed: int | None, label: int | None
) -> None:
    """Write ``n`` samples of ``run`` (those of ``run.samples(n, seed, label)``) to ``path``,
    in the format its suffix names (one of :data:`STREAMED`), chunk by chunk, with a progress
    bar on stderr. ``shape`` is one sample's shape."""
    chunks = run.sample_chunks(n, seed=seed, labels=label, chunk=chunk_samples(shape))
    with _progress(n, "sampling") as bar:
        write_samples(run, path, _counted(chunks, bar), n, shape)


def write_samples(
    run: Any, path: Path, chunks: Iterable[Any], n: int, shape: tuple[int, ...]
) -> None:
    """Write ``chunks`` (tensors of samples of ``shape``, ``n`` in all) to ``path`` as
    ``.npy``, ``.csv`` or ``.txt`` (its suffix). ``run`` decodes text."""
    import numpy as np

    suffix = path.suffix
    if suffix == ".npy":
        with path.open("wb") as fh:
            header = {
                "descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
                "fortran_order": False,
                "shape": (n, *shape),
            }
            np.lib.format.write_array_header_1_0(fh, header)  # as np.save writes it
            for x in chunks:
                fh.write(np.ascontiguousarray(x.numpy(), dtype=np.float32).tobytes())
        return
    with path.open("w", encoding="utf-8") as fh:
        if suffix == ".txt":  # text: (B, V, L) softmax -> one argmax-decoded line each
            from wgan.figures.text import printable_line

            for x in chunks:
                fh.write("".join(printable_line(t) + "\n" for t in run.dataset.decode(x)))
            return
        fh.write(",".join(f"x{i + 1}" for i in range(shape[0])) + "\n")  # a header row
        for x in chunks:
            np.savetxt(fh, x.numpy(), delimiter=",", fmt="%.7g")


def _counted(chunks: Iterable[Any], bar: Any) -> Iterable[Any]:
    """``chunks``, moving ``bar`` on by each one's samples."""
    for x in chunks:
        yield x
        if bar is not None:
            bar.update(len(x))


def _progress(total: int, desc: str) -> Any:
    """A tqdm bar on stderr (none with ``WGAN_NO_PROGRESS`` set): shown after
    :data:`PROGRESS_DELAY_S`, removed when done."""
    if os.environ.get("WGAN_NO_PROGRESS"):
        return contextlib.nullcontext(None)
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit=" samples",
        leave=False,
        delay=PROGRESS_DELAY_S,
        file=sys.stderr,
        dynamic_ncols=True,
    )
