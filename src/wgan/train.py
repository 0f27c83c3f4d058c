"""The training loop: phases of optimiser steps, periodic tasks, and nothing else.

The loop follows the algorithm boxes of the seeds (Goodfellow et al. 2014; Arjovsky et al. 2017,
Alg. 1; Gulrajani et al. 2017, Alg. 1): per generator iteration, ``n_critic`` critic steps, then
one generator step. That schedule is data (a list of :class:`Phase`), so a fixed generator is the
same loop without its generator phase. The maths lives in the objective and the constraint; the
loop only calls ``backward()`` on the ``'loss'`` term, steps the optimiser and applies the
constraint's projection.

Statistics stay on the device as running sums and are read back only every ``log_every`` steps,
so there is no host synchronisation per step.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from wgan import runs
from wgan.config import Config, OptimConfig, from_dict, set_value
from wgan.constraints import input_gradient_norm, interpolates
from wgan.data.batches import SampledBatches, TensorBatches
from wgan.data.build import build_batches, build_dataset, is_image_dataset
from wgan.distributed import DistContext
from wgan.ema import EMA
from wgan.errors import ConfigError, TrainingDiverged, WganError
from wgan.game import build_loss, build_models
from wgan.metrics import toy_metrics
from wgan.plotting import plot_toy, save_figure
from wgan.precision import autocast, check_precision, make_scaler, scale_tensor
from wgan.tracking import Tracker

# ----------------------------------------------------------------------------------------------
# Building blocks
# ----------------------------------------------------------------------------------------------


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when available; an explicit CUDA request without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device={name} but no CUDA device is available (use cpu or auto)")
    return torch.device(name)


def build_optimizer(cfg: OptimConfig, params) -> torch.optim.Optimizer:
    """Adam(lr, betas), RMSProp(lr) or SGD(lr, momentum=betas[0]) as the config says.

    On CUDA, Adam uses PyTorch's fused kernel (one launch for all parameters); on the CPU the
    default multi-tensor implementation. Both compute the same update.
    """
    params = list(params)
    if cfg.name == "adam":
        fused = bool(params) and all(p.is_cuda for p in params)
        return torch.optim.Adam(
            params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay, fused=fused or None
        )
    if cfg.name == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.betas[0], weight_decay=cfg.weight_decay)


@dataclass
class Phase:
    """One kind of optimiser step, repeated ``repeat`` times per generator iteration.

    ``loss(i)`` returns the named terms of substep ``i``; ``frozen`` is a module whose weight
    gradients this phase does not need (the critic during the generator step); ``after`` runs
    after each optimiser step (the constraint's projection, the generator's EMA update).
    ``autocast`` is the mixed-precision context the loss is computed in and ``scaler`` the fp16
    loss scaler (see :mod:`wgan.precision`).
    """

    name: str
    module: nn.Module
    optimizer: torch.optim.Optimizer
    repeat: int
    loss: Callable[[int], dict[str, Tensor]]
    frozen: nn.Module | None = None
    after: Callable[[], None] | None = None
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext
    scaler: torch.amp.GradScaler | None = None
    sync: Callable[[nn.Module], None] | None = None  # data parallel: average the gradients


class RunningStats:
    """Sums of named scalar tensors on the device; read back to the host only on ``flush``."""

    def __init__(self) -> None:
        self.sums: dict[str, Tensor] = {}
        self.counts: dict[str, int] = {}

    def add(self, prefix: str, terms: dict[str, Tensor]) -> None:
        for key, value in terms.items():
            name = f"{prefix}/{key}"
            value = value.detach().float()
            self.sums[name] = self.sums[name] + value if name in self.sums else value
            self.counts[name] = self.counts.get(name, 0) + 1

    def flush(self, average: Callable[[Tensor], Tensor] | None = None) -> dict[str, float]:
        """Means since the last flush; ``average`` combines them over processes first."""
        if not self.sums:
            return {}
        names = list(self.sums)
        stacked = torch.stack([self.sums[n] for n in names])
        if average is not None:
            stacked = average(stacked)
        values = stacked.tolist()  # the one host sync
        out = {n: v / self.counts[n] for n, v in zip(names, values, strict=True)}
        self.sums, self.counts = {}, {}
        return out


@dataclass
class TrainResult:
    """What a finished run leaves behind."""

    run_dir: Path
    step: int
    metrics: dict[str, Any] = field(default_factory=dict)
    figure: Path | None = None
    seconds: float = 0.0


# ----------------------------------------------------------------------------------------------
# The trainer
# ----------------------------------------------------------------------------------------------


class Trainer:
    """Trains one GAN described by a :class:`Config`, writing into ``run_dir``."""

    def __init__(
        self,
        cfg: Config,
        run_dir: Path,
        state: dict[str, Any] | None = None,
        dist: DistContext | None = None,
        dataset=None,
    ) -> None:
        """``dataset`` replaces the one ``cfg.data`` names (e.g. random images for a benchmark)."""
        self.cfg, self.run_dir = cfg, Path(run_dir)
        self.dist = dist or DistContext()
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        self.device = resolve_device(self.dist.device(cfg.train.device))
        self.batch_size = self.dist.shard(cfg.data.batch_size)  # this process's share
        torch.manual_seed(cfg.train.seed)  # model initialisation (identical on every process)
        # All sampling (data, noise, interpolation weights) draws from this one generator;
        # under data parallelism each process has its own stream (rank 0 keeps the seed).
        self.rng = torch.Generator(device=self.device).manual_seed(self.dist.seed(cfg.train.seed))
        self.dataset = dataset if dataset is not None else build_dataset(cfg.data)
        self.is_image = is_image_dataset(self.dataset)
        self.conditional = cfg.conditional.mode != "none"
        check_precision(cfg.train.precision, self.device)
        self.gen, self.critic, self.constraints = build_models(cfg, self.dataset, self.device)
        self.dist.broadcast_module(self.gen)
        self.dist.broadcast_module(self.critic)
        if cfg.train.channels_last:
            if not self.is_image:
                raise ConfigError("train.channels_last is for image data (convolutional nets)")
            self.gen.to(memory_format=torch.channels_last)
            self.critic.to(memory_format=torch.channels_last)
        self.learned_generator = any(p.requires_grad for p in self.gen.parameters())
        self.scaler_d = make_scaler(cfg.train.precision, self.device)
        self.scaler_g = make_scaler(cfg.train.precision, self.device)
        self.loss = build_loss(cfg, self.constraints)
        self.loss.scale = lambda: scale_tensor(self.scaler_d)
        self.ema = EMA(self.gen, cfg.train.ema) if cfg.train.ema > 0 else None
        if self.ema is not None and not self.learned_generator:
            raise ConfigError("train.ema needs a learned generator (generator.kind=learned)")
        self.opt_d = build_optimizer(cfg.d_optim, self.critic.parameters())
        self.opt_g = (
            build_optimizer(cfg.g_optim, self.gen.parameters()) if self.learned_generator else None
        )
        self.schedulers = [
            torch.optim.lr_scheduler.LambdaLR(opt, self._lr_factor)
            for opt in (self.opt_d, self.opt_g)
            if opt is not None
        ]
        self.train_set: Tensor | None = None
        if cfg.data.n_train is not None and self.is_image:
            raise ConfigError("data.n_train is for toy data; image datasets are already finite")
        if cfg.data.n_train is not None:
            # A fixed finite training set, drawn from its own seed so it survives resumes.
            g = torch.Generator(device=self.device).manual_seed(cfg.train.seed + 7919)
            self.train_set = self.dataset.sample(cfg.data.n_train, generator=g, device=self.device)
        self.batches: TensorBatches | SampledBatches = (
            TensorBatches(self.train_set, self.batch_size, self.rng, self.device)
            if self.train_set is not None
            else build_batches(self.dataset, self.batch_size, self.rng, self.device)
        )
        if cfg.train.channels_last and isinstance(self.batches, TensorBatches):
            self.batches.examples = self.batches.examples.contiguous(
                memory_format=torch.channels_last
            )
        self.step = 0
        if state is not None:
            self._load_state(state)
        self.schedule = self._build_schedule()
        self.stats = RunningStats()

    def _lr_factor(self, step: int) -> float:
        """Learning-rate multiplier after ``step`` generator iterations."""
        if self.cfg.train.lr_decay == "linear":
            return max(0.0, 1.0 - step / max(1, self.cfg.train.steps))
        return 1.0

    # -- the schedule as data ---------------------------------------------------------------

    def _build_schedule(self) -> list[Phase]:
        every = self.constraints.penalty_every

        def critic_loss(i: int) -> dict[str, Tensor]:
            labels = None
            if self.conditional:
                real, labels = self.batches.next_labelled()  # (B, ...), (B,)
            else:
                real = self.batches.next_batch()  # (B, dim) or (B, C, H, W)
            due = (i % every) == 0  # lazy regularisation: penalty on 1 step in `every`
            return self.loss.critic_terms(self.gen, self.critic, real, self.rng, due, labels)

        def generator_loss(i: int) -> dict[str, Tensor]:
            # Conditions are drawn from the data's labels ("sample m conditions", seed 004).
            labels = self.batches.next_labelled()[1] if self.conditional else None
            return self.loss.generator_terms(
                self.gen, self.critic, self.batch_size, self.rng, labels
            )

        precision = self.cfg.train.precision
        sync = self.dist.average_gradients if self.dist.enabled else None
        phases = [
            Phase(
                "critic",
                self.critic,
                self.opt_d,
                self.cfg.train.n_critic,
                critic_loss,
                after=lambda: self.constraints.project(self.critic),
                autocast=lambda: autocast(precision, self.device),
                scaler=self.scaler_d,
                sync=sync,
            )
        ]
        if self.opt_g is not None:
            phases.append(
                Phase(
                    "generator",
                    self.gen,
                    self.opt_g,
                    1,
                    generator_loss,
                    self.critic,
                    after=self.ema.update if self.ema is not None else None,
                    autocast=lambda: autocast(precision, self.device),
                    scaler=self.scaler_g,
                    sync=sync,
                )
            )
        return phases

    @staticmethod
    def optimise(phase: Phase, i: int) -> dict[str, Tensor]:
        """One optimiser step of ``phase`` (substep ``i``); returns its terms."""
        with phase.autocast():
            terms = phase.loss(i)
        phase.optimizer.zero_grad(set_to_none=True)
        loss = terms["loss"]
        # fp16: a scaled backward; the scaler's step unscales and skips steps with inf/NaN.
        (phase.scaler.scale(loss) if phase.scaler is not None else loss).backward()
        if phase.sync is not None:
            phase.sync(phase.module)
        if phase.scaler is not None:
            phase.scaler.step(phase.optimizer)
            phase.scaler.update()
        else:
            phase.optimizer.step()
        if phase.after is not None:
            phase.after()
        return terms

    def train_step(self) -> None:
        """One generator iteration: every phase, each repeated as the schedule says."""
        for phase in self.schedule:
            if phase.frozen is not None:
                phase.frozen.requires_grad_(False)  # no wasted weight gradients for D in G's step
            for i in range(phase.repeat):
                terms = self.optimise(phase, i)
                self.stats.add("d" if phase.name == "critic" else "g", terms)
            if phase.frozen is not None:
                phase.frozen.requires_grad_(True)
        for scheduler in self.schedulers:
            scheduler.step()

    # -- the loop ---------------------------------------------------------------------------

    def fit(self, tracker: Tracker | None = None) -> TrainResult:
        """Train up to ``train.steps`` generator iterations; evaluate, plot and checkpoint."""
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
            self.step += 1
            if bar is not None:
                bar.update(1)
            last = self.step == cfg.steps
            # Log (the only host sync), and stop on non-finite values before any save.
            if due(cfg.log_every) or due(cfg.checkpoint_every) or last:
                values = self._log(tracker)
                if bar is not None and values:
                    bar.set_postfix(_short(values), refresh=False)
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
            if tracker is not None:
                tracker.log(self.step, {"event": "diverged", "non_finite": bad}, kind="error")
            ckpt = self.run_dir / runs.CHECKPOINT
            kept = (
                f"the last checkpoint {ckpt} is kept"
                if ckpt.exists()
                else "no checkpoint was written"
            )
            raise TrainingDiverged(
                f"training diverged: non-finite {', '.join(sorted(bad))} by step {self.step}; "
                f"{kept}. Try a lower learning rate, a stronger constraint or another objective."
            )
        if tracker is not None:
            tracker.log(self.step, values)
        return values

    # -- outside the optimisation: measuring, plotting, saving --------------------------------

    def interpolate_grad_norm(self, n: int = 256) -> float:
        """Mean ||grad_x D(x_hat)|| on interpolates, with its own RNG (training RNG untouched)."""
        g = torch.Generator(device=self.device).manual_seed(self.step)
        labels = None
        if self.conditional:
            real, labels = self.dataset.sample_with_labels(n, generator=g, device=self.device)
        else:
            real = self.dataset.sample(n, generator=g, device=self.device)
        with torch.no_grad():
            fake = self.gen.sample(n, g, labels)
        score = self.loss.score_fn(self.critic, labels)
        return float(input_gradient_norm(score, interpolates(real, fake, g)).mean())

    @property
    def sampler(self) -> nn.Module:
        """The generator used for samples and metrics: its EMA when ``train.ema`` > 0."""
        return self.ema.module if self.ema is not None else self.gen

    @torch.no_grad()
    def samples(self, n: int, seed: int = 12345, labels: Tensor | int | None = None) -> Tensor:
        """``n`` generated samples from a fixed seed, on the CPU: (n, dim) or (n, C, H, W).

        ``labels`` (a class index, or (n,) indices) conditions a conditional generator; without
        it a conditional generator draws uniform labels. Batch norm uses its running statistics
        (eval mode), so a sample does not depend on the others drawn with it.
        """
        gen = self.sampler
        n_classes = getattr(gen, "n_classes", 0)
        if labels is not None:
            if not n_classes:
                raise WganError("this run's generator is not conditional: it takes no label")
            labels = torch.as_tensor(labels, dtype=torch.long).expand(n).to(self.device)
            bad = labels[(labels < 0) | (labels >= n_classes)]
            if bad.numel():
                raise WganError(f"label {int(bad[0])} is out of range [0, {n_classes})")
        g = torch.Generator(device=self.device).manual_seed(seed)
        was_training = gen.training
        gen.eval()
        try:
            out = [
                gen.sample(min(4096, n - i), g, None if labels is None else labels[i : i + 4096])
                for i in range(0, n, 4096)
            ]
        finally:
            gen.train(was_training)
        return torch.cat(out).float().cpu()

    def evaluate(self, n: int | None = None) -> dict[str, Any]:
        """Metrics on ``train.eval_samples`` samples (fixed seeds).

        Toy data: mode coverage, high-quality fraction, KL and exact W1. Images: see
        :func:`wgan.evaluation.evaluate_images` (classifier scores on digits, IS/FID/KID
        with user-given Inception weights).
        """
        n = n or self.cfg.train.eval_samples
        if self.is_image:
            from wgan.evaluation import evaluate_images

            return evaluate_images(self, n)
        fake = self.samples(n)
        return toy_metrics(fake, self.dataset, n_real=n, generator=torch.Generator().manual_seed(1))

    def figure(self, tracker: Tracker | None = None) -> Path | None:
        """Real vs generated samples over the critic's contours (2-D data only)."""
        if self.is_image:
            from wgan.evaluation import sample_grid

            return sample_grid(self, tracker)
        if self.dataset.dim != 2:
            return None
        g = torch.Generator().manual_seed(2)
        real = self.dataset.sample(1000, generator=g).numpy()
        fake = self.samples(1000).numpy()
        title = f"{self.cfg.name}: step {self.step}"
        fig = plot_toy(self.critic, real, fake, self.dataset.bounds(), title)
        if tracker is not None:
            tracker.figure("samples", fig, self.step)
        path = save_figure(fig, self.run_dir / "figures" / f"step_{self.step:06d}.png")
        shutil.copyfile(path, path.with_name("latest.png"))
        return path

    def state(self) -> dict[str, Any]:
        """Everything needed to resume exactly: models, optimisers, step, RNG states."""
        return {
            "format": "wgan-checkpoint-1",
            "step": self.step,
            "config": self.cfg.to_dict(),
            "generator": self.gen.state_dict(),
            "critic": self.critic.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "opt_g": self.opt_g.state_dict() if self.opt_g is not None else {},
            "schedulers": [s.state_dict() for s in self.schedulers],
            "rng": self.rng.get_state(),
            "torch_rng": torch.get_rng_state(),
            "train_set": self.train_set,
            "generator_ema": self.ema.state_dict() if self.ema is not None else None,
            "scalers": [s.state_dict() if s is not None else None for s in self._scalers()],
        }

    def _scalers(self) -> list[torch.amp.GradScaler | None]:
        return [self.scaler_d, self.scaler_g]

    def save(self) -> Path:
        path = self.run_dir / runs.CHECKPOINT
        runs.save_checkpoint(path, self.state())
        return path

    def _load_state(self, state: dict[str, Any]) -> None:
        try:
            self.gen.load_state_dict(state["generator"])
            self.critic.load_state_dict(state["critic"])
            self.opt_d.load_state_dict(state["opt_d"])
            if self.opt_g is not None:
                self.opt_g.load_state_dict(state["opt_g"])
            for scheduler, saved in zip(self.schedulers, state["schedulers"], strict=True):
                scheduler.load_state_dict(saved)
            if self.dist.is_main:
                self.rng.set_state(state["rng"])
            else:  # the saved stream is rank 0's; other ranks start a fresh one at this step
                self.rng.manual_seed(self.dist.seed(self.cfg.train.seed) + int(state["step"]))
            torch.set_rng_state(state["torch_rng"])
            if self.ema is not None:
                saved = state.get("generator_ema")
                self.ema.load_state_dict(saved if saved is not None else state["generator"])
            for scaler, saved in zip(self._scalers(), state.get("scalers") or [], strict=False):
                if scaler is not None and saved:
                    scaler.load_state_dict(saved)
        except (KeyError, RuntimeError, ValueError) as err:
            first = str(err).splitlines()[0]
            raise WganError(f"checkpoint does not match this run's config: {first}") from None
        if state.get("train_set") is not None:
            self.train_set = state["train_set"].to(self.device)
            self.batches = TensorBatches(
                self.train_set, self.cfg.data.batch_size, self.rng, self.device
            )
        self.step = int(state["step"])


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

    The number of processes may differ from the run's: the models, optimisers and step are
    restored on every process; rank 0 continues the saved random stream, other ranks start
    fresh ones (so a resume is bit-exact only for a single process).
    """
    dist = dist or DistContext.from_env()
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise WganError(f"run directory not found: {run_dir}")
    ckpt = run_dir / runs.CHECKPOINT
    if not ckpt.is_file():
        raise WganError(f"cannot resume {run_dir}: it has no checkpoint ({runs.CHECKPOINT})")
    state = runs.load_checkpoint(ckpt)
    cfg = from_dict(state["config"])
    for key, value in (overrides or {}).items():
        set_value(cfg, key, value)
    dist.barrier()  # every process has read the checkpoint before rank 0 rewrites anything
    if dist.is_main:
        runs.write_config(run_dir, cfg.to_dict())
    trainer = Trainer(cfg, run_dir, state=state, dist=dist)
    return _fit(trainer, tensorboard, purge_step=trainer.step + 1)


def load_run(run_dir: str | Path, device: str = "cpu") -> Trainer:
    """A :class:`Trainer` restored from a run's checkpoint, for sampling and evaluation."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise WganError(f"run directory not found: {run_dir}")
    state = runs.load_checkpoint(run_dir / runs.CHECKPOINT)
    cfg = from_dict(state["config"])
    cfg.train.device = device
    return Trainer(cfg, run_dir, state=state)
