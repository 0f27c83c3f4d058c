"""The files of a run under faults: a full disk, kills during a save or a log write, two
processes on one run, a failed start, and checkpoint files that are not checkpoints.

These test :mod:`wgan.store.rundirs` and :mod:`wgan.store.tracking` directly;
``tests/cli/test_cli_errors.py`` tests the same guarantees through the command line.
"""

import errno
import json
import os
import pickle
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import torch

from wgan.errors import WganError
from wgan.store import checkpoints, rundirs
from wgan.store.tracking import JsonlWriter, read_jsonl

# Used as runs.NAME, so that each test fails on its own when a piece is missing.
load_checkpoint, save_checkpoint = checkpoints.load_checkpoint, checkpoints.save_checkpoint


def state(step):
    return {"step": step, "generator": {"w": torch.full((1000,), float(step))}, "critic": {}}


def dead_pid():
    """The pid of a process that has exited."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


class FullDisk:
    """A file object that takes ``room`` bytes and then fails as a full disk does."""

    def __init__(self, fh, room):
        self.fh, self.room = fh, room

    def write(self, data):
        if len(data) > self.room:
            self.fh.write(bytes(data[: self.room]))
            self.room = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return self.fh.write(data)

    def flush(self):
        self.fh.flush()


@pytest.fixture
def full_disk(monkeypatch):
    """torch.save writes into a disk with ``room`` bytes left (set ``full_disk.room``)."""
    real_save = torch.save

    class Control:
        room = 100
        calls = 0

    def save(obj, f, *args, **kwargs):
        Control.calls += 1
        return real_save(obj, FullDisk(f, Control.room), *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    return Control


# ----------------------------------------------------------------------------------------------
# A full disk during a checkpoint save
# ----------------------------------------------------------------------------------------------


def test_full_disk_during_save_keeps_the_previous_checkpoint(tmp_path, full_disk):
    path = tmp_path / "checkpoint.pt"
    full_disk.room = 10**9
    save_checkpoint(path, state(1))
    full_disk.room = 1000  # the next save runs out of space part-way
    with pytest.raises(checkpoints.CheckpointSaveError) as exc:
        save_checkpoint(path, state(2))
    message = str(exc.value)
    assert "no space left on device (the disk is full)" in message
    assert f"the last checkpoint {path} is kept" in message
    assert exc.value.errno == errno.ENOSPC
    assert len(message.splitlines()) == 1
    assert load_checkpoint(path)["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]  # no temporary left


def test_full_disk_before_any_checkpoint_says_none_was_saved(tmp_path, full_disk):
    full_disk.room = 10
    with pytest.raises(
        checkpoints.CheckpointSaveError, match="disk is full.*no checkpoint was saved before"
    ):
        save_checkpoint(tmp_path / "checkpoint.pt", state(1))
    assert list(tmp_path.iterdir()) == []


def test_a_save_that_fails_for_another_reason_is_not_reported_as_a_full_disk(tmp_path):
    class Unpicklable:
        def __reduce__(self):
            raise TypeError("cannot pickle this")

    with pytest.raises(TypeError, match="cannot pickle"):
        save_checkpoint(tmp_path / "checkpoint.pt", {"step": 1, "x": Unpicklable()})
    assert list(tmp_path.iterdir()) == []


def test_full_disk_while_writing_config_keeps_the_old_file(tmp_path, monkeypatch):
    rundirs.write_config(tmp_path, {"name": "old", "train": {"steps": 1}})
    old = (tmp_path / "config.yaml").read_text()
    real_open = Path.open

    class Full:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, text):
            self.fh.write(text[:10])
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.fh, name)

    def open_(self, mode="r", *args, **kwargs):
        fh = real_open(self, mode, *args, **kwargs)
        return Full(fh) if "w" in mode and "config.yaml" in self.name else fh

    monkeypatch.setattr(Path, "open", open_)
    with pytest.raises(WganError, match="disk is full.*the previous config.yaml is kept"):
        rundirs.write_config(tmp_path, {"name": "new", "train": {"steps": 2}})
    monkeypatch.undo()
    assert (tmp_path / "config.yaml").read_text() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml"]


# ----------------------------------------------------------------------------------------------
# Temporary files left by a kill during a save
# ----------------------------------------------------------------------------------------------


def test_temporaries_of_killed_saves_are_removed(tmp_path):
    dead, alive = dead_pid(), os.getppid()
    stale = tmp_path / f".checkpoint.pt.tmp-{dead}"
    live = tmp_path / f".checkpoint.pt.tmp-{alive}"
    other = tmp_path / "notes.tmp-1"  # not a temporary of ours: never touched
    for p in (stale, live, other):
        p.write_bytes(b"half a checkpoint")
    assert rundirs.remove_stale_temporaries(tmp_path) == [stale]  # only the dead process's
    assert live.exists() and other.exists()
    with rundirs.lock_run(tmp_path):  # holding the lock, every temporary of ours is stale
        assert not live.exists() and other.exists()


def test_a_save_removes_temporaries_of_dead_processes(tmp_path):
    stale = tmp_path / f".checkpoint.pt.tmp-{dead_pid()}"
    stale.write_bytes(b"half")
    save_checkpoint(tmp_path / "checkpoint.pt", state(1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]


def test_a_kill_during_a_save_leaves_a_temporary_that_the_next_start_removes(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, state(1))
    script = textwrap.dedent(
        f"""
        import os, torch
        from wgan.store.checkpoints import save_checkpoint

        class Bomb:
            def __reduce__(self):
                os._exit(9)

        save_checkpoint({str(path)!r}, {{"step": 2, "generator": {{}}, "bomb": Bomb()}})
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script])
    assert proc.wait() == 9
    assert (tmp_path / f".checkpoint.pt.tmp-{proc.pid}").exists()  # the litter of the kill
    with rundirs.lock_run(tmp_path):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "checkpoint.pt"]
    assert load_checkpoint(path)["step"] == 1


