"""The experiment framework: a registry of experiments and the one driver that runs them.

An experiment reproduces a claim of the literature. It is a subclass of :class:`Experiment`,
registered by name with :func:`register`, that declares only what is its own:

* ``Settings``: a dataclass inheriting :class:`Settings` (seed, threads) or
  :class:`TrainingSettings` (also steps, network sizes, batch, evaluation samples, device), with
  its own fields, their bounds in ``LIMITS`` and any other check in ``checks()``;
* ``methods``: the compared methods as :class:`Method` records, by name;
* ``cells(settings)``: the grid of units of work (default: datasets x methods x seeds);
* ``measure(settings, cell, ctx)``: one cell's record;
* ``summarise(settings, records)``: the numbers of ``results.json``;
* ``verdicts(numbers, settings)``: one :class:`~wgan.experiments.verdict.Verdict` per claim, a
  pure function of the numbers, so that a saved result can be judged again;
* ``figures(settings, numbers, records, run_dir)`` and ``table(settings, numbers)``.

The driver, :meth:`Experiment.run`, owns the rest, the same for every experiment: validating the
settings, torch CPU threads, the grid loop and its progress bar, writing ``results.json`` once
(settings, numbers, verdicts and wall time), then the figures and the table. The same pattern as
a metric registry (Karras et al. 2020, StyleGAN2-ADA's ``@register_metric``): adding an
experiment is one class, and the CLI (``wgan experiment NAME --help``, ``--quick``, ``all``) and
the report page find it in :data:`EXPERIMENTS`.
"""

from __future__ import annotations

import json
import sys
import textwrap
import time
import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from itertools import product
from pathlib import Path
from typing import Any, ClassVar

from wgan.config import check_seed
from wgan.config.describe import field_meanings
from wgan.errors import ConfigError
from wgan.experiments.common import (
    apply_overrides,
    check_settings,
    format_table,
    name_checks,
    progress,
    split_list,
)
from wgan.experiments.setting_names import train_key_rows, translate
from wgan.experiments.verdict import Verdict
from wgan.store import rundirs
from wgan.store.tracking import json_safe
from wgan.training.threads import torch_threads

# ----------------------------------------------------------------------------------------------
# Settings
# ----------------------------------------------------------------------------------------------


def _check_limit(name: str, value: Any, rule: str) -> tuple[bool, str]:
    """``(ok, message)`` for one bound: ``">= 1"``, ``"> 0"`` or an inclusive ``"[2, 5000]"``."""
    if rule.startswith("["):
        low, high = (float(x) for x in rule.strip("[]").split(","))
        return low <= value <= high, f"{name} must be in {rule}"
    op, bound = rule.split()
    ok = value > float(bound) if op == ">" else value >= float(bound)
    return ok, f"{name} must be {rule}"


