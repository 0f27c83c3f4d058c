"""Issue 24, the command line under attack: rows 3, 10 and parts of 12, and the minor cases.

* row 3: ``wgan sample`` streams (chunks written as drawn, a progress bar on stderr): the file
  is the one writing everything at once gave, byte for byte, and no call ever holds all samples;
* row 10: a seed outside [0, 2**63 - 1] (train.seed's range) is one line and exit 2 on
  ``sample``, ``eval``, ``interpolate`` and ``experiment``, and a ConfigError in the API;
* row 12: an unreadable text file is "cannot read", not "cannot write ... checkpoint is kept";
  a text run trained with a relative ``data.path`` is evaluated from another folder;
* minor: ``--jobs 0``, ``--seeds 0,,1`` and ``--vary k=a,,b`` are refused; a key given twice
  with two values says so on stderr.
"""

from __future__ import annotations

import io
import os
import pathlib
import shutil

import numpy as np
import pytest
import torch
from helpers import tiny

from wgan.cli.app import main
from wgan.config import resolve
from wgan.errors import ConfigError
from wgan.training.run import load_run
from wgan.training.train import train

TOY = tiny(hidden=16, batch=32, steps=2, eval_samples=100)
TEXT_TINY = tiny("data.seq_len=8", width=8, depth=1, batch=8, steps=2, eval_samples=16)
TEXT = "the quick brown fox jumps over the lazy dog; pack my box with five dozen jugs.\n" * 40
HUGE = str(10**20)  # the attack's 99999999999999999999 is 20 digits too


def one_line_error(code: int, err: str) -> str:
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("wgan: error: "), err
    assert "Traceback" not in err
    return lines[0]


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exit_:  # a usage error found by the parser
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    cfg = resolve("toy-wgan-gp", TOY)
    cfg.out_dir = str(tmp_path_factory.mktemp("toy") / "runs")
    return train(cfg).run_dir


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("text")
    (folder / "corpus.txt").write_text(TEXT, encoding="utf-8")
    path = folder / "corpus.txt"
    cfg = resolve("text-wgan-gp", ["data.name=text", f"data.path={path}", *TEXT_TINY])
    cfg.out_dir = str(folder / "runs")
    return train(cfg).run_dir


# ------------------------------------------------------------------ row 3: streamed samples


@pytest.mark.parametrize("suffix", [".npy", ".csv"])
def test_sample_streams_the_same_file_in_chunks(toy_run, tmp_path, capsys, monkeypatch, suffix):
    """2,345 samples, drawn in pieces of 1,000 and written in chunks of 100 (both injected, so
    that a chunk straddles two pieces), go to the file chunk by chunk with a bar on stderr, no
    call holds them all, and the file equals writing ``Run.samples(n, seed)`` at once."""
    from wgan.cli import sample_files
    from wgan.training import sampling
    from wgan.training.run import Run

    n, seed = 2345, 7
    monkeypatch.setattr(sampling, "SAMPLE_CHUNK", 1000)  # the draws, in pieces of 1,000
    monkeypatch.setattr(sample_files, "CHUNK_BYTES", 100 * 2 * 4)  # 100 2-D samples a chunk
    monkeypatch.setattr(sample_files, "PROGRESS_DELAY_S", 0)
    monkeypatch.delenv("WGAN_NO_PROGRESS", raising=False)
    chunk_sizes: list[int] = []
    streamed = Run.sample_chunks

    def spy(self, *args, **kwargs):
        for x in streamed(self, *args, **kwargs):
            chunk_sizes.append(len(x))
            yield x

    at_once = Run.samples

    def no_whole_file(self, num, *args, **kwargs):
        assert num < n, "wgan sample drew every sample at once"
        return at_once(self, num, *args, **kwargs)

    monkeypatch.setattr(Run, "sample_chunks", spy)
    monkeypatch.setattr(Run, "samples", no_whole_file)
    out = tmp_path / f"s{suffix}"
    code, printed, err = run_cli(
        capsys, "sample", str(toy_run), "--num", str(n), "--seed", str(seed), "--out", str(out)
    )
    assert code == 0, err
    assert f"wrote {n} samples of shape (2,)" in printed
    assert chunk_sizes == [100] * 23 + [45]
    assert "sampling" in err and f"/{n}" in err  # the progress bar, on stderr

    monkeypatch.setattr(Run, "samples", at_once)
    x = load_run(toy_run).samples(n, seed=seed).numpy()  # the pieces of 1,000 as above
    if suffix == ".npy":
        buf = io.BytesIO()
        np.save(buf, x)
        assert out.read_bytes() == buf.getvalue()
    else:
        expected = tmp_path / "expected.csv"
        np.savetxt(expected, x, delimiter=",", header="x1,x2", comments="", fmt="%.7g")
        assert out.read_text() == expected.read_text()


