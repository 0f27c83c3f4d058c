"""Shared plumbing for experiments: typed settings with overrides, a run directory, a table.

An experiment is a function ``run(settings, run_dir) -> ExperimentResult`` with a settings
dataclass whose defaults are fast on a laptop CPU (a ``full`` flag or larger values give the
full-size run). ``key=value`` overrides are type-checked by the same code as training configs.

The conventions every experiment module follows (``wgan experiment NAME --help``, ``wgan
experiment all`` and the report page read them):

* ``SETTINGS``: a dataclass whose fields each carry a trailing ``# comment`` (or a docstring on
  the next line) saying what they mean; :func:`settings_help` lists them with their defaults.
* ``QUICK``: a module-level dict of settings overrides (field name -> value) for ``wgan
  experiment all --quick``, small enough that every experiment together fits in a few CPU
  minutes; :func:`quick_settings` applies it (an experiment without one runs at its defaults).
* ``ExperimentResult.verdicts``: one :class:`~wgan.experiments.verdict.Verdict` per claim, from a
  pure function of the measured numbers (and the settings, which decide whether the run is large
  enough to test the claim); :func:`experiment_entry` adds them to ``results.json``.
* :func:`progress`: a bar over the experiment's units of work.

Experiments train through public interfaces only, written here once:

* :func:`fit_critic`: a critic alone against a fixed sample source, by the training step's own
  critic update (:meth:`wgan.gan.step.GANStep.critic_update`);
* :func:`experiment_config`: a preset with the experiment's data, sizes, budget, seed, device;
* :func:`make_trainer` and :func:`run_config`: a run directory with its config, and one config
  trained by :meth:`wgan.training.trainer.Trainer.fit` with a divergence recorded, not raised.
  Experiments that measure at their own steps drive the trainer with
  :meth:`~wgan.training.trainer.Trainer.advance` and
  :meth:`~wgan.training.trainer.Trainer.train_critic`.
"""

from __future__ import annotations

import functools
import inspect
import io
import json
import sys
import textwrap
import time
import tokenize
import types
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from wgan.config import Config, OptimConfig, parse_override, resolve, set_value
from wgan.errors import ConfigError, WganError
from wgan.experiments.verdict import Verdict
from wgan.gan import optim
from wgan.gan.draws import CriticDraws
from wgan.gan.loss import GANLoss
from wgan.gan.step import GANStep
from wgan.store import rundirs
from wgan.store.tracking import Tracker, json_safe
from wgan.training.stats import TrainResult
from wgan.training.threads import torch_threads  # noqa: F401 - experiments import it from here
from wgan.training.trainer import Trainer


@dataclass
class ExperimentResult:
    """What an experiment leaves: its numbers (also in ``results.json``), a table and figures."""

    name: str
    run_dir: Path
    numbers: dict[str, Any]
    table: str
    figures: list[Path] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)  # one per claim the experiment tests


@dataclass
class Experiment:
    """A registered experiment: its settings class and its ``run`` function."""

    name: str
    description: str
    settings: type
    run: Callable[[Any, Path], ExperimentResult]


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


def write_results(run_dir: Path, name: str, settings: Any, numbers: dict[str, Any]) -> Path:
    """``results.json`` with the settings and the numbers (NaN/inf written as strings)."""
    path = Path(run_dir) / "results.json"
    record = {"experiment": name, "settings": asdict(settings), "results": numbers}
    path.write_text(json.dumps(json_safe(record), indent=2) + "\n")
    return path


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


