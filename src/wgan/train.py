"""The training loop: draw, critic steps, generator step, log, evaluate, figure, checkpoint.

Per generator iteration the loop asks :class:`wgan.step.GANStep` for the iteration's random
tensors and then runs the iteration (``n_critic`` critic updates, one generator update) on the
run's state, eagerly or compiled (``train.compile=true``: the whole iteration as one
``torch.compile(fullgraph=True)`` graph, replayed as a CUDA graph on a GPU). The maths lives in
the objective, the constraint and the step; the loop reads statistics back to the host only
every ``log_every`` steps.

Experiments and tools use the loop through its public methods: :meth:`Trainer.fit` (with a
``hook`` called after every logged step), :meth:`Trainer.advance` (k iterations, returning the
mean training statistics) and :meth:`Trainer.train_critic` (critic updates alone), never the
step's internals.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils._pytree import tree_map

from wgan import optim, runs
from wgan.config import Config, set_value, validate
from wgan.distributed import DistContext
from wgan.errors import TrainingDiverged, WganError
from wgan.run import Run, load_run, read_run
from wgan.step import GANStep
from wgan.tracking import Tracker

__all__ = ["RunningStats", "TrainResult", "Trainer", "load_run", "resume", "train"]

CHECKPOINT_FORMAT = "wgan-checkpoint-2"


class RunningStats:
    """Sums of named scalar tensors on the device; read back to the host only on ``flush``.

    A value may be a 0-d tensor (one run) or a (K,) tensor (K runs of a sweep).
    """

    def __init__(self) -> None:
        self.sums: dict[str, Tensor] = {}
        self.counts: dict[str, int] = {}

    def add(self, prefix: str, terms: dict[str, Tensor]) -> None:
        for key, value in terms.items():
            name = f"{prefix}/{key}"
            value = value.detach().float()
            self.sums[name] = self.sums[name] + value if name in self.sums else value
            self.counts[name] = self.counts.get(name, 0) + 1

    def add_iteration(self, out: dict[str, Any]) -> None:
        """Add one :meth:`GANStep.iteration`'s terms: critic steps as ``d/``, G as ``g/``."""
        for terms in out["d"]:
            self.add("d", terms)
        if "g" in out:
            self.add("g", out["g"])

    def flush_tensor(
        self, average: Callable[[Tensor], Tensor] | None = None
    ) -> tuple[list[str], list[Any]]:
        """Names and their means since the last flush (one host sync); resets the sums."""
        if not self.sums:
            return [], []
        names = list(self.sums)
        stacked = torch.stack([self.sums[n] / self.counts[n] for n in names])
        if average is not None:
            stacked = average(stacked)
        self.sums, self.counts = {}, {}
        return names, stacked.tolist()

    def flush(self, average: Callable[[Tensor], Tensor] | None = None) -> dict[str, float]:
        """Means since the last flush; ``average`` combines them over processes first."""
        names, values = self.flush_tensor(average)
        return dict(zip(names, values, strict=True))

    def flush_runs(self, k: int) -> list[dict[str, float]]:
        """Means since the last flush, one dict per run, for (K,)-valued statistics."""
        names, values = self.flush_tensor()
        if not names:
            return [{} for _ in range(k)]
        return [{n: values[i][r] for i, n in enumerate(names)} for r in range(k)]


@dataclass
class TrainResult:
    """What a finished run leaves behind."""

    run_dir: Path
    step: int
    metrics: dict[str, Any] = field(default_factory=dict)
    figure: Path | None = None
    seconds: float = 0.0


def _as_tensors(tree: Any, device: torch.device) -> Any:
    """Floats of a hyperparameter pytree as 0-d tensors (a compiled step must not see a changing
    Python number: each new value would recompile)."""
    if isinstance(tree, dict):
        return {k: _as_tensors(v, device) for k, v in tree.items()}
    if isinstance(tree, list):
        return torch.tensor(tree, dtype=torch.float32, device=device)
    if isinstance(tree, float):
        return torch.tensor(tree, dtype=torch.float32, device=device)
    return tree


