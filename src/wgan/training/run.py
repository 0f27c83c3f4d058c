"""The run handle: a GAN's models, data and randomness, without any optimiser.

:class:`Run` is what evaluation, sampling, analysis, the CLI and experiments take: the generator,
the critic (with its constraint's parametrisation), the EMA of the generator, the dataset and its
batch stream, the run's ``torch.Generator`` and the step reached.
:class:`wgan.training.trainer.Trainer` extends it with optimiser states and the training loop;
:func:`load_run` restores a run from its checkpoint for sampling and evaluation, without building
optimisers.
"""

from __future__ import annotations

import itertools
import operator
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from wgan.config import Config, check_seed, from_dict
from wgan.config.hints import config_argument, device_argument, path_argument
from wgan.constraints import input_gradient_norm, interpolates
from wgan.data.adopt import adopt_data, old_folder_defaults
from wgan.data.batches import SampledBatches, TensorBatches
from wgan.data.build import (
    build_batches,
    build_dataset,
    is_image_dataset,
    is_text_dataset,
    reads_n_train,
)
from wgan.errors import ConfigError, DeviceUnavailable, WganError
from wgan.gan.ema import EMA
from wgan.gan.loss import build_loss
from wgan.gan.players import build_models
from wgan.gan.precision import check_precision
from wgan.gan.refine import check_request, refine_generated
from wgan.gan.step import BoundCritic, Player
from wgan.store import checkpoints, rundirs
from wgan.store.checkpoint_checks import state_mismatch
from wgan.store.tracking import Tracker
from wgan.training import finiteness, sampling
from wgan.training.distributed import DistContext
from wgan.training.run_paths import resolve_stored_paths
from wgan.training.sampling import NonFiniteSamples  # noqa: F401 - its home until now

MAX_SAMPLE_VALUES = 2**31
"""The most values (samples x values per sample) one :meth:`Run.samples` call returns (8 GiB
of float32): a larger request is refused before anything is drawn."""
SAMPLE_SEED = 12345
"""The default noise seed of :meth:`Run.samples`, :meth:`Run.evaluate`, ``wgan sample`` and
``wgan eval``: the samples ``wgan sample --seed S --num N`` writes are those that
``wgan eval --seed S --num N`` measures."""


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when available. A name that is not a device is a :class:`ConfigError`
    (exit 2); an explicit CUDA request without a GPU, or a GPU index that does not exist, is
    :class:`DeviceUnavailable` (a run-time failure, exit 1: the same config runs elsewhere)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceUnavailable(
            f"train.device={name} but no CUDA device is available (use cpu or auto)"
        )
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"train.device must be auto, cpu, cuda or cuda:N, got {name!r}") from None
    if device.type == "cuda" and device.index is not None:
        count = torch.cuda.device_count()
        if device.index >= count:
            raise DeviceUnavailable(
                f"train.device={name} but this machine has {count} CUDA device(s) "
                f"(cuda:0 to cuda:{count - 1})"
            )
    return device


