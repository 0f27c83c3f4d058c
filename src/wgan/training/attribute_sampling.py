"""Asking a run conditioned on attribute vectors for attributes: ``run.samples(n, attrs=...)``.

A generator G(z, c) trained on attribute data (one-hot groups and flags,
:class:`wgan.data.attributes.AttributeSchema`; Mirza & Osindero 2014) is asked for some
attributes, ``"red,triangle,large"``; the unnamed ones are drawn from the training data's
conditional law (:class:`wgan.data.attribute_law.AttributeLaw`), one draw per sample, or one
draw shared by all samples (``fixed``). Without a request the whole vector is drawn from the
law: the samples then follow the data's marginal p(x) = sum_c p(c) p(x | c).

The law is written into the run's directory when training starts (:data:`LAW_FILE`, by
:func:`save_attribute_law`), so sampling needs no data files; a run without the file falls
back on its dataset's attribute table.

The condition draws use their own generator, seeded from the sample seed (:func:`condition_seed`),
so the noise z of ``samples(n, seed, attrs=...)`` is that of ``samples(n, seed)``: asking for
other attributes changes the condition, not z.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from wgan.data.attribute_law import AttributeLaw, request_words
from wgan.data.attributes import AttributeGroup, AttributeSchema
from wgan.errors import ConfigError, WganError

__all__ = [
    "LAW_FILE",
    "attribute_conditions",
    "attribute_labels",
    "attribute_law",
    "attribute_schema",
    "condition_seed",
    "describe_request",
    "parse_request",
    "save_attribute_law",
]

LAW_FILE = "attributes.json"
"""The run directory's file holding the training data's attribute law."""

_SEED_MIX = 0x5EED_A77B_5EED  # xor'd into the sample seed: the condition stream is not z's


def condition_seed(seed: int) -> int:
    """The seed of the condition draws for sample seed ``seed`` (in [0, 2**63) as ``seed``)."""
    return int(seed) ^ _SEED_MIX


def attribute_schema(run: Any) -> AttributeSchema | None:
    """The layout of the run's attribute vectors (its ``data.attributes``, else its dataset's),
    or None for data without attributes."""
    spec = getattr(run.cfg.data, "attributes", None)
    if spec:
        return AttributeSchema.from_spec(spec)
    return getattr(run.dataset, "attribute_schema", None)


def _law_path(run: Any) -> Path:
    return Path(run.run_dir) / LAW_FILE


def attribute_law(run: Any) -> AttributeLaw:
    """The training data's attribute law: the run's :data:`LAW_FILE`, else its dataset's table
    (computed once per run handle)."""
    cached = run.__dict__.get("_attribute_law")
    if cached is not None:
        return cached
    schema = attribute_schema(run)
    if schema is None:
        raise WganError(f"{run.cfg.data.name}: this run's data has no attributes")
    path = _law_path(run)
    law = None
    if path.is_file():
        law = AttributeLaw.load(path)
        if law.schema != schema:
            law = None  # a stale file: the dataset's table is the truth
    if law is None:
        table = getattr(run.dataset, "attributes", None)
        if table is None:
            raise WganError(
                f"{run.run_dir}: no {LAW_FILE} and no attribute table to draw unnamed attributes "
                "from; name every attribute or give the vectors as labels"
            )
        law = AttributeLaw.from_vectors(schema, table)
    run.__dict__["_attribute_law"] = law
    return law


def save_attribute_law(run: Any) -> Path | None:
    """Write the law of ``run.dataset``'s attribute table to the run's :data:`LAW_FILE` (when it
    has one and the file does not already hold it); returns the path, or None."""
    table = getattr(run.dataset, "attributes", None)
    schema = attribute_schema(run)
    if table is None or schema is None:
        return None
    law = AttributeLaw.from_vectors(schema, table)
    path = _law_path(run)
    try:
        if path.is_file() and AttributeLaw.load(path) == law:
            return path
    except WganError:
        pass  # unreadable: rewrite it
    law.save(path)
    run.__dict__["_attribute_law"] = law
    return path


def parse_request(schema: AttributeSchema, attrs: Any) -> dict[AttributeGroup, int]:
    """A request as {group: value index (flags 0/1)} from ``"red,triangle,large"``
    (:meth:`AttributeSchema.parse`), a mapping ``{"colour": "red", "large": True}`` (a group or
    flag name to a value name, or to a bool / 0 / 1 for a flag), or such a dict already parsed.
    """
    if isinstance(attrs, str):
        return schema.parse(attrs)
    if isinstance(attrs, Mapping):
        if attrs and all(isinstance(k, AttributeGroup) for k in attrs):
            return {g: int(v) for g, v in attrs.items()}
        items = []
        for key, value in attrs.items():
            if isinstance(value, bool) or isinstance(value, int):
                value = int(value)
            items.append(f"{key}={value}")
        return schema.parse(",".join(items))
    raise ConfigError(
        f"attrs must be a string such as 'red,triangle' or a mapping, got {type(attrs).__name__}"
    )


def _not_asked(run: Any, schema: AttributeSchema | None) -> str | None:
    """Why this run cannot be asked for attributes, or None when it can."""
    if schema is None:
        return (
            f"this run's data ({run.cfg.data.name}) has no attributes: --attrs / attrs= is for "
            "runs on attribute data (data.name=shapes, celeba, a folder with data.attribute_file)"
        )
    if not run.conditional:
        return (
            "this run's generator is not conditioned on its attributes "
            "(conditional.mode=none): it cannot be asked for them"
        )
    return None


def attribute_conditions(
    run: Any, n: int, seed: int, attrs: Any = None, fixed: bool = False
) -> tuple[Tensor, str | None]:
    """(n, k) float32 condition vectors on the CPU for sample seed ``seed``, and a note (or
    None): the ``attrs`` asked for, the other groups drawn from the law
    (:meth:`AttributeLaw.draw`, one draw for all with ``fixed``)."""
    schema = attribute_schema(run)
    why = _not_asked(run, schema)
    if why is not None:
        raise WganError(why)
    assert schema is not None
    request = {} if attrs is None else parse_request(schema, attrs)
    g = torch.Generator().manual_seed(condition_seed(seed))
    return attribute_law(run).draw(n, request, generator=g, fixed=fixed)


def _explicit(run: Any, schema: AttributeSchema, labels: Tensor, n: int) -> Tensor:
    """Given condition vectors, (k,) or (n, k) of 0/1, checked and as (n, k) float32."""
    c = torch.as_tensor(labels)
    if c.ndim == 0 or (c.ndim == 1 and c.numel() != schema.dim and not c.is_floating_point()):
        raise WganError(
            "this run is conditioned on attribute vectors, not classes: ask with attrs "
            "(e.g. 'red,triangle') or give (n, k) vectors of 0/1 as labels"
        )
    if c.ndim == 1:
        c = c[None]
    c = c.to(torch.float32)
    try:
        schema.check(c.cpu(), "attribute labels")
    except ConfigError as e:
        raise WganError(str(e)) from None
    if c.shape[0] not in (1, n):
        raise WganError(f"got {c.shape[0]} attribute vectors for {n} samples")
    return c.expand(n, -1)


def attribute_labels(
    run: Any, n: int, seed: int, labels: Any, attrs: Any, fixed: bool
) -> Tensor | None:
    """The (n, k) conditions of ``run.samples(n, seed, labels, attrs=..., attrs_fixed=...)``
    on the run's device, or None for a run without attribute conditioning and no request.

    ``labels`` may be the vectors themselves ((k,) or (n, k)) or a request string; ``attrs`` a
    request (:func:`parse_request`). Unnamed groups are drawn from the law; a note about the
    draw goes to ``run.notify`` (the CLI's stderr), else to :func:`warnings.warn`.
    """
    schema = attribute_schema(run)
    if attrs is None and not fixed and (schema is None or not run.conditional):
        return None  # a class label (or name), or none: not for this module
    why = _not_asked(run, schema)
    if why is not None:
        raise WganError(why)
    assert schema is not None
    if isinstance(labels, (str, Mapping)):  # a request given as labels
        if attrs is not None:
            raise WganError("give the attributes once: as labels or as attrs")
        labels, attrs = None, labels
    if labels is not None:
        if attrs is not None or fixed:
            raise WganError("give attribute vectors as labels, or ask with attrs, not both")
        return _explicit(run, schema, labels, n).to(run.device)
    c, note = attribute_conditions(run, n, seed, attrs, fixed)
    if note is not None:
        notify = getattr(run, "notify", None)
        if notify is not None:
            notify(note)
        else:
            warnings.warn(note, stacklevel=4)
    return c.to(run.device)


def describe_request(run: Any, attrs: Any) -> str:
    """The asked attributes in words (``"triangle, red, large"``), for titles and messages."""
    schema = attribute_schema(run)
    if schema is None or attrs is None:
        return ""
    return request_words(schema, parse_request(schema, attrs))
