"""Generated text as lines of a figure, a file or a terminal."""

from __future__ import annotations


def printable_line(text: str) -> str:
    """One sample as one line: a newline shows as ``↵`` (U+21B5), a tab as ``→`` (U+2192)."""
    return text.replace("\n", "\u21b5").replace("\t", "\u2192")


__all__ = ["printable_line"]
