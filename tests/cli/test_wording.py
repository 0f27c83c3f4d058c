"""What a user reads names papers and claims, never the course, its notes or internal names (issue
25, friction 10): every help text, the experiment list and settings, the report page and the
verdict sources."""

import inspect
import re
from pathlib import Path

import pytest

from wgan.cli.app import build_parser, main
from wgan.experiments import EXPERIMENTS, verdict
from wgan.experiments.framework import experiment_module, settings_help
from wgan.experiments.report import Report, ReportEntry, render_html

#: Words of course material, and names of the code (a module path, a Python identifier with its
#: possessive) that mean nothing to a user of the command line.
COURSE = [r"\bcourse\b", r"\blectures?\b", r"claims? of the seeds"]
INTERNAL = [
    r"\bwgan\.[a-z_]+\.[A-Za-z_.]+",  # wgan.scale.sweep.ENGINES
    r"\brun_sweep\b",
    r"\b[a-z]+_[a-z_]+'s\b",  # "run_sweep's"
]


def leaks(text: str, patterns: list[str] = COURSE + INTERNAL) -> list[str]:
    return [m.group(0) for pat in patterns for m in re.finditer(pat, text, re.IGNORECASE)]


def help_texts() -> dict[str, str]:
    parser = build_parser()
    texts = {"wgan": parser.format_help()}
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    texts.update({f"wgan {name}": p.format_help() for name, p in sub.choices.items()})
    return texts


def test_the_checks_catch_the_reported_wording():
    assert leaks("experiment  reproduce a claim of the seeds (figures + numbers + verdicts)")
    assert leaks("<h1>The claims of the course, measured</h1>")
    assert leaks("a name in wgan.scale.sweep.ENGINES (default: run_sweep's)")
    assert leaks("Metz et al. 2017; lecture 19 'Problems with GANs'")
    assert not leaks("train.steps=500 critic.hidden=64 (Gulrajani et al. 2017, seeds 0-3)")


@pytest.mark.parametrize("command", list(help_texts()))
def test_help_texts(command):
    assert leaks(help_texts()[command]) == []


def test_the_top_level_help_says_what_experiments_reproduce(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    line = next(x for x in capsys.readouterr().out.splitlines() if x.strip().startswith("experi"))
    assert "published claim" in line


def test_experiment_list_settings_and_claims():
    assert main(["experiment", "--list"]) == 0
    for name, experiment in EXPERIMENTS.items():
        assert leaks(experiment.description) == [], name
        assert leaks(settings_help(experiment)) == [], name
        # the module's docstring (its first paragraph is on the report page) and every string
        # of the module, verdict sources included, cite papers, not course material
        assert leaks(inspect.getsource(experiment_module(experiment)), COURSE) == [], name
    assert not [n for n in vars(verdict) if n.startswith("LECTURE")]


def test_report_page_title(tmp_path):
    entry = ReportEntry("x", "An experiment.", "ok", 1.0, run_dir=Path(tmp_path) / "x")
    entry.verdicts = [verdict.decide("A claim", "Doe et al. 2020, Sec. 1", "0.5", True)]
    page = render_html(Report(Path(tmp_path), Path(tmp_path) / "index.html", True, [entry], 1.0))
    assert leaks(page) == []
    assert "<h1>Published claims about GANs and WGANs, measured</h1>" in page
    assert "<th>source (paper)</th>" in page and "Doe et al. 2020, Sec. 1" in page
