"""Studies (wgan.scale.study, wgan.scale.launchers, ``wgan study``): runs in their own run
directories, carried out by worker processes; a re-run skips finished runs and resumes interrupted
ones.

The interruptions are real: a run is trained by the library's own loop (the body of
wgan.training.train.train) and stopped by a KeyboardInterrupt raised from the loop's hook, leaving
what a Ctrl-C leaves (a checkpoint at step 5 and logs up to step 7, or logs and no checkpoint at
all). Results are compared with plain in-process wgan.training.train.train runs of the same config
at the same thread count (1, as in conftest), bit for bit: a worker process, a resume from a
checkpoint and a restart after a run killed before its first checkpoint must all change nothing.
"""

import json
import os
import subprocess
import sys

import pytest
import torch
from helpers import tiny

from wgan.cli.app import main as cli_main
from wgan.cli.study import read_study_file
from wgan.config import resolve
from wgan.errors import ConfigError, WganError
from wgan.scale.study import run_study
from wgan.store import checkpoints, provenance, rundirs
from wgan.store.tracking import Tracker, read_jsonl
from wgan.training.threads import cpu_cores
from wgan.training.train import resume, train
from wgan.training.trainer import Trainer

TINY = tiny(
    "train.device=cpu",
    "train.log_every=1",
    "train.checkpoint_every=5",
    hidden=32,
    batch=64,
    steps=10,
    eval_samples=300,
)


ATOL = 1e-6  # a stacked run against its separate run, as in tests/scale/test_sweep.py


def tiny(*overrides):
    return resolve("toy-wgan-gp", [*TINY, *overrides])


def weights(run_dir):
    state = checkpoints.load_checkpoint(run_dir / rundirs.CHECKPOINT)
    return state["step"], state["generator"], state["critic"]


def assert_same_weights(a, b):
    step_a, gen_a, critic_a = weights(a)
    step_b, gen_b, critic_b = weights(b)
    assert step_a == step_b
    for sa, sb in ((gen_a, gen_b), (critic_a, critic_b)):
        assert sa.keys() == sb.keys()
        for key in sa:
            assert torch.equal(sa[key], sb[key]), key


def interrupted(cfg, run_dir, at_step):
    """Train ``cfg`` into ``run_dir`` as wgan.training.train.train does, and stop it with a
    KeyboardInterrupt (a Ctrl-C) right after iteration ``at_step``."""

    def hook(trainer, values):
        if trainer.step == at_step:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        with rundirs.create_run_dir(cfg.out_dir, cfg.name, run_dir) as path:
            rundirs.write_config(path, cfg.to_dict())
            tracker = Tracker(path)
            try:
                Trainer(cfg, path).fit(tracker, hook)
            finally:
                tracker.close()


