"""``wgan experiment all`` picks up where it stopped: a second run into the same folder reuses
every experiment that finished there with the same settings (``entry.json``), and runs again
what changed, failed, lost a figure or left an unreadable entry, or everything with ``fresh``."""

import json
from dataclasses import dataclass

import pytest

from wgan.cli.app import main
from wgan.experiments import report
from wgan.experiments.framework import Cell, Experiment, Settings
from wgan.experiments.verdict import decide


@dataclass
class CountSettings(Settings):
    value: float = 2.0  # the number the counting experiment "measures"
    threads: int = 0  # torch CPU threads (0: leave as is)


@dataclass
class ThreeSettings(CountSettings):
    value: float = 3.0  # another default: a changed setting


class Counting(Experiment):
    """Counts how often it measures; one verdict of each kind and one figure."""

    name, description, Settings = "counting", "Counts its runs.", CountSettings
    calls = 0

    def cells(self, settings):
        return [Cell()]

    def measure(self, settings, cell, ctx):
        type(self).calls += 1
        return {"value": settings.value}

    def summarise(self, settings, records):
        return records[0]

    def verdicts(self, numbers, settings):
        return [
            decide("Counted claim", "Doe 2020", f"{numbers['value']}", True),
            decide("Untested claim", "Roe 2019", "1", True, testable=False, why_not="short"),
        ]

    def figures(self, settings, numbers, records, run_dir):
        path = run_dir / "value.png"
        path.write_bytes(b"\x89PNG\r\n\x1a\n")  # only its presence matters here
        return [path]

    def table(self, settings, numbers):
        return f"value {numbers['value']}"


class Failing(Counting):
    name = "failing"
    calls = 0

    def measure(self, settings, cell, ctx):
        type(self).calls += 1
        raise RuntimeError("fails every time")


@pytest.fixture
def fakes(monkeypatch):
    monkeypatch.setattr(Counting, "calls", 0)
    monkeypatch.setattr(Failing, "calls", 0)
    return {"counting": Counting(), "failing": Failing()}


def test_a_second_run_reuses_what_finished_and_reruns_what_failed(tmp_path, fakes):
    first = report.run_all(tmp_path, experiments=fakes)
    second = report.run_all(tmp_path, experiments=fakes)
    assert Counting.calls == 1 and Failing.calls == 2
    old, new = first.entries[0], second.entries[0]
    assert new.reused and not old.reused and new.run_dir == old.run_dir
    assert [v.to_dict() for v in new.verdicts] == [v.to_dict() for v in old.verdicts]
    assert new.table == old.table and new.figures == old.figures
    assert new.seconds == pytest.approx(old.seconds)
    assert second.entries[1].status == "failed" and not second.entries[1].reused
    assert second.seconds == pytest.approx(new.seconds + second.entries[1].seconds)
    assert "reused from an earlier run" in second.index.read_text(encoding="utf-8")
    record = json.loads((tmp_path / "report.json").read_text())
    assert [e["reused"] for e in record["experiments"]] == [True, False]


def test_changed_settings_or_fresh_run_again(tmp_path, fakes, monkeypatch):
    report.run_all(tmp_path, experiments=fakes)
    newer = report.run_all(tmp_path, experiments=fakes, fresh=True).entries[0]
    assert Counting.calls == 2 and not newer.reused
    # Of two finished runs with the same settings, the newest is the one reused.
    assert report.run_all(tmp_path, experiments=fakes).entries[0].run_dir == newer.run_dir
    monkeypatch.setattr(Counting, "Settings", ThreeSettings)
    rep = report.run_all(tmp_path, experiments=fakes)
    assert Counting.calls == 3 and not rep.entries[0].reused
    assert rep.entries[0].verdicts[0].measured == "3.0"
    again = report.run_all(tmp_path, experiments=fakes)
    assert Counting.calls == 3 and again.entries[0].run_dir == rep.entries[0].run_dir


@pytest.mark.parametrize("damage", ["figure", "entry", "unfinished"])
def test_a_damaged_or_unfinished_run_is_run_again(tmp_path, fakes, damage):
    entry = report.run_all(tmp_path, experiments=fakes).entries[0]
    if damage == "figure":
        entry.figures[0].unlink()
    elif damage == "entry":
        (entry.run_dir / report.ENTRY).write_text('{"status": "ok", "settings": ')
    else:  # killed after results.json, before its figures and entry were written
        (entry.run_dir / report.ENTRY).unlink()
    rep = report.run_all(tmp_path, experiments=fakes)
    assert Counting.calls == 2 and not rep.entries[0].reused
    # an unfinished run goes on in its folder; a finished one that was damaged is left as it is
    assert (rep.entries[0].run_dir == entry.run_dir) == (damage == "unfinished")
    assert rep.entries[0].continued == (damage == "unfinished")


def test_cli_reuses_and_says_so(tmp_path, fakes, monkeypatch, capsys):
    monkeypatch.setattr(report, "EXPERIMENTS", fakes)
    out = str(tmp_path / "page")
    assert main(["experiment", "all", "--out", out]) == 0
    capsys.readouterr()
    assert main(["experiment", "all", "--out", out]) == 0
    text = capsys.readouterr()
    assert "counting: 1 hold, 0 do not hold, 1 not tested" in text.err
    assert "reused from an earlier run" in text.err and "reused from earlier runs" in text.out
    assert main(["experiment", "all", "--fresh", "--out", out]) == 0
    assert Counting.calls == 2


def test_fresh_belongs_to_all(capsys):
    assert main(["experiment", "mode-collapse", "--fresh"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("wgan: error:") and "--fresh" in err and err.count("\n") == 1


class Stop(BaseException):
    """Stands for Ctrl-C (like it, not an Exception, so run_all does not catch it; unlike it,
    pytest does not end the session on it)."""


class Stopping(Counting):
    """Stopped (Ctrl-C) in the middle of its first run; measures in the same folder after."""

    name = "stopping"
    calls = 0

    def measure(self, settings, cell, ctx):
        type(self).calls += 1
        marker = ctx.run_dir / "half-done"
        if not marker.exists():
            marker.write_text("the first half of a study")
            raise Stop
        return {"value": settings.value}


def test_a_stopped_experiment_goes_on_in_its_own_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(Stopping, "calls", 0)
    fakes = {"stopping": Stopping()}
    with pytest.raises(Stop):
        report.run_all(tmp_path, experiments=fakes)
    (stopped,) = tmp_path.iterdir()
    rep = report.run_all(tmp_path, experiments=fakes)
    entry = rep.entries[0]
    assert entry.status == "ok" and entry.continued and entry.run_dir == stopped
    assert Stopping.calls == 2 and (stopped / "half-done").is_file()
    assert "continued after a stop" in rep.index.read_text(encoding="utf-8")
    # finished now: reused, not continued
    again = report.run_all(tmp_path, experiments=fakes).entries[0]
    assert again.reused and Stopping.calls == 2


def test_a_stopped_experiment_with_other_settings_starts_a_new_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(Stopping, "calls", 0)
    fakes = {"stopping": Stopping()}
    with pytest.raises(Stop):
        report.run_all(tmp_path, experiments=fakes)
    monkeypatch.setattr(Stopping, "Settings", ThreeSettings)
    with pytest.raises(Stop):  # a new folder: its first half again
        report.run_all(tmp_path, experiments=fakes)
    assert len(list(tmp_path.iterdir())) == 2
    with pytest.raises(Stop):  # fresh: a new folder too
        report.run_all(tmp_path, experiments=fakes, fresh=True)
    assert len(list(tmp_path.iterdir())) == 3
