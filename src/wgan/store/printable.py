"""Text read from files, made safe to print on a terminal.

A run name, an error message or a metric read back from a record file is data: it may hold a
newline (a second, forged line of output), an ANSI escape sequence (ECMA-48 control functions
start with ESC, U+001B, or the C1 control CSI, U+009B, and can move the cursor, recolour or
retitle the terminal) or a bidirectional override (U+202E; "Trojan Source", Boucher and Anderson,
USENIX Security 2023) that makes the text read differently from what it is. :func:`printable`
writes every such character as a visible escape (``\\n``, ``\\x1b``, ``\\u202e``), so one value
stays one visible piece of one line.

Only the standard library is imported: every layer may use it.
"""

from __future__ import annotations

import unicodedata

__all__ = ["printable"]

# Unicode general categories escaped: controls (C0, DEL, C1), format characters (bidirectional
# controls, zero-width joiners), surrogates, private use, unassigned, and the line and
# paragraph separators (terminals and editors may break lines there).
_UNSAFE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(value: object, limit: int = 500) -> str:
    """``value`` as one line without control characters, at most about ``limit`` characters.

    Characters of the categories above become ``\\xNN``, ``\\uNNNN`` or ``\\UNNNNNNNN`` (``\\n``,
    ``\\r``, ``\\t`` for the common ones); other text, non-ASCII letters included, is kept. Text
    longer than ``limit`` is cut and ends with ``... (N more characters)``.
    """
    text = value if isinstance(value, str) else str(value)
    cut = len(text) - limit if len(text) > limit else 0
    head = text[:limit] if cut else text
    out = "".join(_escape(ch) if unicodedata.category(ch) in _UNSAFE else ch for ch in head)
    return f"{out}... ({cut} more characters)" if cut else out
