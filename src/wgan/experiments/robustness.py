"""Shared pieces of the WGAN-GP paper's robustness studies on the digits (Gulrajani et al. 2017,
sec. 5.1): the training methods with their published optimisers, one run config per (method,
architecture), the settings and the experiment base that train every run as one study, and the
digit Inception score of each run.

Both experiments (:mod:`wgan.experiments.random_architectures`, :mod:`wgan.experiments.
architectures`) describe an architecture as config overrides of the ``generator.*`` and ``critic.*``
keys (:mod:`wgan.nets.build`), and train every run as an ordinary run directory through
:func:`wgan.scale.study.run_study`, so an interrupted experiment re-run with the same settings in
the same folder skips the finished runs, and ``launcher=ray`` / ``jobs=K`` spread them out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from wgan.config import Config, resolve
from wgan.experiments import framework as fw
from wgan.experiments.common import QUIET
from wgan.scale.study import run_study

#: The digit Inception score of each (architecture, method) run (None: failed).
Scores = dict[tuple[str, str], float | None]

#: The standard GAN is DCGAN's non-saturating game with Adam 2e-4, betas (0.5, 0.999), one
#: critic step (Radford et al. 2015); LSGAN the same with least squares (Mao et al. 2017); WGAN
#: with clipping RMSprop 5e-5, c = 0.01, 5 critic steps (Arjovsky et al. 2017); WGAN-GP Adam
#: 1e-4, betas (0, 0.9), lambda 10, 5 critic steps (Gulrajani et al. 2017). ``penalised``: the
#: critic takes a gradient penalty, so batch norm in D becomes layer norm (the penalty is per
#: sample; Gulrajani et al. 2017, sec. 4).
METHODS = fw.method_table(
    fw.Method("gan", "DCGAN (standard GAN)", "gan", ("objective.name=nonsaturating",)),
    fw.Method("lsgan", "LSGAN", "gan", ("objective.name=least_squares",)),
    fw.Method("wgan-clip", "WGAN (clipping)", "wgan"),
    fw.Method("wgan-gp", "WGAN-GP", "wgan-gp", info={"penalised": True}),
)


@dataclass
class StudySettings(fw.Settings):
    """What both studies set: the digits, the budget of every run and how the runs are carried
    out. ``threads`` is also each run's torch CPU thread count (0: the study's default)."""

    resolution: int = 8  # digits side: 8, 16, 32 or 64
    steps: int = 200  # generator iterations per run
    batch_size: int = 32  # batch size (the paper: 64)
    eval_samples: int = 1000  # samples scored by the digit classifier at the end of a run
    launcher: str = "local"  # how runs are carried out: local processes or ray
    jobs: int = 2  # runs at a time
    address: str = ""  # ray cluster address ("": a local Ray)
    device: str = "cpu"  # train.device of every run: cpu, cuda, auto

    TRAIN_KEYS = {
        "resolution": ("data.resolution",),
        "steps": ("train.steps",),
        "batch_size": ("data.batch_size",),
        "eval_samples": ("train.eval_samples",),
        "device": ("train.device",),
    }
    LIMITS = {
        "steps": ">= 1",
        "batch_size": ">= 2",
        "eval_samples": "[2, 100000]",
        "jobs": "[1, 1024]",
    }

    def checks(self) -> list[tuple[bool, str]]:
        return [
            *super().checks(),
            (self.resolution in (8, 16, 32, 64), "resolution must be 8, 16, 32 or 64"),
            (self.launcher in ("local", "ray"), "launcher must be local or ray"),
        ]


def method_config(
    method: str, name: str, arch: Sequence[str], s: Any, seed: int, latent_dim: int = 64
) -> Config:
    """The run config of ``method`` with the architecture ``arch`` (``generator.*`` /
    ``critic.*`` overrides; ``critic.norm=batch`` becomes layer norm for a penalised method) on
    the embedded digits, with the resolution, batch, steps, device and evaluation samples of the
    settings ``s`` and the seed ``seed``. No EMA of G, no intermediate evaluation, figure or
    checkpoint: one evaluation (with the digit Inception score) and one checkpoint at the end."""
    m = METHODS[method]
    if m.info.get("penalised"):
        arch = ["critic.norm=layer" if a == "critic.norm=batch" else a for a in arch]
    data = [
        "data.name=digits",
        f"data.resolution={s.resolution}",
        f"data.batch_size={s.batch_size}",
    ]
    nets = ["generator.arch=dcgan", "critic.arch=dcgan", f"generator.latent_dim={latent_dim}"]
    train = [
        f"train.steps={s.steps}",
        f"train.seed={seed}",
        f"train.device={s.device}",
        f"train.eval_samples={s.eval_samples}",
        "train.ema=0",
        *QUIET,
    ]
    cfg = resolve(m.preset, [*data, *nets, *m.overrides, *arch, *train])
    cfg.name = name
    return cfg


def digit_is(record: dict[str, Any] | None) -> float | None:
    """The digit Inception score of a finished run's final evaluation (None: failed/diverged)."""
    done = record and record.get("status") in ("done", "skipped", "resumed")
    value = (record.get("metrics") or {}).get("digit_is") if done else None
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def show_is(value: float | None) -> str:
    """A score for a table: two decimals, or ``failed``."""
    return "failed" if value is None else f"{value:.2f}"


