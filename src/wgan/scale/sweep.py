"""Many GANs at once: K independent runs trained in one process, vectorised over runs.

A sweep trains K copies of one configuration that differ only in numbers that change neither
shapes nor code paths (seeds, learning rates, Adam betas, weight decay, the penalty's weight and
target, the clipping value, the learning-rate decay). It is the single-run training step,
:meth:`wgan.gan.step.GANStep.iteration`, under :func:`torch.func.vmap`: the runs' parameters,
buffers, optimiser states and EMAs are stacked along a leading run dimension, so every operation
of an iteration runs once for all K runs, and every network, objective, constraint, conditioning
and option a single run supports is supported here (DCGAN/ResNet image nets, conditional GANs,
batch norm, EMA, ...), as long as shapes match across runs.

* Per-run hyperparameters are (K,) tensors mapped over with the runs (:func:`stack_hyper`);
  shared ones stay Python numbers, constants of the step. The optimiser update
  (:mod:`wgan.gan.optim`) is the single-run one.
* Random numbers are not batched: every run owns the ``torch.Generator`` and data stream its
  own :class:`wgan.training.trainer.Trainer` would own, and :meth:`GANStep.draw` draws from them,
  run by run; the draws are stacked. Model initialisation is the Trainer's own (each run builds a
  Trainer "shell", which seeds torch and builds the models). A sweep run therefore equals the
  separate run of its config up to float rounding (batched products round differently from single
  ones; ``tests/scale/test_sweep.py`` states the tolerance), and its run directory (``config.yaml``,
  ``metrics.jsonl``, ``checkpoint.pt`` in the Trainer's format) works with ``wgan eval``, ``wgan
  sample`` and ``wgan train --resume``.
* ``engine="compile"`` compiles the vmapped iteration with ``torch.compile(fullgraph=True)``.

Divergence: a run whose logged statistics are not finite gets the Trainer's error record in its
``metrics.jsonl``, keeps its last checkpoint, and is frozen (learning rate 0, state replaced by a
healthy run's so that its slice stays finite); the other runs go on. Its result has
``diverged`` set.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils._pytree import tree_flatten, tree_map, tree_unflatten

from wgan.config import Config
from wgan.errors import ConfigError, Interrupted, WganError
from wgan.gan.draws import Draws, stack_draws
from wgan.gan.step import GANStep
from wgan.scale.sweep_plan import (
    MAY_DIFFER,
    expand_variants,
    parse_seeds,
    parse_vary,
    run_label,
    sweep_configs,
)
from wgan.store import checkpoints, provenance, rundirs
from wgan.store.tracking import Tracker, json_safe
from wgan.training import interrupt
from wgan.training.cadence import Cadence
from wgan.training.stats import RunningStats, TrainResult, learning_rates
from wgan.training.threads import ThreadGovernor
from wgan.training.trainer import Trainer

__all__ = [
    "ENGINES",
    "MAY_DIFFER",
    "SweepRunResult",
    "SweepTrainer",
    "expand_variants",
    "fit_recorded",
    "parse_seeds",
    "parse_vary",
    "result_record",
    "run_sweep",
    "stack_hyper",
    "sweep_configs",
]

ENGINES = ("vmap", "compile")

# ----------------------------------------------------------------------------------------------
# Stacking: K runs' states as one pytree with a leading run dimension
# ----------------------------------------------------------------------------------------------


def _stack(trees: list[Any]) -> Any:
    """The K trees' tensors stacked along a new leading dim (K, ...) (fresh, no autograd)."""
    with torch.no_grad():
        return tree_map(lambda *xs: torch.stack([x.detach() for x in xs]), *trees)


def _copy_run(dst: Any, src: Any, k: int) -> None:
    """Copy run ``k``'s slice of the stacked tree ``src`` into the per-run tree ``dst``."""
    with torch.no_grad():
        tree_map(lambda d, s: d.copy_(s[k]), dst, src)


def _copy_within(tree: Any, dst: int, src: int) -> None:
    """Replace run ``dst``'s slice of a stacked tree by run ``src``'s."""
    with torch.no_grad():
        tree_map(lambda t: t[dst].copy_(t[src]), tree)


