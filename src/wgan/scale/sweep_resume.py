"""Continuing an interrupted sweep: ``wgan sweep --resume SWEEP_DIR`` (:func:`resume_sweep`).

A sweep stopped by Ctrl-C or SIGTERM has written every live run's checkpoint at the step it
reached (:meth:`wgan.scale.sweep.SweepTrainer.fit`); one killed outright has the checkpoints of
its last save (``train.checkpoint_every``, ``train.checkpoint_minutes``). :func:`resume_sweep`
reads the sweep's ``sweep.json`` for its runs and continues them together, as ``wgan train
--resume`` continues one run:

* a run at ``train.steps`` is finished and left as it is; a run that diverged (its
  ``metrics.jsonl`` records the divergence after its last checkpoint) stays diverged, as a
  sweep does not train a frozen run again;
* the other runs continue from their checkpoints, those at one step stacked into one vectorised
  step again (:class:`wgan.scale.sweep.SweepTrainer` with their states); runs at different steps
  (a kill between two runs' saves) form one group per step, trained one group after the other;
  a run killed before its first checkpoint trains again from step 0.

Each run's checkpoint holds its models, optimisers and random streams, so a resumed sweep gives
the weights of the sweep that was never stopped, bit for bit, when the same runs are stacked
together (``tests/scale/test_interrupt_sweep_study.py``). Overrides are checked as for ``wgan
train --resume`` (:data:`wgan.config.RESUME_MAY_CHANGE`), and everything is checked before
anything is written.
"""

from __future__ import annotations

import contextlib
import copy
import json
import time
from pathlib import Path
from typing import Any

from wgan.config import Config, check_resume, from_dict, set_value, validate
from wgan.errors import ConfigError, WganError
from wgan.scale.launchers import final_metrics
from wgan.scale.sweep import (
    ENGINES,
    SweepRunResult,
    SweepTrainer,
    fit_recorded,
    result_record,
)
from wgan.scale.sweep_plan import MAX_RUNS
from wgan.store import checkpoints, provenance, rundirs
from wgan.store.printable import printable
from wgan.store.tracking import json_safe, read_jsonl
from wgan.training.resume_check import check_config_file
from wgan.training.trainer import check_checkpoint_format

__all__ = ["SUMMARY", "is_sweep_dir", "resume_sweep"]

SUMMARY = "sweep.json"


def is_sweep_dir(path: str | Path) -> bool:
    """Whether ``path`` is the folder of a stacked sweep (it holds ``sweep.json``)."""
    return (Path(path) / SUMMARY).is_file()


def _read_summary(sweep_dir: Path) -> tuple[dict[str, Any], list[Path]]:
    """``sweep.json`` and the run directories it names (each a folder of ``sweep_dir``: only
    the last part of a recorded path is used, so a moved sweep resumes, and a forged path
    cannot point elsewhere)."""
    path = sweep_dir / SUMMARY
    where = printable(path)
    try:
        summary = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise WganError(f"cannot read {where}: {printable(err, 200)}") from None
    runs = summary.get("runs") if isinstance(summary, dict) else None
    if not isinstance(runs, list) or not runs or len(runs) > MAX_RUNS:
        raise WganError(f"{where} does not list the sweep's runs (1 to {MAX_RUNS:,})")
    dirs = []
    for run in runs:
        recorded = run.get("run_dir") if isinstance(run, dict) else None
        name = Path(recorded).name if isinstance(recorded, str) else ""
        if name in ("", ".", "..") or not (sweep_dir / name).is_dir():
            raise WganError(f"{where}: a run's run_dir is not a folder of {printable(sweep_dir)}")
        dirs.append(sweep_dir / name)
    if len(set(dirs)) != len(dirs):
        raise WganError(f"{where} names a run twice")
    return summary, dirs


def _diverged_at(run_dir: Path, after: int) -> int | None:
    """The step of a divergence that ``metrics.jsonl`` records after step ``after``, or None."""
    for record in read_jsonl(run_dir / "metrics.jsonl"):
        step = record.get("step")
        if record.get("kind") == "error" and record.get("event") == "diverged":
            if isinstance(step, int) and step > after:
                return step
    return None