@dataclass
class Settings:
    """What every experiment has: a seed and a thread count, and the checks of its fields.

    Subclasses add fields (each with a trailing ``# comment``: ``--help`` reads it), their bounds
    in ``LIMITS`` (field -> ``">= 1"``, ``"> 0"`` or ``"[low, high]"``, merged along the class
    hierarchy) and other checks in :meth:`checks`. A field redeclared in a subclass keeps the
    checks and changes the default.
    """

    seed: int = 0  # first seed: data, initial weights and evaluation samples
    threads: int = 1  # torch CPU threads while running (restored after); 0: leave as is

    LIMITS: ClassVar[dict[str, str]] = {"threads": ">= 0"}
    #: Field -> the training-config keys it mirrors, so that ``train.seed=3`` is ``seed=3``
    #: (:mod:`wgan.experiments.setting_names`); merged along the hierarchy like ``LIMITS``, and
    #: declared only where the meaning is the training key's.
    TRAIN_KEYS: ClassVar[dict[str, tuple[str, ...]]] = {
        "seed": ("train.seed",),
        "threads": ("train.threads",),
    }
    #: Valid method names (set by :func:`register` from the experiment's ``methods``).
    METHODS: ClassVar[Mapping[str, Any]] = {}

    def limits(self) -> dict[str, str]:
        """Every field's bound, the subclasses' winning."""
        return self._merged("LIMITS")

    def train_keys(self) -> dict[str, tuple[str, ...]]:
        """Every field's mirrored training-config keys, the subclasses' winning (an empty
        tuple: the subclass's field means something else)."""
        return {k: v for k, v in self._merged("TRAIN_KEYS").items() if v}

    def _merged(self, table: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for klass in reversed(type(self).__mro__):
            out.update(vars(klass).get(table, {}))
        return out

    def checks(self) -> list[tuple[bool, str]]:
        """Checks beyond the bounds, as ``(ok, message)``; subclasses extend the list."""
        if "methods" not in {f.name for f in fields(self)}:
            return []
        return name_checks(split_list(self.methods), self.METHODS, "methods", "method")

    def validate(self) -> None:
        """Raise ConfigError with the first failed bound or check; the seed is in
        ``train.seed``'s range (:func:`wgan.config.check_seed`), checked before any run."""
        check_seed(self.seed, "seed")
        bounds = [_check_limit(k, getattr(self, k), r) for k, r in self.limits().items()]
        check_settings([*bounds, *self.checks()])


@dataclass
class TrainingSettings(Settings):
    """Settings of experiments that train networks: budget, sizes, batch, evaluation, device."""

    steps: int = 1000  # generator iterations per run
    hidden: int = 128  # MLP width of generator and critic
    depth: int = 3  # hidden layers of generator and critic
    batch_size: int = 256  # samples per batch
    eval_samples: int = 2500  # generated (and real) samples for the final metrics
    device: str = "cpu"  # cpu | cuda | auto

    LIMITS = {
        "steps": ">= 1",
        "hidden": ">= 1",
        "depth": ">= 0",
        "batch_size": ">= 1",
        "eval_samples": ">= 2",
    }
    TRAIN_KEYS = {
        "steps": ("train.steps",),
        "hidden": ("generator.hidden", "critic.hidden"),
        "depth": ("generator.depth", "critic.depth"),
        "batch_size": ("data.batch_size",),
        "eval_samples": ("train.eval_samples",),
        "device": ("train.device",),
    }


@dataclass
class GridSettings(TrainingSettings):
    """Training settings with a grid of datasets x methods x seeds (:meth:`Experiment.cells`)."""

    datasets: str = "8gaussians,25gaussians"  # comma-separated dataset names
    methods: str = ""  # comma-separated method names
    n_seeds: int = 1  # seeds seed, seed+1, ...

    LIMITS = {"n_seeds": ">= 1"}

    def checks(self) -> list[tuple[bool, str]]:
        has_data = bool(split_list(self.datasets))
        return [*super().checks(), (has_data, "datasets must name at least one dataset")]


# ----------------------------------------------------------------------------------------------
# Methods, cells and results
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Method:
    """One compared method: a name, a label for tables and figures, the training preset and
    config overrides it stands for, and ``info``, anything else of its own (e.g. an objective)."""

    name: str
    label: str
    preset: str = ""
    overrides: tuple[str, ...] = ()
    info: Mapping[str, Any] = field(default_factory=dict)


def method_table(*methods: Method) -> dict[str, Method]:
    """Methods by name, in the order given."""
    return {m.name: m for m in methods}


@dataclass(frozen=True)
class Cell:
    """One unit of an experiment's grid: a method, a dataset, a seed and, for grids over
    something else (a parameter value, a training-set size), ``value``."""

    method: Method | None = None
    dataset: str = ""
    seed: int = 0
    value: Any = None

    @property
    def tag(self) -> str:
        """What the progress bar says while the cell runs."""
        parts = [self.dataset, self.method.name if self.method else "", f"seed {self.seed}"]
        if self.value is not None:
            parts.insert(0, str(self.value))
        return " ".join(p for p in parts if p)

    def folder(self, root: Path) -> Path:
        """``root/dataset/method/seedN``: where the cell's training run lives."""
        name = self.method.name if self.method else "run"
        return Path(root) / (self.dataset or ".") / name / f"seed{self.seed}"


@dataclass
class Context:
    """What a cell's :meth:`Experiment.measure` may use: the run directory and the progress
    bar (an experiment that counts finer units than cells advances it itself)."""

    run_dir: Path
    bar: Any


@dataclass
class ExperimentResult:
    """What an experiment leaves: its numbers (also in ``results.json``), a table and figures."""

    name: str
    run_dir: Path
    numbers: dict[str, Any]
    table: str
    figures: list[Path] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)  # one per claim the experiment tests


