"""Checkpoints: atomic writes survive a crash mid-save; loading runs no code; format checked."""

import subprocess
import sys
import textwrap

import pytest
import torch

from wgan.errors import WganError
from wgan.store.checkpoints import load_checkpoint, save_checkpoint
from wgan.store.rundirs import new_run_dir


def state(step):
    return {"step": step, "generator": {"w": torch.full((3,), float(step))}, "critic": {}}


def test_round_trip(tmp_path):
    save_checkpoint(tmp_path / "checkpoint.pt", state(3))
    loaded = load_checkpoint(tmp_path)
    assert loaded["step"] == 3 and torch.equal(loaded["generator"]["w"], torch.full((3,), 3.0))
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]  # no temporary left


def test_killed_during_save_keeps_previous_checkpoint(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, state(1))
    # A child process starts writing a large checkpoint and dies half-way (os._exit while
    # pickling), as a process killed during a save would.
    script = textwrap.dedent(
        f"""
        import os, torch
        from wgan.store.checkpoints import save_checkpoint

        class Bomb:
            def __reduce__(self):
                os._exit(9)

        big = torch.zeros(4_000_000)
        save_checkpoint({str(path)!r}, {{"step": 2, "generator": {{"w": big}}, "bomb": Bomb()}})
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == 9
    assert load_checkpoint(path)["step"] == 1


def test_truncated_and_foreign_files_are_rejected(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, state(1))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WganError, match="cannot load checkpoint"):
        load_checkpoint(path)
    torch.save({"hello": 1}, path)
    with pytest.raises(WganError, match="not a wgan checkpoint"):
        load_checkpoint(path)
    with pytest.raises(WganError, match="no checkpoint"):
        load_checkpoint(tmp_path / "nothing.pt")


class Payload:
    """Unpickling this would run code; weights_only loading must refuse it."""

    def __reduce__(self):
        return (print, ("code ran",))


def test_untrusted_checkpoint_cannot_run_code(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"step": 0, "generator": Payload()}, path)
    with pytest.raises(WganError, match="cannot load checkpoint"):
        load_checkpoint(path)


def test_run_directories_are_numbered(tmp_path):
    a = new_run_dir(tmp_path, "toy wgan/gp")
    b = new_run_dir(tmp_path, "toy")
    assert a.name == "00000-toy-wgan-gp" and b.name == "00001-toy"


def test_training_checkpoint_format_and_optimiser_kind_are_checked_on_resume(fast_config):
    """A run's checkpoint is "wgan-checkpoint-2" (functional optimiser states: the moments as
    lists of tensors and a step count); one of another format, or resuming with another
    optimiser kind, is refused with a clear error instead of a half-loaded state."""
    from wgan.training.train import resume, train

    cfg = fast_config(None, "train.steps=2")
    run = train(cfg, tensorboard=False).run_dir
    saved = load_checkpoint(run)
    assert saved["format"] == "wgan-checkpoint-2"
    assert set(saved["opt_d"]) == {"exp_avg", "exp_avg_sq", "step"}
    assert saved["opt_d"]["step"].item() == 2 * cfg.train.n_critic
    assert saved["opt_g"]["step"].item() == 2
    with pytest.raises(WganError, match="not a rmsprop state.*cannot change on resume"):
        resume(run, {"d_optim.name": "rmsprop", "train.steps": 3}, tensorboard=False)
    old = dict(saved, format="wgan-checkpoint-1")
    save_checkpoint(run / "checkpoint.pt", old)
    with pytest.raises(WganError, match="format 'wgan-checkpoint-1' is not 'wgan-checkpoint-2'"):
        resume(run, {"train.steps": 3}, tensorboard=False)
