"""Small pieces the ``wgan`` command line shares: reading positionals, formatting numbers."""

from __future__ import annotations

from typing import Any


def split_source(items: list[str]) -> tuple[str | None, list[str]]:
    """The first positional without '=' is the preset or config file; the rest are overrides."""
    if items and "=" not in items[0]:
        return items[0], items[1:]
    return None, items


def fmt(value: Any, spec: str = ".3g") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


def format_metrics(metrics: dict[str, Any]) -> str:
    width = max(len(k) for k in metrics)
    lines = []
    for key, value in metrics.items():
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        lines.append(f"  {key:<{width}}  {text}")
    return "\n".join(lines)
