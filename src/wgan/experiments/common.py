"""The toolkit experiments measure with: settings overrides and checks, tables, and training
through the library's public interfaces (the framework that runs experiments is
:mod:`wgan.experiments.framework`).

* :func:`fit_critic`: a critic alone against a fixed sample source, by the training step's own
  critic update (:meth:`wgan.gan.step.GANStep.critic_update`);
* :func:`experiment_config`: a preset with the experiment's data, sizes, budget, seed, device;
* :func:`make_trainer` and :func:`run_config`: a run directory with its config, and one config
  trained by :meth:`wgan.training.trainer.Trainer.fit` with a divergence recorded, not raised;
  :func:`train_cell` does both for one cell and keeps what the summaries and figures read.
  Experiments that measure at their own steps drive the trainer with
  :meth:`~wgan.training.trainer.Trainer.advance` and
  :meth:`~wgan.training.trainer.Trainer.train_critic`;
* :func:`mean_std` and :func:`over_seeds`: a metric's mean and spread over seeds.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from wgan.config import Config, OptimConfig, parse_override, resolve, set_value
from wgan.errors import ConfigError, WganError
from wgan.gan import optim
from wgan.gan.draws import CriticDraws
from wgan.gan.loss import GANLoss
from wgan.gan.step import GANStep
from wgan.store import rundirs
from wgan.store.tracking import Tracker
from wgan.training.stats import TrainResult
from wgan.training.trainer import Trainer


def apply_overrides(settings: Any, overrides: Sequence[str]) -> Any:
    """Apply ``key=value`` strings to a settings dataclass (unknown keys and bad types raise)."""
    for text in overrides:
        key, value = parse_override(text)
        current = getattr(settings, key, None)
        if isinstance(current, str) and isinstance(value, int | float) and "." not in key:
            # a list setting with one item (``dims=64``) is text, not the number YAML reads
            value = text.split("=", 1)[1].strip()
        set_value(settings, key, value)
    validate = getattr(settings, "validate", None)
    if validate is not None:
        validate()
    return settings


def check_settings(checks: Sequence[tuple[bool, str]], prefix: str = "") -> None:
    """Raise ConfigError with the message of the first failed ``(ok, message)`` check."""
    for ok, message in checks:
        if not ok:
            raise ConfigError(prefix + message)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table; floats with 4 significant digits."""

    def cell(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    cells = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    body = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join([line, "  ".join("-" * w for w in widths), *body])


def name_checks(
    names: list[str], valid: Any, setting: str, what: str, extra: str = ""
) -> list[tuple[bool, str]]:
    """The two checks of a list setting such as ``methods=a,b`` (for :func:`check_settings`):
    it names at least one ``what``, and each is one of ``valid`` (``extra``: more valid words,
    e.g. ``"all, "``)."""
    unknown = [n for n in names if n not in valid]
    return [
        (bool(names), f"{setting} must name at least one {what}"),
        (not unknown, f"unknown {setting} {unknown}; valid: {extra}{', '.join(valid)}"),
    ]


def split_list(text: str) -> list[str]:
    """Items of a comma-separated setting such as ``"8gaussians,25gaussians"`` (blanks dropped)."""
    return [t.strip() for t in text.split(",") if t.strip()]


class FixedSource(nn.Module):
    """A fixed sample source (a dataset, a fixed generator) in the generator's seat of a
    :class:`wgan.gan.step.GANStep`: it has no parameters and its samples are given to the critic's
    update as precomputed fakes."""

    n_classes = 0

    def __init__(self, source: Any) -> None:
        super().__init__()
        self.source = source

    def noise(self, n: int, generator: torch.Generator | None, device: Any = None) -> Tensor:
        return self.source.sample(n, generator)  # (n, dim)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        return x


def fit_critic(
    critic: nn.Module,
    loss: GANLoss,
    real_source: Any,
    fake_source: Any,
    steps: int,
    batch_size: int,
    optimiser: OptimConfig,
    generator: torch.Generator,
) -> nn.Module:
    """Train a critic alone against a fixed sample source; returns it in eval mode.

    ``real_source`` and ``fake_source`` have ``sample(n, generator)`` (a dataset, a fixed
    generator). Each step draws a real batch (B, dim), a fake batch (B, dim) and, when the
    constraint has a penalty, its interpolation weights (B,) from ``generator``, in that order,
    and takes one critic update of the training step (:meth:`wgan.gan.step.GANStep.critic_update`:
    the objective's critic loss plus the penalty, the optimiser ``optimiser`` (name, lr, betas,
    weight decay) of :mod:`wgan.gan.optim`, then the constraint's projection, e.g. clipping).
    """
    gan_step = GANStep(
        FixedSource(fake_source), critic, loss, n_critic=1, d_optim=optimiser.name, g_optim=None
    )
    state = gan_step.state(optim.init_state(optimiser.name, list(critic.parameters())), None)
    hyper = {"d": optim.hyper(optimiser.lr, optimiser.betas, optimiser.weight_decay)}
    critic.train()
    for _ in range(steps):
        real = real_source.sample(batch_size, generator)  # (B, dim)
        with torch.no_grad():
            fake = fake_source.sample(batch_size, generator)  # (B, dim)
        eps = None
        if gan_step.has_penalty:
            eps = torch.rand(batch_size, generator=generator, device=real.device)  # (B,)
        gan_step.critic_update(state, CriticDraws(real, eps=eps, fake=fake), hyper)
    critic.eval()
    return critic


# ----------------------------------------------------------------------------------------------
# Training configs: built once, run once
# ----------------------------------------------------------------------------------------------


#: Overrides of a run that prints, evaluates, plots and checkpoints nothing while it trains
#: (:meth:`wgan.training.trainer.Trainer.fit` still evaluates once, at the end): experiments
#: take their own measurements.
QUIET = (
    "train.progress=false",
    "train.eval_every=0",
    "train.figure_every=0",
    "train.checkpoint_every=0",
    "train.checkpoint_minutes=0",
)


def experiment_config(
    preset: str, name: str, overrides: Sequence[str], settings: Any, **given: Any
) -> Config:
    """The config of one training run of an experiment: ``preset`` with the experiment's data,
    network size (``hidden``: one width, or (generator, critic) widths; ``depth`` hidden layers
    each), batch, budget, seed and device, then ``overrides`` (which win).

    Each of ``dataset``, ``batch_size``, ``hidden``, ``depth``, ``steps``, ``seed`` and
    ``device`` is taken from ``given`` or else from ``settings``. No progress bar, and
    :meth:`wgan.training.trainer.Trainer.fit` evaluates, plots and checkpoints once, at the end:
    experiments take their own measurements.
    """
    keys = ("dataset", "batch_size", "hidden", "depth", "steps", "seed", "device")
    v = {k: given[k] if k in given else getattr(settings, k) for k in keys}
    g_hidden, d_hidden = v["hidden"] if isinstance(v["hidden"], tuple) else (v["hidden"],) * 2
    cfg = resolve(
        preset,
        [
            f"data.name={v['dataset']}",
            f"data.batch_size={v['batch_size']}",
            f"generator.hidden={g_hidden}",
            f"critic.hidden={d_hidden}",
            f"generator.depth={v['depth']}",
            f"critic.depth={v['depth']}",
            f"train.steps={v['steps']}",
            f"train.seed={v['seed']}",
            f"train.device={v['device']}",
            *QUIET,
            *overrides,
        ],
    )
    cfg.name = name
    return cfg


def make_trainer(cfg: Config, run_dir: str | Path) -> Trainer:
    """A :class:`Trainer` for ``cfg`` in ``run_dir`` (created, with the config written in it)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    rundirs.write_config(run_dir, cfg.to_dict())
    return Trainer(cfg, run_dir)


@dataclass
class ConfigRun:
    """One config trained by :func:`run_config`: the trainer, and the result or the error."""

    trainer: Trainer
    result: TrainResult | None  # None: training stopped with ``error``
    diverged_at: int | None  # the step reached when it stopped
    error: str | None
    seconds: float  # building and training


def run_config(
    cfg: Config,
    run_dir: str | Path,
    track: bool = False,
    hook: Callable[[Trainer, dict[str, float]], None] | None = None,
) -> ConfigRun:
    """Train ``cfg`` in ``run_dir`` with :meth:`Trainer.fit`, recording a divergence instead of
    raising it.

    ``track``: log to ``run_dir/metrics.jsonl`` (no TensorBoard); ``hook`` is passed to
    :meth:`Trainer.fit`. Non-finite statistics (:class:`TrainingDiverged`) and other
    :class:`WganError` raised by training or the final evaluation (e.g. non-finite samples) end
    the run with ``result=None``, ``diverged_at`` the step reached and ``error`` the message;
    a bad config still raises (the trainer is built first).
    """
    start = time.time()
    trainer = make_trainer(cfg, run_dir)
    tracker = Tracker(trainer.run_dir, tensorboard=False) if track else None
    result, diverged_at, error = None, None, None
    try:
        result = trainer.fit(tracker, hook)
    except WganError as err:  # TrainingDiverged is one
        diverged_at, error = trainer.step, str(err)
    finally:
        if tracker is not None:
            tracker.close()
    return ConfigRun(trainer, result, diverged_at, error, time.time() - start)


@contextmanager
def progress(total: int, desc: str, enabled: bool = True) -> Iterator[Any]:
    """A progress bar for an experiment's units of work (runs, steps): ``bar.update(n)`` after
    each; ``bar.set_postfix_str(text)`` says what is happening. Written to stderr, closed on
    exit; ``enabled=False`` (or a non-terminal stderr with ``WGAN_NO_PROGRESS`` set) gives a
    bar that draws nothing."""
    from tqdm import tqdm

    disable = not enabled or bool(os.environ.get("WGAN_NO_PROGRESS"))
    bar = tqdm(total=total, desc=desc, disable=disable, leave=False, dynamic_ncols=True)
    try:
        yield bar
    finally:
        bar.close()


def train_cell(cfg: Config, folder: Path, n_samples: int = 1000, **run: Any) -> dict[str, Any]:
    """Train ``cfg`` in ``folder`` (:func:`run_config`; ``run``: its ``track`` and ``hook``) and
    keep what summaries and figures read: the final ``metrics``, the figure, ``n_samples``
    generated samples drawn with seed ``cfg.train.seed + 303`` (for the plots; none when 0),
    or ``diverged_at`` and ``error``; the seconds, the run dir, the config, and the trainer
    under ``_trainer`` (records' ``_`` keys stay out of ``results.json``)."""
    done = run_config(cfg, folder, **run)
    result, seed = done.result, cfg.train.seed
    out: dict[str, Any] = {
        "metrics": result.metrics if result is not None else None,
        "figure": str(result.figure) if result is not None and result.figure else None,
        "diverged_at": done.diverged_at,
        "error": done.error,
        "seconds": done.seconds,
        "run_dir": str(done.trainer.run_dir),
        "config": cfg.to_dict(),
        "_trainer": done.trainer,
        "_samples": None,
    }
    if result is not None and n_samples:
        out["_samples"] = done.trainer.samples(n_samples, seed=seed + 303).numpy()  # (n, dim)
    return out


def public(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` without its private ``_`` keys (trainers, sample arrays)."""
    return {k: v for k, v in record.items() if not k.startswith("_")}


def mean_std(values: Sequence[float | None]) -> tuple[float, float, int]:
    """Mean and sample standard deviation (ddof=1; 0 for one value) of the finite values, and
    how many there were (NaN, NaN, 0 when none)."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if v.size == 0:
        return float("nan"), float("nan"), 0
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0, int(v.size)


def over_seeds(
    records: Sequence[dict[str, Any]], keys: Sequence[str]
) -> list[tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]]:
    """Group ``records`` by the values of ``keys`` (first-seen order): for each group, its key
    values, its records, and the metrics of those that finished (not diverged)."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    out = []
    for values, group in groups.items():
        done = [r["metrics"] for r in group if r["metrics"] is not None]
        out.append((dict(zip(keys, values, strict=True)), group, done))
    return out


def plus_minus(mean: float, std: float, digits: int) -> str:
    """``"mean ± std"`` with ``digits`` decimals, ``"-"`` when the mean is NaN."""
    return "-" if math.isnan(mean) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def sample_grid(
    records: Sequence[dict[str, Any]], methods: dict[str, Any], title: str, path: Path
) -> Path:
    """Generated samples over the real data and its modes: one row per dataset, one column per
    method (``records``: one per cell, with ``dataset``, ``method``, ``metrics`` and the
    ``_samples`` of :func:`train_cell`; ``methods``: name -> a record with a ``label``)."""
    from wgan.data import make_dataset
    from wgan.figures.plotting import legend_beside, save_figure, scatter_panel, subplots

    datasets = list(dict.fromkeys(r["dataset"] for r in records))
    names = list(dict.fromkeys(r["method"] for r in records))
    fig, axes = subplots(
        len(datasets), len(names), figsize=(3.6 * len(names), 3.7 * len(datasets)), squeeze=False
    )
    for r in records:
        dataset = make_dataset(r["dataset"])
        real = dataset.sample(1000, generator=torch.Generator().manual_seed(5)).numpy()  # (1000, 2)
        label, m = methods[r["method"]].label, r["metrics"]
        if r["_samples"] is None:
            text = f"{label}\ndiverged at step {r['diverged_at']}"
        else:
            hq = 100 * m["high_quality_fraction"]
            text = f"{label}\n{m['modes_captured']}/{m['n_modes']} modes, HQ {hq:.1f}%"
        ax = axes[datasets.index(r["dataset"])][names.index(r["method"])]
        modes = dataset.modes.numpy() if dataset.modes is not None else None
        scatter_panel(ax, real, r["_samples"], modes, dataset.bounds(), f"{r['dataset']}: {text}")
    # one legend, beside the top-right panel (the samples fill the panels)
    full = max(axes.flat, key=lambda a: len(a.get_legend_handles_labels()[1]))
    legend_beside(axes[0][-1], *full.get_legend_handles_labels(), markerscale=3)
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)