def test_interrupted_study_resumes_and_skips_finished_runs(tmp_path, monkeypatch):
    study = tmp_path / "study"
    cfgs = {name: tiny(f"train.seed={seed}") for seed, name in enumerate("abc")}
    for cfg in cfgs.values():
        cfg.out_dir = str(study)
    # The state a killed study leaves: a finished, b stopped after its step-5 checkpoint,
    # c stopped before its first checkpoint.
    finished = train(cfgs["a"], run_dir=study / "a")
    interrupted(cfgs["b"], study / "b", at_step=7)
    interrupted(cfgs["c"], study / "c", at_step=3)
    assert weights(study / "b")[0] == 5
    assert not (study / "c" / rundirs.CHECKPOINT).exists()
    assert (study / "c" / "metrics.jsonl").exists()
    # A mark in b's log before its checkpoint: a resume keeps it, a retraining would not.
    with (study / "b" / "metrics.jsonl").open("a") as fh:
        fh.write(json.dumps({"kind": "mark", "step": 4}) + "\n")

    records = run_study(list(cfgs.items()), study, jobs=2, threads=1)
    for name in "bc":  # each worker process ran with the one thread asked for
        assert provenance.read(study / name)[-1]["threads"]["used"] == [1]

    assert [(r["name"], r["status"], r["step"]) for r in records] == [
        ("a", "skipped", 10),
        ("b", "resumed", 10),
        ("c", "done", 10),
    ]
    assert all(r["error"] is None for r in records)
    assert records[0]["metrics"] == json.loads(json.dumps(finished.metrics))
    # Each equals a plain, uninterrupted run of its config.
    plain = tmp_path / "plain"
    for name in "bc":
        train(cfgs[name], run_dir=plain / name)
        assert_same_weights(study / name, plain / name)
    # metrics.jsonl of the resumed run and of the restarted one: each step once, as an
    # uninterrupted run's.
    for name in "bc":
        log = read_jsonl(study / name / "metrics.jsonl")
        assert [r["step"] for r in log if r["kind"] == "train"] == list(range(1, 11))
    assert [r for r in read_jsonl(study / "b" / "metrics.jsonl") if r["kind"] == "mark"]
    # study.json holds the same records.
    saved = json.loads((study / "study.json").read_text())["runs"]
    assert [r["status"] for r in saved] == ["skipped", "resumed", "done"]

    # A second re-run starts no worker at all: every run left its record.
    def no_launch(*args, **kwargs):
        raise AssertionError("a worker was started for a finished run")

    monkeypatch.setattr("wgan.scale.study.launch", no_launch)
    again = run_study(list(cfgs.items()), study, jobs=2, threads=1)
    assert [r["status"] for r in again] == ["skipped"] * 3
    assert [r["metrics"] for r in again] == [r["metrics"] for r in records]


def test_stacked_study_trains_runs_that_share_shapes_together(tmp_path, monkeypatch):
    """stack=True: the two seeds share one vectorised step (the sweep's), the narrower critic
    trains on its own; each equals a plain run of its config to ATOL (float rounding of
    batched products, the sweep's tolerance: tests/scale/test_sweep.py), and is a regular run that
    resumes (a stacked checkpoint is the Trainer's)."""
    study = tmp_path / "study"
    cfgs = [("s0", tiny()), ("s1", tiny("train.seed=1")), ("narrow", tiny("critic.hidden=16"))]
    records = run_study(cfgs, study, jobs=2, threads=1, stack=True)
    assert [(r["name"], r["status"], r.get("stacked")) for r in records] == [
        ("s0", "done", 2),
        ("s1", "done", 2),
        ("narrow", "done", None),
    ]
    for name, cfg in cfgs:
        train(cfg, run_dir=tmp_path / "plain" / name)
        step, gen, critic = weights(study / name)
        plain_step, plain_gen, plain_critic = weights(tmp_path / "plain" / name)
        assert step == plain_step == 10
        for a, b in ((gen, plain_gen), (critic, plain_critic)):
            for key in a:
                torch.testing.assert_close(a[key], b[key], rtol=0, atol=ATOL)
    assert resume(study / "s1", {"train.steps": 12}).step == 12

    monkeypatch.setattr("wgan.scale.study.launch", lambda *a, **k: iter(()))
    again = run_study(cfgs[:1], study, stack=True)  # s0 still finished: no worker
    assert again[0]["status"] == "skipped"


def test_a_changed_config_under_an_existing_name_is_refused(tmp_path):
    study = tmp_path / "study"
    cfg = tiny()
    (study / "a").mkdir(parents=True)
    rundirs.write_config(study / "a", cfg.to_dict())
    with pytest.raises(ConfigError, match=r"generator\.hidden=32, now generator\.hidden=64"):
        run_study([("a", tiny("generator.hidden=64"))], study)
    # Keys that do not change the run (where it computes, the progress bar) are not compared,
    # and keys a resume may change (train.steps) extend it (tests/scale/test_study_extend.py);
    # the refusal above came before any worker: nothing was written into the run.
    assert sorted(p.name for p in (study / "a").iterdir()) == ["config.yaml"]