# ----------------------------------------------------------------------------------------------
# The run lock
# ----------------------------------------------------------------------------------------------

HOLD = """
import sys, time
from wgan.store.rundirs import lock_run
with lock_run(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_a_second_process_cannot_take_the_run(tmp_path):
    with subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    ) as holder:
        try:
            assert holder.stdout.readline().strip() == "locked"
            with pytest.raises(rundirs.RunLockedError) as exc:
                with rundirs.lock_run(tmp_path):
                    pass
            assert str(exc.value).startswith(
                f"run {tmp_path} is being trained by another process (pid {holder.pid})"
            )
        finally:
            holder.kill()
    with rundirs.lock_run(tmp_path):  # a killed holder's lock is gone with it
        with rundirs.lock_run(tmp_path):  # and the lock is re-entrant within a process
            pass
    with rundirs.lock_run(tmp_path):  # released after the block
        pass


def test_lock_of_a_missing_run_is_a_clear_error(tmp_path):
    with pytest.raises(WganError, match="run directory not found"):
        with rundirs.lock_run(tmp_path / "nope"):
            pass


# ----------------------------------------------------------------------------------------------
# A failed start leaves no run directory
# ----------------------------------------------------------------------------------------------


def test_a_run_that_fails_to_start_leaves_no_directory(tmp_path):
    with pytest.raises(WganError, match="bad data path"):
        with rundirs.create_run_dir(tmp_path, "toy") as run_dir:
            rundirs.write_config(run_dir, {"name": "toy"})
            raise WganError("bad data path")
    assert list(tmp_path.iterdir()) == []
    with rundirs.create_run_dir(tmp_path, "toy") as run_dir:  # the number is free again
        assert run_dir.name == "00000-toy"


def test_a_run_that_fails_after_logging_is_kept(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with rundirs.create_run_dir(tmp_path, "toy") as run_dir:
            rundirs.write_config(run_dir, {"name": "toy"})
            (run_dir / "metrics.jsonl").write_text('{"step": 1}\n')
            raise KeyboardInterrupt
    assert (run_dir / "metrics.jsonl").exists()


def test_an_existing_run_directory_is_never_removed(tmp_path):
    given = tmp_path / "mine"
    given.mkdir()
    with pytest.raises(WganError):
        with rundirs.create_run_dir(tmp_path, "toy", run_dir=given):
            raise WganError("fails")
    assert given.is_dir()


# ----------------------------------------------------------------------------------------------
# metrics.jsonl with a torn last line (a kill during a write)
# ----------------------------------------------------------------------------------------------


def records(*steps):
    return "".join(json.dumps({"kind": "train", "step": s, "v": 0.5}) + "\n" for s in steps)


def test_read_jsonl_skips_a_torn_last_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(records(1, 2).encode() + b'{"kind": "train", "st\xe2\x82')  # cut mid-char
    assert [r["step"] for r in read_jsonl(path)] == [1, 2]
    path.write_bytes(records(1).encode() + b"3\n[1, 2]\n")  # JSON, but not records
    assert [r["step"] for r in read_jsonl(path)] == [1]


def test_resume_drops_the_torn_line_instead_of_keeping_it_in_the_middle(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(records(1, 2, 3) + '{"kind": "train", "step": 4, "v": 0.')
    writer = JsonlWriter(path)
    writer.truncate_after(2)
    writer.write({"kind": "train", "step": 3, "v": 1.0})
    lines = path.read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2, 3]  # every line parses
    assert not [p for p in tmp_path.iterdir() if p.name != "metrics.jsonl"]  # no temporary


def test_appending_after_a_torn_line_does_not_merge_records(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(records(1) + '{"kind": "train", "ste')
    JsonlWriter(path).write({"kind": "train", "step": 2})
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [1, 2]
    path.write_text(records(1) + '{"kind": "eval", "step": 1}')  # complete, only the \n lost
    JsonlWriter(path).write({"kind": "train", "step": 2})
    assert [json.loads(line)["kind"] for line in path.read_text().splitlines()] == [
        "train",
        "eval",
        "train",
    ]


def test_truncate_after_tolerates_odd_steps(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": null}\n{"step": "x"}\n{"kind": "note"}\n' + records(5))
    JsonlWriter(path).truncate_after(3)
    assert len(read_jsonl(path)) == 3  # the records without a step are kept, step 5 is not


# ----------------------------------------------------------------------------------------------
# Messages for files that are not checkpoints
# ----------------------------------------------------------------------------------------------


def load_quietly(path, capfd):
    """load_checkpoint's error, asserting that nothing was printed or warned."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(WganError) as exc:
            load_checkpoint(path)
    out, err = capfd.readouterr()
    caught = [w for w in caught if not issubclass(w.category, ResourceWarning)]  # GC of others
    assert not caught and not out and not err, ([str(w.message) for w in caught], out, err)
    message = str(exc.value)
    assert len(message.splitlines()) == 1 and "weights_only" not in message
    return message


