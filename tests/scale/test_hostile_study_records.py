"""Records are data, never trusted (issue 24, rows 4, 7, 8 and 11).

A study's record files (each run's ``.study-record.json``, ``study.json``, the records workers
return) and a run's ``provenance.json`` may be truncated, edited or forged. Each case here is one
such file: the study must report it in one line that names the file and says what was wrong,
retry the run (a worker decides from the checkpoint), never traceback, never be blocked, and
never print a control character that came from a file. "Finished" means the checkpoint loads and
holds the record's step. An empty study file starts nothing; one with ``config:`` and
``overrides:`` but no ``runs:`` is one run named after the file (README, docs/many-runs.md).

Most cases replace the launcher by a stand-in that records which runs it was asked to train
(a real worker would skip a healthy finished run, as tests/scale/test_study.py shows); the
truncated checkpoint and the printing cases go through real worker processes.
"""

import io
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from helpers import tiny

from wgan.cli.app import main as cli_main
from wgan.cli.study import read_study_file
from wgan.config import resolve
from wgan.errors import ConfigError
from wgan.scale.launchers import RUN_RECORD, UNREADABLE_CHECKPOINT
from wgan.scale.study import run_study
from wgan.store import checkpoints, provenance, rundirs
from wgan.store.printable import printable
from wgan.store.schema import RecordError, read_json

TINY = tiny(
    "train.device=cpu",
    "train.log_every=1",
    "train.checkpoint_every=5",
    hidden=16,
    batch=32,
    steps=10,
    eval_samples=200,
)


def config(*overrides):
    return resolve("toy-wgan-gp", [*TINY, *overrides])


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory):
    """A study of one run 'a', trained to its end by a real worker (its record, checkpoint)."""
    study = tmp_path_factory.mktemp("finished") / "study"
    (record,) = run_study([("a", config())], study, threads=1)
    assert record["status"] == "done" and record["step"] == 10
    return study


@pytest.fixture
def study(finished_study, tmp_path):
    """A private copy of the finished study."""
    path = tmp_path / "study"
    shutil.copytree(finished_study, path)
    return path


def stand_in_launcher(monkeypatch, launched):
    """Replace the launcher: note the runs it is given, return for each the record a worker
    gives a finished run."""

    def launch(launcher, tasks, jobs, work_dir, address=None, threads=1):
        for task in tasks:
            launched.append(task["name"])
            yield {
                "name": task["name"],
                "run_dir": task["run_dir"],
                "status": "skipped",
                "step": 10,
                "metrics": {},
                "error": None,
                "diverged": False,
                "seconds": 0.0,
            }

    monkeypatch.setattr("wgan.scale.study.launch", launch)


def without_progress(err):
    """stderr of ``wgan study`` without its progress lines (``wgan: study: ...``)."""
    return "".join(ln for ln in err.splitlines(keepends=True) if not ln.startswith("wgan: study: "))


def clean_one_line(text):
    """Exactly one line, with no control character but its newline."""
    assert text.count("\n") == 1 and text.endswith("\n"), text
    assert not any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in text[:-1]), repr(text)
    assert "\u202e" not in text and "\u2028" not in text, repr(text)


GOOD = {
    "name": "a",
    "status": "done",
    "step": 10,
    "metrics": {"w1": 0.5},
    "error": None,
    "diverged": False,
    "seconds": 1.0,
}


def forged(**changes):
    record = {**GOOD, **changes}
    return json.dumps({k: v for k, v in record.items() if v is not KeyError})


@pytest.mark.parametrize(
    "text, why",
    [
        (forged(step=0).replace('"step": 0', '"step": 1e999'), "non-finite number"),
        (forged(metrics="junk"), "metrics must be a mapping"),
        (forged(name=KeyError), 'the key "name" is missing'),
        (forged(name="b"), "the record of run 'b'"),
        (forged(status="\x1b[2Jdone\nwgan: all good"), r"unknown status '\x1b[2Jdone\nwgan"),
        (forged(step=True), "step must be an integer"),
        (forged(step=-1), "step must be an integer"),
        (forged(seconds="1"), "seconds must be a finite number"),
        (forged().replace('"w1": 0.5', '"w1": NaN'), "NaN is not a JSON number"),
        (forged()[:-1] + ', "step": 10}', "given twice"),
        (forged(diverged=True), "diverged is true but the status is 'done'"),
        ("[" * 100_000 + "]" * 100_000, "nested"),
        ("not json", "not valid JSON"),
        ("[]", "must be a JSON object"),
        ("\xff\xfe", "not valid JSON"),
        ("", "not valid JSON"),
    ],
)
def test_a_bad_run_record_is_reported_in_one_line_and_the_run_is_retried(
    study, monkeypatch, capsys, text, why
):
    """Today: tracebacks (1e999, a missing name), or the forged record is believed and the run
    reported as finished without a worker (metrics "junk", another run's record, ...)."""
    path = study / "a" / RUN_RECORD
    path.write_text(text)
    launched = []
    stand_in_launcher(monkeypatch, launched)
    (record,) = run_study([("a", config())], study)
    assert launched == ["a"]  # a worker checks the run again
    assert record["status"] == "skipped" and record["name"] == "a"
    err = capsys.readouterr().err
    clean_one_line(err)
    assert str(path) in err and printable(why) in err and "a worker checks the run" in err