class Run:
    """One GAN described by a :class:`Config`, living in ``run_dir``.

    Args:
        cfg: the run's config.
        run_dir: its directory (created on rank 0).
        dist: where this process sits in a data-parallel job (a single process by default).
        dataset: replaces the dataset ``cfg.data`` names (e.g. random images for a benchmark).
    """

    def __init__(
        self,
        cfg: Config,
        run_dir: str | Path,
        dist: DistContext | None = None,
        dataset: Any = None,
    ) -> None:
        self.cfg = config_argument(cfg, f"{type(self).__name__}()")
        self.run_dir = Path(path_argument(run_dir, "run_dir"))
        self.label = ""  # which run of a sweep this is (its folder's name); "" for a lone run
        self.sample_seed = SAMPLE_SEED  # the seed of samples() when none is given
        self.sample_refine: tuple[str, int] | None = None  # samples()' default refine, steps
        # Told what a long pause is for ("evaluating…"): the progress bar, or the CLI's stderr.
        self.notify: Callable[[str], None] | None = None
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
        self.is_text = is_text_dataset(self.dataset)
        if self.is_text and cfg.data.name == "text" and cfg.data.vocab is None:
            # The vocabulary built from the file becomes part of the run's config (and so of
            # config.yaml and every checkpoint): sampling then decodes without the file.
            cfg.data.vocab = self.dataset.vocab.chars
        # An image folder's shape and class names, and conditional.mode=auto, as the data says.
        adopt_data(cfg, self.dataset)
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
        n_classes = int(getattr(self.dataset, "n_classes", 0) or 0) if self.conditional else 0
        self.loss = build_loss(cfg, self.constraints, n_classes)
        self.ema = EMA(self.gen, cfg.train.ema) if cfg.train.ema > 0 else None
        if self.ema is not None and not self.learned_generator:
            raise ConfigError("train.ema needs a learned generator (generator.kind=learned)")
        self.train_set: Tensor | None = None
        n_train = None if reads_n_train(cfg.data) else cfg.data.n_train  # shapes: the loader's
        if n_train is not None and (self.is_image or self.is_text):
            raise ConfigError(
                "data.n_train is for toy data, shapes and attribute files; other image and text "
                "datasets are already finite"
            )
        if n_train is not None:
            # A fixed finite training set, drawn from its own seed so it survives resumes.
            g = torch.Generator(device=self.device).manual_seed(cfg.train.seed + 7919)
            self.train_set = self.dataset.sample(cfg.data.n_train, generator=g, device=self.device)
        self.batches: TensorBatches | SampledBatches = self._make_batches()
        self.step = 0

    def _make_batches(self) -> TensorBatches | SampledBatches:
        if self.train_set is not None:
            batches: Any = TensorBatches(self.train_set, self.batch_size, self.rng, self.device)
        else:
            batches = build_batches(self.dataset, self.batch_size, self.rng, self.device)
        if self.cfg.train.channels_last and isinstance(batches, TensorBatches):
            batches.examples = batches.examples.contiguous(memory_format=torch.channels_last)
        return batches

    # -- models as functions ----------------------------------------------------------------

    def critic_fn(self, labels: Tensor | None = None):
        """The critic as a function of x alone (D(c, .) at ``labels`` for a conditional critic)."""
        critic = BoundCritic(Player(self.critic, functional=False), {}, {}, self.loss.paired)
        return self.loss.score_fn(critic, labels)

    @property
    def sampler(self) -> nn.Module:
        """The generator used for samples and metrics: its EMA when ``train.ema`` > 0."""
        return self.ema.module if self.ema is not None else self.gen

    @torch.no_grad()
    def samples(
        self,
        n: int,
        seed: int | None = None,
        labels: Tensor | int | str | None = None,
        refine: str | None = None,
        refine_steps: int | None = None,
        attrs: Any = None,
        attrs_fixed: bool = False,
    ) -> Tensor:
        """``n`` generated samples from a fixed seed (default :data:`SAMPLE_SEED`), on the CPU:
        (n, dim) or (n, C, H, W). ``attrs`` (``"red,triangle"``), ``attrs_fixed``: attributes asked
        of a run on attribute data (:func:`wgan.training.attribute_sampling.attribute_labels`).

        ``labels`` (a class index or name, e.g. an image folder's sub-folder, or (n,) indices;
        :func:`wgan.training.sampling.class_label`) conditions a conditional generator; without
        it a conditional generator draws uniform labels. Batch norm uses its running statistics
        (eval mode), so a sample does not depend on the others drawn with it.

        ``refine`` (``"dot"``, ``"ddls"`` or ``"flow"``; default: the ``refine`` of the
        :meth:`evaluate` call in progress, else none) moves the samples with the critic
        (:mod:`wgan.gan.refine`) for ``refine_steps`` steps (default: the method's): the same
        noise and labels as without it, refined; the critic scores each sample at its own label,
        and a label never changes. Without ``refine`` the samples are those of earlier versions.
        """
        request = check_request(refine, refine_steps) or self.sample_refine
        refine, refine_steps = request or (None, None)
        draw = sampling.prepare(self, n, seed, labels, attrs, attrs_fixed)  # seed: [0, MAX_SEED]
        if refine is None:
            return torch.cat(list(sampling.chunks(draw)))
        noise: list[tuple[Tensor, Tensor | None]] = []  # the draws of gen.sample
        x = torch.cat(list(sampling.generated(draw, noise)))
        z, lab = torch.cat([z for z, _ in noise]), noise[0][1]
        lab = None if lab is None else torch.cat([c for _, c in noise])
        x = refine_generated(  # the Langevin / flow noise continues the draws' stream
            refine, draw.gen, self.critic, self.critic_fn, x, z, lab, refine_steps, draw.generator
        )
        return sampling.finite(draw, x)

    def sample_chunks(
        self,
        n: int,
        seed: int | None = None,
        labels: Tensor | int | str | None = None,
        chunk: int = sampling.SAMPLE_CHUNK,
    ) -> Iterator[Tensor]:
        """The samples of ``samples(n, seed, labels)`` (unrefined), the same ones in the same
        order, as CPU tensors of ``chunk`` samples (the last may be shorter): any number of
        samples can be written holding at most ``chunk`` + 4,096 at once (``wgan sample``).
        The request is checked at once; a non-finite chunk raises when it is reached."""
        return sampling.chunks(sampling.prepare(self, n, seed, labels), chunk)

    def text(self, n: int, seed: int | None = None) -> list[str]:
        """``n`` generated sequences of a text run, argmax-decoded with the run's vocabulary."""
        if not self.is_text:
            raise WganError("this run does not model text")
        return self.dataset.decode(self.samples(n, seed=seed))  # from (n, V, L) softmax

    def _check_count(self, n: Any, what: str = "number of samples") -> int:
        """``n`` as an int in [1, the most that fit in :data:`MAX_SAMPLE_VALUES`]."""
        try:
            if isinstance(n, bool):
                raise TypeError
            n = operator.index(n)
        except TypeError:
            raise WganError(f"the {what} must be an integer, got {n!r}") from None
        if n < 1:
            raise WganError(f"the {what} must be >= 1, got {n}")
        shape = getattr(self.dataset, "shape", None) if self.is_image or self.is_text else None
        per_sample = 1
        for size in shape if shape is not None else (getattr(self.dataset, "dim", 1),):
            per_sample *= int(size)
        most = max(1, MAX_SAMPLE_VALUES // max(1, per_sample))
        if n > most:
            raise WganError(
                f"the {what} must be <= {most:,} for this run ({per_sample:,} values per "
                f"sample, at most {MAX_SAMPLE_VALUES:,} values at once), got {n:,}"
            )
        return n

    def interpolate_grad_norm(self, n: int = 256) -> float:
        """Mean ||grad_x D(x_hat)|| on interpolates, with its own RNG (training RNG untouched).

        The nets run as in training (batch norm on batch statistics), and their buffers (batch
        norm's running statistics) are restored afterwards: a logged measurement must not
        change the run, which would then depend on how often it logs or checkpoints.
        """
        g = torch.Generator(device=self.device).manual_seed(self.step)
        labels = None
        if self.conditional:
            real, labels = self.dataset.sample_with_labels(n, generator=g, device=self.device)
        else:
            real = self.dataset.sample(n, generator=g, device=self.device)
        kept = [(b, b.clone()) for m in (self.gen, self.critic) for b in m.buffers()]
        try:
            with torch.no_grad():
                fake = self.gen.sample(n, g, labels)
            score = self.critic_fn(labels)
            return float(input_gradient_norm(score, interpolates(real, fake, g)).mean())
        finally:
            with torch.no_grad():
                for buffer, value in kept:
                    buffer.copy_(value)

    # -- finiteness ---------------------------------------------------------------------------

    def state_tensors(self) -> dict[str, list[Tensor]]:
        """The floating-point tensors a checkpoint saves, by part (weights, buffers, the EMA)."""

        def floats(module: nn.Module) -> list[Tensor]:
            tensors = itertools.chain(module.parameters(), module.buffers())
            return [t for t in tensors if t.is_floating_point() and t.numel()]

        groups = {"generator weights": floats(self.gen), "critic weights": floats(self.critic)}
        if self.ema is not None:
            groups["generator EMA weights"] = floats(self.ema.module)
        return groups

    def non_finite_parts(self, probe: bool = True) -> list[str]:
        """The parts of the state that hold nan or inf (:func:`wgan.training.finiteness.
        non_finite_parts`); an empty list when all is finite."""
        return finiteness.non_finite_parts(self, probe)

    # -- measuring and plotting ---------------------------------------------------------------

    def evaluate(
        self,
        n: int | None = None,
        inception_weights: str | None = None,
        seed: int | None = None,
        refine: str | None = None,
        refine_steps: int | None = None,
    ) -> dict[str, Any]:
        """Metrics on ``n`` samples (default ``train.eval_samples``) drawn with ``seed`` (default
        :data:`SAMPLE_SEED`: the samples of ``samples(n, seed)``); the real data and the
        per-class samples of a conditional generator have fixed seeds of their own.

        The metrics are those registered for the run's kind of data
        (:data:`wgan.training.evaluation.EVALUATORS`). Toy data: mode coverage, high-quality
        fraction, KL and exact W1. Images: classifier scores on digits, IS/FID/KID
        with the user's Inception weights: ``inception_weights``, else ``train.inception_weights``
        of a config the user gave, else ``$WGAN_INCEPTION_WEIGHTS``; a checkpoint's config never
        names the file, :func:`read_run` clears it). With ``refine``, every sample the evaluators
        draw is refined (``samples(..., refine=refine, refine_steps=refine_steps)``).
        """
        n = self._check_count(self.cfg.train.eval_samples if n is None else n)
        if self.notify is not None:
            if self._classifier_missing():
                self.notify("training the digit classifier (once, cached)…")
            self.notify("evaluating…")
        request = check_request(refine, refine_steps)
        seed = SAMPLE_SEED if seed is None else check_seed(seed, "the seed")
        saved, self.sample_seed = self.sample_seed, seed
        saved_refine, self.sample_refine = self.sample_refine, request
        try:  # the evaluators draw with samples(n), i.e. with self.sample_seed
            from wgan.training.evaluation import evaluate

            weights = inception_weights or self.cfg.train.inception_weights
            return evaluate(self, n, inception_weights=weights)
        finally:
            self.sample_seed, self.sample_refine = saved, saved_refine

    def _classifier_missing(self) -> bool:
        """Whether evaluating needs the digit classifier and must train it first."""
        if not self.is_image or self.cfg.data.name not in ("digits", "stacked_digits"):
            return False
        from wgan.metrics.classifier import classifier_cache_path

        return not classifier_cache_path(int(self.dataset.resolution)).exists()

    @property
    def display_name(self) -> str:
        """The config's name, and for a run of a sweep its label: ``toy-wgan-gp (00001-seed1)``."""
        return f"{self.cfg.name} ({self.label})" if self.label else self.cfg.name

    def figure(self, tracker: Tracker | None = None) -> Path | None:
        """Real vs generated samples over the critic's contours (2-D data only)."""
        if self.is_image:
            from wgan.training.evaluation import sample_grid

            return sample_grid(self, tracker)
        if self.is_text:
            from wgan.training.evaluation import sample_text

            return sample_text(self, tracker)
        if self.dataset.dim != 2:
            return None
        from wgan.figures.plotting import plot_toy, save_figure

        g = torch.Generator().manual_seed(2)
        real = self.dataset.sample(1000, generator=g).numpy()
        fake = self.samples(1000).numpy()
        title = f"{self.display_name}: step {self.step}"
        fig = plot_toy(self.critic, real, fake, self.dataset.bounds(), title)
        if tracker is not None:
            tracker.figure("samples", fig, self.step)
        path = save_figure(fig, self.run_dir / "figures" / f"step_{self.step:06d}.png")
        shutil.copyfile(path, path.with_name("latest.png"))
        return path

    # -- state ----------------------------------------------------------------------------------

    def load_models(self, state: dict[str, Any]) -> None:
        """Restore G, D, the EMA, the training set and the step from a checkpoint dict.

        State dicts that do not fit the models (a shape, a missing or an extra parameter) are
        refused before anything is copied, in one line naming the parameters and both shapes.
        """
        ema = state.get("generator_ema")
        ema = state.get("generator") if ema is None else ema
        ema = ema["module"] if isinstance(ema, dict) and "module" in ema else ema
        parts = [("generator", self.gen, state.get("generator"))]
        parts.append(("critic", self.critic, state.get("critic")))
        if self.ema is not None:
            parts.append(("generator EMA", self.ema.module, ema))
        found = [state_mismatch(m.state_dict(), saved, what) for what, m, saved in parts]
        problems = [p for p in found if p]
        if not isinstance(state.get("step"), int) or isinstance(state["step"], bool):
            problems.append(f"its step is a {type(state.get('step')).__name__}, not an integer")
        if not isinstance(state.get("train_set"), (Tensor, type(None))):
            problems.append(f"its train_set is a {type(state['train_set']).__name__}")
        if problems:
            raise WganError(f"checkpoint does not match this run's config: {'; '.join(problems)}")
        try:
            self.gen.load_state_dict(state["generator"])
            self.critic.load_state_dict(state["critic"])
            if self.ema is not None:
                saved = state.get("generator_ema")
                self.ema.load_state_dict(saved if saved is not None else state["generator"])
        except (KeyError, RuntimeError, ValueError, TypeError) as err:
            detail = " ".join(str(err).split())  # torch's message, its lines joined into one
            raise WganError(f"checkpoint does not match this run's config: {detail}") from None
        if state.get("train_set") is not None:
            self.train_set = state["train_set"].to(self.device)
            self.batches = self._make_batches()
        self.step = int(state["step"])


def read_run(run_dir: str | Path) -> tuple[Path, dict[str, Any], Config]:
    """A run directory's checkpoint dict and config (errors name what is missing).

    ``run_dir`` may also be a checkpoint file (``RUN/checkpoint.pt``): its run is its folder.

    The config is the checkpoint's, validated, with ``train.inception_weights`` cleared: a
    checkpoint may come from anyone, and that file is executed when loaded.
    """
    run_dir = Path(run_dir)
    ckpt = run_dir / rundirs.CHECKPOINT
    if run_dir.is_file():  # a checkpoint file: its run is the folder it is in
        run_dir, ckpt = run_dir.parent, run_dir
    if not run_dir.is_dir():
        raise WganError(f"run directory not found: {run_dir}")
    if not ckpt.is_file():
        from wgan.store.run_targets import several_runs

        if (why := several_runs(run_dir)) is not None:  # a sweep's or study's folder
            raise WganError(why)
        stopped = (run_dir / rundirs.CONFIG).is_file() and not ckpt.exists()
        raise WganError(
            f"{run_dir} has no checkpoint ({rundirs.CHECKPOINT})"
            + (  # killed early, or a disk too full for one checkpoint: see its provenance.json
                f": it stopped before its first one; 'wgan train --resume {run_dir}' trains it "
                "again from step 0"
                if stopped
                else ""
            )
        )
    state = checkpoints.load_checkpoint(ckpt)
    if not isinstance(state.get("config"), dict):
        raise WganError(f"{ckpt} holds no config mapping")
    cfg = resolve_stored_paths(run_dir, from_dict(state["config"]))  # a relative data.path
    cfg = old_folder_defaults(cfg)  # a folder run made before folders took their files' shape
    # Trust: a file that would be loaded as code (the TorchScript Inception weights) comes only
    # from the user (a command-line option, an override, the environment), never a checkpoint.
    cfg.train.inception_weights = None
    return run_dir, state, cfg


def load_run(run_dir: str | Path, device: str = "cpu") -> Run:
    """A :class:`Run` restored from a run's checkpoint, for sampling and evaluation.

    ``run_dir`` is a run directory or a checkpoint file in one (``RUN/checkpoint.pt``); the
    runs of a sweep's or study's folder are :func:`wgan.store.run_targets.run_targets`.

    No optimiser is built; the models are those of the checkpoint's step.
    """
    run_dir, device = path_argument(run_dir, "run_dir"), device_argument(device)
    run_dir, state, cfg = read_run(run_dir)
    cfg.train.device = device
    # A text run decodes with the vocabulary in its config, so its file may be gone.
    run = Run(cfg, run_dir, dataset=build_dataset(cfg.data, allow_missing_text=True))
    run.load_models(state)
    return run