def _plan(run_dir: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    """How one run continues: its config (with ``overrides``, checked as a resume checks them),
    its checkpoint (or None) and step, and whether it is ``train``, ``finished`` or
    ``diverged``."""
    ckpt = run_dir / rundirs.CHECKPOINT
    state = None
    if ckpt.is_file():
        state = checkpoints.load_checkpoint(ckpt)
        check_checkpoint_format(state)
        check_config_file(run_dir, state["config"], overrides)
        saved = from_dict(state["config"])
    else:
        try:
            saved = from_dict(rundirs.read_config(run_dir))
        except ConfigError as err:
            raise ConfigError(f"{err} (in {run_dir / rundirs.CONFIG})") from None
    saved.train.inception_weights = None  # never taken from a run (it is executed)
    cfg = copy.deepcopy(saved)
    for key, value in overrides.items():
        set_value(cfg, key, value)
    validate(cfg)
    check_resume(saved, cfg)
    step = int(state["step"]) if state is not None else 0
    diverged = _diverged_at(run_dir, step if state is not None else -1)
    status = "diverged" if diverged is not None else "train"
    if status == "train" and step >= cfg.train.steps:
        status = "finished"
    return {
        "dir": run_dir,
        "cfg": cfg,
        "state": state,
        "step": step,
        "status": status,
        "diverged_at": diverged,
    }


def _left_as_is(plan: dict[str, Any], overrides: dict[str, Any]) -> SweepRunResult:
    """The result of a run that is not trained again (finished, or diverged)."""
    run_dir, step = plan["dir"], plan["step"]
    diverged = None
    if plan["status"] == "diverged":
        step = plan["diverged_at"]
        diverged = (
            f"training diverged by step {step} (see {run_dir / 'metrics.jsonl'}); its last "
            "checkpoint is kept, and a sweep does not train a diverged run again"
        )
    metrics = final_metrics(run_dir, step) if diverged is None else {}
    return SweepRunResult(
        run_dir, step, metrics, None, 0.0, overrides, plan["cfg"].train.seed, diverged
    )


def resume_sweep(
    sweep_dir: str | Path, overrides: dict[str, Any] | None = None, tensorboard: bool = True
) -> list[SweepRunResult]:
    """Continue the sweep in ``sweep_dir`` (see the module docstring); ``overrides`` (e.g.
    ``{"train.steps": 4000}``) apply to every run. Returns one result per run, in the order of
    ``sweep.json``, which is rewritten with them at the end."""
    sweep_dir = Path(sweep_dir).expanduser()
    if not sweep_dir.is_dir():
        raise WganError(f"sweep directory not found: {printable(sweep_dir)}")
    if not is_sweep_dir(sweep_dir):
        raise WganError(f"{printable(sweep_dir)} is not a sweep's folder (no {SUMMARY})")
    summary, run_dirs = _read_summary(sweep_dir)
    overrides = dict(overrides or {})
    recorded = [
        r["overrides"] if isinstance(r.get("overrides"), dict) else {} for r in summary["runs"]
    ]
    engine = summary.get("engine") if summary.get("engine") in ENGINES else "vmap"
    start = time.time()
    with contextlib.ExitStack() as locks:
        for run_dir in run_dirs:  # a second process continuing these runs is refused at once
            locks.enter_context(rundirs.lock_run(run_dir))
        plans = [_plan(d, overrides) for d in run_dirs]  # every check before any write
        results: list[SweepRunResult | None] = [None] * len(plans)
        for i, plan in enumerate(plans):
            if plan["status"] != "train":
                results[i] = _left_as_is(plan, recorded[i])
        for step in sorted({p["step"] for p in plans if p["status"] == "train"}, reverse=True):
            group = [i for i, p in enumerate(plans) if p["status"] == "train" and p["step"] == step]
            results_of = _train_group([plans[i] for i in group], engine, tensorboard)
            for i, result in zip(group, results_of, strict=True):
                result.overrides = recorded[i]
                results[i] = result
    done = [r for r in results if r is not None]
    for result in done:
        result.seconds = time.time() - start
    summary["runs"] = [result_record(r) for r in done]
    summary["steps"] = max((r.step for r in done), default=0)
    rundirs.write_text_atomic(sweep_dir / SUMMARY, json.dumps(json_safe(summary), indent=1))
    return done


def _train_group(plans: list[dict[str, Any]], engine: str, tensorboard: bool) -> list[Any]:
    """Train runs at one step together from their checkpoints (or from scratch at step 0)."""
    cfgs: list[Config] = [p["cfg"] for p in plans]
    dirs = [p["dir"] for p in plans]
    fresh = plans[0]["state"] is None
    if fresh:  # killed before the first checkpoint: train again, keeping the session record
        for run_dir, cfg in zip(dirs, cfgs, strict=True):
            rundirs.empty_run_dir(run_dir, keep=(provenance.FILE,))
            rundirs.write_config(run_dir, cfg.to_dict())
    if cfgs[0].train.compile:
        engine = "compile"
    states = None if fresh else [p["state"] for p in plans]
    trainer = SweepTrainer(cfgs, dirs, engine, states=states)
    return fit_recorded(trainer, dirs, "restart" if fresh else "resume", tensorboard)
