"""Attribute vectors: what a condition c in {0, 1}^k means, how it is written and how it is varied.

An attribute-labelled dataset (the embedded coloured shapes, CelebA's 40 attributes, a folder
with a CSV) describes each image by a binary vector c in {0, 1}^k made of

* one-hot *groups*: exactly one column of the group is 1 (a shape is a circle, a square or a
  triangle), and
* binary *flags*: one column, 0 or 1 (filled or not); a flag may name its 0 state (``small``
  for the flag ``large``).

A conditional GAN on such data models p(x | c) as the face generator of the conditional-GAN
example asked for "red hair, green eyes" does (Mirza & Osindero 2014); the matching-aware
critic (Reed et al. 2016) also scores real images paired with a *wrong* vector, drawn here by
:meth:`AttributeSchema.wrong` so that a wrong vector is still a valid one (groups stay one-hot).

The schema is stored in a run's config as plain strings (:meth:`AttributeSchema.to_spec`):
``"shape:circle|square|triangle"`` for a group, ``"filled"`` for a flag and ``"large/small"``
for a flag with a name for its 0 state.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from wgan.errors import ConfigError

__all__ = ["AttributeGroup", "AttributeSchema"]

_TRUE = {"1", "yes", "true", "on"}
_FALSE = {"0", "no", "false", "off"}


@dataclass(frozen=True)
class AttributeGroup:
    """One group of columns: a one-hot group (``values`` >= 2 names) or a flag (``flag``).

    A flag has one column named ``name``; ``off`` optionally names its 0 state.
    """

    name: str
    values: tuple[str, ...]
    flag: bool = False
    off: str | None = None

    @property
    def width(self) -> int:
        """Columns this group takes in the vector."""
        return 1 if self.flag else len(self.values)

    def spec(self) -> str:
        if self.flag:
            return self.name if self.off is None else f"{self.name}/{self.off}"
        return f"{self.name}:{'|'.join(self.values)}"


def _parse_group(text: str) -> AttributeGroup:
    text = text.strip()
    if ":" in text:
        name, _, rest = text.partition(":")
        values = tuple(v.strip() for v in rest.split("|"))
        if len(values) < 2 or any(not v for v in values):
            raise ConfigError(f"attribute group '{text}' needs two or more named values")
        return AttributeGroup(name.strip(), values)
    name, _, off = text.partition("/")
    if not name.strip() or ("/" in text and not off.strip()):
        raise ConfigError(f"malformed attribute flag '{text}' (expected NAME or NAME/OFF_NAME)")
    return AttributeGroup(name.strip(), (name.strip(),), flag=True, off=off.strip() or None)


class AttributeSchema:
    """The layout of an attribute vector: groups and flags in column order.

    Args:
        groups: the groups in column order.

    Attributes:
        names: the k column names (a group's values, a flag's name), in column order.
        dim: k.
    """

    def __init__(self, groups: Sequence[AttributeGroup]) -> None:
        self.groups: tuple[AttributeGroup, ...] = tuple(groups)
        if not self.groups:
            raise ConfigError("an attribute schema needs at least one attribute")
        names = [v for g in self.groups for v in g.values]
        words = names + [g.name for g in self.groups if not g.flag]
        words += [g.off for g in self.groups if g.off]
        seen: set[str] = set()
        for w in words:
            if w.lower() in seen:
                raise ConfigError(f"attribute name '{w}' is used twice (names ignore case)")
            seen.add(w.lower())
        self.names: tuple[str, ...] = tuple(names)
        self.dim = len(names)
        starts, at = [], 0
        for g in self.groups:
            starts.append(at)
            at += g.width
        self._starts = tuple(starts)  # first column of each group

    # --- construction and storage -----------------------------------------------------------
    @classmethod
    def from_spec(cls, spec: Iterable[str]) -> AttributeSchema:
        """The schema from :meth:`to_spec`'s strings."""
        return cls([_parse_group(s) for s in spec])

    @classmethod
    def flags(cls, names: Iterable[str]) -> AttributeSchema:
        """k independent flags (CelebA's attributes, a CSV's columns)."""
        return cls([AttributeGroup(n, (n,), flag=True) for n in names])

    def to_spec(self) -> tuple[str, ...]:
        """Plain strings a config stores; :meth:`from_spec` reads them back."""
        return tuple(g.spec() for g in self.groups)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AttributeSchema) and self.groups == other.groups

    def __hash__(self) -> int:
        return hash(self.groups)

    def __repr__(self) -> str:
        return f"AttributeSchema({list(self.to_spec())})"

    def columns(self, group: AttributeGroup) -> slice:
        """The columns of ``group`` in the vector."""
        i = self.groups.index(group)
        return slice(self._starts[i], self._starts[i] + group.width)

    # --- names -------------------------------------------------------------------------------
    def _lookup(self) -> dict[str, tuple[AttributeGroup, int | None]]:
        """lower-case word -> (group, value index; for a flag 1 or 0, None for a group name)."""
        table: dict[str, tuple[AttributeGroup, int | None]] = {}
        for g in self.groups:
            if g.flag:
                table[g.name.lower()] = (g, 1)
                if g.off:
                    table[g.off.lower()] = (g, 0)
            else:
                table[g.name.lower()] = (g, None)
                for i, v in enumerate(g.values):
                    table[v.lower()] = (g, i)
        return table

    def group(self, word: str) -> AttributeGroup:
        """The group a word names: a group's name, one of its values, a flag or its off-name."""
        return self._resolve(word)[0]

    def _resolve(self, word: str) -> tuple[AttributeGroup, int | None]:
        table = self._lookup()
        key = word.strip().lower()
        if key in table:
            return table[key]
        close = difflib.get_close_matches(key, list(table), n=3, cutoff=0.6)
        originals = {w.lower(): w for g in self.groups for w in (g.name, *g.values, g.off) if w}
        hint = f"; did you mean {', '.join(originals[c] for c in close)}?" if close else ""
        raise ConfigError(
            f"unknown attribute '{word.strip()}'{hint} (known: {', '.join(self.words())})"
        )

    def words(self) -> list[str]:
        """Every name a request may use, in column order."""
        out: list[str] = []
        for g in self.groups:
            out += list(g.values) if not g.flag else [g.name] + ([g.off] if g.off else [])
        return out

    def parse(self, text: str) -> dict[AttributeGroup, int]:
        """A request such as ``"red,triangle,large"`` as {group: value index (flags: 0/1)}.

        Items are comma-separated: a value of a group (``red``), a flag (``large`` = 1) or its
        off-name (``small`` = large 0), ``group=value`` (``colour=red``) or ``flag=0|1``. Naming a
        group twice with different values is refused; an unknown name is refused with the close
        matches.
        """
        out: dict[AttributeGroup, int] = {}
        for item in (s.strip() for s in text.split(",")):
            if not item:
                continue
            if "=" in item:
                left, _, right = item.partition("=")
                g, idx = self._resolve(left)
                if g.flag and right.strip().lower() in _TRUE | _FALSE:
                    value = 1 if right.strip().lower() in _TRUE else 0
                    value = value if idx != 0 else 1 - value  # "small=1" means large=0
                else:
                    g2, value = self._resolve(right)
                    if g2 is not g or value is None:
                        raise ConfigError(f"'{right.strip()}' is not a value of '{left.strip()}'")
            else:
                g, value = self._resolve(item)
                if value is None:
                    raise ConfigError(
                        f"'{item}' names a group; ask for one of its values "
                        f"({', '.join(g.values)}) or write {item}=VALUE"
                    )
            if g in out and out[g] != value:
                raise ConfigError(f"attribute '{g.name}' is asked for twice with different values")
            out[g] = value
        if not out:
            raise ConfigError("no attributes named (e.g. --attrs red,triangle)")
        return out

    # --- vectors ------------------------------------------------------------------------------
    def encode(self, request: Mapping[AttributeGroup, int], base: Tensor | None = None) -> Tensor:
        """The (k,) float vector with the requested groups set, over ``base`` (zeros if None)."""
        c = torch.zeros(self.dim) if base is None else base.detach().clone().float()
        for g, value in request.items():
            cols = self.columns(g)
            if g.flag:
                c[cols] = float(value)
            else:
                c[cols] = 0.0
                c[cols.start + value] = 1.0
        return c

    def matches(self, c: Tensor, request: Mapping[AttributeGroup, int]) -> Tensor:
        """(N,) bool: which rows of ``c`` (N, k) have every requested attribute."""
        ok = torch.ones(c.shape[0], dtype=torch.bool, device=c.device)
        for g, value in request.items():
            cols = self.columns(g)
            if g.flag:
                ok &= (c[:, cols.start] > 0.5) == bool(value)
            else:
                ok &= c[:, cols].argmax(1) == value
        return ok

    def describe(self, c: Tensor) -> str:
        """The words of one (k,) vector, e.g. ``"triangle, red, large, filled"``."""
        words = []
        for g in self.groups:
            cols = self.columns(g)
            if g.flag:
                on = bool(c[cols.start] > 0.5)
                if on or g.off:
                    words.append(g.name if on else g.off)
            else:
                words.append(g.values[int(c[cols].argmax())])
        return ", ".join(words)

    def check(self, c: Tensor, what: str = "attribute vectors") -> None:
        """ConfigError unless ``c`` is (N, k) with 0/1 entries and exactly one 1 per group."""
        if c.ndim != 2 or c.shape[1] != self.dim:
            raise ConfigError(f"{what}: expected shape (N, {self.dim}), got {tuple(c.shape)}")
        if not bool(((c == 0) | (c == 1)).all()):
            raise ConfigError(f"{what}: entries must be 0 or 1")
        for g in self.groups:
            if not g.flag:
                sums = c[:, self.columns(g)].sum(1)
                bad = (sums != 1).nonzero()
                if bad.numel():
                    raise ConfigError(
                        f"{what}: row {int(bad[0, 0])} has {int(sums[bad[0, 0]])} of "
                        f"'{g.name}' ({', '.join(g.values)}) set; exactly one must be"
                    )

    def uniform(
        self,
        n: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """``n`` valid vectors (n, k) float32, every group drawn independently and uniformly: a
        one-hot group takes each of its values with probability 1/width, a flag is 1 with
        probability 1/2. One ``torch.rand(n, groups)`` draw from ``generator``."""
        u = torch.rand(n, len(self.groups), generator=generator, device=device)  # (n, G)
        parts = []
        for j, g in enumerate(self.groups):
            if g.flag:
                parts.append((u[:, j : j + 1] < 0.5).float())  # (n, 1)
            else:
                idx = (u[:, j] * g.width).long().clamp(max=g.width - 1)  # (n,) uniform value
                parts.append(torch.nn.functional.one_hot(idx, g.width).float())  # (n, width)
        return torch.cat(parts, dim=1)  # (n, k)

    def wrong(self, c: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Mismatched vectors for the matching-aware critic term (Reed et al. 2016).

        Each row of ``c`` (B, k) gets a random non-empty subset of its groups changed: every
        group independently with probability 1/2, and one group chosen uniformly always. A
        changed flag is negated; a changed one-hot group moves to one of its other values,
        uniformly. So the result is a valid vector (groups stay one-hot) that differs from ``c``
        in every row. Draws come only from ``generator`` (a fixed number per call), so a run
        replays them exactly; the operations are traceable by torch.compile.
        """
        b, n_groups = c.shape[0], len(self.groups)
        dev = c.device
        flip = torch.rand(b, n_groups, generator=generator, device=dev) < 0.5  # (B, G)
        forced = torch.randint(n_groups, (b,), generator=generator, device=dev)  # (B,)
        flip = flip | torch.nn.functional.one_hot(forced, n_groups).bool()
        u = torch.rand(b, n_groups, generator=generator, device=dev)  # (B, G): new-value draws
        parts = []
        for j, g in enumerate(self.groups):
            cols = c[:, self.columns(g)]  # (B, width)
            if g.flag:
                new = 1.0 - cols
            else:
                n = g.width
                shift = 1 + (u[:, j] * (n - 1)).long().clamp(max=n - 2)  # (B,) in [1, n-1]
                idx = (cols.argmax(1) + shift) % n
                new = torch.nn.functional.one_hot(idx, n).to(cols.dtype)
            parts.append(torch.where(flip[:, j : j + 1], new, cols))
        return torch.cat(parts, dim=1)  # (B, k)
