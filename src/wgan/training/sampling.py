"""The draws behind :meth:`wgan.training.run.Run.samples`, in pieces: so that any number of
samples can be written without holding them all (:meth:`Run.sample_chunks`, ``wgan sample``).

The generator's noise (and, for a conditional generator without labels, its uniform labels) is
drawn from one ``torch.Generator`` seeded once, :data:`SAMPLE_CHUNK` samples at a time. The
pieces are fixed by that constant alone, never by how a caller groups them, so the samples of
``sample_chunks(n, seed, chunk=c)`` are those of ``samples(n, seed)``, in the same order, for
every ``c``: the draws of a pseudo-random stream depend on how it is cut into calls (torch's
CPU normal sampler fills blocks of 16), so a caller's chunk must not change the cuts.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from wgan.config import check_seed
from wgan.errors import RunFailure, WganError
from wgan.gan.refine import draw_noise
from wgan.training.attribute_sampling import attribute_labels

SAMPLE_CHUNK = 4096
"""Samples per generator call: the cuts of the random stream (see the module docstring)."""


class NonFiniteSamples(RunFailure):
    """The generator produced nan or inf: its weights have diverged (a run-time failure)."""


@dataclass
class Draw:
    """A checked request for ``n`` samples: the sampling network, its seeded random stream and
    the labels ``(n,)`` of a conditional generator, or the ``(n, k)`` attribute vectors of one
    conditioned on attributes (None: drawn, or unconditional)."""

    run: Any
    n: int
    gen: nn.Module
    generator: torch.Generator
    labels: Tensor | None


def class_names(run: Any) -> list[str] | None:
    """The run's class names in label order (an image folder's sub-folders, recorded in its
    ``data.classes``), or None when its classes have no names."""
    names = run.cfg.data.classes
    return list(names) if names else None


def class_label(run: Any, label: int | str) -> int:
    """A class of ``run`` as its label: an int as it is; a string that is one of the run's class
    names (:func:`class_names`) as that class's index, else a string of an integer as that number.
    An unknown name raises :class:`WganError` naming close matches and every class."""
    if not isinstance(label, str):
        return label
    names = class_names(run) or []
    if label in names:
        return names.index(label)
    if re.fullmatch(r"\s*[+-]?[0-9]+\s*", label):  # an index, in range or not (checked next)
        return int(label)
    import difflib

    from wgan.store.printable import printable

    shown = printable(label, 80)
    if not names:
        raise WganError(
            f"label '{shown}': this run's classes have no names; give a class index "
            f"(0 to {max(0, int(getattr(run.sampler, 'n_classes', 0) or 0) - 1)})"
        )
    close = difflib.get_close_matches(label, names, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(printable(c, 80) for c in close)}?" if close else ""
    listed = ", ".join(f"{i} {printable(c, 80)}" for i, c in enumerate(names))
    raise WganError(f"unknown class '{shown}'{hint} (this run's classes: {listed})")


def prepare(
    run: Any,
    n: Any,
    seed: Any,
    labels: Tensor | int | str | None,
    attrs: Any = None,
    attrs_fixed: bool = False,
) -> Draw:
    """Check ``n`` (:meth:`Run._check_count`), ``seed`` (:func:`wgan.config.check_seed`;
    None: the run's sample seed) and ``labels`` (a class index or name, :func:`class_label`, or
    ``(n,)`` indices, only for a conditional generator), and seed the stream the samples are
    drawn from. A run conditioned on attribute vectors takes ``attrs`` (a request, unnamed
    attributes drawn from the data's law, shared by all with ``attrs_fixed``) or the vectors as
    ``labels`` (:func:`wgan.training.attribute_sampling.attribute_labels`)."""
    n = run._check_count(n)
    seed = run.sample_seed if seed is None else check_seed(seed)
    gen = run.sampler
    vectors = attribute_labels(run, n, seed, labels, attrs, attrs_fixed)  # (n, k) or None
    if vectors is not None:
        return Draw(run, n, gen, torch.Generator(device=run.device).manual_seed(seed), vectors)
    n_classes = getattr(gen, "n_classes", 0)
    if isinstance(labels, str) and n_classes:
        labels = class_label(run, labels)
    if labels is not None:
        if not n_classes:
            raise WganError("this run's generator is not conditional: it takes no label")
        if isinstance(labels, int) and not 0 <= labels < n_classes:  # before int64 overflows
            raise WganError(f"label {labels} is out of range [0, {n_classes})")
        labels = torch.as_tensor(labels, dtype=torch.long).to(run.device)
        bad = labels[(labels < 0) | (labels >= n_classes)]
        if bad.numel():
            raise WganError(f"label {int(bad[0])} is out of range [0, {n_classes})")
        labels = labels.expand(n)  # one class for all: a view, however many samples
    generator = torch.Generator(device=run.device).manual_seed(seed)
    return Draw(run, n, gen, generator, labels)


@torch.no_grad()
def generated(
    draw: Draw, noise: list[tuple[Tensor, Tensor | None]] | None = None
) -> Iterator[Tensor]:
    """The generator's outputs, :data:`SAMPLE_CHUNK` at a time, on the run's device, in eval
    mode (batch norm uses its running statistics, so a sample does not depend on the others).

    ``noise``: a list that receives each piece's ``(z, labels)`` (for a refinement, which moves
    the samples from their noise); without it the pieces are ``gen.sample``'s, as ever.
    """
    gen = draw.gen
    was_training = gen.training
    gen.eval()
    try:
        for i in range(0, draw.n, SAMPLE_CHUNK):
            m = min(SAMPLE_CHUNK, draw.n - i)
            lab = None if draw.labels is None else draw.labels[i : i + SAMPLE_CHUNK]
            if noise is None:
                yield gen.sample(m, draw.generator, lab)
                continue
            z, lab = draw_noise(gen, m, draw.generator, lab, draw.run.device)
            noise.append((z, lab))
            yield gen(z, lab)
    finally:
        gen.train(was_training)


def finite(draw: Draw, x: Tensor) -> Tensor:
    """``x`` as float32 on the CPU; :class:`NonFiniteSamples` if any value is nan or inf."""
    x = x.float().cpu()
    if not bool(torch.isfinite(x).all()):
        run = draw.run
        raise NonFiniteSamples(
            f"the generator of {run.run_dir} at step {run.step} produces non-finite samples "
            "(nan or inf): its weights have diverged"
        )
    return x


def chunks(draw: Draw, chunk: int = SAMPLE_CHUNK) -> Iterator[Tensor]:
    """The samples of ``draw`` (float32, CPU, checked finite), ``chunk`` at a time (the last
    may be shorter), in order. At most ``chunk`` + :data:`SAMPLE_CHUNK` samples are held
    (and those the caller keeps)."""
    try:
        chunk = operator.index(chunk)
    except TypeError:
        raise WganError(f"the chunk size must be an integer, got {chunk!r}") from None
    if chunk < 1:
        raise WganError(f"the chunk size must be >= 1, got {chunk}")
    return _regroup((finite(draw, piece) for piece in generated(draw)), chunk, draw.n)


def _regroup(pieces: Iterator[Tensor], chunk: int, n: int) -> Iterator[Tensor]:
    """``pieces`` (``n`` rows in all, along dimension 0) as consecutive tensors of ``chunk`` rows
    (the last may be shorter). A piece that is a whole chunk is passed on as it is; otherwise
    the pieces are copied into a chunk allocated at once and dropped, so that no small piece
    outlives its chunk between the generator's large temporaries (which would fragment the
    heap: memory that grew with ``n``)."""
    out: Tensor | None = None
    filled = done = 0
    for piece in pieces:
        start = 0
        while start < len(piece):
            want = min(chunk, n - done)
            if out is None and start == 0 and len(piece) == want:
                yield piece
                done += want
                break
            if out is None:
                out, filled = piece.new_empty((want, *piece.shape[1:])), 0
            take = min(len(out) - filled, len(piece) - start)
            out[filled : filled + take] = piece[start : start + take]
            filled, start = filled + take, start + take
            if filled == len(out):
                done += filled
                yield out
                out = None
