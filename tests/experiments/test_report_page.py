"""``wgan experiment all``: every experiment runs (a failing one is shown as failed), and the
page is one self-contained file whose every image decodes and which names every experiment and
every verdict, checked with :mod:`html.parser` (everywhere; the same page in headless Chromium
is ``test_report_browser.py``)."""

import base64
import io
import json
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image
import pytest

from wgan.cli.app import main
from wgan.experiments import EXPERIMENTS, report
from wgan.experiments.framework import Cell, Experiment, Settings, quick_settings, settings_fields
from wgan.experiments.verdict import decide


@dataclass
class FakeSettings(Settings):
    value: float = 1.5  # the number the fake experiment "measures"
    threads: int = 0  # torch CPU threads (0: leave as is)

    LIMITS = {"value": ">= 0"}


class Fake(Experiment):
    name, description, Settings = "fake-one", "A fake experiment.", FakeSettings

    def cells(self, settings):
        return [Cell()]

    def measure(self, settings, cell, ctx):
        return {"value": settings.value}

    def summarise(self, settings, records):
        return records[0]

    def verdicts(self, numbers, settings):
        value = numbers["value"]
        return [
            decide("Fake claim A is true", "Doe et al. 2020; lecture 1", f"{value}", True),
            decide("Fake claim B is false", "Doe et al. 2021", "0.1", False),
            decide("Fake claim C", "Roe 2019", "7", True, testable=False, why_not="too short"),
        ]

    def figures(self, settings, numbers, records, run_dir):
        from wgan.figures.plotting import save_figure, subplots

        fig, ax = subplots(1, 1, figsize=(2, 2))
        ax.plot([0, 1], [0, settings.value])
        return [save_figure(fig, run_dir / "line.png")]

    def table(self, settings, numbers):
        return "value  1.5"


class Broken(Fake):
    name, description = "broken", "An experiment that fails."

    def measure(self, settings, cell, ctx):
        raise RuntimeError("the broken experiment broke")


class FakeTwo(Fake):
    name, description = "fake-two", "Another fake."


FAKES = {e.name: e for e in (Fake(), Broken(), FakeTwo())}


class PageParser(HTMLParser):
    """Image sources, element ids and the visible text of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.text: list[str] = []
        self.rows: list[str] = []  # the text of each table row

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr":
            self.rows.append("")
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "img":
            self.images.append(attrs["src"])
        for key in ("href", "src"):
            if tag != "img" and key in attrs:
                self.links.append(attrs[key])

    def handle_data(self, data):
        self.text.append(data)
        if self.rows:
            self.rows[-1] += data + " | "


def parse(path: Path) -> PageParser:
    page = PageParser()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page


def decoded_images(page: PageParser) -> list:
    """Every <img> of the page decoded; fails on a missing or undecodable image."""
    out = []
    for src in page.images:
        assert src.startswith("data:image/png;base64,"), src[:60]
        raw = base64.b64decode(src.split(",", 1)[1], validate=True)
        out.append(matplotlib.image.imread(io.BytesIO(raw), format="png"))
    return out


def test_page_shows_every_experiment_verdict_and_image(tmp_path):
    rep = report.run_all(tmp_path, experiments=FAKES)
    assert [e.status for e in rep.entries] == ["ok", "failed", "ok"]
    page = parse(rep.index)
    text = " ".join(page.text)
    assert {"fake-one", "broken", "fake-two"} <= page.ids
    for claim in ("Fake claim A is true", "Fake claim B is false", "Fake claim C"):
        assert text.count(claim) == 2  # once per fake experiment
    for claim, status in (
        ("Fake claim A is true", "holds"),
        ("Fake claim B is false", "does not hold"),
        ("Fake claim C", "not tested at these settings | too short"),
    ):
        rows = [r for r in page.rows if r.startswith(claim + " |")]
        assert len(rows) == 2 and all(f"| {status} |" in r for r in rows), rows
    assert "Doe et al. 2020; lecture 1" in text
    # The broken experiment is on the page as failed, with its error; the others still ran.
    assert "failed after" in text and "RuntimeError: the broken experiment broke" in text
    images = decoded_images(page)
    assert len(images) == 2 and all(img.ndim == 3 and img.shape[0] > 10 for img in images)
    # Self-contained: no link to anything but the page's own anchors.
    assert all(link.startswith("#") for link in page.links), page.links
    record = json.loads((tmp_path / "report.json").read_text())
    assert [e["status"] for e in record["experiments"]] == ["ok", "failed", "ok"]
    run_dir = Path(record["experiments"][0]["run_dir"])
    results = json.loads((run_dir / "results.json").read_text())
    assert [v["status"] for v in results["verdicts"]] == [
        "holds",
        "does not hold",
        "not tested at these settings",
    ]


def test_a_missing_figure_is_reported_not_crashed(tmp_path):
    rep = report.run_all(tmp_path, experiments={"fake-one": FAKES["fake-one"]})
    rep.entries[0].figures[0].unlink()
    report.write_index(rep)
    page = parse(rep.index)
    assert page.images == [] and "figure missing: line.png" in " ".join(page.text)


def test_a_real_experiment_on_the_page(tmp_path, tiny_mode_collapse):
    rep = report.run_all(tmp_path, experiments={"mode-collapse": tiny_mode_collapse})
    entry = rep.entries[0]
    assert entry.status == "ok", entry.error
    assert [v.status for v in entry.verdicts] == ["not tested at these settings"] * 2
    page = parse(rep.index)
    assert len(decoded_images(page)) == len(entry.figures) == 1
    text = " ".join(page.text)
    for v in entry.verdicts:
        assert v.claim in text and v.measured in text


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_every_experiment_has_a_valid_quick_size_and_documented_settings(name):
    experiment = EXPERIMENTS[name]
    quick_settings(experiment)  # every QUICK key is a setting and the result validates
    undocumented = [h.name for h in settings_fields(experiment.settings) if not h.meaning]
    assert not undocumented, f"{name}: settings without a comment: {undocumented}"


def test_cli_all_runs_the_registry_and_writes_the_page(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(report, "EXPERIMENTS", FAKES)
    assert main(["experiment", "all", "--out", str(tmp_path / "page")]) == 0
    out = capsys.readouterr().out
    assert "fake-one: 1 hold, 1 do not hold, 1 not tested" in out
    assert "broken: FAILED" in out
    assert (tmp_path / "page" / "index.html").is_file()
    assert main(["experiment", "all", "--json", "--out", str(tmp_path / "j")]) == 0
    record = json.loads(capsys.readouterr().out)
    assert [e["name"] for e in record["experiments"]] == ["fake-one", "broken", "fake-two"]


@pytest.mark.parametrize(
    "argv",
    [["experiment", "all", "steps=3"], ["experiment", "mode-collapse", "--quick"]],
)
def test_cli_all_misuse_is_one_line(argv, capsys, tmp_path):
    assert main([*argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("wgan: error:") and err.count("\n") == 1
