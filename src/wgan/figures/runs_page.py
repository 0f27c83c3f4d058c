"""``wgan runs DIR --html FILE``: one self-contained page of the runs under a folder.

The page holds the table of :func:`wgan.store.run_index.list_runs` and, for each sweep and each
study (and for the single runs together), one figure that overlays the members' training curves
read from their ``metrics.jsonl``: the critic's estimate of the distance it was trained to
estimate (``d/estimate``, the Wasserstein estimate of a WGAN critic, Arjovsky et al. 2017, Fig.
3) and up to three headline metrics of the evaluations (W1, Fréchet distance, n-gram JS, ...),
each with its real-vs-real baseline as a dashed line where one was recorded. Figures are PNG
embedded as base64 ``data:`` URIs; the page loads nothing and runs no script. Every text from a
file is HTML-escaped.
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import statistics
from pathlib import Path
from typing import Any

from wgan.figures.plotting import legend_beside, subplots
from wgan.store.printable import printable
from wgan.store.run_index import (
    BASELINE_SUFFIXES,
    list_runs,
    read_records,
    row_summary,
)

__all__ = ["ESTIMATE", "curves", "curves_figure", "runs_page", "write_runs_page"]

ESTIMATE = "d/estimate"
"""The training statistic overlaid first: the critic's estimate of the divergence."""

MAX_CURVE_BYTES = 64 << 20
"""The most of a ``metrics.jsonl`` read for its curves (its last 64 MiB)."""

MAX_EVAL_PANELS = 3
_PREFERRED = ("w1", "fd_features", "fd_classifier", "fd", "fid", "js4", "js1", "kid")
_LABELS = {
    ESTIMATE: "critic estimate (d/estimate)",
    "high_quality_fraction": "high-quality fraction",
}

Series = tuple[str, list[int], list[float]]  # (run label, steps, values)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def curves(rows: list[dict[str, Any]]) -> tuple[dict[str, list[Series]], dict[str, float]]:
    """The curves of the runs of ``rows``: metric -> one ``(label, steps, values)`` per run that
    logged it (``d/estimate`` from the training records, the headline metrics from the
    evaluations), and metric -> the median recorded real-vs-real baseline."""
    per_metric: dict[str, list[Series]] = {}
    baselines: dict[str, list[float]] = {}
    eval_keys: list[str] = []
    for row in rows:
        label = Path(row["run"]).name
        try:
            records = read_records(Path(row["path"]) / "metrics.jsonl", MAX_CURVE_BYTES)
        except OSError:
            continue
        points: dict[str, tuple[list[int], list[float]]] = {}
        for record in records:
            step, kind = record.get("step"), record.get("kind")
            if not _number(step) or kind not in ("train", "eval"):
                continue
            for key, value in record.items():
                if not _number(value) or (kind == "train" and key != ESTIMATE):
                    continue
                base = next((key[: -len(s)] for s in BASELINE_SUFFIXES if key.endswith(s)), None)
                if base is not None:
                    baselines.setdefault(base, []).append(float(value))
                    continue
                if kind == "eval" and isinstance(value, float) and key not in eval_keys:
                    eval_keys.append(key)
                xs, ys = points.setdefault(key, ([], []))
                xs.append(int(step))
                ys.append(float(value))
        for key, (xs, ys) in points.items():
            per_metric.setdefault(key, []).append((label, xs, ys))
    chosen = [k for k in _PREFERRED if k in eval_keys]
    chosen += [k for k in eval_keys if k not in chosen and not k.startswith("n_")]
    keep = ([ESTIMATE] if ESTIMATE in per_metric else []) + chosen[:MAX_EVAL_PANELS]
    out = {k: per_metric[k] for k in keep if k in per_metric}
    return out, {k: statistics.median(v) for k, v in baselines.items() if k in out}


