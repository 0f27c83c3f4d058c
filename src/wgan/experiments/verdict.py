"""A verdict: one claim of the literature, the number an experiment measured for it, and
whether the claim holds at the experiment's settings.

Three outcomes, never a silent contradiction: ``holds`` is True or False when the settings are
large enough to test the claim, and None ("not tested at these settings") when they are not,
with ``note`` saying why (for example a run too short for the critic's loss to mean anything).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Verdict:
    """One claim and its measurement.

    ``claim``: the claim in one sentence; ``source``: the paper it comes from (e.g.
    "Arjovsky et al. 2017, WGAN, section 3"); ``measured``: the number(s) that decide it, as
    text; ``holds``: True / False, or None when the settings are too small to test it;
    ``note``: why it could not be tested, or a caveat.
    """

    claim: str
    source: str
    measured: str
    holds: bool | None
    note: str = ""

    @property
    def status(self) -> str:
        """``"holds"``, ``"does not hold"`` or ``"not tested at these settings"``."""
        if self.holds is None:
            return "not tested at these settings"
        return "holds" if self.holds else "does not hold"

    def line(self) -> str:
        """One line for the terminal: status, claim, measured number and note."""
        text = f"[{self.status}] {self.claim} — measured: {self.measured}"
        return f"{text} ({self.note})" if self.note else text

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record (with the status spelled out)."""
        return {**asdict(self), "status": self.status}


def decide(
    claim: str,
    source: str,
    measured: str,
    holds: bool,
    testable: bool = True,
    why_not: str = "",
) -> Verdict:
    """A verdict for ``claim``: ``holds`` when ``testable``; otherwise "not tested at these
    settings" with ``why_not`` as its note (the measured number is still reported)."""
    if not testable:
        return Verdict(claim, source, measured, None, why_not)
    return Verdict(claim, source, measured, bool(holds))


def finite(*values: Any) -> bool:
    """True when every value is a finite int or float (None, NaN and inf are not)."""
    return all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)


def fmt(x: float) -> str:
    """``x`` with 3 significant digits, or as text when it is not finite."""
    return f"{x:.3g}" if finite(x) else str(x)


__all__ = ["Verdict", "decide", "finite", "fmt"]
