"""Shared plumbing for experiments: typed settings with overrides, a run directory, a table.

An experiment is a function ``run(settings, run_dir) -> ExperimentResult`` with a settings
dataclass whose defaults are fast on a laptop CPU (a ``full`` flag or larger values give the
full-size run). ``key=value`` overrides are type-checked by the same code as training configs.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from wgan.config import parse_override, set_value
from wgan.game import GANLoss
from wgan.runs import new_run_dir
from wgan.tracking import json_safe


@dataclass
class ExperimentResult:
    """What an experiment leaves: its numbers (also in ``results.json``), a table and figures."""

    name: str
    run_dir: Path
    numbers: dict[str, Any]
    table: str
    figures: list[Path] = field(default_factory=list)


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
        set_value(settings, key, value)
    validate = getattr(settings, "validate", None)
    if validate is not None:
        validate()
    return settings


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


def split_list(text: str) -> list[str]:
    """Items of a comma-separated setting such as ``"8gaussians,25gaussians"`` (blanks dropped)."""
    return [t.strip() for t in text.split(",") if t.strip()]


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run with ``n`` torch CPU threads (0: unchanged), restoring the setting afterwards.

    Small MLPs are fastest on one thread; on a shared 2-core machine more threads mostly wait.
    """
    before = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def fit_critic(
    critic: nn.Module,
    loss: GANLoss,
    real_source: Any,
    fake_source: Any,
    steps: int,
    batch_size: int,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
) -> nn.Module:
    """Train a critic alone against a fixed sample source; returns it in eval mode.

    ``real_source`` and ``fake_source`` have ``sample(n, generator)`` (a dataset, a fixed
    generator). Each step draws real, then fake, then the penalty's interpolation weights from
    ``generator``, minimises the objective's critic loss plus the constraint's penalty and
    applies the constraint's projection (e.g. clipping).
    """
    for _ in range(steps):
        real = real_source.sample(batch_size, generator)  # (B, dim)
        terms = loss.critic_terms(fake_source, critic, real, generator)
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        optimizer.step()
        loss.constraints.project(critic)
    critic.eval()
    return critic


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
            return body(settings, run_dir)

    return run


def experiment_dir(out_dir: str | Path, name: str) -> Path:
    """A new numbered run directory for experiment ``name``."""
    return new_run_dir(out_dir, f"exp-{name}")