def test_a_fifo_in_a_records_place_is_reported_without_waiting(study, monkeypatch, capsys):
    """A named pipe with no writer put where the record was. Today: reading it waits forever
    (seen with the old code under `timeout`)."""
    path = study / "a" / RUN_RECORD
    path.unlink()
    os.mkfifo(path)
    launched = []
    stand_in_launcher(monkeypatch, launched)
    run_study([("a", config())], study)
    assert launched == ["a"]
    err = capsys.readouterr().err
    clean_one_line(err)
    assert f"{path}: not a regular file" in err


def test_an_oversized_record_is_refused_before_it_is_read_whole(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"pad": "x" * 5000}))
    with pytest.raises(RecordError, match=r"larger than 1,000 bytes"):
        read_json(path, max_bytes=1000)


def study_file(tmp_path):
    """The fixture's study as a study file: one run 'a' of the tiny config."""
    path = tmp_path / "s.yaml"
    path.write_text("overrides: [" + ", ".join(TINY) + "]\nruns:\n  - name: a\n")
    return path


def test_a_truncated_checkpoint_of_a_finished_run_is_trained_again(study, tmp_path, capsys):
    """Today: "1 already finished", exit 0, while wgan eval on the run fails."""
    ckpt = study / "a" / rundirs.CHECKPOINT
    good = ckpt.read_bytes()
    ckpt.write_bytes(good[: len(good) // 2])
    command = ["study", str(study_file(tmp_path)), "--threads", "1", "--study-dir", str(study)]
    code = cli_main(command)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "1 trained, 0 resumed, 0 already finished" in out
    clean_one_line(without_progress(err))
    assert "study run 'a' is recorded as finished, but cannot" in err
    note = without_progress(err)
    assert f"checkpoint {ckpt}: " in note and note.endswith("; it is trained again\n")
    # Trained again from the start, as the first time (deterministic): the same checkpoint.
    assert cli_main(["eval", str(study / "a"), "--json"]) == 0
    again = checkpoints.load_checkpoint(ckpt)
    first = torch.load(io.BytesIO(good), weights_only=True)
    assert again["step"] == first["step"] == 10
    for player in ("generator", "critic"):
        for key, value in first[player].items():
            assert torch.equal(again[player][key], value), key
    assert (study / "a" / UNREADABLE_CHECKPOINT).read_bytes() == good[: len(good) // 2]


def test_a_checkpoint_at_another_step_than_its_record_is_not_finished(study, monkeypatch, capsys):
    """The record says step 10 and train.steps is 10, but the checkpoint holds step 5 (an
    older checkpoint put back, or a forged record): a worker decides (it would resume)."""
    ckpt = study / "a" / rundirs.CHECKPOINT
    state = checkpoints.load_checkpoint(ckpt)
    checkpoints.save_checkpoint(ckpt, {**state, "step": 5})
    launched = []
    stand_in_launcher(monkeypatch, launched)
    run_study([("a", config())], study)
    assert launched == ["a"]
    err = capsys.readouterr().err
    clean_one_line(err)
    assert "finished at step 10, but its checkpoint is at step 5" in err


def test_a_forged_diverged_record_does_not_condemn_a_healthy_run(study, tmp_path, capsys):
    """A record forged to say the finished run diverged, with an error that holds escape
    sequences and a second line. Today: the run is reported as diverged on every later run of
    the study (exit 1), and the escapes and the forged line reach the terminal."""
    evil = "training diverged\x1b[2J\x1b]0;pwned\x07\nwgan: error: \u202eforged line"
    (study / "a" / RUN_RECORD).write_text(
        forged(status="failed", diverged=True, error=evil, checkpoint_step=10)
    )
    command = ["study", str(study_file(tmp_path)), "--threads", "1", "--study-dir", str(study)]
    code = cli_main(command)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "0 trained, 0 resumed, 1 already finished" in out  # the worker found it finished
    clean_one_line(without_progress(err))
    assert "says the run diverged, but the run's checkpoint is at its last step (10" in err
    assert not any(ord(c) < 32 for c in out.replace("\n", ""))
    # The worker's record replaced the forged one: the next run of the study needs no worker.
    assert json.loads((study / "a" / RUN_RECORD).read_text())["status"] == "skipped"


def test_strings_from_records_are_escaped_when_printed(study, tmp_path, monkeypatch, capsys):
    """A worker's failed record whose error holds escapes and a newline (its message may quote
    a file): the error line is one line, escaped. Today: printed raw."""
    evil = "bad data \x1b[31mred\x1b[0m\nwgan: error: forged \x9b2J"

    def launch(launcher, tasks, jobs, work_dir, address=None, threads=1, on_start=None):
        for task in tasks:
            on_start(task)  # wgan study's progress lines
            yield {**GOOD, "name": task["name"], "status": "failed", "step": 0, "error": evil}

    monkeypatch.setattr("wgan.scale.study.launch", launch)
    (study / "a" / RUN_RECORD).unlink()
    command = ["study", str(study_file(tmp_path)), "--study-dir", str(study)]
    assert cli_main(command) == 1
    out, err = capsys.readouterr()
    for line in err.splitlines(keepends=True):  # the progress lines and the error line
        clean_one_line(line)
    errors = [line for line in err.splitlines() if not line.startswith("wgan: study: ")]
    assert len(errors) == 1 and printable(evil) in errors[0]
    assert "1 of 1 study runs failed" in errors[0]
    assert not any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in out.replace("\n", ""))


def test_a_bad_record_from_a_worker_fails_its_run(study, monkeypatch, capsys):
    """A worker's record that is not of the schema is not stored as the run's result: one line,
    and the run ends failed (the next run of the study retries it). Today: stored as it is."""

    def launch(launcher, tasks, jobs, work_dir, address=None, threads=1):
        for task in tasks:
            yield {**GOOD, "name": task["name"], "step": "ten"}

    monkeypatch.setattr("wgan.scale.study.launch", launch)
    (study / "a" / RUN_RECORD).unlink()
    (record,) = run_study([("a", config())], study)
    assert record["status"] == "failed" and "no valid record came back" in record["error"]
    err = capsys.readouterr().err
    clean_one_line(err)
    assert "a worker's record: step must be an integer" in err
    saved = json.loads((study / "study.json").read_text())["runs"]
    assert saved[0]["status"] == "failed"


def dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_pending_state_left_by_a_killed_launcher_is_recognised(study, monkeypatch, capsys):
    """study.json says a run is pending, written by a launcher that was SIGKILLed (its pid is
    gone and the study's lock is free). Today: nothing says so."""
    (study / "study.json").write_text(
        json.dumps(
            {
                "launcher": "local",
                "jobs": 1,
                "started": 1.0,
                "pid": dead_pid(),
                "host": "elsewhere\x1b[2J",
                "runs": [{"name": "a", "run_dir": str(study / "a"), "status": "pending"}],
            }
        )
    )
    (study / "a" / RUN_RECORD).write_text(forged(status="interrupted"))  # retried, no note
    launched = []
    stand_in_launcher(monkeypatch, launched)
    run_study([("a", config())], study)
    assert launched == ["a"]
    err = capsys.readouterr().err
    clean_one_line(err)
    assert "1 of 1 runs were left pending by the launcher pid" in err and "(killed)" in err
    head = json.loads((study / "study.json").read_text())
    assert head["pid"] == os.getpid()  # the next launcher can tell whether this one is alive


@pytest.mark.parametrize(
    "text, why",
    [
        (
            '[{"session": 1e999, "kind": "new", "status": "completed", "start_step": 0}]',
            "non-finite",
        ),
        (
            '[{"session": 1, "kind": "new", "status": "owned\\u001b[2J", "start_step": 0}]',
            r"status 'owned\x1b[2J'",
        ),
        ('[{"session": 1, "kind": "new", "status": "completed"}]', '"start_step" is missing'),
        ('{"session": 1}', "does not hold a list"),
        ("[1, 2]", "must be a JSON object"),
    ],
)
def test_a_bad_provenance_file_is_set_aside_in_one_line(tmp_path, capsys, text, why):
    """Today: kept and appended to (1e999 is then written back as Infinity, which is not
    JSON), or set aside without a word."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / provenance.FILE).write_text(text)
    with rundirs.lock_run(run_dir), provenance.session(run_dir, "resume", "cpu", 3):
        pass
    err = capsys.readouterr().err
    clean_one_line(err)
    assert str(run_dir / provenance.FILE) in err and why in err
    assert (run_dir / f"{provenance.FILE}.unreadable").read_text() == text
    (entry,) = provenance.read(run_dir)
    assert entry["status"] == "completed" and entry["session"] == 1


def test_a_running_session_left_by_a_kill_is_marked_killed(tmp_path, capsys):
    """A session whose process was SIGKILLed stays "running" in provenance.json. The next
    session, holding the run's lock, marks it "killed" and says so. Today: "running" forever."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    pid = dead_pid()
    entry = {"session": 1, "kind": "new", "status": "running", "start_step": 0, "pid": pid}
    (run_dir / provenance.FILE).write_text(json.dumps([entry]))
    with rundirs.lock_run(run_dir), provenance.session(run_dir, "resume", "cpu", 5):
        pass
    first, second = provenance.read(run_dir)
    assert (first["status"], second["status"]) == ("killed", "completed")
    assert second["pid"] == os.getpid()
    err = capsys.readouterr().err
    clean_one_line(err)
    assert f"session 1 (pid {pid}) ended without recording its end (killed)" in err


def test_an_unlocked_session_does_not_call_a_live_one_killed(tmp_path, capsys):
    """Without the run's lock another process may be training the run: its "running" stays."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    entry = {"session": 1, "kind": "new", "status": "running", "start_step": 0}
    (run_dir / provenance.FILE).write_text(json.dumps([entry]))
    with provenance.session(run_dir, "sweep", "cpu", 0):
        pass
    assert [e["status"] for e in provenance.read(run_dir)] == ["running", "completed"]
    assert capsys.readouterr().err == ""


def test_an_empty_study_file_starts_nothing(tmp_path, monkeypatch, capsys):
    """Today: an empty study YAML starts a default 1,500-step run."""

    def no_run(*args, **kwargs):
        raise AssertionError("a run was started")

    monkeypatch.setattr("wgan.scale.study.run_study", no_run)
    for text in ("", "# nothing yet\n", "{}\n"):
        path = tmp_path / "empty.yaml"
        path.write_text(text)
        code = cli_main(["study", str(path), "--study-dir", str(tmp_path / "s")])
        err = capsys.readouterr().err
        assert code == 2
        clean_one_line(err)
        assert f"study file {path} is empty" in err
        with pytest.raises(ConfigError, match="is empty"):
            read_study_file(path)
    assert not (tmp_path / "s").exists()


def test_a_study_file_without_runs_is_one_run_named_after_the_file(tmp_path, monkeypatch):
    """`runs` is optional (README: "default: one run named after the file"). Today: refused as
    an unknown config key 'config'."""
    seen = {}

    def fake_run_study(runs, study_dir, **kwargs):
        seen["runs"], seen["dir"] = runs, study_dir
        return [{**GOOD, "name": name, "status": "done"} for name, _ in runs]

    monkeypatch.setattr("wgan.scale.study.run_study", fake_run_study)
    path = tmp_path / "clip-only.yaml"
    path.write_text("config: toy-wgan-clip\noverrides: [train.steps=7, critic.hidden=16]\n")
    assert cli_main(["study", str(path), "--out-dir", str(tmp_path)]) == 0
    ((name, cfg),) = seen["runs"]
    assert name == "clip-only" and seen["dir"] == tmp_path / "clip-only"
    assert cfg.train.steps == 7 and cfg.critic.hidden == 16
    assert cfg.constraint.clip == resolve("toy-wgan-clip").constraint.clip > 0


def test_printable_escapes_control_and_bidirectional_characters():
    text = "a\x1b[31mb\nc\rd\te\x00f\x7f\x9b\u202eg\u2028h é 漢"
    assert printable(text) == "a\\x1b[31mb\\nc\\rd\\te\\x00f\\x7f\\x9b\\u202eg\\u2028h é 漢"
    assert printable("x" * 50, limit=10) == "x" * 10 + "... (40 more characters)"
