"""CPU threading under load (wgan.training.threads): the OpenMP wait policy is set before torch
loads and only when the user chose none; the thread count follows the cores other processes leave
free; runs in parallel divide the cores; provenance records the choice. No timings are asserted (the
speed under load is measured in benchmarks/RESULTS.md)."""

import json
import os
import subprocess
import sys

import pytest
import torch
from helpers import tiny

from wgan.config import resolve
from wgan.store.provenance import read
from wgan.training import threads
from wgan.training.threads import ThreadGovernor, torch_threads
from wgan.training.trainer import Trainer

TINY = tiny(hidden=16, steps=6, eval_samples=200)

PROBE = """
import json, os, sys
pre = sys.argv[1] == "torch-first"
if pre:
    import torch
from wgan.training.threads import configure_openmp
record = configure_openmp()
import torch
print(json.dumps({"record": record, "env": os.environ.get("GOMP_SPINCOUNT")}))
"""


def _probe(order: str, **env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in threads.USER_KEYS}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, order],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def test_wait_policy_is_set_before_torch_loads_and_not_over_the_users():
    ours = _probe("wgan-first")
    assert ours["env"] == threads.SPINCOUNT
    assert ours["record"]["set_by"] == "wgan"
    # The user's choice wins, whichever variable it is made with.
    passive = _probe("wgan-first", OMP_WAIT_POLICY="PASSIVE")
    assert passive["env"] is None
    assert passive["record"] == {
        "OMP_WAIT_POLICY": "PASSIVE",
        "GOMP_SPINCOUNT": None,
        "set_by": "user",
    }
    assert _probe("wgan-first", GOMP_SPINCOUNT="5")["env"] == "5"
    # Too late once torch has loaded (OpenMP has read its environment): nothing is set.
    late = _probe("torch-first")
    assert late["env"] is None
    assert late["record"]["set_by"] == "unset (torch was already loaded)"


def _run_cli(tmp_path, *args, env=None):
    clean = {
        k: v for k, v in os.environ.items() if k not in (*threads.USER_KEYS, "OMP_NUM_THREADS")
    }
    return subprocess.run(
        [sys.executable, "-m", "wgan", *args],
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )


def test_cli_records_the_choice_in_provenance_and_says_it_with_verbose(tmp_path):
    out = _run_cli(tmp_path, "train", "-v", "toy-wgan-gp", *TINY, "--out-dir", "runs")
    assert out.returncode == 0, out.stderr
    said = [line for line in out.stderr.splitlines() if line.startswith("wgan: threads:")]
    assert len(said) == 1, out.stderr  # once
    assert f"GOMP_SPINCOUNT={threads.SPINCOUNT} (set by wgan)" in said[0]
    (run_dir,) = (tmp_path / "runs").iterdir()
    record = read(run_dir)[-1]["threads"]
    assert record["policy"] == "auto"
    assert record["openmp"]["set_by"] == "wgan"
    assert record["openmp"]["GOMP_SPINCOUNT"] == threads.SPINCOUNT
    assert record["cap"] == threads.cpu_cores()  # torch's default count: one per core
    assert record["threads"] == record["used"][0] <= record["cap"]

    # Without -v nothing is said; the user's policy and a fixed train.threads are recorded.
    out = _run_cli(
        tmp_path,
        "train",
        "toy-wgan-gp",
        *TINY,
        "train.threads=1",
        "--out-dir",
        "runs2",
        env={"OMP_WAIT_POLICY": "PASSIVE"},
    )
    assert out.returncode == 0, out.stderr
    assert "threads:" not in out.stderr
    (run_dir,) = (tmp_path / "runs2").iterdir()
    record = read(run_dir)[-1]["threads"]
    assert record["policy"] == "train.threads"
    assert record["used"] == [1]
    assert record["openmp"] == {
        "OMP_WAIT_POLICY": "PASSIVE",
        "GOMP_SPINCOUNT": None,
        "set_by": "user",
    }


@pytest.mark.skipif(threads.cpu_cores() < 2, reason="needs two cores to leave one free")
def test_cli_takes_fewer_threads_beside_a_busy_process(tmp_path):
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        out = _run_cli(tmp_path, "train", "toy-wgan-gp", *TINY, "--out-dir", "runs")
    finally:
        busy.kill()
        busy.wait()
    assert out.returncode == 0, out.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    record = read(run_dir)[-1]["threads"]
    assert record["other_load_at_start"] >= 0.5
    assert record["threads"] == record["cores"] - 1


def _spin_for(seconds: float) -> None:
    end = threads.time.monotonic() + seconds
    while threads.time.monotonic() < end:
        sum(range(1000))


