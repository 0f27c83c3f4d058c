"""Untrusted checkpoints (issue 24, row 2, and the checkpoint messages of row 12).

A checkpoint is a zip archive; before torch reads a tensor of it, the total its entries unpack
to is bounded (a small injected limit: nothing here allocates what it refuses), and a top-level
key that no wgan checkpoint holds is refused by name. A truncated file is reported as
truncated; a checkpoint whose models do not fit the run names the parameters and both shapes.
"""

from __future__ import annotations

import zipfile

import pytest
import torch

from wgan.cli.app import main
from wgan.errors import WganError
from wgan.store import checkpoint_checks, memory
from wgan.store.checkpoint_checks import CHECKPOINT_KEYS, state_mismatch
from wgan.store.checkpoints import load_checkpoint, save_checkpoint
from wgan.training.run import load_run
from wgan.training.train import train


def small_state(**extra):
    return {"format": "x", "step": 3, "generator": {"w": torch.ones(4)}, "critic": {}, **extra}


def deflated(src, dst):
    """``src`` (a torch.save archive) rewritten with every entry deflated, as the attack did."""
    with zipfile.ZipFile(src) as old, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as new:
        for info in old.infolist():
            new.writestr(info.filename, old.read(info.filename))
    return dst


@pytest.fixture
def no_torch_load(monkeypatch):
    """Fails the test if torch.load is reached: the refusal must come before any tensor."""

    def refuse(*args, **kwargs):
        raise AssertionError("torch.load was called")

    monkeypatch.setattr(torch, "load", refuse)


def one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert len(message.splitlines()) == 1 and "\x1b" not in message, message
    return message


# ---------------------------------------------------------------------------- row 2


def test_an_unknown_key_is_refused_by_name_before_any_tensor_is_read(tmp_path, no_torch_load):
    plain = tmp_path / "plain.pt"
    # The attack: an extra zero tensor under an unknown key, the archive deflated.
    torch.save(small_state(junk=torch.zeros(1 << 18)), plain)
    path = deflated(plain, tmp_path / "checkpoint.pt")
    assert path.stat().st_size < 10_000  # 1 MiB of zeros in a few KB
    with pytest.raises(WganError) as exc:
        load_checkpoint(path)
    assert one_line(exc) == (
        f"cannot load checkpoint {path}: unknown key 'junk'; a wgan checkpoint holds only "
        f"{', '.join(sorted(CHECKPOINT_KEYS))}"
    )


def test_an_unknown_key_is_shown_escaped(tmp_path, no_torch_load):
    path = tmp_path / "checkpoint.pt"
    torch.save(small_state(**{"\x1b[31mred\nline": 1, "other": 2}), path)
    with pytest.raises(WganError) as exc:
        load_checkpoint(path)
    assert "unknown key '\\x1b[31mred\\nline' (and 1 more)" in one_line(exc)


@pytest.mark.parametrize(
    "free,limit_text",
    [
        (None, "more than the 4,194,304 bytes (4.0 MiB) limit of a checkpoint"),
        (2_000_000, "more than the 2,000,000 bytes (1.9 MiB) of memory available now"),
    ],
)
def test_entries_that_unpack_beyond_the_limit_are_refused_before_reading(
    tmp_path, monkeypatch, free, limit_text
):
    plain = tmp_path / "plain.pt"
    torch.save(small_state(train_set=torch.zeros(2 << 20)), plain)  # 8 MiB under a known key
    path = deflated(plain, tmp_path / "checkpoint.pt")
    assert path.stat().st_size < 100_000
    monkeypatch.setattr(checkpoint_checks, "CHECKPOINT_MAX_BYTES", 4 << 20)  # injected limit
    monkeypatch.setattr(memory, "available_memory", lambda: free)
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load was called"))
    with pytest.raises(WganError) as exc:
        load_checkpoint(path)
    message = one_line(exc)
    head = f"cannot load checkpoint {path}: its entries take "
    assert message.startswith(head) and message.endswith(
        f"bytes (8.0 MiB) unpacked, {limit_text}; refused before reading them"
    )
    assert int(message[len(head) :].split()[0].replace(",", "")) > 8 << 20  # the tensor, and more