def stack_hyper(trees: list[Any], device: torch.device) -> tuple[Any, Any]:
    """The K runs' hyperparameter trees as one tree and its ``vmap`` in_dims.

    A value shared by all runs stays a Python number (in_dims None: a constant of the step); a
    value that differs (a learning rate, a penalty weight, ...) becomes a (K,) float32 tensor
    (in_dims 0: inside ``vmap`` each run sees its own 0-d value). This is the sweep's "stacked
    optimiser": the update of :mod:`wgan.gan.optim` never sees the stacking.
    """
    flat = [tree_flatten(t) for t in trees]
    spec = flat[0][1]
    leaves, dims = [], []
    for values in zip(*(f[0] for f in flat), strict=True):
        if all(v == values[0] for v in values):
            leaves.append(values[0])
            dims.append(None)
        else:
            leaves.append(torch.tensor(values, dtype=torch.float32, device=device))
            dims.append(0)
    return tree_unflatten(leaves, spec), tree_unflatten(dims, spec)


# ----------------------------------------------------------------------------------------------
# The sweep trainer
# ----------------------------------------------------------------------------------------------


@dataclass
class SweepRunResult(TrainResult):
    """A finished sweep run: the Trainer's result plus its overrides and divergence.

    ``seconds`` is the wall-clock time of the whole sweep (the runs trained together);
    ``train_seconds`` the part of it spent training and logging (without evaluation, figures and
    checkpoints).
    """

    overrides: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    diverged: str | None = None
    train_seconds: float = 0.0