def test_other_load_counts_a_busy_process():
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        start = threads._snapshot()
        _spin_for(1.0)  # this process is busy too
        beside = threads.other_load(start)
    finally:
        busy.kill()
        busy.wait()
    assert beside >= 0.7


def _fake_stat(path, busy_ticks):
    # cpu0 and cpu1: user nice system idle iowait irq softirq steal (ticks); idle is free time
    path.write_text(
        f"cpu  {2 * busy_ticks} 0 0 500 0 0 0 0\n"
        f"cpu0 {busy_ticks} 0 0 250 0 0 0 0\ncpu1 {busy_ticks} 0 0 250 0 0 0 0\n"
    )


def test_other_load_leaves_out_this_processs_own_time(tmp_path, monkeypatch):
    """Between two snapshots 1 s apart both cores were busy (200 ticks of 100 Hz) and this
    process used 0.5 CPU-seconds itself: the others used 1.5 cores."""
    stat = tmp_path / "stat"
    monkeypatch.setattr(threads, "STAT", str(stat))
    monkeypatch.setattr(threads, "_cpu_ids", lambda: {0, 1})
    monkeypatch.setattr(threads.os, "sysconf", lambda name: 100)
    clock, own = iter([10.0, 11.0]), iter([3.0, 3.5])
    monkeypatch.setattr(threads.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(threads.os, "times", lambda: os.times_result((next(own), 0, 0, 0, 0)))
    _fake_stat(stat, 1000)
    start = threads._snapshot()
    _fake_stat(stat, 1100)  # each core 100 ticks busier
    assert threads.other_load(start) == pytest.approx(1.5)


@pytest.fixture
def two_threads(monkeypatch):
    """torch at 2 threads on what the governor sees as a 2-core machine, restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    monkeypatch.setattr(threads, "cpu_cores", lambda: 2)
    yield
    torch.set_num_threads(before)


def _loads(monkeypatch, values):
    seq = iter(values)
    monkeypatch.setattr(threads, "other_load", lambda since: next(seq))


def test_governor_follows_the_free_cores_with_hysteresis(two_threads, monkeypatch):
    # At the start, then at each tick (interval 0: every tick measures).
    _loads(monkeypatch, [0.0, 1.0, 0.5, 0.3, 0.6, 2.0, 0.0])
    gov = ThreadGovernor(0, interval=0.0)
    with gov:
        assert torch.get_num_threads() == 2
        expected = [1, 1, 2, 2, 1, 2]  # 0.5 and 0.6 are too close to the current count to move
        for want in expected:
            gov.tick()
            assert torch.get_num_threads() == want
    assert torch.get_num_threads() == 2  # restored
    assert gov.used == [2, 1]
    assert gov.record()["policy"] == "auto"


def test_governor_never_exceeds_the_count_torch_had(two_threads, monkeypatch):
    torch.set_num_threads(1)  # e.g. the user's OMP_NUM_THREADS=1, or a study's share
    _loads(monkeypatch, [0.0, 0.0])
    with ThreadGovernor(0, interval=0.0) as gov:
        gov.tick()
        assert torch.get_num_threads() == 1
    assert gov.record()["cap"] == 1


def test_governor_with_fixed_threads_does_not_measure(two_threads, monkeypatch):
    _loads(monkeypatch, [])  # any measurement would raise StopIteration
    with ThreadGovernor(1, interval=0.0) as gov:
        gov.tick()
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    assert gov.record()["policy"] == "train.threads"


def test_child_env_carries_the_policy(monkeypatch):
    for key in threads.USER_KEYS:
        monkeypatch.delenv(key, raising=False)
    assert threads.child_env() == {"GOMP_SPINCOUNT": threads.SPINCOUNT}
    monkeypatch.setenv("OMP_WAIT_POLICY", "active")
    assert threads.child_env() == {"OMP_WAIT_POLICY": "active"}


QUICK = ["train.steps=4", "train.log_every=1", "train.eval_every=0", "train.figure_every=0"]
QUICK += ["train.checkpoint_every=0", "train.progress=false", "train.eval_samples=64"]


def test_training_uses_train_threads_and_restores_the_setting(tmp_path):
    before = torch.get_num_threads()
    wanted = 1 if before != 1 else 2
    seen = []
    cfg = resolve("toy-wgan-gp", [*QUICK, f"train.threads={wanted}"])
    Trainer(cfg, tmp_path / "run").fit(hook=lambda t, v: seen.append(torch.get_num_threads()))
    assert seen == [wanted] * 4
    assert torch.get_num_threads() == before


def test_zero_threads_leaves_torch_alone():
    before = torch.get_num_threads()
    with torch_threads(0):
        assert torch.get_num_threads() == before
    assert resolve("text-wgan-gp").train.threads == 1  # the small text model: one thread