# ----------------------------------------------------------------------------------------------
# Experiments and their registry
# ----------------------------------------------------------------------------------------------


class Experiment:
    """Base class of the experiments; see the module docstring for what a subclass declares."""

    name: ClassVar[str]
    description: ClassVar[str]
    Settings: ClassVar[type[Settings]]
    methods: ClassVar[dict[str, Method]] = {}
    #: ``--quick`` (``wgan experiment NAME --quick``, ``wgan experiment all --quick``): overrides
    #: small enough that every experiment together fits in a few CPU minutes, at which the
    #: claims can still be judged where possible.
    quick: ClassVar[dict[str, Any]] = {}

    @property
    def settings(self) -> type[Settings]:
        """The settings class (``experiment.settings()`` gives the defaults)."""
        return self.Settings

    # --- what a subclass declares ---------------------------------------------------------

    def cells(self, settings: Any) -> list[Cell]:
        """The grid: every dataset x method x seed of a :class:`GridSettings`."""
        seeds = [settings.seed + k for k in range(settings.n_seeds)]
        methods = [self.methods[m] for m in split_list(settings.methods)]
        grid = product(split_list(settings.datasets), methods, seeds)
        return [Cell(method, dataset, seed) for dataset, method, seed in grid]

    def units(self, settings: Any, cell: Cell) -> int:
        """How many progress-bar units ``cell`` counts (1; training steps for some)."""
        return 1

    def measure(self, settings: Any, cell: Cell, ctx: Context) -> dict[str, Any]:
        raise NotImplementedError

    def summarise(self, settings: Any, records: list[dict[str, Any]]) -> dict[str, Any]:
        raise NotImplementedError

    def verdicts(self, numbers: dict[str, Any], settings: Any) -> list[Verdict]:
        return []

    def figures(
        self, settings: Any, numbers: dict[str, Any], records: list[dict[str, Any]], run_dir: Path
    ) -> list[Path]:
        return []

    def table(self, settings: Any, numbers: dict[str, Any]) -> str:
        raise NotImplementedError

    # --- the driver -----------------------------------------------------------------------

    def run(self, settings: Any, run_dir: str | Path) -> ExperimentResult:
        """Validate ``settings``, measure every cell, write ``results.json`` (numbers and
        verdicts), then draw the figures and the table."""
        settings.validate()
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        start = time.time()
        with torch_threads(settings.threads):
            cells = self.cells(settings)
            units = [self.units(settings, c) for c in cells]
            records = []
            with progress(sum(units), self.name) as bar:
                ctx = Context(run_dir, bar)
                for cell, n in zip(cells, units, strict=True):
                    bar.set_postfix_str(cell.tag)
                    done = bar.n
                    records.append(self.measure(settings, cell, ctx))
                    bar.update(max(0, n - (bar.n - done)))
            numbers = self.summarise(settings, records)
            verdicts = self.verdicts(numbers, settings)
            write_results(run_dir, self.name, settings, numbers, verdicts, time.time() - start)
            figures = self.figures(settings, numbers, records, run_dir)
            table = self.table(settings, numbers)
        return ExperimentResult(self.name, run_dir, numbers, table, figures, verdicts)


#: Every registered experiment by name, in registration order.
EXPERIMENTS: dict[str, Experiment] = {}


def register(cls: type[Experiment]) -> type[Experiment]:
    """Class decorator: add an instance of ``cls`` to :data:`EXPERIMENTS` under ``cls.name``;
    its ``Settings`` learn the valid method names."""
    if cls.name in EXPERIMENTS:
        raise ValueError(f"experiment {cls.name!r} is registered twice")
    cls.Settings.METHODS = cls.methods
    EXPERIMENTS[cls.name] = cls()
    return cls


