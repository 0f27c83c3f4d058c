"""Timing K runs trained together by :class:`wgan.scale.sweep.SweepTrainer` against one plain run
(``wgan bench PRESET --sweep K``)."""

from __future__ import annotations

import copy
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from wgan.config import Config
from wgan.errors import ConfigError
from wgan.scale.sweep import SweepTrainer
from wgan.scale.sweep_plan import (
    sweep_configs,
)
from wgan.training.trainer import Trainer


def _sync_device(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def benchmark_sweep(
    cfg: Config, k: int, steps: int, repeats: int = 3, engine: str = "vmap"
) -> dict[str, Any]:
    """Seconds per generator iteration of K vmapped runs vs one plain Trainer run of ``cfg``.

    Both are built in this process (run i has seed ``cfg.train.seed + i``), warmed up with two
    iterations, then timed in alternating blocks of ``steps`` iterations, ``repeats`` blocks each
    (``time.perf_counter``; ``torch.cuda.synchronize`` around each block on CUDA). Returns the
    medians ``sweep_s_per_iter`` and ``single_s_per_iter``; ``ratio`` is the median over repeats
    of (sweep block / the single block timed just before it), which is robust to a machine whose
    load drifts during the measurement (K runs cost ``ratio`` single runs: the sweep is K/ratio
    times faster than training them one after another); ``run_iters_per_s`` = K / sweep seconds
    per iteration. Nothing is written outside a temporary directory.
    """
    if k < 1 or steps < 1 or repeats < 1:
        raise ConfigError("benchmark_sweep needs k, steps and repeats >= 1")
    if cfg.train.compile:
        engine = "compile"  # and the single run is compiled too: like against like
    base = copy.deepcopy(cfg)
    base.train.progress = False
    variants = [{"train.seed": cfg.train.seed + i} for i in range(k)]
    cfgs = sweep_configs(base, variants)
    with tempfile.TemporaryDirectory(prefix="wgan-bench-") as tmp:
        sweep = SweepTrainer(cfgs, [Path(tmp) / f"run{i}" for i in range(k)], engine)
        single = Trainer(copy.deepcopy(cfgs[0]), Path(tmp) / "single")
        device = sweep.device

        def timed(step: Callable[[], None]) -> float:
            _sync_device(device)
            start = time.perf_counter()
            for _ in range(steps):
                step()
            _sync_device(device)
            return (time.perf_counter() - start) / steps

        for _ in range(2):
            sweep.train_step()
            single.train_step()
        sweep_times, single_times = [], []
        for _ in range(repeats):
            single_times.append(timed(single.train_step))
            sweep_times.append(timed(sweep.train_step))
    sweep_s = statistics.median(sweep_times)
    return {
        "k": k,
        "steps": steps,
        "repeats": repeats,
        "engine": engine,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "sweep_s_per_iter": sweep_s,
        "single_s_per_iter": statistics.median(single_times),
        "ratio": statistics.median(a / b for a, b in zip(sweep_times, single_times, strict=True)),
        "run_iters_per_s": k / sweep_s,
    }
