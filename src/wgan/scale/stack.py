"""Stacked studies: the runs of a study that share shapes, trained together by the sweep's
vectorised step (``wgan study --stack``, ``run_study(..., stack=True)``).

:func:`stack_groups` puts the fresh runs of a study (no checkpoint yet) whose configs differ
only in keys a sweep may vary (:data:`wgan.scale.sweep_plan.MAY_DIFFER`: seeds, learning rates,
betas, weight decay, penalty weight and target, clipping value, learning-rate decay) into one
*group task*; :func:`run_stacked` trains a group in one process with
:class:`wgan.scale.sweep.SweepTrainer` (one :meth:`wgan.gan.step.GANStep.iteration` under
``torch.func.vmap`` for all its runs), each run in its own study run directory, as a regular
run (``config.yaml``, ``metrics.jsonl``, ``tb/``, ``checkpoint.pt`` in the Trainer's format).

A stacked run equals the separate run of its config up to float rounding (batched products round
differently; see :mod:`wgan.scale.sweep`), not bit for bit, which is why stacking is asked for,
never implied. Runs with a checkpoint (to resume), fp16 or channels-last runs, and runs alone in
their group are carried out one by one as usual. A run that diverges inside a group is frozen and
recorded as diverged; the others go on.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import Any

from wgan.errors import WganError
from wgan.scale.sweep_plan import MAY_DIFFER
from wgan.store import rundirs
from wgan.training import interrupt

__all__ = ["run_stacked", "stack_groups"]


def _flat(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _shape_key(config: dict[str, Any]) -> str | None:
    """What runs of one group must share (None: this run is never stacked)."""
    train = config["train"]
    if train["precision"] == "fp16" or train["channels_last"]:
        return None  # options the vectorised step does not take
    flat = {k: v for k, v in _flat(config).items() if k not in MAY_DIFFER}
    return json.dumps(flat, sort_keys=True, default=str)


def stack_groups(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``tasks`` with the fresh runs that can share one vectorised step replaced by group
    tasks ``{"name": "stack-FIRST", "group": [task, ...], "threads": ...}`` (at the place of
    their first run); the others are left as they are."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for task in tasks:
        fresh = not (Path(task["run_dir"]) / rundirs.CHECKPOINT).exists()
        key = _shape_key(task["config"]) if fresh else None
        if key is not None:
            groups.setdefault(key, []).append(task)
    out, placed = [], set()
    for task in tasks:
        key = _shape_key(task["config"])
        group = groups.get(key) if key is not None else None
        if group is None or len(group) < 2 or task not in group:
            out.append(task)
        elif key not in placed:
            placed.add(key)
            out.append(
                {
                    "name": f"stack-{group[0]['name']}",
                    "group": group,
                    "threads": group[0].get("threads"),
                }
            )
    return out


def _prepare(run_dir: Path) -> None:
    """A fresh run directory: created, or emptied if a run was killed before its first
    checkpoint (the caller holds its lock)."""
    if (run_dir / rundirs.CHECKPOINT).exists():
        raise WganError(f"{run_dir} has a checkpoint; it is resumed on its own, not stacked")
    rundirs.empty_run_dir(run_dir)


def run_stacked(task: dict[str, Any]) -> list[dict[str, Any]]:
    """Train the runs of a group task together in this process; one record per run (as
    :func:`wgan.scale.launchers.run_one`'s). An error that stops the group fails all its
    runs; a divergence fails only its run."""
    import torch

    from wgan.config import from_dict
    from wgan.scale.sweep import SweepTrainer, fit_recorded
    from wgan.store.tracking import json_safe

    members = task["group"]
    start = time.time()
    records = [
        {
            "name": t["name"],
            "run_dir": str(t["run_dir"]),
            "status": "failed",
            "step": 0,
            "metrics": {},
            "error": None,
            "diverged": False,
            "stacked": len(members),
        }
        for t in members
    ]
    try:
        if task.get("threads"):
            torch.set_num_threads(int(task["threads"]))
        cfgs = [from_dict(t["config"]) for t in members]
        run_dirs = [Path(t["run_dir"]) for t in members]
        engine = "compile" if cfgs[0].train.compile else "vmap"
        with contextlib.ExitStack() as held:
            for run_dir in run_dirs:
                rundirs.make_dirs(run_dir, "run directory")
                held.enter_context(rundirs.lock_run(run_dir))
                _prepare(run_dir)
            for cfg, run_dir in zip(cfgs, run_dirs, strict=True):
                rundirs.write_config(run_dir, cfg.to_dict())
            trainer = SweepTrainer(cfgs, run_dirs, engine)
            results = fit_recorded(trainer, run_dirs, "study")
        for record, result in zip(records, results, strict=True):
            record.update(step=result.step, metrics=result.metrics)
            if result.diverged:
                record.update(error=result.diverged, diverged=True)
            else:
                record["status"] = "done"
    except WganError as err:
        for record in records:
            record["error"] = " ".join(str(err).split())
    except KeyboardInterrupt as err:  # Ctrl-C, SIGTERM: each run's checkpoint is of the step
        for record in records:
            record["error"] = interrupt.study_run_error(err)
    except Exception as err:  # a bug must not take the other groups of the study down
        for record in records:
            record["error"] = " ".join(f"{type(err).__name__}: {err}".split())
    for record in records:
        record["seconds"] = time.time() - start
    return json_safe(records)