def curves_figure(
    series: dict[str, list[Series]], baselines: dict[str, float], title: str
) -> Any | None:
    """A figure with one panel per metric, one line per run (same colour in every panel), the
    baseline dashed, the legend beside the last panel; None when there is nothing to plot."""
    if not series:
        return None
    from matplotlib import colormaps

    labels = list(dict.fromkeys(label for runs in series.values() for label, _, _ in runs))
    cmap = colormaps["tab10" if len(labels) <= 10 else "tab20" if len(labels) <= 20 else "viridis"]
    n = max(len(labels) - 1, 1)
    colour = {label: cmap(i if len(labels) <= 20 else i / n) for i, label in enumerate(labels)}
    fig, axes = subplots(1, len(series), figsize=(4.2 * len(series), 3.2), squeeze=False)
    for ax, (key, runs) in zip(axes[0], series.items(), strict=True):
        for label, xs, ys in runs:
            marker = "o" if len(xs) <= 20 else None  # a curve of one point stays visible
            ax.plot(
                xs, ys, color=colour[label], linewidth=1.2, marker=marker, markersize=3, label=label
            )
        if key in baselines:
            ax.axhline(
                baselines[key], color="0.4", linestyle="--", linewidth=1.0, label="real vs real"
            )
        name = _LABELS.get(key, key)
        ax.set_title(printable(name, 60), fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylabel(printable(name, 60))
        ax.tick_params(labelsize=7)
    handles, names = axes[0][-1].get_legend_handles_labels()
    for ax in axes[0][:-1]:  # every run, and the baseline, in one legend
        for handle, name in zip(*ax.get_legend_handles_labels(), strict=True):
            if name not in names:
                handles.append(handle)
                names.append(name)
    if len(names) <= 30:
        legend_beside(axes[0][-1], handles, [printable(n, 60) for n in names])
    fig.suptitle(printable(title, 120), fontsize=10)
    fig.tight_layout()
    return fig


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight", pad_inches=0.1)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _e(value: Any) -> str:
    return html.escape(printable(value, 2000))


_STYLE = (
    "body{font-family:sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;"
    "font-size:13px}td,th{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left}"
    "img{max-width:100%}.note{color:#a40;font-size:12px}"
)


def _table(rows: list[dict[str, Any]]) -> str:
    head = ["run", "preset", "data", "step", "status", "resume", "last metrics"]
    lines = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for row in rows:
        step = f"{row['step']}/{row['steps'] if row['steps'] is not None else '?'}"
        resume = "yes" if row["checkpoint"] else "from 0" if row["resumable"] else "no"
        cells = [row["run"], row["preset"] or "-", row["data"] or "-", step, row["status"]]
        cells += [resume, row_summary(row)]
        lines.append("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in cells) + "</tr>")
        for note in row["notes"]:
            lines.append(f'<tr><td></td><td colspan="6" class="note">{_e(note)}</td></tr>')
    return "\n".join(lines + ["</table>"])


def runs_page(root: str | Path, rows: list[dict[str, Any]] | None = None) -> str:
    """The HTML of the page of the runs under ``root`` (``rows``: :func:`list_runs`'s)."""
    rows = list_runs(root) if rows is None else rows
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["group"] or "", []).append(row)
    when = datetime.datetime.now().isoformat(timespec="seconds")
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>runs under {_e(root)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{len(rows)} runs under {_e(root)}</h1><p>written {when}</p>",
        _table(rows),
    ]
    for group, members in sorted(groups.items()):
        kind = members[0]["layout"]
        title = f"{kind} {group} ({len(members)} runs)" if group else "single runs"
        series, baselines = curves(members)
        fig = curves_figure(series, baselines, title)
        parts.append(f"<h2>{_e(title)}</h2>")
        if fig is None:
            parts.append("<p>no training curves recorded</p>")
            continue
        parts.append(f'<img src="data:image/png;base64,{_png(fig)}" alt="{_e(title)}">')
    parts.append("</body></html>")
    return "\n".join(parts)


def write_runs_page(
    root: str | Path, path: str | Path, rows: list[dict[str, Any]] | None = None
) -> Path:
    """Write :func:`runs_page` of ``root`` to ``path`` (atomically); returns ``path``."""
    from wgan.store.rundirs import write_text_atomic

    path = Path(path)
    write_text_atomic(path, runs_page(root, rows))
    return path