def test_an_oversized_pickle_is_refused_before_it_is_unpickled(tmp_path, monkeypatch):
    # Lists of lists: a pickle builds Python objects many times its own size.
    path = tmp_path / "checkpoint.pt"
    torch.save(small_state(config={"x": [[i] for i in range(30_000)]}), path)
    monkeypatch.setattr(checkpoint_checks, "PICKLE_MAX_BYTES", 100_000)  # injected limit
    monkeypatch.setattr(checkpoint_checks._KeyScan, "load", lambda self: pytest.fail("read"))
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load was called"))
    with pytest.raises(WganError) as exc:
        load_checkpoint(path)
    assert one_line(exc).endswith(
        "unpacked, more than the 100,000 bytes (97.7 KiB) a wgan checkpoint's structure may "
        "take; refused before reading it"
    )


def test_a_deflated_checkpoint_within_the_limits_still_loads(tmp_path):
    save_checkpoint(tmp_path / "plain.pt", small_state(train_set=torch.arange(6.0)))
    path = deflated(tmp_path / "plain.pt", tmp_path / "checkpoint.pt")
    state = load_checkpoint(path)
    assert torch.equal(state["train_set"], torch.arange(6.0)) and state["step"] == 3


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    from helpers import tiny

    from wgan.config import resolve

    cfg = resolve(None, [*tiny(hidden=16), "critic.hidden=16", "train.steps=2"])
    cfg.out_dir = str(tmp_path_factory.mktemp("runs"))
    return train(cfg, tensorboard=False).run_dir


def test_every_key_the_trainer_writes_is_a_checkpoint_key(toy_run):
    import zipfile as zf

    with zf.ZipFile(toy_run / "checkpoint.pt") as archive:
        raw = archive.read(next(n for n in archive.namelist() if n.endswith("/data.pkl")))
    import io

    keys = set(checkpoint_checks._KeyScan(io.BytesIO(raw)).load())
    assert keys == CHECKPOINT_KEYS
    assert load_run(toy_run).step == 2


# ---------------------------------------------------------------------------- row 12


def test_a_truncated_checkpoint_is_reported_as_truncated(toy_run, tmp_path):
    data = (toy_run / "checkpoint.pt").read_bytes()
    path = tmp_path / "checkpoint.pt"
    for cut in range(1, 8):
        path.write_bytes(data[: len(data) * cut // 8])
        with pytest.raises(WganError) as exc:
            load_checkpoint(path)
        message = one_line(exc)
        assert message.startswith(
            f"cannot load checkpoint {path}: the file is truncated or not a checkpoint: "
        ), message
        assert "invalid argument" not in message


def test_a_cut_checkpoint_through_the_cli_is_one_line(toy_run, tmp_path, capsys):
    run = tmp_path / "00000-cut"
    run.mkdir()
    data = (toy_run / "checkpoint.pt").read_bytes()
    (run / "checkpoint.pt").write_bytes(data[: len(data) // 2])
    assert main(["eval", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("wgan: error: cannot load checkpoint ") and err.count("\n") == 1
    assert "is truncated or not a checkpoint: no zip directory at its end" in err


def test_a_shape_mismatch_names_the_parameter_and_both_shapes(toy_run, tmp_path, capsys):
    state = load_checkpoint(toy_run)
    name = next(iter(state["critic"]))
    real = tuple(state["critic"][name].shape)
    state["critic"][name] = torch.zeros(3, *real[1:])
    state["generator"]["extra.weight"] = torch.zeros(2)
    run = tmp_path / "00000-bad"
    run.mkdir()
    save_checkpoint(run / "checkpoint.pt", state)
    with pytest.raises(WganError) as exc:
        load_run(run)
    wanted = (
        f"checkpoint does not match this run's config: the checkpoint's generator has an "
        f"unexpected 'extra.weight'; critic parameter {name!r} has shape "
        f"({', '.join(map(str, (3, *real[1:])))}) in the checkpoint and "
        f"({', '.join(map(str, real))}) in this run's model"
    )
    assert one_line(exc).startswith(wanted), str(exc.value)
    assert main(["eval", str(run)]) == 2
    assert capsys.readouterr().err.startswith(f"wgan: error: {wanted}")


def test_state_mismatch_lists_three_problems_and_counts_the_rest():
    model = {f"p{i}": torch.zeros(2) for i in range(5)}
    saved = {f"p{i}": torch.zeros(3) for i in range(5)}
    text = state_mismatch(model, saved, "critic")
    assert text.count("has shape (3) in the checkpoint and (2) in this run's model") == 3
    assert text.endswith("; and 2 more")
    assert state_mismatch(model, dict(model), "critic") is None
    assert state_mismatch(model, [1], "critic") == (
        "the checkpoint's critic is a list, not a state dict"
    )