@pytest.mark.parametrize(
    "runs_, kwargs, message",
    [
        ([], {}, "at least one run"),
        (["a"], {}, r"\(name, Config\) pair"),
        ([("a", None)], {}, "must be a wgan.config.Config, got NoneType"),
        ([("../x", "cfg")], {}, "not a folder name"),
        ([("a", "cfg"), ("a", "cfg")], {}, "given twice"),
        ([("a", "cfg")], {"jobs": 0}, "jobs must be"),
        ([("a", "cfg")], {"launcher": "slurm"}, "unknown launcher"),
        ([("a", "cfg")], {"address": "10.0.0.1:6379"}, "for the ray launcher"),
        ([("a", "cfg")], {"threads": 0}, "threads must be"),
    ],
)
def test_bad_studies_are_refused_before_anything_runs(tmp_path, runs_, kwargs, message):
    cfg = tiny()
    runs_ = [r if isinstance(r, str) else (r[0], cfg if r[1] == "cfg" else r[1]) for r in runs_]
    with pytest.raises(ConfigError, match=message):
        run_study(runs_, tmp_path / "study", **kwargs)
    assert not (tmp_path / "study" / "a").exists()


def test_one_process_per_study_directory(tmp_path):
    """A second launcher on a study directory (here: another process holding its lock) is
    refused at once, before it touches a run."""
    study = tmp_path / "study"
    study.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from wgan.store import rundirs\n"
            "with rundirs.lock_run(sys.argv[1]):\n    print('held', flush=True); time.sleep(60)",
            str(study),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(WganError, match=rf"being run by another process \(pid {holder.pid}\)"):
            run_study([("a", tiny())], study)
    finally:
        holder.kill()
        holder.wait()
    assert not (study / "a").exists()


def test_a_folder_that_is_not_a_run_is_not_touched(tmp_path):
    (tmp_path / "study" / "a").mkdir(parents=True)
    (tmp_path / "study" / "a" / "notes.txt").write_text("mine")
    with pytest.raises(WganError, match="not a run directory"):
        run_study([("a", tiny())], tmp_path / "study")
    assert (tmp_path / "study" / "a" / "notes.txt").read_text() == "mine"