class SweepTrainer:
    """Trains the K runs of ``cfgs`` (see :func:`sweep_configs`) together, one dir each.

    Every run gets a :class:`wgan.training.trainer.Trainer` "shell" built exactly as a separate run
    would be (seeded initialisation, its torch.Generator, its batches, its optimiser state); the
    shells draw each run's random tensors with :meth:`wgan.gan.step.GANStep.draw` and hold the
    unstacked state for evaluation, figures and checkpoints. Training runs the one step,
    :meth:`wgan.gan.step.GANStep.iteration`, under :func:`torch.func.vmap` over the stacked states
    (``engine="vmap"``), or that vmapped iteration compiled (``engine="compile"``).

    ``states``: checkpoints of one step to continue from. As in ``Trainer.fit``, ``fit`` saves
    every ``train.checkpoint_minutes`` too, and on SIGINT/SIGTERM saves, then raises Interrupted.
    """

    def __init__(
        self, cfgs: list[Config], run_dirs: list[Path], engine: str = "vmap", states: Any = None
    ) -> None:
        if engine not in ENGINES:
            raise ConfigError(f"unknown sweep engine '{engine}' (choose {', '.join(ENGINES)})")
        steps = {int(s["step"]) for s in states or [{"step": 0}]}
        if len(cfgs) != len(run_dirs) or len(states or cfgs) != len(cfgs) or len(steps) != 1:
            raise WganError("sweep: one run directory per config (and checkpoints of one step)")
        self.cfgs, self.mode, self.k = cfgs, engine, len(cfgs)
        self.cfg = cfgs[0]
        self.threads = ThreadGovernor(self.cfg.train.threads)  # CPU threads while fitting
        self.shells: list[Trainer] = []
        self.torch_rng: list[Tensor] = []
        for cfg, run_dir, state in zip(cfgs, run_dirs, states or [None] * self.k, strict=True):
            # seeds torch, builds the models (and loads the checkpoint's state, if any)
            self.shells.append(Trainer(cfg, Path(run_dir), state=state))
            self.shells[-1].label = Path(run_dir).name  # figure titles name the run
            self.torch_rng.append(torch.get_rng_state())  # what this run's Trainer would save
        first = self.shells[0]
        self.device = first.device
        self.gan_step = GANStep.for_run(first, functional=True)
        self.state = _stack([s.train_state for s in self.shells])
        _, hyper_dims = stack_hyper([s.hyper(tensors=False) for s in self.shells], self.device)
        self.hyper_dims = hyper_dims
        self.step = int(states[0]["step"]) if states else 0  # iterations done (Trainer.step)
        self.saved_step = self.step if states else -1  # the step of the last checkpoints
        self.stats = RunningStats()
        self.active = [True] * self.k
        self.diverged: list[str | None] = [None] * self.k
        self.stopped_at: list[int | None] = [None] * self.k  # step at which a run diverged
        self.outside_seconds = 0.0  # time fit spent evaluating, plotting, checkpointing
        self._mapped: dict[Any, Callable] = {}

    # -- one generator iteration of every run ------------------------------------------------

    def hyper(self) -> tuple[Any, Any]:
        """Every run's hyperparameters (its Trainer's, at this step), stacked; a diverged run
        gets learning rate 0."""
        trees = []
        for k, shell in enumerate(self.shells):
            shell.step = self.step
            h = shell.hyper(tensors=False)
            if not self.active[k]:
                h["d"]["lr"] = h["g"]["lr"] = 0.0
            trees.append(h)
        return stack_hyper(trees, self.device)

    def _iteration(self, dims: Any, draw_dims: Any) -> Callable:
        key = repr((dims, draw_dims))
        if key not in self._mapped:
            fn = torch.func.vmap(self.gan_step.iteration, in_dims=(0, draw_dims, dims))
            if self.mode == "compile":
                fn = torch.compile(fn, fullgraph=True, dynamic=False)
            self._mapped[key] = fn
        return self._mapped[key]

    def draw(self) -> Draws:
        """Each run's draws from its own generator and data stream, stacked: (K, ...)."""
        per_run = [s.gan_step.draw(s.batches, s.rng, s.batch_size) for s in self.shells]
        generator = (
            None if per_run[0].generator is None else stack_draws([d.generator for d in per_run])
        )
        return Draws(stack_draws([d.critic for d in per_run]), generator)

    def train_step(self) -> dict[str, Any]:
        """One generator iteration of every run: n_critic critic steps, one generator step."""
        draws = self.draw()
        hyper, dims = self.hyper()
        if self.mode == "compile":  # numbers as 0-d tensors: a new value must not recompile
            hyper = tree_map(
                lambda v: (
                    torch.tensor(float(v), device=self.device) if isinstance(v, (int, float)) else v
                ),
                hyper,
            )
        # Absent parts (None) of the draws are mapped over by no axis (compile wants it said).
        draw_dims = tree_map(lambda v: None if v is None else 0, draws)
        out = self._iteration(dims, draw_dims)(self.state, draws, hyper)
        self.stats.add_iteration(out)
        for shell in self.shells:
            if shell.ema is not None:
                shell.ema.updates += 1
        self.step += 1
        return out

    # -- the loop ----------------------------------------------------------------------------

    def fit(self, trackers: list[Tracker | None] | None = None) -> list[SweepRunResult]:
        """Train up to ``train.steps`` iterations; log, evaluate, plot and checkpoint per run.

        CPU threads as in :meth:`wgan.training.trainer.Trainer.fit` (``train.threads``, shared by
        the runs, or as many as other processes leave free)."""
        with self.threads, interrupt.deferred():
            return self._fit_loop(trackers)

    def _fit_loop(self, trackers: list[Tracker | None] | None) -> list[SweepRunResult]:
        cfg = self.cfg.train
        trackers = trackers or [None] * self.k
        start = time.time()
        bar = None
        if cfg.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=cfg.steps, initial=self.step, desc=f"sweep of {self.k}", leave=True)

        metrics: list[dict[str, Any]] = [{} for _ in range(self.k)]
        figures: list[Path | None] = [None] * self.k
        # The single-run loop's schedule and clock (Trainer.fit), shared by the K runs.
        cadence = self.cadence = Cadence(cfg)
        cadence.start(self.step)
        while self.step < cfg.steps and any(self.active):
            self._boundary(trackers)  # a signal, or a checkpoint every few minutes
            self.train_step()
            self.threads.tick()
            if bar is not None:
                bar.update(1)
            due = cadence.due(self.step)
            if due.log:
                self._log(trackers)
            if not due.check:
                continue
            for k in range(self.k):  # weights can blow up between log points
                if self.active[k]:
                    bad = self.sync(k).non_finite_parts()
                    if bad:
                        self._freeze(k, bad, trackers[k])
            live = [k for k in range(self.k) if self.active[k]]
            with cadence.outside():  # evaluation, figures and checkpoints: not training
                if due.evaluate:
                    for k in live:
                        self.sync(k)
                        metrics[k] = self.shells[k].evaluate()
                        if trackers[k] is not None:
                            trackers[k].log(self.step, metrics[k], kind="eval")
                if due.figure:
                    for k in live:
                        self.sync(k)
                        figures[k] = self.shells[k].figure(trackers[k])
                if due.save:
                    self._save_live()
        if bar is not None:
            bar.close()
        seconds = time.time() - start
        self.outside_seconds = cadence.outside_seconds
        train_seconds = max(0.0, seconds - self.outside_seconds)
        return [
            SweepRunResult(
                self.shells[k].run_dir,
                self.stopped_at[k] if self.stopped_at[k] is not None else self.step,
                metrics[k],
                figures[k],
                seconds,
                seed=self.cfgs[k].train.seed,
                diverged=self.diverged[k],
                train_seconds=train_seconds,
            )
            for k in range(self.k)
        ]

    def _save_live(self) -> None:
        for k in range(self.k):
            if self.active[k]:
                self.save(k)
        self.saved_step = self.step
        self.cadence.saved()

    def _boundary(self, trackers: list[Tracker | None]) -> None:
        """Between two iterations: the live runs' checkpoints on a signal (then
        :class:`Interrupted`) or every ``train.checkpoint_minutes`` (a save only)."""
        signum = interrupt.take()
        if signum is None and not (self.saved_step < self.step and self.cadence.checkpoint_due()):
            return
        if self.saved_step < self.step:
            with self.cadence.outside():
                for k in range(self.k):
                    bad = self.sync(k).non_finite_parts() if self.active[k] else []
                    if bad:
                        self._freeze(k, bad, trackers[k])
                self._save_live()
        if signum is not None:
            kept = f"the checkpoints of its {sum(self.active)} live runs hold step {self.step}"
            raise Interrupted(signum, self.step, self.shells[0].run_dir.parent, kept)

    def _log(self, trackers: list[Tracker | None]) -> None:
        per_run = self.stats.flush_runs(self.k)
        # wall_s and time/step_s as in Trainer._timing: one clock, the runs share each step
        timing = self.cadence.timing(self.step)
        for k, values in enumerate(per_run):
            if not self.active[k] or not values:
                continue
            if "d/grad_norm" not in values:
                self.sync(k)
                values["d/grad_norm_interp"] = self.shells[k].interpolate_grad_norm()
            bad = [key for key, v in values.items() if not math.isfinite(v)]
            if bad:
                self._freeze(k, bad, trackers[k])
            elif trackers[k] is not None:  # with the run's own learning rates (lr_decay)
                shell = self.shells[k]
                rates = learning_rates(self.cfgs[k], self.step, shell.learned_generator)
                trackers[k].log(self.step, {**values, **timing, **rates})

    def _freeze(self, k: int, bad: list[str], tracker: Tracker | None = None) -> None:
        """Stop run ``k``: error record, message, no more saves, lr 0, the state of a healthy
        run (so its slice stays finite)."""
        if tracker is not None:
            tracker.log(self.step, {"event": "diverged", "non_finite": bad}, kind="error")
        ckpt = self.shells[k].run_dir / rundirs.CHECKPOINT
        kept = (
            f"the last checkpoint {ckpt} is kept" if ckpt.exists() else "no checkpoint was written"
        )
        self.diverged[k] = (
            f"training diverged: non-finite {', '.join(sorted(bad))} by step {self.step}; {kept}"
        )
        self.active[k] = False
        self.stopped_at[k] = self.step
        healthy = next((i for i in range(self.k) if self.active[i]), None)
        if healthy is not None:
            _copy_within(self.state, k, healthy)

    # -- unstacking: evaluation and checkpoints ---------------------------------------------

    def sync(self, k: int) -> Trainer:
        """Run ``k``'s Trainer shell with its current state (models, optimisers, EMA)."""
        shell = self.shells[k]
        _copy_run(shell.train_state, self.state, k)
        shell.step = self.step
        return shell

    def state_dict(self, k: int) -> dict[str, Any]:
        """Run ``k``'s checkpoint, in exactly the format of
        :meth:`wgan.training.trainer.Trainer.state`."""
        state = self.sync(k).state()
        state["torch_rng"] = self.torch_rng[k]
        return state

    def save(self, k: int) -> Path:
        """Run ``k``'s checkpoint (``fit`` checks the state is finite first)."""
        path = self.shells[k].run_dir / rundirs.CHECKPOINT
        checkpoints.save_checkpoint(path, self.state_dict(k))
        self.shells[k]._write_config_file()  # config.yaml describes it (a resume's overrides)
        return path


