"""Writing a latent-space grid (:class:`wgan.analysis.latent.LatentGrid`) to a file.

``.npy``: the samples array ``(rows, columns, *sample_shape)``; ``.png``: the image grid with its
rows and columns named, or for 2-D data the paths ``G(z_t)`` drawn over the real data
(:mod:`wgan.figures.plotting`); ``.txt``: the argmax-decoded strings of a text run. Re-exported by
:mod:`wgan.analysis.latent`, which this module does not import.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from wgan.errors import WganError

__all__ = ["check_suffix", "output_suffixes", "write_grid"]


def output_suffixes(run: Any) -> tuple[str, ...]:
    """The file kinds :func:`write_grid` can write for this run."""
    if run.is_text:
        return (".txt", ".npy")
    if run.is_image or int(getattr(run.dataset, "dim", 0)) == 2:
        return (".png", ".npy")
    return (".npy",)


def check_suffix(run: Any, path: str | Path) -> None:
    """WganError unless :func:`write_grid` can write ``path`` for ``run``."""
    allowed = output_suffixes(run)
    if Path(path).suffix not in allowed:
        kind = "image" if run.is_image else "text" if run.is_text else "vector"
        extra = "" if run.is_image or run.is_text else " (a figure is drawn for 2-D data only)"
        raise WganError(
            f"--out must end in {' or '.join(allowed)} for {kind} data{extra}, "
            f"got '{Path(path).name}'"
        )


def write_grid(grid: Any, run: Any, path: str | Path) -> Path:
    """Write ``grid``: ``.npy`` (the samples tensor ``(R, S, ...)``), ``.png`` or ``.txt``.

    ``.png``: an image grid with the rows and columns named (images), or the paths drawn over
    the real data and a cloud of samples (2-D data). ``.txt``: one decoded string per cell,
    a header line per row (text). ``path`` is written as given (no temporary file).
    """
    path = Path(path)
    check_suffix(run, path)
    if path.suffix == ".npy":
        with path.open("wb") as fh:
            np.save(fh, grid.samples.numpy())
        return path
    if path.suffix == ".txt":
        from wgan.figures.text import printable_line

        lines = []
        for r, name in enumerate(grid.row_names):
            lines.append(f"# {name}")
            for col, text in zip(grid.col_names, run.dataset.decode(grid.samples[r]), strict=True):
                lines.append(f"{col}  {printable_line(text)}")
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path
    from wgan.figures.plotting import plot_image_grid, plot_latent_paths, save_figure

    if run.is_image:
        xlabel = "position t along the path (z0 → z1)" if grid.row_paths[0] else "latent vector"
        ylabel = "path" if grid.row_paths[0] else "row"
        ylabel += ", class (same z down a column)" if grid.labels is not None else ""
        xlabel, ylabel = grid.info.get("xlabel", xlabel), grid.info.get("ylabel", ylabel)
        fig = plot_image_grid(
            grid.samples, grid.row_names, grid.col_names, grid.title, xlabel, ylabel
        )
    else:
        g = torch.Generator().manual_seed(2)
        real = run.dataset.sample(1000, generator=g).numpy()  # (1000, 2)
        cloud = run.samples(1000).numpy()  # (1000, 2)
        fig = plot_latent_paths(
            real,
            cloud,
            grid.samples.numpy(),
            grid.row_names,
            [p or "linear" for p in grid.row_paths],
            run.dataset.bounds(),
            grid.title,
        )
    return save_figure(fig, path)