def test_sample_chunks_are_the_samples_for_any_chunk(toy_run):
    run = load_run(toy_run)
    whole = run.samples(5000, seed=3)
    for chunk in (1, 999, 4096, 4097, 5000, 10**6):
        parts = list(run.sample_chunks(5000, seed=3, chunk=chunk))
        assert all(len(p) == chunk for p in parts[:-1]) and 0 < len(parts[-1]) <= chunk
        assert torch.equal(torch.cat(parts), whole), chunk
    with pytest.raises(ConfigError, match="seed"):
        run.sample_chunks(10, seed=-1)


def test_text_samples_stream_to_the_same_lines(text_run, tmp_path, capsys, monkeypatch):
    from wgan.cli import sample_files
    from wgan.figures.text import printable_line

    monkeypatch.setattr(sample_files, "CHUNK_BYTES", 1)  # one sequence a chunk
    out = tmp_path / "s.txt"
    code, _, err = run_cli(capsys, "sample", str(text_run), "--num", "37", "--out", str(out))
    assert code == 0, err
    run = load_run(text_run)
    lines = [printable_line(t) for t in run.dataset.decode(run.samples(37))]
    assert out.read_text(encoding="utf-8") == "".join(line + "\n" for line in lines)


def test_a_class_streams_and_a_label_out_of_range_is_one_line(tmp_path, capsys):
    """``--label`` of a conditional run: streamed like the rest (one class for all samples);
    a label that overflows int64 (the seed's attack on the label) is one line, exit 2."""
    cfg = resolve("digits-cgan", tiny(width=8, batch=8, steps=1, eval_samples=50))
    cfg.out_dir = str(tmp_path / "runs")
    run_dir = train(cfg).run_dir
    out = tmp_path / "threes.npy"
    code, _, err = run_cli(
        capsys, "sample", str(run_dir), "--label", "3", "--num", "9", "--out", str(out)
    )
    assert code == 0, err
    assert np.array_equal(np.load(out), load_run(run_dir).samples(9, labels=3).numpy())
    for label in (HUGE, "-1", "10"):
        argv = ["sample", str(run_dir), "--label", label, "--num", "4", "--out", str(out)]
        line = one_line_error(*run_cli(capsys, *argv)[::2])
        assert f"label {label} is out of range [0, 10)" in line


# ------------------------------------------------------------------ row 10: seeds


@pytest.mark.parametrize("seed", [HUGE, "-1", str(2**64), str(2**63)])
@pytest.mark.parametrize("command", ["sample", "eval", "interpolate"])
def test_a_seed_out_of_range_is_one_line(toy_run, tmp_path, capsys, command, seed):
    extra = {"sample": ["--num", "5", "--out"], "eval": [], "interpolate": ["--out"]}[command]
    extra = extra + [str(tmp_path / "out.npy")] if extra else extra
    code, _, err = run_cli(capsys, command, str(toy_run), f"--seed={seed}", *extra)
    line = one_line_error(code, err)
    assert "--seed" in line and f"[0, {2**63 - 1}]" in line
    assert not (tmp_path / "out.npy").exists()


def test_the_largest_seed_is_accepted(toy_run, tmp_path, capsys):
    out = tmp_path / "s.npy"
    code, _, err = run_cli(
        capsys, "sample", str(toy_run), "--seed", str(2**63 - 1), "--num", "3", "--out", str(out)
    )
    assert code == 0, err
    assert np.load(out).shape == (3, 2)


def test_the_api_refuses_a_seed_out_of_range(toy_run):
    run = load_run(toy_run)
    for seed in (-1, 2**64, 10**20, 1.5, True):
        with pytest.raises(ConfigError, match="seed"):
            run.samples(4, seed=seed)
    with pytest.raises(ConfigError, match="seed"):
        run.evaluate(10, seed=-5)


def test_an_experiment_seed_out_of_range_is_refused_before_it_runs(tmp_path, capsys):
    argv = ["experiment", "mode-collapse", f"seed={HUGE}", "--out-dir", str(tmp_path)]
    line = one_line_error(*run_cli(capsys, *argv)[::2])
    assert "seed must be in [0," in line
    assert not any(tmp_path.iterdir())  # no experiment directory was started


# ------------------------------------------------------------------ row 12: files and paths


