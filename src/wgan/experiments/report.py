"""``wgan experiment all``: every registered experiment, then one self-contained ``index.html``.

Each experiment of :data:`wgan.experiments.EXPERIMENTS` (whoever registered it) runs at its
defaults or, with ``quick=True``, at its ``QUICK`` size (:func:`~wgan.experiments.framework.
quick_settings`), in its own numbered run directory under the output folder. The page lists,
per experiment, the claims it tests with their source (the paper), the measured numbers
and the verdict, then its figures (PNG files embedded as base64 ``data:`` URIs, so the page is
one file that can be mailed or opened offline) and its table. An experiment that raises is shown
as failed, with its error, and the others still run. The page is rewritten after every
experiment, so a long run can be watched as it goes.

A run of the whole page takes hours at the defaults, so it can be picked up where it stopped:
each finished experiment leaves ``entry.json`` (its page entry) in its run directory once its
figures and table are written, and :func:`run_all` reuses the newest such entry in the output
folder whose settings equal the ones it would run with, instead of running that experiment again
(``fresh=True``, ``wgan experiment all --fresh``, runs everything again). An experiment that
stopped part way or failed runs again in its own folder (``started.json`` records its
settings), so the runs a study finished there are kept; a changed setting or a missing figure
means a new folder.
"""

from __future__ import annotations

import base64
import html
import json
import re
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

from wgan.experiments.framework import (
    EXPERIMENTS,
    Experiment,
    experiment_dir,
    experiment_module,
    quick_settings,
)
from wgan.experiments.verdict import Verdict
from wgan.store.rundirs import atomic_output
from wgan.store.tracking import json_safe

INDEX = "index.html"
#: A finished experiment's page entry, in its run directory (what a later run_all reuses).
ENTRY = "entry.json"
#: The settings an experiment started with, in its run directory (to continue it after a stop).
STARTED = "started.json"