class Trainer(Run):
    """Trains one GAN described by a :class:`Config`, writing into ``run_dir``.

    ``state`` is a checkpoint dict to continue from; ``dataset`` replaces the configured data.
    """

    def __init__(
        self,
        cfg: Config,
        run_dir: str | Path,
        state: dict[str, Any] | None = None,
        dist: DistContext | None = None,
        dataset: Any = None,
    ) -> None:
        super().__init__(cfg, run_dir, dist=dist, dataset=dataset)
        self.compiled = bool(cfg.train.compile)
        sync = self.dist.average_tensors if self.dist.enabled else None
        self.engine = GANStep(
            self.gen,
            self.critic,
            self.loss,
            cfg.train.n_critic,
            cfg.d_optim.name,
            cfg.g_optim.name if self.learned_generator else None,
            functional=self.compiled,
            precision=cfg.train.precision,
            sync=sync,
        )
        self.opt_d = optim.init_state(cfg.d_optim.name, list(self.critic.parameters()))
        self.opt_g = (
            optim.init_state(cfg.g_optim.name, list(self.gen.parameters()))
            if self.learned_generator
            else None
        )
        ema_module = self.ema.module if self.ema is not None else None
        self.train_state = self.engine.state(self.opt_d, self.opt_g, ema_module)
        if state is not None:
            self._load_state(state)
        self._iteration = self.engine.iteration
        self._graphs = self.compiled and self.device.type == "cuda"
        if self.compiled:
            mode = "reduce-overhead" if self.device.type == "cuda" else None
            self._iteration = torch.compile(
                self.engine.iteration, fullgraph=True, dynamic=False, mode=mode
            )
        self.stats = RunningStats()

    # -- one generator iteration -------------------------------------------------------------

    def hyper(self, tensors: bool | None = None) -> dict[str, Any]:
        """This iteration's hyperparameters: learning rates (after the schedule), the penalty's
        lazy-regularisation factors and the EMA decay; as 0-d tensors when ``tensors`` (by
        default when the step is compiled), else Python numbers."""
        cfg = self.cfg
        factor = optim.lr_factor(self.step, cfg.train.steps, cfg.train.lr_decay)
        h: dict[str, Any] = {
            "d": optim.hyper(cfg.d_optim.lr * factor, cfg.d_optim.betas, cfg.d_optim.weight_decay),
            "g": optim.hyper(cfg.g_optim.lr * factor, cfg.g_optim.betas, cfg.g_optim.weight_decay),
            "penalty_due": self.engine.penalty_due(self.step),
            "penalty_weight": cfg.constraint.penalty_weight,
            "penalty_target": cfg.constraint.penalty_target,
            # No clipping is clipping at infinity (a sweep may mix clipped and unclipped runs).
            "clip": cfg.constraint.clip if cfg.constraint.clip > 0 else math.inf,
        }
        if self.ema is not None:
            h["ema_decay"] = self.ema.current_decay()
        if self.compiled if tensors is None else tensors:
            h = _as_tensors(h, self.device)
        return h

    def train_step(self) -> dict[str, Any]:
        """One generator iteration: draw, then ``n_critic`` critic updates and one G update;
        ``step`` advances by one.

        Returns the iteration's loss terms (see :meth:`GANStep.iteration`); they are also added
        to the running statistics.
        """
        draws = self.engine.draw(self.batches, self.rng, self.batch_size)
        if self._graphs:
            torch.compiler.cudagraph_mark_step_begin()  # a new replay of the CUDA graph
        out = self._iteration(self.train_state, draws, self.hyper())
        if self._graphs:  # the graph's outputs are overwritten by its next replay: keep copies
            out = tree_map(torch.clone, out)
        self.stats.add_iteration(out)
        if self.ema is not None:
            self.ema.updates += 1
        self.step += 1
        return out

    def train_critic(self, n: int) -> dict[str, float]:
        """``n`` critic updates alone (G fixed), e.g. to bring a critic near optimality.

        Each update draws one critic step's tensors (:meth:`GANStep.draw_critic`) and carries
        the full penalty (no lazy regularisation); the step counter is unchanged. Returns the
        mean critic statistics of these updates (they do not enter the loop's statistics).
        """
        h = self.hyper()
        stats = RunningStats()
        for _ in range(n):
            x = self.engine.draw_critic(self.batches, self.rng, self.batch_size)
            stats.add("d", self.engine.critic_update(self.train_state, x, h))
        return stats.flush()

    def advance(self, n: int) -> dict[str, float]:
        """``n`` generator iterations with no logging, evaluation or checkpoint; returns the
        mean training statistics since the last read (``{}`` for n = 0)."""
        for _ in range(n):
            self.train_step()
        return self.stats.flush()

    # -- the loop -----------------------------------------------------------------------------

    def fit(
        self,
        tracker: Tracker | None = None,
        hook: Callable[[Trainer, dict[str, float]], None] | None = None,
    ) -> TrainResult:
        """Train up to ``train.steps`` generator iterations; evaluate, plot and checkpoint.

        ``hook(trainer, values)`` is called after each logged step with the logged means.
        """
        cfg = self.cfg.train
        start_time = time.time()
        main = self.dist.is_main
        tracker = tracker if main else None
        bar = None
        if cfg.progress and main:
            from tqdm.auto import tqdm

            bar = tqdm(total=cfg.steps, initial=self.step, desc=self.run_dir.name, leave=True)

        def due(every: int) -> bool:
            return every > 0 and self.step % every == 0

        metrics: dict[str, Any] = {}
        figure: Path | None = None
        while self.step < cfg.steps:
            # Train.
            self.train_step()
            if bar is not None:
                bar.update(1)
            last = self.step == cfg.steps
            # Log (the only host sync), and stop on non-finite values before any save.
            if due(cfg.log_every) or due(cfg.checkpoint_every) or last:
                values = self._log(tracker)
                if bar is not None and values:
                    bar.set_postfix(_short(values), refresh=False)
                if hook is not None:
                    hook(self, values)
            # Evaluate, plot, checkpoint.
            if not main:
                continue  # evaluation, figures and checkpoints happen on rank 0
            if due(cfg.eval_every) or last:
                metrics = self.evaluate()
                if tracker is not None:
                    tracker.log(self.step, metrics, kind="eval")
            if due(cfg.figure_every) or last:
                figure = self.figure(tracker)
            if due(cfg.checkpoint_every) or last:
                self.save()
        if bar is not None:
            bar.close()
        return TrainResult(self.run_dir, self.step, metrics, figure, time.time() - start_time)

    def _log(self, tracker: Tracker | None) -> dict[str, float]:
        values = self.stats.flush(self.dist.average if self.dist.enabled else None)
        if not values:
            return values
        if "d/grad_norm" not in values and self.dist.is_main:
            values["d/grad_norm_interp"] = self.interpolate_grad_norm()
        bad = [k for k, v in values.items() if not math.isfinite(v)]
        if bad:
            self.diverged(tracker, bad)
        if tracker is not None:
            tracker.log(self.step, values)
        return values

    def diverged(self, tracker: Tracker | None, bad: list[str]) -> None:
        """Record the divergence and raise :class:`TrainingDiverged` (the checkpoint is kept)."""
        if tracker is not None:
            tracker.log(self.step, {"event": "diverged", "non_finite": bad}, kind="error")
        ckpt = self.run_dir / runs.CHECKPOINT
        kept = (
            f"the last checkpoint {ckpt} is kept" if ckpt.exists() else "no checkpoint was written"
        )
        raise TrainingDiverged(
            f"training diverged: non-finite {', '.join(sorted(bad))} by step {self.step}; "
            f"{kept}. Try a lower learning rate, a stronger constraint or another objective."
        )

    # -- checkpoints ----------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Everything needed to resume exactly: models, optimisers, step, RNG states."""
        scalers = {k: self.train_state[k] for k in ("scale_d", "scale_g") if k in self.train_state}
        return {
            "format": CHECKPOINT_FORMAT,
            "step": self.step,
            "config": self.cfg.to_dict(),
            "generator": self.gen.state_dict(),
            "critic": self.critic.state_dict(),
            "opt_d": optim.state_to_cpu(self.opt_d),
            "opt_g": optim.state_to_cpu(self.opt_g) if self.opt_g is not None else {},
            "rng": self.rng.get_state(),
            "torch_rng": torch.get_rng_state(),
            "train_set": self.train_set,
            "generator_ema": self.ema.state_dict() if self.ema is not None else None,
            "scalers": {k: {n: t.cpu() for n, t in v.items()} for k, v in scalers.items()},
        }

    def save(self) -> Path:
        path = self.run_dir / runs.CHECKPOINT
        runs.save_checkpoint(path, self.state())
        return path

    def _load_state(self, state: dict[str, Any]) -> None:
        if state.get("format") != CHECKPOINT_FORMAT:
            raise WganError(
                f"checkpoint format {state.get('format')!r} is not {CHECKPOINT_FORMAT!r} "
                "(written by another version of wgan)"
            )
        self.load_models(state)
        optim.load_state_(self.cfg.d_optim.name, self.opt_d, state["opt_d"])
        if self.opt_g is not None:
            optim.load_state_(self.cfg.g_optim.name, self.opt_g, state["opt_g"])
        if self.dist.is_main:
            self.rng.set_state(state["rng"])
        else:  # the saved stream is rank 0's; other ranks start a fresh one at this step
            self.rng.manual_seed(self.dist.seed(self.cfg.train.seed) + int(state["step"]))
        torch.set_rng_state(state["torch_rng"])
        for key, saved in (state.get("scalers") or {}).items():
            if key in self.train_state:
                for name, value in saved.items():
                    self.train_state[key][name].copy_(value)