class DigitStudy(fw.Experiment):
    """An experiment whose runs are one study (:func:`wgan.scale.study.run_study`, in
    ``<run_dir>/runs``) of every architecture with every method: one cell that trains them all,
    ``jobs`` at a time, a progress unit per run. Subclasses give the architectures
    (:meth:`architectures`) and their own numbers from the digit Inception score of each run
    (:meth:`numbers`)."""

    def architectures(self, settings: Any) -> list[tuple[str, list[str]]]:
        """Each architecture's name and its config overrides."""
        raise NotImplementedError

    def run_methods(self, settings: Any) -> list[str]:
        """The methods each architecture is trained with (default: all)."""
        return list(self.methods)

    def numbers(self, settings: Any, scores: Scores) -> dict:
        """The experiment's own numbers from the score of each (architecture, method) run."""
        raise NotImplementedError

    def study_runs(self, s: Any) -> list[tuple[str, Config]]:
        """The runs ``<architecture>-<method>``, seeded ``seed + i`` for the i-th architecture
        (every method of one architecture starts from the same seed)."""
        return [
            (f"{a}-{m}", method_config(m, f"{a}-{m}", overrides, s, s.seed + i))
            for i, (a, overrides) in enumerate(self.architectures(s))
            for m in self.run_methods(s)
        ]

    def cells(self, settings: Any) -> list[fw.Cell]:
        return [fw.Cell(seed=settings.seed, value="study")]

    def units(self, settings: Any, cell: fw.Cell) -> int:
        return len(self.study_runs(settings))

    def measure(self, s: Any, cell: fw.Cell, ctx: fw.Context) -> dict[str, Any]:
        """Train (or skip, if finished) every run; the study's records, and the digit
        Inception score of the real held-out digits."""
        from wgan.metrics import digit_inception_score, digits_split

        folder, address, threads = ctx.run_dir / "runs", s.address or None, s.threads or None
        records = run_study(self.study_runs(s), folder, s.launcher, s.jobs, address, threads)
        real = digit_inception_score(digits_split(s.resolution)[2])["digit_is"]
        return {"runs": records, "real_digit_is": real}

    def summarise(self, settings: Any, records: list[dict[str, Any]]) -> dict[str, Any]:
        """The experiment's numbers, the real digits' score and the study's records."""
        (study,) = records
        keys = [(a, m) for a, _ in self.architectures(settings) for m in self.run_methods(settings)]
        scores = {k: digit_is(r) for k, r in zip(keys, study["runs"], strict=True)}
        own = self.numbers(settings, scores)
        return {**own, "real_digit_is": study["real_digit_is"], "runs": study["runs"]}

    @staticmethod
    def footer(s: Any, numbers: dict[str, Any]) -> str:
        """The last line of the table: the real digits' score and the run size."""
        r = s.resolution
        return (
            f"digit Inception score of the real held-out digits at {r}x{r}: "
            f"{numbers['real_digit_is']:.2f}; {s.steps} generator iterations per run, "
            f"batch {s.batch_size}."
        )
