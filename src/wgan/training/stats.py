"""What the loop keeps between log points: running sums of loss terms, and a run's result;
what it logs beside them (the learning rates under a schedule, the progress bar's postfix).

Statistics stay on the device as running sums and are read back to the host only when they are
flushed (every ``train.log_every`` steps), so the training step never synchronises.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from wgan.gan import optim


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


def as_tensors(tree: Any, device: torch.device) -> Any:
    """Floats of a hyperparameter pytree as 0-d tensors (a compiled step must not see a changing
    Python number: each new value would recompile)."""
    if isinstance(tree, dict):
        return {k: as_tensors(v, device) for k, v in tree.items()}
    if isinstance(tree, list):
        return torch.tensor(tree, dtype=torch.float32, device=device)
    if isinstance(tree, float):
        return torch.tensor(tree, dtype=torch.float32, device=device)
    return tree


def learning_rates(cfg: Any, step: int, learned_generator: bool = True) -> dict[str, float]:
    """The learning rates of iteration ``step`` as logged (``lr/d``, ``lr/g``), or ``{}`` when
    ``train.lr_decay=none``: a constant series is not logged. Under ``linear`` decay the rate
    is ``lr * (1 - step / train.steps)`` (Gulrajani et al. 2017, CIFAR-10 schedule)."""
    if cfg.train.lr_decay == "none":
        return {}
    factor = float(optim.lr_factor(step, cfg.train.steps, cfg.train.lr_decay))
    out = {"lr/d": cfg.d_optim.lr * factor}
    if learned_generator:
        out["lr/g"] = cfg.g_optim.lr * factor
    return out


def short_stats(values: dict[str, float]) -> dict[str, str]:
    """The progress bar's postfix: critic loss, estimate, penalty and generator loss."""
    labels = {
        "d/loss": "d_loss",
        "d/estimate": "estimate",
        "d/penalty": "penalty",
        "g/loss": "g_loss",
    }
    return {labels[k]: f"{v:.3g}" for k, v in values.items() if k in labels}