def _short(values: dict[str, float]) -> dict[str, str]:
    """The progress bar's postfix: critic loss, estimate, penalty and generator loss."""
    labels = {
        "d/loss": "d_loss",
        "d/estimate": "estimate",
        "d/penalty": "penalty",
        "g/loss": "g_loss",
    }
    return {labels[k]: f"{v:.3g}" for k, v in values.items() if k in labels}


# ----------------------------------------------------------------------------------------------
# Entry points
# ----------------------------------------------------------------------------------------------


def _fit(trainer: Trainer, tensorboard: bool, purge_step: int | None = None) -> TrainResult:
    """Run ``trainer.fit`` with a tracker on rank 0 (none elsewhere)."""
    if not trainer.dist.is_main:
        return trainer.fit(None)
    tracker = Tracker(trainer.run_dir, tensorboard=tensorboard, purge_step=purge_step)
    if purge_step is not None:
        tracker.jsonl.truncate_after(trainer.step)
    try:
        return trainer.fit(tracker)
    finally:
        tracker.close()


def train(
    cfg: Config,
    run_dir: str | Path | None = None,
    tensorboard: bool = True,
    dist: DistContext | None = None,
) -> TrainResult:
    """Train a new run of ``cfg`` in a new numbered run directory (or ``run_dir``).

    Under ``torchrun`` (WORLD_SIZE > 1) this process joins a data-parallel job: see
    :mod:`wgan.distributed`. Rank 0 chooses the run directory and writes everything in it.
    """
    dist = dist or DistContext.from_env()
    if dist.is_main:
        if run_dir is None:
            run_dir = runs.new_run_dir(cfg.out_dir, cfg.name)
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        runs.write_config(run_dir, cfg.to_dict())
    run_dir = Path(dist.broadcast_object(str(run_dir)))
    return _fit(Trainer(cfg, run_dir, dist=dist), tensorboard)


def resume(
    run_dir: str | Path,
    overrides: dict[str, Any] | None = None,
    tensorboard: bool = True,
    dist: DistContext | None = None,
) -> TrainResult:
    """Continue the run in ``run_dir`` from its checkpoint (``overrides``: e.g. more steps).

    The overridden config is validated like a new run's before anything is written. The number
    of processes may differ from the run's: the models, optimisers and step are restored on
    every process; rank 0 continues the saved random stream, other ranks start fresh ones (so a
    resume is bit-exact only for a single process).
    """
    dist = dist or DistContext.from_env()
    run_dir, state, cfg = read_run(run_dir)
    for key, value in (overrides or {}).items():
        set_value(cfg, key, value)
    validate(cfg)
    trainer = Trainer(cfg, run_dir, state=state, dist=dist)
    dist.barrier()  # every process has read the checkpoint before rank 0 rewrites anything
    if dist.is_main:
        runs.write_config(run_dir, cfg.to_dict())
    return _fit(trainer, tensorboard, purge_step=trainer.step + 1)
