"""Faults and bad arguments through the command line: each is one line ``wgan: error: ...``,
exit status 2, no traceback, and no run or output file is lost.

Covered: output paths that cannot be written (``sample --out``, ``--out-dir``, ``out_dir``,
``bench --record``), read-only runs, a full disk, out-of-range counts (``--num``, ``--seeds``,
``--roofline-seconds``, ``--threads``, ``--sweep``), litter (a failed start, temporaries of a
killed save, a torn metrics line), two processes resuming one run, and files that are not
checkpoints.

A read-only file system is simulated with an audit hook (:func:`sys.addaudithook`): while a
folder is "read-only", opening a file in it for writing, creating, renaming or removing
anything in it fails with ``EROFS``, as the kernel would. This works as root too, where
permission bits do not stop writes.
"""

import errno
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import tiny

from wgan.cli.app import main
from wgan.store.checkpoints import load_checkpoint
from wgan.store.tracking import read_jsonl

FAST = tiny(
    "train.log_every=2", "train.progress=false", hidden=16, steps=4, eval_samples=200, quiet=False
)


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err, *needles):
    """Exit 2 and exactly one line ``wgan: error: ...`` holding every needle."""
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wgan: error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert str(needle) in lines[0], (needle, lines[0])
    return lines[0]


def digest(folder):
    """Names and contents of every file under ``folder``."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(Path(folder).rglob("*"))
        if p.is_file()
    }


# ----------------------------------------------------------------------------------------------
# A simulated read-only file system
# ----------------------------------------------------------------------------------------------

_READ_ONLY: list[str] = []
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _under(path) -> bool:
    if isinstance(path, int) or path is None:
        return False
    text = os.path.abspath(os.fsdecode(path))
    return any(text == root or text.startswith(root + os.sep) for root in _READ_ONLY)


def _refuse(path):
    raise OSError(errno.EROFS, "Read-only file system", os.fsdecode(path))


def _audit(event, args):
    if not _READ_ONLY:
        return
    if event == "open":
        path, _, flags = args
        if isinstance(flags, int) and flags & _WRITE_FLAGS and _under(path):
            _refuse(path)
    elif event == "os.mkdir":
        if _under(args[0]):
            if os.path.lexists(args[0]):
                raise FileExistsError(errno.EEXIST, "File exists", os.fsdecode(args[0]))
            _refuse(args[0])
    elif event in ("os.rename", "os.link", "os.symlink"):
        for path in args[:2]:
            if _under(path):
                _refuse(path)
    elif event in ("os.remove", "os.rmdir", "os.truncate", "os.chmod", "os.utime"):
        if _under(args[0]):
            _refuse(args[0])


sys.addaudithook(_audit)  # inert while _READ_ONLY is empty


@contextmanager
def read_only(folder):
    root = os.path.abspath(folder)
    _READ_ONLY.append(root)
    try:
        yield Path(folder)
    finally:
        _READ_ONLY.remove(root)


def test_the_simulated_read_only_folder_refuses_writes(tmp_path):
    (tmp_path / "a").write_text("a")
    with read_only(tmp_path):
        assert (tmp_path / "a").read_text() == "a"
        with pytest.raises(OSError) as exc:
            (tmp_path / "b").write_text("b")
        assert exc.value.errno == errno.EROFS
        tmp_path.mkdir(exist_ok=True)  # an existing folder is fine, as on a real one
    (tmp_path / "b").write_text("b")


# ----------------------------------------------------------------------------------------------
# Fixtures: one small trained run, copied by the tests that change it
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("trained")
    assert main(["train", *FAST, "train.checkpoint_every=2", "--out-dir", str(out)]) == 0
    return out / "00000-toy-wgan-gp"


@pytest.fixture
def run(trained, tmp_path):
    """A private copy of the trained run."""
    return Path(shutil.copytree(trained, tmp_path / trained.name))


@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "a-file"
    path.write_text("not a folder")
    return path


# ----------------------------------------------------------------------------------------------
# Output paths that cannot be written
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["directory", "through a file", "read-only", "/proc"])
def test_sample_out_that_cannot_be_written(capsys, trained, tmp_path, a_file, case):
    if case == "directory":
        out, needle = tmp_path / "adir.npy", "is a directory"
        out.mkdir()
    elif case == "through a file":
        out, needle = a_file / "x.npy", "is not a directory"
    elif case == "read-only":
        out, needle = tmp_path / "ro" / "x.npy", "read-only file system"
        out.parent.mkdir()
    else:
        if not Path("/proc/self").is_dir():
            pytest.skip("no /proc")
        out, needle = Path("/proc/wgan-test-x.npy"), "cannot create a file in /proc"
    with read_only(tmp_path / "ro"):
        code, out_text, err = run_cli(capsys, "sample", trained, "--num", 10, "--out", out)
    one_line_error(code, err, f"--out {out}", needle)
    assert not out_text


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["train", "out_dir={file}/runs"], "out_dir {file}/runs: cannot create the folder"),
        (["train", "--out-dir", "{file}"], "--out-dir {file} is not a directory"),
        (["train", "out_dir={ro}/runs"], "out_dir {ro}/runs: cannot create the folder"),
        (["train", "--out-dir", "{ro}"], "--out-dir {ro}: cannot create a file in {ro}"),
        (["sweep", "--seeds", "0,1", "--out-dir", "{file}/x"], "--out-dir {file}/x"),
        (["sweep", "--seeds", "0,1", "out_dir={ro}"], "out_dir {ro}: cannot create a file"),
        (["experiment", "parallel-lines", "--out-dir", "{file}/x"], "--out-dir {file}/x"),
    ],
)
def test_out_dir_that_cannot_be_written(capsys, tmp_path, a_file, argv, needle):
    ro = tmp_path / "ro"
    ro.mkdir()
    argv = [a.format(file=a_file, ro=ro) for a in argv]
    with read_only(ro):
        extra = [] if argv[0] == "experiment" else [*FAST[:2], "train.steps=1"]
        code, _, err = run_cli(capsys, *argv, *extra)
    line = one_line_error(code, err, needle.format(file=a_file, ro=ro))
    assert "read-only file system" in line or "directory" in line
    assert list(ro.iterdir()) == [] and a_file.read_text() == "not a folder"


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="no /proc")
def test_out_dir_in_proc(capsys):
    code, _, err = run_cli(capsys, "train", "out_dir=/proc/wgan-x", "train.steps=1")
    one_line_error(code, err, "out_dir /proc/wgan-x: cannot create the folder")


@pytest.mark.parametrize("case", ["directory", "through a file", "read-only"])
def test_bench_record_is_checked_before_the_benchmark(capsys, monkeypatch, tmp_path, a_file, case):
    import wgan.scale.bench

    def bench(*args, **kwargs):
        raise AssertionError("the benchmark ran before --record was checked")

    monkeypatch.setattr(wgan.scale.bench, "bench", bench)
    record = {
        "directory": tmp_path,
        "through a file": a_file / "bench.md",
        "read-only": tmp_path / "ro" / "bench.md",
    }[case]
    (tmp_path / "ro").mkdir()
    with read_only(tmp_path / "ro"):
        code, _, err = run_cli(capsys, "bench", "--record", record, "--no-compile")
    one_line_error(code, err, f"--record {record}")


# ----------------------------------------------------------------------------------------------
# Read-only runs
# ----------------------------------------------------------------------------------------------


def test_resume_of_a_read_only_run_is_refused_and_changes_nothing(capsys, run):
    before = digest(run)
    with read_only(run):
        code, _, err = run_cli(capsys, "train", "--resume", run, "train.steps=8")
    one_line_error(code, err, f"cannot write to run directory {run}", "read-only file system")
    assert digest(run) == before


def test_eval_and_sample_of_a_read_only_run(capsys, run, tmp_path):
    before = digest(run)
    with read_only(run):
        code, out, err = run_cli(capsys, "eval", run, "--num", 200, "--json")
        assert code == 0, err
        assert json.loads(out)["step"] == 4
        code, _, _ = run_cli(capsys, "sample", run, "--num", 5, "--out", tmp_path / "s.npy")
        assert code == 0 and np.load(tmp_path / "s.npy").shape == (5, 2)
        code, _, err = run_cli(capsys, "sample", run, "--num", 5, "--out", run / "s.npy")
        one_line_error(code, err, f"--out {run / 's.npy'}", "read-only file system")
    assert digest(run) == before


# ----------------------------------------------------------------------------------------------
# A full disk
# ----------------------------------------------------------------------------------------------


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

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.fh.close()


def test_full_disk_during_training_keeps_the_last_checkpoint(capsys, monkeypatch, tmp_path):
    real_save = torch.save
    saves = []

    def save(obj, f, *args, **kwargs):  # the first checkpoint fits, the second does not
        saves.append(obj["step"])
        room = 10**9 if len(saves) == 1 else 2000
        return real_save(obj, FullDisk(f, room), *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    code, _, err = run_cli(
        capsys, "train", *FAST, "train.checkpoint_every=2", "--out-dir", tmp_path
    )
    run = tmp_path / "00000-toy-wgan-gp"
    assert code == 1, err  # a run-time failure, not "nothing was run" (2): README, exit status
    one_line_error(
        2,
        err,
        "no space left on device (the disk is full)",
        f"the last checkpoint {run / 'checkpoint.pt'} is kept",
        f"once there is room, continue with: wgan train --resume {run}",
    )
    assert saves == [2, 4]
    assert load_checkpoint(run)["step"] == 2
    assert not list(run.glob(".*tmp*"))
    monkeypatch.setattr(torch, "save", real_save)  # space again: the run continues
    code, out, err = run_cli(capsys, "train", "--resume", run)
    assert code == 0 and "steps up to 4" in out, err
    steps = [r["step"] for r in read_jsonl(run / "metrics.jsonl") if r["kind"] == "train"]
    assert steps == [2, 4]


def test_full_disk_while_writing_samples_keeps_the_old_file(capsys, monkeypatch, trained, tmp_path):
    out = tmp_path / "samples.npy"
    np.save(out, np.zeros((3, 2)))
    old = out.read_bytes()
    real_open = Path.open

    def open_(self, mode="r", *args, **kwargs):  # the samples' file fills after 64 bytes
        fh = real_open(self, mode, *args, **kwargs)
        return FullDisk(fh, 64) if self.suffix == ".npy" and "w" in mode else fh

    monkeypatch.setattr(Path, "open", open_)  # (wgan sample writes its file chunk by chunk)
    code, _, err = run_cli(capsys, "sample", trained, "--num", 500, "--out", out)
    assert code == 1, err  # the samples were drawn: a full disk is a run-time failure
    one_line_error(2, err, f"cannot write {out}", "disk is full", "unchanged")
    assert out.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["samples.npy"]


# ----------------------------------------------------------------------------------------------
# Counts and numbers out of range
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["eval", "sample", "lipschitz"])
@pytest.mark.parametrize("num", [-5, 0])
def test_num_must_be_positive(capsys, trained, tmp_path, command, num):
    extra = ["--out", tmp_path / "s.npy"] if command == "sample" else []
    code, _, err = run_cli(capsys, command, trained, "--num", num, *extra)
    one_line_error(code, err, f"--num must be >= 1, got {num}")


@pytest.mark.parametrize("command", ["eval", "sample"])
def test_num_too_large_is_refused_at_once(capsys, trained, tmp_path, command):
    extra = ["--out", tmp_path / "s.npy"] if command == "sample" else []
    start = time.perf_counter()
    code, _, err = run_cli(capsys, command, trained, "--num", 10**12, *extra)
    one_line_error(code, err, "--num 1,000,000,000,000 is too large", "the limit is 134,217,728")
    assert time.perf_counter() - start < 30
    assert not (tmp_path / "s.npy").exists()


def test_num_that_is_not_an_integer_is_a_usage_error(capsys, trained, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["sample", str(trained), "--num", "1e23", "--out", str(tmp_path / "s.npy")])
    assert exc.value.code == 2
    one_line_error(2, capsys.readouterr().err, "invalid int value: '1e23'")


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1", "0"])
def test_bench_roofline_seconds_must_be_finite_and_positive(capsys, monkeypatch, value):
    import wgan.scale.bench

    monkeypatch.setattr(wgan.scale.bench, "bench", lambda *a, **k: pytest.fail("benchmark ran"))
    code, _, err = run_cli(capsys, "bench", f"--roofline-seconds={value}", "--no-compile")
    one_line_error(code, err, "--roofline-seconds must be a finite number > 0")
    assert math.isnan(float(value)) or str(float(value)) in err


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["bench", "--threads", "100000"], "--threads must be in [1, 1024]"),
        (["bench", "--threads", "0"], "--threads must be in [1, 1024]"),
        (["bench", "--sweep", "100000"], "--sweep must be in [1, 4096]"),
    ],
)
def test_bench_counts_are_bounded(capsys, argv, needle):
    one_line_error(*run_cli(capsys, *argv)[::2], needle)


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--seeds", "0-200000"], "--seeds '0-200000' gives 200,001 runs"),
        (["--seeds", "0-9999999999"], "gives 10,000,000,000 runs"),
        (["--seeds", "0-999,1000-4999"], "gives 5,000 runs"),
        (["--seeds", "0-99", "--vary", "d_optim.lr=" + ",".join(["1e-4"] * 50)], "5,000 runs"),
        (["--seeds", "5-2"], "--seeds range '5-2' is empty"),
        (["--seeds", "99999999999999999999"], "--seeds must be in [0, 9223372036854775807]"),
    ],
)
def test_sweep_size_is_bounded_before_expanding(capsys, argv, needle):
    start = time.perf_counter()
    code, _, err = run_cli(capsys, "sweep", *argv)
    line = one_line_error(code, err, needle)
    assert "4,096" in line or "--seeds" in line
    assert time.perf_counter() - start < 10


# ----------------------------------------------------------------------------------------------
# Litter and races
# ----------------------------------------------------------------------------------------------


def test_a_failed_start_leaves_no_run_directory(capsys, tmp_path):
    # The config is valid; building the run fails (channels_last is for image models).
    code, _, err = run_cli(
        capsys, "train", *FAST, "train.channels_last=true", "--out-dir", tmp_path
    )
    one_line_error(code, err, "channels_last")
    assert list(tmp_path.iterdir()) == []
    assert run_cli(capsys, "train", *FAST, "--out-dir", tmp_path)[0] == 0
    assert [p.name for p in tmp_path.iterdir()] == ["00000-toy-wgan-gp"]


def test_resume_cleans_up_after_a_kill(capsys, run):
    """A kill during a save leaves ``.checkpoint.pt.tmp-PID``; a kill during a log write leaves
    a torn last line in metrics.jsonl. The next resume removes both."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    stale = run / f".checkpoint.pt.tmp-{proc.pid}"
    stale.write_bytes(b"half a checkpoint")
    with (run / "metrics.jsonl").open("a") as fh:
        fh.write('{"kind": "train", "step": 5, "d/lo')
    code, out, err = run_cli(capsys, "train", "--resume", run, "train.steps=6")
    assert code == 0 and "steps up to 6" in out, err
    assert not stale.exists()
    lines = (run / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line is whole
    assert [r["step"] for r in records if r["kind"] == "train"] == [2, 4, 6]


def test_two_resumes_of_one_run(capsys, run):
    """While one process trains the run, a second ``--resume`` is refused with its pid."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    argv = ["train", "--resume", str(run), "train.steps=1000000", "train.checkpoint_every=0"]
    with subprocess.Popen(
        [sys.executable, "-m", "wgan", *argv], env=env, stderr=subprocess.PIPE, text=True
    ) as first:
        try:
            lock = run / ".lock"
            deadline = time.time() + 120
            while time.time() < deadline and first.poll() is None:
                if lock.exists() and lock.read_text().strip() == str(first.pid):
                    break
                time.sleep(0.2)
            assert first.poll() is None, first.stderr.read()
            assert lock.read_text().strip() == str(first.pid), "the first resume took no lock"
            before = (run / "checkpoint.pt").read_bytes()
            code, _, err = run_cli(capsys, "train", "--resume", run, "train.steps=8")
            one_line_error(
                code, err, f"run {run} is being trained by another process (pid {first.pid})"
            )
            assert (run / "checkpoint.pt").read_bytes() == before
        finally:
            first.kill()
    code, out, err = run_cli(capsys, "train", "--resume", run, "train.steps=6")
    assert code == 0 and "steps up to 6" in out, err  # the killed process's lock is gone


# ----------------------------------------------------------------------------------------------
# Files that are not checkpoints
# ----------------------------------------------------------------------------------------------


def test_a_raw_pickle_checkpoint_is_one_line_without_torch_warnings(tmp_path):
    run = tmp_path / "00000-raw"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(
        __import__("pickle").dumps({"step": 1, "generator": {}}, protocol=4)
    )
    proc = subprocess.run(
        [sys.executable, "-m", "wgan", "eval", str(run)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr == (
        f"wgan: error: cannot load checkpoint {run / 'checkpoint.pt'}: not a wgan checkpoint "
        "(a plain pickle file, not an archive written by torch.save)\n"
    )


@pytest.mark.parametrize(
    "content,needle",
    [
        (b"hello, this is a text file\n", "not a wgan checkpoint (a text file"),
        (b"\x80\x02" + b"garbage" * 30, "not a wgan checkpoint"),
        (b"PK\x03\x04" + b"\0" * 100, "the file is truncated or not a checkpoint"),
    ],
)
def test_checkpoint_messages(capsys, tmp_path, content, needle):
    run = tmp_path / "00000-bad"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(content)
    for argv in (["eval", run], ["train", "--resume", run]):
        code, _, err = run_cli(capsys, *argv)
        line = one_line_error(code, err, "cannot load checkpoint", needle)
        assert "weights_only" not in line and ": 101" not in line
