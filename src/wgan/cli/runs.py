"""``wgan runs [DIR]``: every run under a folder in one table (:mod:`wgan.store.run_index`).

Single runs, members of sweeps and members of studies alike, with their config's name and data,
the step reached of ``train.steps``, the status of their last session, whether ``wgan train
--resume`` can continue them, and their last evaluation with its real-vs-real baselines.
``--json`` prints the rows as one object; ``--html FILE`` writes a page that also overlays the
training curves of each sweep's and study's runs (:mod:`wgan.figures.runs_page`).

Nothing here imports torch; only ``--html`` loads matplotlib.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

from wgan.store.printable import printable

__all__ = ["DEFAULT_DIR", "add_runs_parser", "cmd_runs", "format_runs"]

DEFAULT_DIR = "runs"
"""Where ``wgan train``, ``sweep`` and ``study`` put their runs by default."""


def _resume(row: dict[str, Any]) -> str:
    """``yes`` (from its checkpoint), ``from 0`` (no checkpoint yet: trains again from step 0)
    or ``no``."""
    return "yes" if row["checkpoint"] else "from 0" if row["resumable"] else "no"


def _data(row: dict[str, Any]) -> str:
    name = row["data"] or "-"
    if row.get("data_path"):
        name += f" ({Path(row['data_path']).name})"
    return name


def format_runs(rows: list[dict[str, Any]], root: str | Path) -> str:
    """The table of :func:`wgan.store.run_index.list_runs`'s rows, its notes, and a count of the
    statuses. Every text from a file is escaped (:func:`wgan.store.printable.printable`)."""
    from wgan.store.run_index import row_summary

    if not rows:
        return f"no runs under {printable(root, 300)}"
    header = ["run", "preset", "data", "step", "status", "resume", "last metrics"]
    table = []
    for row in rows:
        steps = row["steps"] if row["steps"] is not None else "?"
        step = "-" if row["step"] is None else f"{row['step']}/{steps}"
        cells = [row["run"], row["preset"] or "-", _data(row), step, row["status"], _resume(row)]
        table.append([printable(c, 120) for c in cells] + [row_summary(row)])
    widths = [max(len(h), *(len(r[i]) for r in table)) for i, h in enumerate(header)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
        for line in [header, *table]
    ]
    for row in rows:
        for note in row["notes"]:
            lines.append(f"note: {printable(row['run'], 120)}: {printable(note, 500)}")
    counts = Counter(row["status"] for row in rows)
    what = ", ".join(f"{n} {printable(status, 40)}" for status, n in counts.most_common())
    runs = "1 run" if len(rows) == 1 else f"{len(rows)} runs"
    lines.append(f"{runs} under {printable(root, 300)}: {what}")
    return "\n".join(lines)


def cmd_runs(args: argparse.Namespace) -> int:
    """``wgan runs [DIR] [--json] [--html FILE]``."""
    from wgan.store import rundirs
    from wgan.store.run_index import list_runs
    from wgan.store.tracking import json_safe

    page = None
    if args.html is not None:
        page = rundirs.check_output_file(Path(args.html).expanduser(), "--html")
    root = Path(args.dir or DEFAULT_DIR).expanduser()
    # No runs/ yet (nothing trained here): an empty table; a folder named and missing: an error.
    rows = [] if args.dir is None and not root.exists() else list_runs(root)
    if page is not None:
        from wgan.figures.runs_page import write_runs_page

        rundirs.make_dirs(page.parent, "--html")
        write_runs_page(root, page, rows)
    if args.json:
        record = {"root": str(root), "runs": rows}
        if page is not None:
            record["page"] = str(page)
        print(json.dumps(json_safe(record)))
        return 0
    print(format_runs(rows, root))
    if page is not None:
        print(f"page: {page}")
    return 0


def add_runs_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``wgan runs`` to the ``wgan`` command's subparsers; returns its parser."""
    p = subparsers.add_parser(
        "runs",
        help="every run under a folder: preset, data, step, status, resumable, last metrics",
        description="One table of every run under DIR: single runs, sweep members and study "
        "members, with the config's name and data, the step reached of train.steps, the status "
        "of the last session (finished, interrupted, diverged, running, killed, failed), "
        "whether 'wgan train --resume' can continue it, and the last evaluation with its "
        "real-vs-real baselines.",
    )
    p.add_argument("dir", nargs="?", help=f"the folder (default: {DEFAULT_DIR})")
    p.add_argument("--json", action="store_true", help="print one JSON object: root, runs")
    p.add_argument(
        "--html",
        metavar="FILE",
        help="also write a page with the table and each sweep's and study's training curves "
        "overlaid (self-contained: PNG figures embedded, no scripts)",
    )
    p.set_defaults(func=cmd_runs)
    return p