def experiment_config(
    preset: str,
    name: str,
    overrides: Sequence[str] = (),
    *,
    dataset: str,
    batch_size: int,
    hidden: int | tuple[int, int],
    depth: int,
    steps: int,
    seed: int,
    device: str,
) -> Config:
    """The config of one training run of an experiment: ``preset`` with the experiment's data,
    network size (``hidden``: one width, or (generator, critic) widths; ``depth`` hidden layers
    each), budget, seed and device, then ``overrides`` (which win).

    No progress bar, and :meth:`wgan.training.trainer.Trainer.fit` evaluates, plots and checkpoints
    once, at the end: experiments take their own measurements.
    """
    g_hidden, d_hidden = hidden if isinstance(hidden, tuple) else (hidden, hidden)
    cfg = resolve(
        preset,
        [
            f"data.name={dataset}",
            f"data.batch_size={batch_size}",
            f"generator.hidden={g_hidden}",
            f"critic.hidden={d_hidden}",
            f"generator.depth={depth}",
            f"critic.depth={depth}",
            f"train.steps={steps}",
            f"train.seed={seed}",
            f"train.device={device}",
            "train.progress=false",
            "train.eval_every=0",
            "train.figure_every=0",
            "train.checkpoint_every=0",
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


def experiment_entry(
    body: Callable[[Any, Path], ExperimentResult],
) -> Callable[[Any, Path], ExperimentResult]:
    """Make an experiment's ``run(settings, run_dir)``: validate the settings, create
    ``run_dir``, and run ``body`` with ``settings.threads`` torch CPU threads."""

    @functools.wraps(body)
    def run(settings: Any, run_dir: str | Path) -> ExperimentResult:
        settings.validate()
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        with torch_threads(settings.threads):
            result = body(settings, run_dir)
        record_verdicts(run_dir, result.verdicts)
        return result

    return run


def record_verdicts(run_dir: str | Path, verdicts: Sequence[Verdict]) -> None:
    """Add ``verdicts`` (one record per claim) to ``run_dir/results.json`` when it exists."""
    path = Path(run_dir) / "results.json"
    if not verdicts or not path.is_file():
        return
    record = json.loads(path.read_text())
    record["verdicts"] = [v.to_dict() for v in verdicts]
    path.write_text(json.dumps(json_safe(record), indent=2) + "\n")


def experiment_dir(out_dir: str | Path, name: str) -> Path:
    """A new numbered run directory for experiment ``name``."""
    return rundirs.new_run_dir(out_dir, f"exp-{name}")


@contextmanager
def progress(total: int, desc: str, enabled: bool = True) -> Iterator[Any]:
    """A progress bar for an experiment's units of work (runs, steps): ``bar.update(n)`` after
    each; ``bar.set_postfix_str(text)`` says what is happening. Written to stderr, closed on
    exit; ``enabled=False`` (or a non-terminal stderr with ``WGAN_NO_PROGRESS`` set) gives a
    bar that draws nothing."""
    import os

    from tqdm import tqdm

    disable = not enabled or bool(os.environ.get("WGAN_NO_PROGRESS"))
    bar = tqdm(total=total, desc=desc, disable=disable, leave=False, dynamic_ncols=True)
    try:
        yield bar
    finally:
        bar.close()


# ----------------------------------------------------------------------------------------------
# Settings help and quick sizes
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SettingHelp:
    """One field of an experiment's settings: name, type, default and meaning."""

    name: str
    type: str
    default: Any
    meaning: str  # "" when the field has neither a trailing comment nor a docstring


def _field_comments(cls: type) -> dict[str, str]:
    """The meaning of each field of dataclass ``cls``, from its source: the trailing ``#``
    comment on the field's line, or else a string literal on the line after it."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):  # no source (e.g. defined in an interactive session)
        return {}
    lines = source.splitlines()
    comments: dict[int, str] = {}  # line number (1-based) -> comment text
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    out: dict[str, str] = {}
    names = {f.name for f in fields(cls)}
    for number, line in enumerate(lines, start=1):
        head = line.strip().split(":", 1)[0]
        if head not in names or head in out or ":" not in line:
            continue
        text = comments.get(number, "")
        if not text and number < len(lines):
            after = lines[number].strip()  # the next line
            if after[:3] in ('"""', "'''") or after[:1] in ('"', "'"):
                text = after.strip("\"'").strip()
        out[head] = text
    return out


def settings_fields(settings_cls: type) -> list[SettingHelp]:
    """Every field of an experiment's settings dataclass with its type, default and meaning."""
    meanings = _field_comments(settings_cls)
    out = []
    for f in fields(settings_cls):
        if f.default is not MISSING:
            default = f.default
        elif f.default_factory is not MISSING:
            default = f.default_factory()
        else:
            default = None
        kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        out.append(SettingHelp(f.name, str(kind), default, meanings.get(f.name, "")))
    return out


def experiment_module(experiment: Experiment) -> types.ModuleType | None:
    """The module that defines ``experiment`` (where its ``QUICK`` and docstring live)."""
    return sys.modules.get(getattr(experiment.run, "__module__", ""))


def quick_overrides(experiment: Experiment) -> dict[str, Any]:
    """The experiment module's ``QUICK`` overrides ({} when it defines none)."""
    return dict(getattr(experiment_module(experiment), "QUICK", None) or {})


def quick_settings(experiment: Experiment) -> Any:
    """The experiment's settings at its quick size (``QUICK`` applied, then validated)."""
    settings = experiment.settings()
    for key, value in quick_overrides(experiment).items():
        if not hasattr(settings, key):
            raise ConfigError(f"{experiment.name}: QUICK names unknown setting {key!r}")
        setattr(settings, key, value)
    settings.validate()
    return settings


def settings_help(experiment: Experiment) -> str:
    """``wgan experiment NAME --help``: usage, description, then one line per setting with its
    type, default and meaning, and the quick size."""
    rows = [
        [h.name, h.type, repr(h.default), h.meaning or "-"]
        for h in settings_fields(experiment.settings)
    ]
    quick = quick_overrides(experiment)
    table = format_table(["setting", "type", "default", "meaning"], rows)
    lines = [
        f"usage: wgan experiment {experiment.name} [key=value ...] [--out-dir DIR] [--json]",
        "",
        textwrap.fill(experiment.description, 96),
        "",
        "settings (override with key=value):",
        *(line.rstrip() for line in table.splitlines()),
    ]
    if quick:
        lines += [
            "",
            "quick size (wgan experiment all --quick): "
            + ", ".join(f"{k}={v}" for k, v in quick.items()),
        ]
    return "\n".join(lines)