def test_an_unreadable_text_file_is_reported_as_unreadable(tmp_path, capsys, monkeypatch):
    """(As root a chmod 000 file stays readable, so the read itself is made to fail.)"""
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT, encoding="utf-8")
    read_bytes = pathlib.Path.read_bytes

    def refuse(self):
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return read_bytes(self)

    monkeypatch.setattr(pathlib.Path, "read_bytes", refuse)
    argv = ["train", "text-wgan-gp", "data.name=text", f"data.path={path}", *TEXT_TINY]
    line = one_line_error(*run_cli(capsys, *argv, "--out-dir", str(tmp_path / "runs"))[::2])
    assert "cannot read" in line and "Permission denied" in line, line
    assert "write" not in line and "checkpoint" not in line, line


def test_a_text_run_with_a_relative_path_is_evaluated_from_elsewhere(tmp_path, capsys, monkeypatch):
    data, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    data.mkdir()
    elsewhere.mkdir()
    (data / "corpus.txt").write_text(TEXT, encoding="utf-8")
    monkeypatch.chdir(data)
    argv = ["train", "text-wgan-gp", "data.name=text", "data.path=corpus.txt", *TEXT_TINY]
    code, _, err = run_cli(capsys, *argv, "--out-dir", str(tmp_path / "runs"))
    assert code == 0, err
    run_dir = next((tmp_path / "runs").iterdir())
    monkeypatch.chdir(elsewhere)
    code, out, err = run_cli(capsys, "eval", str(run_dir), "--json")
    assert code == 0, err
    assert '"js1"' in out, out  # measured against the run's held-out text
    assert load_run(run_dir).cfg.data.path == str(data / "corpus.txt")  # stored absolute


def test_a_run_saved_with_a_relative_path_reads_it_from_its_recorded_folder(
    text_run, tmp_path, monkeypatch
):
    """A run of an earlier version stored ``data.path`` as given; provenance.json recorded the
    folder it was trained in, which the relative path is joined to."""
    from wgan.store import checkpoints, rundirs

    run_dir = tmp_path / "old-run"
    shutil.copytree(text_run, run_dir)
    ckpt = run_dir / rundirs.CHECKPOINT
    state = checkpoints.load_checkpoint(ckpt)
    full = pathlib.Path(state["config"]["data"]["path"])
    state["config"]["data"]["path"] = full.name  # relative to the folder it was trained in
    checkpoints.save_checkpoint(ckpt, state)
    entries = (run_dir / "provenance.json").read_text()
    (run_dir / "provenance.json").write_text(entries.replace(os.getcwd(), str(full.parent)))
    monkeypatch.chdir(tmp_path)
    run = load_run(run_dir)
    assert run.cfg.data.path == str(full)
    assert run.evaluate(16)["js1"] >= 0  # the held-out text was read


# ------------------------------------------------------------------ minor


def test_jobs_zero_is_refused(tmp_path, capsys):
    argv = ["study", "toy-wgan-gp", *TOY, "--seeds", "0-1", "--jobs", "0"]
    line = one_line_error(*run_cli(capsys, *argv, "--out-dir", str(tmp_path))[::2])
    assert "--jobs must be in [1," in line and "got 0" in line
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("command", ["sweep", "study"])
@pytest.mark.parametrize(
    "option", [["--seeds", "0,,1"], ["--seeds", "0,1,"], ["--vary", "d_optim.lr=1e-4,,2e-4"]]
)
def test_an_empty_item_in_a_list_is_refused(tmp_path, capsys, command, option):
    argv = [command, "toy-wgan-gp", *TOY, *option, "--out-dir", str(tmp_path)]
    line = one_line_error(*run_cli(capsys, *argv)[::2])
    assert f"{option[0]}" in line and "empty item" in line, line
    assert not any(tmp_path.iterdir())


def test_a_key_given_twice_says_which_value_is_used(tmp_path, capsys):
    code, out, err = run_cli(
        capsys,
        "train",
        "--dry-run",
        "train.steps=5",
        "train.seed=1",
        "train.steps=6",
        "train.seed=1",
    )
    assert code == 0, err
    assert "steps: 6" in out
    lines = err.strip().splitlines()
    assert lines == [
        "wgan: warning: train.steps is given 2 times (5, then 6); the last, 6, is used"
    ], err  # train.seed=1 twice is the same value: nothing to say


def test_an_escape_sequence_in_a_config_file_is_shown_escaped(tmp_path, capsys):
    """A key read from a YAML file reaches the error line; its ESC (a terminal control
    sequence that could clear the screen) is printed as ``\\x1b``, on one line."""
    bad = tmp_path / "bad.yaml"
    bad.write_text('extends: toy-wgan-gp\n"x\\e[2Jy\\nforged": 1\n', encoding="utf-8")
    assert main(["train", str(bad), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\\x1b[2Jy" in err
    assert len(err.strip().splitlines()) == 1
