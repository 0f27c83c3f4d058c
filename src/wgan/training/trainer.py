"""The training loop: draw, critic steps, generator step, log, evaluate, figure, checkpoint.

Per generator iteration the loop asks :class:`wgan.gan.step.GANStep` for the iteration's random
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
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils._pytree import tree_map

from wgan.config import (
    Config,
    read_yaml_mapping,
)
from wgan.errors import Interrupted, TrainingDiverged, WganError
from wgan.gan import optim
from wgan.gan.step import GANStep
from wgan.gan.tricks import instance_noise_std
from wgan.store import checkpoints, rundirs
from wgan.store.tracking import Tracker
from wgan.training import interrupt
from wgan.training.attribute_sampling import save_attribute_law
from wgan.training.cadence import Cadence
from wgan.training.compiler import require_compiler
from wgan.training.distributed import DistContext
from wgan.training.run import NonFiniteSamples, Run
from wgan.training.stats import RunningStats, TrainResult, as_tensors, learning_rates, short_stats
from wgan.training.threads import ThreadGovernor

CHECKPOINT_FORMAT = "wgan-checkpoint-2"


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
        if self.dist.is_main:  # the attribute law `wgan sample --attrs` draws from, in the run
            save_attribute_law(self)
        self.compiled = bool(cfg.train.compile)
        # CPU threads while fitting: train.threads, or as many as other processes leave free.
        self.threads = ThreadGovernor(cfg.train.threads)
        sync = self.dist.average_tensors if self.dist.enabled else None
        self.gan_step = GANStep.for_run(self, functional=self.compiled, sync=sync)
        self.opt_d = optim.init_state(cfg.d_optim.name, list(self.critic.parameters()))
        self.opt_g = (
            optim.init_state(cfg.g_optim.name, list(self.gen.parameters()))
            if self.learned_generator
            else None
        )
        ema_module = self.ema.module if self.ema is not None else None
        self.train_state = self.gan_step.state(self.opt_d, self.opt_g, ema_module)
        self.checkpoint_step: int | None = None  # the step of the last checkpoint written/read
        if state is not None:
            self._load_state(state)
        self._iteration = self.gan_step.iteration
        self._graphs = self.compiled and self.device.type == "cuda"
        if self.compiled:
            require_compiler()  # one line now instead of inductor's traceback at the first step
            mode = "reduce-overhead" if self.device.type == "cuda" else None
            self._iteration = torch.compile(
                self.gan_step.iteration, fullgraph=True, dynamic=False, mode=mode
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
            "penalty_due": self.gan_step.penalty_due(self.step),
            "penalty_weight": cfg.constraint.penalty_weight,
            "penalty_target": cfg.constraint.penalty_target,
            # No clipping is clipping at infinity (a sweep may mix clipped and unclipped runs).
            "clip": cfg.constraint.clip if cfg.constraint.clip > 0 else math.inf,
        }
        if self.ema is not None:
            h["ema_decay"] = self.ema.current_decay()
        t = cfg.tricks
        if t.instance_noise > 0:  # sigma_t, annealed to 0 (Sønderby et al. 2016)
            anneal = t.instance_noise_steps or cfg.train.steps
            h["instance_noise"] = instance_noise_std(
                self.step, t.instance_noise, anneal, t.instance_noise_schedule
            )
        if self.compiled if tensors is None else tensors:
            h = as_tensors(h, self.device)
        return h

    def train_step(self) -> dict[str, Any]:
        """One generator iteration: draw, then ``n_critic`` critic updates and one G update;
        ``step`` advances by one.

        Returns the iteration's loss terms (see :meth:`GANStep.iteration`); they are also added
        to the running statistics.
        """
        draws = self.gan_step.draw(self.batches, self.rng, self.batch_size)
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
            x = self.gan_step.draw_critic(self.batches, self.rng, self.batch_size)
            stats.add("d", self.gan_step.critic_update(self.train_state, x, h))
        return stats.flush()

    def advance(self, n: int) -> dict[str, float]:
        """``n`` generator iterations with no logging, evaluation or checkpoint; returns the
        mean training statistics since the last read (``{}`` for n = 0). A stop request left
        by an earlier :meth:`fit` (:mod:`wgan.training.interrupt`) raises
        :class:`Interrupted` first, without a checkpoint."""
        if interrupt.requested() is not None:
            raise Interrupted(interrupt.take(), step=self.step, run_dir=self.run_dir)
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

        ``hook(trainer, values)`` is called after each logged step with the logged means. Runs with
        ``train.threads`` torch CPU threads, or with 0 as many as other processes leave free
        (:class:`wgan.training.threads.ThreadGovernor`); torch's count is restored afterwards.

        Between two iterations the loop also writes a checkpoint when ``train.checkpoint_minutes``
        have passed since the last one, and stops on SIGINT (Ctrl-C) or SIGTERM
        (:mod:`wgan.training.interrupt`): it writes a checkpoint of the step reached (unless one
        was just written) and raises :class:`wgan.errors.Interrupted`, from which a resume
        continues exactly. Under data parallelism the processes agree on a stop at logged steps.
        """
        with self.threads, interrupt.deferred():
            return self._fit_loop(tracker, hook)

    def _fit_loop(
        self,
        tracker: Tracker | None,
        hook: Callable[[Trainer, dict[str, float]], None] | None,
    ) -> TrainResult:
        cfg = self.cfg.train
        start_time = time.time()
        # When to log, evaluate, plot and save, and the clock of training time (metrics.jsonl's
        # seconds per step leave evaluation, figures and checkpoints out).
        cadence = self.cadence = Cadence(cfg)
        cadence.start(self.step)
        main = self.dist.is_main
        tracker = tracker if main else None
        bar = None
        if cfg.progress and main:
            from tqdm.auto import tqdm

            bar = tqdm(total=cfg.steps, initial=self.step, desc=self.run_dir.name, leave=True)
            name = self.run_dir.name
            self.notify = lambda m: bar.set_description_str(f"{name} ({m})", refresh=True)

        metrics: dict[str, Any] = {}
        figure: Path | None = None
        if main and self.is_image:  # what the data looks like, beside the samples to come
            from wgan.training.own_images import write_reals

            write_reals(self)
        synced = True  # the processes of a data-parallel job may agree on a stop here
        try:
            while self.step < cfg.steps:
                # Between two iterations: stop on a signal, or a checkpoint every few minutes.
                self._boundary(tracker, synced)
                # Train.
                self.train_step()
                self.threads.tick()  # fewer threads while other processes keep cores busy
                if bar is not None:
                    bar.update(1)
                due = cadence.due(self.step)
                synced = due.log
                # Log (the only host sync), and stop on non-finite values before any save.
                if due.log:
                    values = self._log(tracker)
                    if bar is not None and values:
                        bar.set_postfix(short_stats(values), refresh=False)
                    if hook is not None:
                        hook(self, values)
                # Evaluate, plot, checkpoint: only from a finite state (weights, optimiser states,
                # the generator's samples; one host sync), whether or not this step was logged. The
                # check runs on every process (their states are equal), so all stop together.
                if due.check:
                    bad = self.non_finite_parts()
                    if bad:
                        self.diverged(tracker, bad)
                if not main or not due.check:
                    continue  # evaluation, figures and checkpoints happen on rank 0
                with cadence.outside():
                    try:
                        if due.evaluate:
                            metrics = self.evaluate()
                            if bar is not None:
                                bar.set_description_str(self.run_dir.name, refresh=False)
                            if tracker is not None:
                                tracker.log(self.step, metrics, kind="eval")
                        if due.figure:
                            figure = self.figure(tracker)
                    except NonFiniteSamples:  # more samples than the check drew, one not finite
                        self.diverged(tracker, ["generator samples"])
                    if due.save:
                        self._write_checkpoint()
        finally:  # an error's message gets its own line, not the bar's redraw
            if bar is not None:
                bar.close()
                self.notify = None
        return TrainResult(self.run_dir, self.step, metrics, figure, time.time() - start_time)

    def _boundary(self, tracker: Tracker | None, synced: bool) -> None:
        """Between two iterations: stop if a signal asked to (:meth:`_interrupt`), else write a
        checkpoint if ``train.checkpoint_minutes`` have passed since the last one (rank 0; a
        save only, from a finite state: a non-finite one is left to the next check)."""
        signum = interrupt.requested()
        if self.dist.enabled:  # every process stops at the same step, or none does
            if not synced:
                return
            flag = torch.tensor([0.0 if signum is None else float(signum)], device=self.device)
            agreed = float(self.dist.average(flag).item())
            signum = (signum or int(interrupt.SIGNALS[-1])) if agreed > 0 else None
        if signum is not None:
            self._interrupt(tracker, signum)
        due = self.dist.is_main and self.checkpoint_step != self.step
        if due and self.cadence.checkpoint_due():
            with self.cadence.outside():
                if not self.non_finite_parts():
                    self._write_checkpoint()

    def _interrupt(self, tracker: Tracker | None, signum: int) -> None:
        """Act on a stop request: a checkpoint of this step (unless the last one is of it), then
        :class:`Interrupted`. A state that is not finite is a divergence instead (never saved)."""
        interrupt.take()
        bad = self.non_finite_parts()
        if bad:
            self.diverged(tracker, bad)
        kept = None
        if self.dist.is_main:
            ckpt = self.run_dir / rundirs.CHECKPOINT
            try:
                if self.checkpoint_step != self.step or not ckpt.is_file():
                    self._write_checkpoint()
                kept = f"the checkpoint {ckpt} holds step {self.step}"
            except WganError as err:  # e.g. a full disk: say so, and what is left
                kept = f"{err}".rstrip(".")
        raise Interrupted(signum, step=self.step, run_dir=self.run_dir, kept=kept)

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
            tracker.log(self.step, {**values, **self._timing()})
        return values

    def _timing(self) -> dict[str, float]:
        """What metrics.jsonl records beside the statistics: ``wall_s`` (seconds since this
        session's :meth:`fit` began), ``time/step_s`` (wall-clock seconds per generator
        iteration since the last log, training only: :class:`wgan.training.cadence.Cadence`)
        and, when the schedule changes them, the learning rates ``lr/d`` and ``lr/g`` of the
        next iteration."""
        out = self.cadence.timing(self.step)
        return {**out, **learning_rates(self.cfg, self.step, self.learned_generator)}

    def diverged(self, tracker: Tracker | None, bad: list[str]) -> None:
        """Record the divergence and raise :class:`TrainingDiverged` (the checkpoint is kept).

        ``bad`` names what is not finite: logged statistics (``d/loss``, ...) or parts of the
        state (``critic weights``, ``generator samples``, ...).
        """
        if tracker is not None:
            tracker.log(self.step, {"event": "diverged", "non_finite": bad}, kind="error")
        ckpt = self.run_dir / rundirs.CHECKPOINT
        if not ckpt.exists():
            kept = "no checkpoint was written"
        elif self.checkpoint_step is not None:
            kept = f"the last checkpoint (step {self.checkpoint_step}, {ckpt}) is kept"
        else:
            kept = f"the last checkpoint {ckpt} is kept"
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
            # historical averaging: the running means of the past parameters and their counts
            "historical": {
                k: [t.detach().cpu().clone() for t in v] if isinstance(v, list) else v.cpu()
                for k, v in self.train_state.items()
                if k.startswith("hist_")
            },
        }

    def state_tensors(self) -> dict[str, list[Tensor]]:
        """:meth:`Run.state_tensors` plus the optimiser states and fp16 loss scales."""
        groups = super().state_tensors()

        def flat(state: dict[str, Any]) -> list[Tensor]:
            out: list[Tensor] = []
            for value in state.values():
                out.extend(value if isinstance(value, list) else [value])
            return [t for t in out if t.is_floating_point() and t.numel()]

        groups["critic optimiser state"] = flat(self.opt_d)
        if self.opt_g is not None:
            groups["generator optimiser state"] = flat(self.opt_g)
        for key in ("scale_d", "scale_g"):
            if key in self.train_state:
                groups[f"loss scale {key[-1]}"] = flat(self.train_state[key])
        return groups

    def save(self) -> Path:
        """Write the checkpoint (and the config beside it), if the state is finite.

        A state with nan or inf anywhere (weights, EMA, optimiser states, the generator's
        samples: :meth:`non_finite_parts`) is never saved: :class:`TrainingDiverged` is raised
        and the previous checkpoint is kept.
        """
        bad = self.non_finite_parts()
        if bad:
            self.diverged(None, bad)
        return self._write_checkpoint()

    def _write_checkpoint(self) -> Path:
        """Save the checkpoint (atomically), then make ``config.yaml`` describe it."""
        path = self.run_dir / rundirs.CHECKPOINT
        checkpoints.save_checkpoint(path, self.state())
        self.checkpoint_step = self.step
        cadence = getattr(self, "cadence", None)
        if cadence is not None:
            cadence.saved()  # the time-based cadence counts from this checkpoint
        self._write_config_file()
        return path

    def _write_config_file(self) -> None:
        """``config.yaml`` = the config of the checkpoint just written (rewritten only if it
        differs, e.g. at the first save after a resume with overrides)."""
        config = self.cfg.to_dict()
        path = self.run_dir / rundirs.CONFIG
        try:
            if path.is_file() and read_yaml_mapping(path.read_text(), str(path)) == config:
                return
        except (OSError, UnicodeDecodeError, WganError):
            pass  # unreadable: rewrite it
        rundirs.write_config(self.run_dir, config)

    def _load_state(self, state: dict[str, Any]) -> None:
        check_checkpoint_format(state)
        self.load_models(state)
        self.checkpoint_step = int(state["step"])
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
        for key, saved in (state.get("historical") or {}).items():
            if key not in self.train_state:
                continue
            if isinstance(saved, list):
                for dst, src in zip(self.train_state[key], saved, strict=True):
                    dst.copy_(src)
            else:
                self.train_state[key].copy_(saved)


def check_checkpoint_format(state: dict[str, Any]) -> None:
    if state.get("format") != CHECKPOINT_FORMAT:
        raise WganError(
            f"checkpoint format {state.get('format')!r} is not {CHECKPOINT_FORMAT!r} "
            "(written by another version of wgan)"
        )