@dataclass
class ReportEntry:
    """One experiment on the page: how it ran and what it measured."""

    name: str
    description: str
    status: str  # "ok" or "failed"
    seconds: float
    run_dir: Path | None = None
    verdicts: list[Verdict] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)
    table: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    about: str = ""  # the module docstring's first paragraph: the claim and its papers
    error: str = ""  # "Type: message" of a failed experiment
    reused: bool = False  # taken from an earlier run's entry.json instead of run again
    continued: bool = False  # ran on in the folder of a stopped run (seconds: this part only)

    def counts(self) -> dict[str, int]:
        """How many verdicts hold, do not hold, or were not tested."""
        out = {"holds": 0, "does not hold": 0, "not tested at these settings": 0}
        for v in self.verdicts:
            out[v.status] += 1
        return out

    def summary_line(self) -> str:
        """One terminal line: name, status, verdict counts, time."""
        if self.status != "ok":
            return f"{self.name}: FAILED after {self.seconds:.0f} s: {self.error}"
        c = self.counts()
        again = ", reused from an earlier run" if self.reused else ""
        again = ", continued: the time of this part" if self.continued else again
        return (
            f"{self.name}: {c['holds']} hold, {c['does not hold']} do not hold, "
            f"{c['not tested at these settings']} not tested ({self.seconds:.0f} s{again})"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record."""
        return {
            "name": self.name,
            "status": self.status,
            "seconds": self.seconds,
            "run_dir": str(self.run_dir) if self.run_dir else None,
            "verdicts": [v.to_dict() for v in self.verdicts],
            "figures": [str(f) for f in self.figures],
            "settings": self.settings,
            "error": self.error,
            "reused": self.reused,
            "continued": self.continued,
        }


@dataclass
class Report:
    """The result of :func:`run_all`: the page and one entry per experiment."""

    out_dir: Path
    index: Path
    quick: bool
    entries: list[ReportEntry]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": str(self.index),
            "quick": self.quick,
            "seconds": self.seconds,
            "experiments": [e.to_dict() for e in self.entries],
        }


def _about(experiment: Experiment) -> str:
    """The first paragraph of the experiment module's docstring (its claim and papers)."""
    module = experiment_module(experiment)
    doc = (getattr(module, "__doc__", None) or "").strip()
    return " ".join(doc.split("\n\n", 1)[0].split())


def _plain(value: Any) -> Any:
    """``value`` as it reads back from JSON (how settings are compared with a stored entry)."""
    return json.loads(json.dumps(json_safe(value)))


def _run_dirs(out_dir: Path, experiment: Experiment) -> list[Path]:
    """The run directories of ``experiment`` under ``out_dir``, newest first."""
    pattern = re.compile(rf"\d{{5}}-exp-{re.escape(experiment.name)}")
    dirs = [p for p in out_dir.iterdir() if pattern.fullmatch(p.name) and p.is_dir()]
    return sorted(dirs, reverse=True)


def _started_with(run_dir: Path, settings: dict[str, Any]) -> bool:
    """Whether ``run_dir`` records (in ``started.json``) that it started with ``settings``."""
    try:
        record = json.loads((run_dir / STARTED).read_text(encoding="utf-8"))
        return record["settings"] == _plain(settings)
    except (OSError, ValueError, KeyError, TypeError):
        return False


def unfinished_dir(out_dir: Path, experiment: Experiment, settings: dict[str, Any]) -> Path | None:
    """The newest run directory of ``experiment`` under ``out_dir`` that started with
    ``settings`` and did not finish (no ``entry.json``): continued, so that the runs a study
    finished there are skipped (:func:`wgan.scale.study.run_study`)."""
    for run_dir in _run_dirs(out_dir, experiment):
        if not (run_dir / ENTRY).exists() and _started_with(run_dir, settings):
            return run_dir
    return None


def finished_entry(
    out_dir: Path, experiment: Experiment, settings: dict[str, Any]
) -> ReportEntry | None:
    """The newest finished entry of ``experiment`` under ``out_dir`` that ran with ``settings``
    and whose figures are all still there (None: the experiment has to run)."""
    for run_dir in _run_dirs(out_dir, experiment):
        try:
            record = json.loads((run_dir / ENTRY).read_text(encoding="utf-8"))
            ok = record["status"] == "ok" and record["settings"] == _plain(settings)
            figures = [run_dir / name for name in record["figures"]]
            if not ok or not all(f.is_file() for f in figures):
                continue
            verdicts = [Verdict(**{k: v[k] for k in VERDICT_KEYS}) for v in record["verdicts"]]
            seconds, table = float(record["seconds"]), str(record["table"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # unreadable, from an older version, or hand-edited: run it again
        entry = ReportEntry(experiment.name, experiment.description, "ok", seconds, run_dir)
        entry.verdicts, entry.figures, entry.table = verdicts, figures, table
        entry.settings, entry.about, entry.reused = settings, _about(experiment), True
        return entry
    return None


#: The fields a stored verdict is rebuilt from.
VERDICT_KEYS = ("claim", "source", "measured", "holds", "note")


def _write_entry(entry: ReportEntry) -> None:
    """``entry.json`` in the entry's run directory (figures named relative to it)."""
    assert entry.run_dir is not None
    record = {**entry.to_dict(), "table": entry.table}
    record["figures"] = [str(f.relative_to(entry.run_dir)) for f in entry.figures]
    with atomic_output(entry.run_dir / ENTRY) as tmp:  # a reader never sees half an entry
        tmp.write_text(json.dumps(json_safe(record), indent=2) + "\n", encoding="utf-8")


def run_one(experiment: Experiment, out_dir: Path, quick: bool, fresh: bool = True) -> ReportEntry:
    """Run one experiment into a new run directory under ``out_dir``; a failure (any
    exception but an interrupt) becomes a failed entry instead of stopping the report.
    ``fresh=False``: reuse a finished run with the same settings (:func:`finished_entry`), or
    go on in the folder of one that stopped (:func:`unfinished_dir`)."""
    start = time.time()
    entry = ReportEntry(experiment.name, experiment.description, "failed", 0.0)
    entry.about = _about(experiment)
    try:
        settings = quick_settings(experiment) if quick else experiment.settings()
        if is_dataclass(settings):
            entry.settings = asdict(settings)
            earlier = None if fresh else finished_entry(out_dir, experiment, entry.settings)
            if earlier is not None:
                return earlier
        entry.run_dir = None if fresh else unfinished_dir(out_dir, experiment, entry.settings)
        entry.continued = entry.run_dir is not None
        if entry.run_dir is None:
            entry.run_dir = experiment_dir(out_dir, experiment.name)
            started = {"experiment": experiment.name, "settings": entry.settings}
            (entry.run_dir / STARTED).write_text(json.dumps(json_safe(started)), encoding="utf-8")
        result = experiment.run(settings, entry.run_dir)
    except Exception as err:  # noqa: BLE001 - one broken experiment must not stop the page
        entry.error = f"{type(err).__name__}: {err}"
        entry.table = traceback.format_exc(limit=-3)
    else:
        entry.status = "ok"
        entry.verdicts = list(result.verdicts)
        entry.figures = [Path(f) for f in result.figures]
        entry.table = result.table
    entry.seconds = time.time() - start
    if entry.status == "ok" and all(f.is_relative_to(entry.run_dir) for f in entry.figures):
        _write_entry(entry)
    return entry


def run_all(
    out_dir: str | Path,
    quick: bool = False,
    experiments: Mapping[str, Experiment] | None = None,
    log: Callable[[str], None] | None = None,
    fresh: bool = False,
) -> Report:
    """Run every experiment (default: all registered ones) and write ``out_dir/index.html``.

    ``quick``: each at its ``QUICK`` size; ``log`` receives one line per finished experiment.
    The page is rewritten after each experiment. An experiment that already finished in
    ``out_dir`` with the same settings is reused, unless ``fresh``. ``Report.seconds`` is the sum
    of the experiments' own times (reused ones included), i.e. what the whole page costs.
    """
    experiments = EXPERIMENTS if experiments is None else experiments
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = Report(out, out / INDEX, quick, [], 0.0)
    for experiment in experiments.values():
        entry = run_one(experiment, out, quick, fresh)
        report.entries.append(entry)
        report.seconds = sum(e.seconds for e in report.entries)
        write_index(report)
        if log is not None:
            log(entry.summary_line())
    (out / "report.json").write_text(json.dumps(json_safe(report.to_dict()), indent=2) + "\n")
    return report


# ----------------------------------------------------------------------------------------------
# The page
# ----------------------------------------------------------------------------------------------

_STYLE = """
body { font-family: sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.4; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
pre { background: #f7f7f7; padding: 0.6em; overflow-x: auto; font-size: 0.8em; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.4em 0; }
.holds { background: #d9f2d9; } .does-not-hold { background: #f8d0d0; }
.not-tested { background: #fff1c2; } .failed { background: #f8d0d0; font-weight: bold; }
.ok { background: #d9f2d9; } section { border-top: 2px solid #888; margin-top: 2em; }
.small { font-size: 0.85em; color: #555; }
"""

_STATUS_CLASS = {
    "holds": "holds",
    "does not hold": "does-not-hold",
    "not tested at these settings": "not-tested",
}


def _e(text: Any) -> str:
    return html.escape(str(text))


def _image(path: Path) -> str:
    """An ``<img>`` with the PNG inlined, or a note when the file is missing."""
    if not path.is_file():
        return f'<p class="failed">figure missing: {_e(path.name)}</p>'
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    mime = "image/png" if path.suffix.lower() == ".png" else "application/octet-stream"
    return f'<figure><img src="data:{mime};base64,{data}" alt="{_e(path.name)}"><figcaption class="small">{_e(path.name)}</figcaption></figure>'  # noqa: E501


def _verdict_rows(verdicts: list[Verdict]) -> str:
    rows = [
        f'<tr class="{_STATUS_CLASS[v.status]}"><td>{_e(v.claim)}</td><td>{_e(v.source)}</td>'
        f"<td>{_e(v.measured)}</td><td><b>{_e(v.status)}</b>"
        + (f"<br><span class='small'>{_e(v.note)}</span>" if v.note else "")
        + "</td></tr>"
        for v in verdicts
    ]
    head = "<tr><th>claim</th><th>source (paper)</th><th>measured</th><th>verdict</th></tr>"
    return f"<table>{head}{''.join(rows)}</table>"


def _section(entry: ReportEntry, out_dir: Path) -> str:
    parts = [f'<section id="{_e(entry.name)}"><h2>{_e(entry.name)}</h2>']
    parts.append(f"<p>{_e(entry.description)}</p>")
    if entry.about:
        parts.append(f'<p class="small">{_e(entry.about)}</p>')
    if entry.status != "ok":
        parts.append(f'<p class="failed">failed after {entry.seconds:.0f} s: {_e(entry.error)}</p>')
        parts.append(f"<pre>{_e(entry.table)}</pre></section>")
        return "".join(parts)
    where = entry.run_dir.relative_to(out_dir) if entry.run_dir else ""
    again = " (reused from an earlier run of the page)" if entry.reused else ""
    if entry.continued:
        again = " (continued after a stop: the time of the last part only)"
    parts.append(
        f'<p class="small">ran in {entry.seconds:.0f} s{again}; '
        f"run directory <code>{_e(where)}</code> "
        f"(numbers in <code>{_e(where)}/results.json</code>)</p>"
    )
    if entry.verdicts:
        parts.append("<h3>Claims and verdicts</h3>" + _verdict_rows(entry.verdicts))
    else:
        parts.append("<p><i>This experiment gives no verdicts.</i></p>")
    if entry.figures:
        parts.append("<h3>Figures</h3>" + "".join(_image(f) for f in entry.figures))
    parts.append(f"<h3>Numbers</h3><pre>{_e(entry.table)}</pre>")
    settings = ", ".join(f"{k}={v}" for k, v in entry.settings.items())
    parts.append(f'<p class="small">settings: {_e(settings)}</p></section>')
    return "".join(parts)


#: The page's title and heading.
PAGE_TITLE = "Published claims about GANs and WGANs, measured"


def render_html(report: Report) -> str:
    """The whole page as one string (no external resources)."""
    size = "quick size (wgan experiment all --quick)" if report.quick else "default settings"
    summary = []
    for e in report.entries:
        c = e.counts()
        cls = "ok" if e.status == "ok" else "failed"
        summary.append(
            f'<tr><td><a href="#{_e(e.name)}">{_e(e.name)}</a></td>'
            f'<td class="{cls}">{_e(e.status)}</td><td>{c["holds"]}</td>'
            f"<td>{c['does not hold']}</td><td>{c['not tested at these settings']}</td>"
            f"<td>{e.seconds:.0f}</td></tr>"
        )
    head = (
        "<tr><th>experiment</th><th>status</th><th>holds</th><th>does not hold</th>"
        "<th>not tested</th><th>seconds</th></tr>"
    )
    body = "".join(_section(e, report.out_dir) for e in report.entries)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(PAGE_TITLE)}</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>{_e(PAGE_TITLE)}</h1>"
        f"<p>Every experiment of <code>wgan experiment</code>, run at its {size} in "
        f"{report.seconds:.0f} s. Each claim shows its source, the number measured and the "
        "verdict at these settings: <span class='holds'>holds</span>, "
        "<span class='does-not-hold'>does not hold</span>, or "
        "<span class='not-tested'>not tested at these settings</span> when the run is too "
        "small to test it.</p>"
        f"<table>{head}{''.join(summary)}</table>{body}</body></html>\n"
    )


def write_index(report: Report) -> Path:
    """Write ``report.index`` (through a temporary file, so a reader never sees half a page)."""
    tmp = report.index.with_suffix(".html.tmp")
    tmp.write_text(render_html(report), encoding="utf-8")
    tmp.replace(report.index)
    return report.index


__all__ = ["Report", "ReportEntry", "render_html", "run_all", "run_one", "write_index"]