# ----------------------------------------------------------------------------------------------
# Entry points
# ----------------------------------------------------------------------------------------------


def run_sweep(
    base: Config,
    variants: list[dict[str, Any]],
    out_dir: str | Path | None = None,
    tensorboard: bool = True,
    engine: str = "vmap",
) -> list[SweepRunResult]:
    """Train one run per variant of ``base``, together, each in its own run directory.

    The runs live in ``<out_dir>/<NNNNN>-<name>-sweep/<NNNNN>-<label>/`` (``out_dir`` defaults to
    ``base.out_dir``), next to ``sweep.json`` (the variants and the final metrics). Each run
    directory is a regular run (config.yaml, metrics.jsonl, checkpoint.pt in the Trainer's
    format, figures/, and with ``tensorboard`` its own ``tb/``, so that TensorBoard pointed at
    the sweep's folder overlays the runs). Returns one :class:`SweepRunResult` per variant, in
    order; a run that diverged has ``diverged`` set (see the module docstring) and is not
    raised as an error.
    """
    cfgs = sweep_configs(base, variants)
    if engine not in ENGINES:  # before any folder is made
        raise ConfigError(f"unknown sweep engine {engine!r} (choose {', '.join(ENGINES)})")
    if base.train.compile:
        engine = "compile"  # train.compile=true compiles the vmapped iteration
    root = Path(out_dir) if out_dir is not None else Path(base.out_dir)
    sweep_dir = rundirs.new_run_dir(root, f"{base.name}-sweep")
    run_dirs = [rundirs.new_run_dir(sweep_dir, run_label(v)) for v in variants]
    for cfg, run_dir in zip(cfgs, run_dirs, strict=True):
        cfg.out_dir = str(root)
        rundirs.write_config(run_dir, cfg.to_dict())
    summary: dict[str, Any] = {
        "engine": engine,
        "runs": [
            {"run_dir": str(d), "overrides": v} for d, v in zip(run_dirs, variants, strict=True)
        ],
    }
    (sweep_dir / "sweep.json").write_text(json.dumps(json_safe(summary), indent=1))
    trainer = SweepTrainer(cfgs, run_dirs, engine)
    results = fit_recorded(trainer, run_dirs, "sweep", tensorboard)
    for result, variant in zip(results, variants, strict=True):
        result.overrides = dict(variant)
    summary["seconds"] = results[0].seconds if results else 0.0
    summary["train_seconds"] = results[0].train_seconds if results else 0.0
    summary["steps"] = trainer.step
    summary["runs"] = [result_record(r) for r in results]
    (sweep_dir / "sweep.json").write_text(json.dumps(json_safe(summary), indent=1))
    return results