def test_ray_missing_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    code = cli_main(
        ["study", "toy-wgan-gp", *TINY, "--launcher", "ray", "--study-dir", str(tmp_path / "s")]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "install wgan[ray]" in err
    assert not (tmp_path / "s").exists()  # refused before anything was written


def test_an_unreachable_ray_address_is_one_line_at_once(tmp_path, capsys):
    pytest.importorskip("ray")
    study = tmp_path / "s"
    code = cli_main(
        ["study", "toy-wgan-gp", *TINY, "--launcher", "ray", "--address", "127.0.0.1:1"]
        + ["--study-dir", str(study)]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "cannot reach the Ray cluster at 127.0.0.1:1" in err
    assert not study.exists()  # refused before anything was written


def test_study_file_names_and_configs(tmp_path):
    (tmp_path / "confs").mkdir()
    (tmp_path / "confs" / "clip.yaml").write_text("extends: toy-wgan-clip\ntrain:\n  steps: 7\n")
    path = tmp_path / "s.yaml"
    path.write_text(
        "config: toy-wgan-gp\n"
        "overrides: [train.steps=3]\n"
        "runs:\n"
        "  - name: gp\n"
        "  - name: clip\n"
        "    config: confs/clip.yaml\n"
        "    overrides: {constraint.clip: 0.02}\n"
        "seeds: 0-1\n"
        "study_dir: out\n"
    )
    study_runs, study_dir = read_study_file(path, ["critic.hidden=16"])
    assert study_dir == tmp_path / "out"
    names = [n for n, _ in study_runs]
    assert names == ["gp-seed0", "gp-seed1", "clip-seed0", "clip-seed1"]
    by = dict(study_runs)
    assert [by[n].train.seed for n in names] == [0, 1, 0, 1]
    assert by["gp-seed0"].constraint.clip == 0 and by["clip-seed1"].constraint.clip == 0.02
    # Overrides: the file's common ones, then the command line's, then the run's own.
    assert by["clip-seed0"].train.steps == 3 and by["gp-seed1"].critic.hidden == 16
    path.write_text("runs:\n  - name: a\n    steps: 3\n")
    with pytest.raises(ConfigError, match="unknown key 'steps'"):
        read_study_file(path)


def test_cli_study_reports_failed_runs_and_retries_only_those_that_may_succeed(tmp_path, capsys):
    """A run that fails (another process holds its lock) and one that diverges are recorded as
    failed with their one-line messages, exit status 1; the other run is trained and is a
    regular run (wgan eval reads it). Run again: the finished run is skipped, the locked one
    (now free) is trained, the diverged one is reported again without a worker (training is
    deterministic: it would diverge again)."""
    study = tmp_path / "study"
    path = tmp_path / "three.yaml"
    path.write_text(
        "overrides: [" + ", ".join(TINY) + "]\nruns:\n  - name: ok\n  - name: locked\n"
        "  - name: blowup\n    overrides: {d_optim.lr: 1.0e+30, g_optim.lr: 1.0e+30}\n"
    )
    command = ["study", str(path), "--jobs", "2", "--threads", "1", "--study-dir", str(study)]
    (study / "locked").mkdir(parents=True)
    with rundirs.lock_run(study / "locked"):
        code = cli_main(command)
    out, err = capsys.readouterr()
    assert code == 1
    errors = [line for line in err.splitlines() if not line.startswith("wgan: study: ")]
    assert len(errors) == 1 and "2 of 3 study runs failed" in errors[0]  # beside progress lines
    assert "locked: run" in err and "being trained by another process" in err
    lines = {line.split()[0]: line.split()[1] for line in out.splitlines()[1:4]}
    assert lines == {"ok": "done", "locked": "failed", "blowup": "diverged"}
    assert cli_main(["eval", str(study / "ok"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["step"] == 10
    blowup_log = (study / ".study" / "blowup.log").stat().st_mtime_ns

    assert cli_main([*command, "--json"]) == 1
    out, err = capsys.readouterr()
    records = {r["name"]: r for r in json.loads(out)["runs"]}
    assert {n: r["status"] for n, r in records.items()} == {
        "ok": "skipped",
        "locked": "done",
        "blowup": "failed",
    }
    assert records["blowup"]["diverged"] and "training diverged" in records["blowup"]["error"]
    assert (study / ".study" / "blowup.log").stat().st_mtime_ns == blowup_log  # no worker
    assert "1 of 3 study runs failed (first: blowup" in err and "delete a run's folder" in err


def test_sweep_of_runs_that_cannot_be_stacked_uses_the_launcher(tmp_path, capsys):
    """Runs of different widths cannot share one vectorised step: wgan sweep trains them as
    separate processes (a study), each equal to a plain run of its config."""
    code = cli_main(
        ["sweep", "toy-wgan-gp", *TINY, "--vary", "critic.hidden=16,32", "--out-dir", str(tmp_path)]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "cannot be stacked (they differ in critic.hidden)" in err
    (sweep_dir,) = tmp_path.glob("*-sweep")
    names = sorted(p.name for p in sweep_dir.iterdir() if p.is_dir() and p.name != ".study")
    assert names == ["critic_hidden16", "critic_hidden32"]
    assert "2 runs in" in out
    # Two jobs: each worker uses the CPU count / 2 threads (its provenance says so, with the
    # bounded OpenMP spin it inherited); a plain run with as many threads.
    share = max(1, cpu_cores() // 2)
    for name in names:
        record = provenance.read(sweep_dir / name)[-1]["threads"]
        assert record["cap"] == share and record["used"][0] <= share
        assert record["openmp"]["GOMP_SPINCOUNT"] is not None
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // 2))
    try:
        train(tiny("critic.hidden=16"), run_dir=tmp_path / "plain")
    finally:
        torch.set_num_threads(threads)
    assert_same_weights(sweep_dir / "critic_hidden16", tmp_path / "plain")