def test_a_raw_pickle_is_refused_without_torch_warnings(tmp_path, capfd):
    path = tmp_path / "checkpoint.pt"
    with path.open("wb") as fh:
        pickle.dump({"step": 1, "generator": {}}, fh, protocol=4)
    message = load_quietly(path, capfd)
    assert message == (
        f"cannot load checkpoint {path}: not a wgan checkpoint (a plain pickle file, not an "
        "archive written by torch.save)"
    )


def test_a_text_file_is_not_a_wgan_checkpoint(tmp_path, capfd):
    path = tmp_path / "checkpoint.pt"
    path.write_text("hello, this is text\n")
    message = load_quietly(path, capfd)
    assert "not a wgan checkpoint (a text file" in message and ": 101" not in message
    path.write_bytes(b"")
    assert "the file is empty" in load_quietly(path, capfd)


def test_garbage_and_code_are_refused_without_torchs_advice(tmp_path, capfd):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(b"\x80\x02garbage" * 20)
    assert "not a wgan checkpoint" in load_quietly(path, capfd)

    class Payload:
        def __reduce__(self):
            return (print, ("code ran",))

    torch.save({"step": 0, "generator": Payload()}, path)
    message = load_quietly(path, capfd)
    assert "Unsupported global" in message and "refused, as loading it could run code" in message
    save_checkpoint(path, state(1))
    path.write_bytes(path.read_bytes()[:300])
    assert "is truncated or not a checkpoint: no zip directory" in load_quietly(path, capfd)
