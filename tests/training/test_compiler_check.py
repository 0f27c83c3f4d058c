"""``train.compile=true`` without a C/C++ compiler is one clear line (exit 2) before training,
not inductor's traceback at the first step."""

import os
import stat

import pytest

from wgan.cli.app import main
from wgan.training import compiler


def _no_torch_search(monkeypatch):
    import torch._inductor.cpp_builder as cpp_builder

    def fail():
        raise RuntimeError("no working C++ compiler found")

    monkeypatch.setattr(cpp_builder, "get_cpp_compiler", fail)


def test_no_compiler_anywhere_is_none(monkeypatch, tmp_path):
    _no_torch_search(monkeypatch)
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder
    assert compiler.find_compiler() is None
    with pytest.raises(compiler.ConfigError, match="train.compile=true needs a C/C.. compiler"):
        compiler.require_compiler()


def test_cxx_is_found_on_the_path(monkeypatch, tmp_path):
    _no_torch_search(monkeypatch)
    fake = tmp_path / "my-clang++"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("CXX", "my-clang++")
    assert compiler.find_compiler() == os.fspath(fake)
    monkeypatch.delenv("CXX")
    assert compiler.find_compiler() is None  # only the usual names without $CXX


def test_cli_says_it_in_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(compiler, "find_compiler", lambda: None)
    args = ["train", "train.compile=true", "train.steps=2", "train.progress=false"]
    assert main([*args, "--out-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("wgan: error: train.compile=true needs a C/C++ compiler")
    assert err.count("\n") == 1
    # the run folder is not left half made (or is reported as removed)
    assert not any((p / "checkpoint.pt").exists() for p in tmp_path.iterdir())


def test_this_machine_has_one():
    assert compiler.find_compiler() is not None  # the compiled-step tests depend on it