def write_results(
    run_dir: Path,
    name: str,
    settings: Any,
    numbers: dict[str, Any],
    verdicts: Iterable[Verdict] = (),
    seconds: float | None = None,
) -> Path:
    """``results.json``: the settings, the numbers, the verdicts and the wall time (NaN and inf
    written as strings)."""
    record: dict[str, Any] = {"experiment": name, "settings": asdict(settings), "results": numbers}
    record["verdicts"] = [v.to_dict() for v in verdicts]
    if seconds is not None:
        record["seconds"] = seconds
    path = Path(run_dir) / "results.json"
    path.write_text(json.dumps(json_safe(record), indent=2) + "\n")
    return path


def experiment_dir(out_dir: str | Path, name: str) -> Path:
    """A new numbered run directory for experiment ``name``."""
    return rundirs.new_run_dir(out_dir, f"exp-{name}")


def quick_settings(experiment: Experiment) -> Any:
    """The experiment's settings at its quick size (``quick`` applied, then validated)."""
    settings = experiment.Settings()
    for key, value in experiment.quick.items():
        if not hasattr(settings, key):
            raise ConfigError(f"{experiment.name}: quick names unknown setting {key!r}")
        setattr(settings, key, value)
    settings.validate()
    return settings


def make_settings(
    experiment: Experiment, overrides: Sequence[str] = (), quick: bool = False
) -> Any:
    """The experiment's settings: its defaults, or with ``quick`` its quick size, then
    ``overrides`` (``key=value``, under the settings' own names or the training-config names
    they mirror, :mod:`wgan.experiments.setting_names`), validated."""
    settings = quick_settings(experiment) if quick else experiment.Settings()
    return apply_overrides(settings, translate(settings, overrides, experiment.name))


# ----------------------------------------------------------------------------------------------
# Settings help
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SettingHelp:
    """One field of an experiment's settings: name, type, default and meaning."""

    name: str
    type: str
    default: Any
    meaning: str  # "" when no class of the hierarchy comments the field


def settings_fields(settings_cls: type) -> list[SettingHelp]:
    """Every field of an experiment's settings dataclass with its type, default and meaning."""
    meanings = field_meanings(settings_cls)
    defaults = settings_cls()
    return [
        SettingHelp(f.name, str(f.type), getattr(defaults, f.name), meanings.get(f.name, ""))
        for f in fields(settings_cls)
    ]


def settings_help(experiment: Experiment) -> str:
    """``wgan experiment NAME --help``: usage, description, then one line per setting with its
    type, default and meaning, and the quick size."""
    rows = [
        [h.name, h.type, repr(h.default), h.meaning or "-"]
        for h in settings_fields(experiment.Settings)
    ]
    table = format_table(["setting", "type", "default", "meaning"], rows)
    usage = f"usage: wgan experiment {experiment.name} [key=value ...] [--quick] [--out-dir DIR]"
    lines = [
        f"{usage} [--json]",
        "",
        textwrap.fill(experiment.description, 96),
        "",
        "settings (override with key=value):",
        *(line.rstrip() for line in table.splitlines()),
    ]
    mirrored = train_key_rows(experiment.Settings)
    if mirrored:
        lines += ["", "the same settings under their training-config names (as in wgan train):"]
        table = format_table(["training-config key", "setting"], mirrored)
        lines += [line.rstrip() for line in table.splitlines()]
    if experiment.quick:
        quick = ", ".join(f"{k}={v}" for k, v in experiment.quick.items())
        lines += ["", f"quick size (--quick; key=value overrides apply on top): {quick}"]
    else:
        lines += ["", "no quick size: --quick runs the defaults"]
    return "\n".join(lines)


def experiment_module(experiment: Experiment) -> types.ModuleType | None:
    """The module that defines ``experiment`` (its docstring states the claim and the papers)."""
    return sys.modules.get(type(experiment).__module__)