def result_record(r: SweepRunResult) -> dict[str, Any]:
    """One run of a sweep as a JSON record (``sweep.json``, ``wgan sweep --json``)."""
    return {
        "run_dir": str(r.run_dir),
        "seed": r.seed,
        "overrides": r.overrides,
        "step": r.step,
        "seconds": r.seconds,
        "train_seconds": r.train_seconds,
        "diverged": r.diverged,
        "metrics": r.metrics,
    }


def fit_recorded(
    trainer: SweepTrainer, run_dirs: list[Path], kind: str, tensorboard: bool = True
) -> list[TrainResult]:
    """``trainer.fit`` with each run's metrics tracker and a ``provenance.json`` session of
    ``kind`` ("sweep", "study", "resume") per run directory, closed whatever happens. Runs
    that continue from checkpoints (step > 0) drop what was logged after them."""
    purge = trainer.step + 1 if trainer.step else None
    trackers: list[Any] = [Tracker(d, tensorboard=tensorboard, purge_step=purge) for d in run_dirs]
    for tracker in trackers if trainer.step else []:
        tracker.jsonl.truncate_after(trainer.step)
    try:
        with contextlib.ExitStack() as sessions:
            entries = [
                sessions.enter_context(provenance.session(d, kind, trainer.device, trainer.step))
                for d in run_dirs
            ]
            try:
                results = trainer.fit(trackers)
            finally:  # a run's session ends where it stopped (diverged, interrupted, done)
                for entry, stopped in zip(entries, trainer.stopped_at, strict=True):
                    entry["end_step"] = trainer.step if stopped is None else stopped
                    entry["threads"] = trainer.threads.record()
    finally:
        for tracker in trackers:
            if tracker is not None:
                tracker.close()
    return results
