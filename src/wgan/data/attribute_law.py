"""The law of a dataset's attribute vectors, and drawing conditions from it.

A conditional generator on attribute data models p(x | c) (Mirza & Osindero 2014); asking it
for *some* attributes ("red, triangle") leaves the others to be chosen. They are drawn here from
the data's own conditional law: with A the named groups and a their asked values,

    p(c_rest | c_A = a) = #{training rows with c_A = a and c_rest} / #{training rows with c_A = a},

the empirical law of the training set's attribute table, kept as its distinct rows and their
counts (:class:`AttributeLaw`; 48 rows for the coloured shapes, at most N for CelebA's 40 flags).
A combination no training image has (one removed with ``data.holdout_combos``, to measure
compositional generalisation) has no conditional law: the unnamed groups are then drawn from the
rows that match as many of the named attributes as any row does (all rows, i.e. the marginal
law of the unnamed groups, when none matches any), and the draw says so in a note.

The law is small and is stored with a run (``attributes.json`` in its directory) so that a run
samples without its data files.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from wgan.data.attributes import AttributeGroup, AttributeSchema
from wgan.errors import DataError

__all__ = ["LAW_VERSION", "AttributeLaw", "request_words", "set_request"]

LAW_VERSION = 1
"""The format of :meth:`AttributeLaw.to_dict` (``attributes.json``)."""

Request = Mapping[AttributeGroup, int]


def request_words(schema: AttributeSchema, request: Request) -> str:
    """``"triangle, green"``: the asked values in column order (a flag's off state by its
    off-name, else ``not NAME``)."""
    words = []
    for g in schema.groups:
        if g in request:
            v = int(request[g])
            if g.flag:
                words.append(g.name if v else (g.off or f"not {g.name}"))
            else:
                words.append(g.values[v])
    return ", ".join(words)


def set_request(schema: AttributeSchema, c: Tensor, request: Request) -> Tensor:
    """A copy of the vectors ``c`` (N, k) with the requested groups set in every row."""
    c = c.clone()
    for g, value in request.items():
        cols = schema.columns(g)
        if g.flag:
            c[:, cols] = float(value)
        else:
            c[:, cols] = 0.0
            c[:, cols.start + int(value)] = 1.0
    return c


class AttributeLaw:
    """The empirical law of attribute vectors: distinct ``rows`` (M, k) and their ``counts`` (M,).

    Args:
        schema: the vectors' layout.
        rows: (M, k) distinct 0/1 vectors, each valid for ``schema``.
        counts: (M,) positive int64, how many training images have each row.
    """

    def __init__(self, schema: AttributeSchema, rows: Tensor, counts: Tensor) -> None:
        rows = torch.as_tensor(rows, dtype=torch.float32)
        counts = torch.as_tensor(counts, dtype=torch.int64)
        if rows.ndim != 2 or rows.shape[0] == 0 or counts.shape != (rows.shape[0],):
            raise DataError(
                f"an attribute law needs (M, k) rows and (M,) counts, M >= 1; got "
                f"{tuple(rows.shape)} and {tuple(counts.shape)}"
            )
        if bool((counts < 1).any()):
            raise DataError("an attribute law's counts must be >= 1")
        try:
            schema.check(rows, "attribute law rows")
        except Exception as e:  # ConfigError -> DataError: the rows came from a file
            raise DataError(str(e)) from None
        self.schema, self.rows, self.counts = schema, rows, counts

    @classmethod
    def from_vectors(cls, schema: AttributeSchema, c: Tensor) -> AttributeLaw:
        """The law of the (N, k) vectors ``c`` (a dataset's attribute table)."""
        rows, counts = torch.unique(c.detach().float().cpu(), dim=0, return_counts=True)
        return cls(schema, rows, counts)

    @property
    def total(self) -> int:
        """N: the number of vectors the law was counted from."""
        return int(self.counts.sum())

    # --- storage -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "version": LAW_VERSION,
            "attributes": list(self.schema.to_spec()),
            "rows": self.rows.to(torch.int64).tolist(),
            "counts": self.counts.tolist(),
        }

    @classmethod
    def from_dict(cls, d: Any, where: str = "attribute law") -> AttributeLaw:
        """The law from :meth:`to_dict`'s mapping; a malformed one is a :class:`DataError`."""
        if not isinstance(d, dict) or d.get("version") != LAW_VERSION:
            raise DataError(f"{where}: not an attribute law of version {LAW_VERSION}")
        try:
            schema = AttributeSchema.from_spec([str(s) for s in d["attributes"]])
            rows = torch.tensor(d["rows"], dtype=torch.float32)
            counts = torch.tensor(d["counts"], dtype=torch.int64)
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise DataError(f"{where}: malformed ({type(e).__name__})") from None
        except Exception as e:  # a bad schema string (ConfigError)
            raise DataError(f"{where}: {e}") from None
        return cls(schema, rows, counts)

    def save(self, path: str | Path) -> None:
        """Write :meth:`to_dict` as JSON, atomically."""
        from wgan.store.rundirs import write_text_atomic

        write_text_atomic(Path(path), json.dumps(self.to_dict()) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> AttributeLaw:
        """The law a :meth:`save` wrote; an unreadable file is a :class:`DataError`."""
        try:
            d = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise DataError(f"cannot read the attribute law {path}: {type(e).__name__}") from None
        return cls.from_dict(d, str(path))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, AttributeLaw)
            and self.schema == other.schema
            and torch.equal(self.rows, other.rows)
            and torch.equal(self.counts, other.counts)
        )

    __hash__ = None  # type: ignore[assignment]

    # --- drawing -----------------------------------------------------------------------------
    def draw(
        self,
        n: int,
        request: Request | None = None,
        generator: torch.Generator | None = None,
        fixed: bool = False,
    ) -> tuple[Tensor, str | None]:
        """``n`` vectors (n, k) with the ``request``'s groups set and the others drawn.

        The unnamed groups come from a row drawn with probability proportional to its count
        among the rows matching the request (the conditional law above); ``fixed``: one row for
        all ``n``. When no row matches, from the rows matching the most named attributes; the
        note (else None) says so in one line.
        """
        request = dict(request or {})
        note = None
        match = self.schema.matches(self.rows, request)  # (M,)
        if not bool(match.any()):
            score = torch.zeros(len(self.rows), dtype=torch.int64)
            for g, v in request.items():
                score += self.schema.matches(self.rows, {g: v}).long()
            best = int(score.max())
            match = score == best
            asked = request_words(self.schema, request)
            if best == 0:
                how = "from their marginal law (no training image has any of them)"
            else:
                how = (
                    f"from the {int(self.counts[match].sum()):,} training images that have "
                    f"{best} of the {len(request)} named attributes"
                )
            if len(request) < len(self.schema.groups):  # with every group named, none is drawn
                note = f"no training image is {asked}: the unnamed attributes are drawn {how}"
        weights = self.counts[match].double()  # (M',)
        idx = torch.multinomial(weights, 1 if fixed else n, replacement=True, generator=generator)
        c = set_request(self.schema, self.rows[match][idx], request)  # (n or 1, k)
        return (c.expand(n, -1) if fixed else c), note
