"""f-GAN with every divergence of the f-GAN table on one toy mixture (Nowozin et al. 2016).

Nowozin, Cseke & Tomioka 2016 ("f-GAN: Training Generative Neural Samplers using Variational
Divergence Minimization", arXiv 1606.00709) train a generator ``Q_θ`` against a critic
``T_ω = g_f(V_ω)`` on the variational lower bound (their eq. 6)

    F(θ, ω) = E_{x~P}[g_f(V_ω(x))] - E_{x~Q_θ}[f*(g_f(V_ω(x)))]  ≤  D_f(P ‖ Q_θ),

with ``f*`` the Fenchel conjugate of the convex generator ``f`` of the divergence and ``g_f`` an
output activation into ``dom f*`` (their Tables 1-2; here :data:`wgan.objectives.DIVERGENCES`).
The critic maximises ``F``; the generator minimises it (``generator_loss=saddle``, the preset
default) or maximises ``E_Q[g_f(V(G(z)))]`` (``alternative``, their §3.2).

For every divergence this experiment reports:

* the final estimate: the trainer's running mean of ``F`` (``d/estimate``) over the last
  ``final_window`` generator iterations, and ``F`` on a held set (2,500 real / 2,500 generated
  samples) at the end. It is a *lower bound* of the divergence the critic implies; for
  ``jensen_shannon`` it bounds 2 JSD and for ``gan`` it bounds ``2 JSD - log 4`` (see
  :mod:`wgan.objectives.fdivergence_table` for the constants of each row);
* modes captured, fraction of high-quality samples and KL to uniform
  (:func:`wgan.metrics.mode_metrics`, VEEGAN / PacGAN protocol, 2,500 samples, 3σ) and the
  exact W1 of 2,500 samples to 2,500 real ones (:func:`wgan.metrics.exact_w1`).

Divergences whose statistics become non-finite stop with
:class:`wgan.errors.TrainingDiverged`; the table says "diverged at step N" for them (N is the
first logged step with a non-finite value, logged every ``log_every`` iterations) and the
experiment goes on with the next divergence.

A consistency check hides in the table: ``jensen_shannon`` and ``gan`` train *identically*.
Their activations differ by a constant, ``T_JS = T_GAN + log 2``, and so do their conjugates,
``f*_JS(T_JS) = f*_GAN(T_GAN) - log 2``, so ``F_JS = F_GAN + log 4`` with the same gradients:
from the same seed both rows show the same samples and metrics, and estimates ``log 4`` apart.

Every run uses the same networks, optimiser and budget (the ``toy-gan`` optimiser, Adam 2e-4,
betas (0.5, 0.999), one critic step per generator step, pinned here), so the rows differ only
in ``f``, ``f*`` and ``g_f``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from wgan.config import Config
from wgan.data import make_dataset
from wgan.errors import ConfigError
from wgan.experiments.common import (
    ExperimentResult,
    check_settings,
    experiment_config,
    experiment_entry,
    format_table,
    name_checks,
    progress,
    run_config,
    split_list,
    write_results,
)
from wgan.experiments.verdict import (
    LECTURE_IMPROVED,
    Verdict,
    decide,
    finite,
    fmt,
)
from wgan.objectives import DIVERGENCES
from wgan.training.trainer import Trainer

NAME = "f-divergences"
DESCRIPTION = (
    "f-GAN with every divergence of the f-GAN table on 8 Gaussians: final variational estimate, "
    "modes captured, high-quality samples and exact W1 per divergence (Nowozin et al. 2016)."
)

#: The optimiser and schedule of every f-GAN run (the ``toy-gan`` preset's, pinned).
PINNED = (
    "objective.name=fgan",
    "g_optim.name=adam",
    "d_optim.name=adam",
    "g_optim.lr=2e-4",
    "d_optim.lr=2e-4",
    "g_optim.betas=[0.5, 0.999]",
    "d_optim.betas=[0.5, 0.999]",
    "train.n_critic=1",
    "train.lr_decay=none",
    "constraint.clip=0",
    "constraint.penalty=none",
)


@dataclass
class FDivergencesSettings:
    """Settings of ``wgan experiment f-divergences`` (fast laptop-CPU defaults).

    Paper-size networks: ``hidden=512``; longer runs: ``steps=10000``.
    """

    dataset: str = "8gaussians"  # toy dataset name
    divergences: str = "all"  # "all" or comma-separated names of wgan.objectives.DIVERGENCES
    generator_loss: Literal["saddle", "alternative"] = "saddle"  # minimise F, or max E_Q[g_f(V)]
    pi: float = 0.5  # weight of weighted_jensen_shannon
    steps: int = 2000  # generator iterations per divergence
    hidden: int = 128  # MLP width of generator and critic
    depth: int = 3  # hidden layers of generator and critic
    batch_size: int = 256  # samples per batch
    seed: int = 0  # training seed (the same for every divergence)
    eval_samples: int = 2500  # protocol: 2,500 samples
    log_every: int = 10  # statistics read back (and checked for NaN/inf) this often
    final_window: int = 200  # the final estimate averages the last this many iterations
    device: str = "cpu"  # cpu | cuda | auto
    threads: int = 1  # torch CPU threads while running (restored after); 0: leave as is

    def divergence_list(self) -> list[str]:
        if self.divergences.strip() == "all":
            return list(DIVERGENCES)
        return split_list(self.divergences)

    def validate(self) -> None:
        """Raise ConfigError for out-of-range values."""
        names = self.divergence_list()
        checks = [
            *name_checks(names, DIVERGENCES, "divergences", "divergence", "all, "),
            (0.0 < self.pi < 1.0, "pi must be in (0, 1)"),
            (self.steps >= 1, "steps must be >= 1"),
            (self.hidden >= 1, "hidden must be >= 1"),
            (self.depth >= 0, "depth must be >= 0"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (2 <= self.eval_samples <= 5000, "eval_samples must be in [2, 5000] (exact W1)"),
            (self.log_every >= 1, "log_every must be >= 1"),
            (self.final_window >= 1, "final_window must be >= 1"),
            (self.threads >= 0, "threads must be >= 0"),
        ]
        check_settings(checks, "f-divergences: ")
        if make_dataset(self.dataset).modes is None:
            raise ConfigError(f"f-divergences: dataset {self.dataset!r} has no modes to count")


SETTINGS = FDivergencesSettings

#: ``wgan experiment all --quick``: six of the divergences (those that train at the default size
#: and total variation, which did not) at the default budget; at 1,000 iterations of 3x64 nets
#: none of them had trained yet.
QUICK: dict[str, Any] = {
    "divergences": "kl,reverse_kl,squared_hellinger,jensen_shannon,gan,total_variation",
    "eval_samples": 1000,
}


# ----------------------------------------------------------------------------------------------
# One divergence
# ----------------------------------------------------------------------------------------------


def divergence_config(divergence: str, s: FDivergencesSettings) -> Config:
    """The f-GAN config of ``divergence`` under the experiment's settings."""
    return experiment_config(
        "toy-gan",
        f"{NAME}-{divergence}",
        [
            *PINNED,
            f"objective.divergence={divergence}",
            f"objective.generator_loss={s.generator_loss}",
            f"objective.pi={s.pi}",
            f"train.eval_samples={s.eval_samples}",
            f"train.log_every={s.log_every}",
        ],
        dataset=s.dataset,
        batch_size=s.batch_size,
        hidden=s.hidden,
        depth=s.depth,
        steps=s.steps,
        seed=s.seed,
        device=s.device,
    )


@torch.no_grad()
def held_out_estimate(trainer: Trainer, n: int, seed: int) -> float:
    """``F = E_P[T] - E_Q[f*(T)]`` on ``n`` fresh real and ``n`` generated samples."""
    g = torch.Generator().manual_seed(seed)
    real = trainer.dataset.sample(n, generator=g).to(trainer.device)  # (n, dim)
    fake = trainer.samples(n, seed=seed + 1).to(trainer.device)  # (n, dim)
    terms = trainer.loss.objective.critic_loss(trainer.critic(real), trainer.critic(fake))
    return float(terms["estimate"])


def run_divergence(divergence: str, s: FDivergencesSettings, root: Path) -> dict[str, Any]:
    """Train one f-GAN; return its history, final estimates and sample metrics.

    Training goes through :meth:`Trainer.fit` (:func:`~wgan.experiments.common.run_config`) with
    a JSONL tracker (no TensorBoard), so the run directory is an ordinary run (``wgan`` can
    sample from or resume it); the history is taken by the loop's hook at every logged step
    (the values written to its ``metrics.jsonl``).
    """
    cfg = divergence_config(divergence, s)
    start = time.time()
    keys = {"estimate": "d/estimate", "d_loss": "d/loss", "g_loss": "g/loss"}
    history: dict[str, list] = {"step": [], **{k: [] for k in keys}}

    def record(trainer: Trainer, values: dict[str, float]) -> None:  # after every logged step
        history["step"].append(trainer.step)
        for key, name in keys.items():
            history[key].append(values.get(name, math.nan))

    run = run_config(cfg, Path(root) / divergence, track=True, hook=record)
    trainer = run.trainer
    out: dict[str, Any] = {"divergence": divergence, "diverged_at": None, "error": None}
    if run.result is not None:
        out["metrics"] = run.result.metrics
        out["figure"] = str(run.result.figure) if run.result.figure is not None else None
    else:  # non-finite statistics, or e.g. non-finite samples in the final evaluation
        out.update(metrics=None, figure=None, diverged_at=run.diverged_at, error=run.error)
    out["history"] = history
    # Final estimate: mean of the running estimate over the last `final_window` iterations.
    last = trainer.step
    window = [
        e
        for st, e in zip(history["step"], history["estimate"], strict=True)
        if st > last - s.final_window and math.isfinite(e)
    ]
    out["final_estimate"] = float(np.mean(window)) if window and out["metrics"] else float("nan")
    out["held_out_estimate"] = (
        held_out_estimate(trainer, s.eval_samples, s.seed + 404)
        if out["metrics"] is not None
        else float("nan")
    )
    out["samples"] = (
        trainer.samples(1000, seed=s.seed + 505).numpy() if out["metrics"] is not None else None
    )  # (1000, 2) for the figure
    out["seconds"] = time.time() - start
    out["run_dir"] = str(trainer.run_dir)
    out["config"] = cfg.to_dict()
    return out


# ----------------------------------------------------------------------------------------------
# Table and figures
# ----------------------------------------------------------------------------------------------


#: A finite estimate larger than this in magnitude is reported as exploded (no divergence of
#: these toy distributions is anywhere near it; the critic has run off to huge outputs).
EXPLODED = 1e6


def status(r: dict[str, Any]) -> str:
    """``ok``, ``diverged at step N`` (non-finite) or ``estimate exploded`` (finite but huge)."""
    if r["metrics"] is None:
        return f"diverged at step {r['diverged_at']}"
    if not all(abs(r[k]) <= EXPLODED for k in ("final_estimate", "held_out_estimate")):
        return f"finished; estimate exploded (|F| > {EXPLODED:g})"
    return "ok"


def table(results: list[dict[str, Any]], s: FDivergencesSettings) -> str:
    headers = [
        "divergence",
        "estimate (train)",
        "estimate (held)",
        "modes",
        "high quality %",
        "KL to uniform",
        "exact W1",
        "seconds",
        "status",
    ]
    rows = []
    for r in results:
        m = r["metrics"]
        if m is None:
            rows.append(
                [r["divergence"], "-", "-", "-", "-", "-", "-", round(r["seconds"], 1),
                 f"diverged at step {r['diverged_at']}"]
            )  # fmt: skip
            continue
        kl = m.get("kl_to_uniform")
        rows.append(
            [
                r["divergence"],
                r["final_estimate"],
                r["held_out_estimate"],
                f"{m['modes_captured']}/{m['n_modes']}",
                round(100 * m["high_quality_fraction"], 1),
                "-" if kl is None else round(kl, 3),
                round(m["w1"], 4),
                round(r["seconds"], 1),
                status(r),
            ]
        )
    note = (
        f"(dataset {s.dataset}; f-GAN generator loss '{s.generator_loss}'; MLPs "
        f"{s.depth}x{s.hidden}; {s.steps} generator iterations, Adam 2e-4; estimate (train) = "
        f"mean of d/estimate over the last {s.final_window} iterations; estimate (held) and "
        f"metrics on {s.eval_samples} samples; each estimate is a lower bound of its divergence: "
        "jensen_shannon bounds 2 JSD, gan bounds 2 JSD - log 4)"
    )
    return format_table(headers, rows) + "\n" + note


def plot_samples(results: list[dict[str, Any]], dataset, path: Path) -> Path:
    """A grid of generated samples over the data, one panel per divergence."""
    from wgan.figures.plotting import legend_beside, save_figure, scatter_panel, subplots

    n = len(results)
    ncol = min(5, n)
    nrow = math.ceil(n / ncol)
    fig, axes = subplots(nrow, ncol, figsize=(3.3 * ncol, 3.9 * nrow), squeeze=False)
    real = dataset.sample(1000, generator=torch.Generator().manual_seed(6)).numpy()
    modes = dataset.modes.numpy()
    for ax, r in zip(axes.flat, results, strict=False):
        if r["samples"] is not None:
            m = r["metrics"]
            title = (
                f"{r['divergence']}\n{m['modes_captured']}/{m['n_modes']} modes, W1 {m['w1']:.3f}"
            )
        else:
            title = f"{r['divergence']}\ndiverged at step {r['diverged_at']}"
        scatter_panel(ax, real, r["samples"], modes, dataset.bounds(), title)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    # one legend, beside the top-right panel (the samples fill the panels)
    full = max(axes.flat, key=lambda a: len(a.get_legend_handles_labels()[1]))
    legend_beside(axes[0][-1], *full.get_legend_handles_labels(), markerscale=3)
    fig.suptitle("f-GAN samples per divergence")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_bars(results: list[dict[str, Any]], path: Path) -> Path:
    """Bar charts per divergence: final estimate, modes captured, high quality %, exact W1."""
    from wgan.figures.plotting import legend_beside, save_figure, subplots

    names = [r["divergence"] for r in results]
    finished = [r["metrics"] is not None for r in results]  # not diverged: samples measured
    sane = [status(r) == "ok" for r in results]  # and an estimate that did not explode

    def values(fn, ok: list[bool]) -> tuple[list[float], list[bool]]:
        return [fn(r) if good else 0.0 for r, good in zip(results, ok, strict=True)], ok

    panels = [
        (
            "final estimate (train)",
            *values(lambda r: r["final_estimate"], sane),
            "lower bound of D_f",
        ),
        ("modes captured", *values(lambda r: r["metrics"]["modes_captured"], finished), "modes"),
        (
            "high-quality samples",
            *values(lambda r: 100 * r["metrics"]["high_quality_fraction"], finished),
            "% within 3σ of a mode",
        ),
        ("exact W1 to the data", *values(lambda r: r["metrics"]["w1"], finished), "W1"),
    ]
    fig, axes = subplots(1, 4, figsize=(18, 4.6))
    x = np.arange(len(names))
    for ax, (title, vals, ok, ylabel) in zip(axes, panels, strict=True):
        ax.bar(x, vals, color="tab:blue", label="trained")
        bad = [i for i, good in enumerate(ok) if not good]
        if bad:
            ax.bar(bad, [0.0] * len(bad), color="tab:gray", label="diverged / exploded")
            for i in bad:
                ax.annotate("x", (i, 0), ha="center", va="bottom", color="tab:red")
        ax.axhline(0.0, color="k", lw=0.5)
        ax.set_xticks(x)
        ax.set_xticklabels(names, rotation=60, ha="right", fontsize=7)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(ylabel)
        ax.set_xlabel("divergence (red x: diverged or exploded, no value)")
    legend_beside(axes[-1])
    fig.suptitle("f-GAN: one bar per divergence")
    fig.tight_layout()
    return save_figure(fig, path)


# ----------------------------------------------------------------------------------------------
# Entry point
# ----------------------------------------------------------------------------------------------


@experiment_entry
def run(settings: FDivergencesSettings, run_dir: Path) -> ExperimentResult:
    """Train one f-GAN per divergence, tabulate and plot."""
    names = settings.divergence_list()
    results = []
    with progress(len(names), NAME) as bar:
        for d in names:
            bar.set_postfix_str(d)
            results.append(run_divergence(d, settings, run_dir))
            bar.update(1)
    dataset = make_dataset(settings.dataset)
    figures = [
        plot_samples(results, dataset, run_dir / "f_divergences_samples.png"),
        plot_bars(results, run_dir / "f_divergences_bars.png"),
    ]
    numbers = {
        "divergences": {
            r["divergence"]: {
                "status": status(r),
                **{k: v for k, v in r.items() if k not in ("samples", "divergence")},
            }
            for r in results
        },
        "sizes": {
            "hidden": settings.hidden,
            "depth": settings.depth,
            "steps": settings.steps,
            "eval_samples": settings.eval_samples,
        },
    }
    write_results(run_dir, NAME, settings, numbers)
    verdicts = f_divergences_verdicts(numbers, settings)
    return ExperimentResult(NAME, run_dir, numbers, table(results, settings), figures, verdicts)


# ----------------------------------------------------------------------------------------------
# Verdicts
# ----------------------------------------------------------------------------------------------

FD_MIN_STEPS = 1000  # the toy f-GANs need about this many iterations to spread over the ring
FD_MIN_MODES = 0.5  # "trains a generator": finite, and at least half the modes captured
FD_TOL = 0.01  # JS vs GAN rows: equal metrics and estimates log 4 apart, to this tolerance


def f_divergences_verdicts(numbers: dict[str, Any], settings: Any) -> list[Verdict]:
    """Every divergence of the f-GAN table trains a generator (Nowozin et al. 2016), and the
    JS and GAN rows train identically (their bounds differ by log 4)."""
    rows = numbers["divergences"]
    good, bad = [], []
    for name, r in rows.items():
        m = r.get("metrics")
        fine = r["status"] == "ok" and m is not None
        (good if fine and m["modes_captured"] >= FD_MIN_MODES * m["n_modes"] else bad).append(name)
    source = "Nowozin, Cseke & Tomioka 2016, f-GAN"
    # When not one divergence trained, the budget is too short for any of them (at 1,000
    # iterations with 3x64 nets every row was still near its initial W1 of ~1, 0-3 modes): the
    # run says nothing about which divergences can be trained.
    why = (
        f"{settings.steps} generator iterations < {FD_MIN_STEPS}"
        if settings.steps < FD_MIN_STEPS
        else f"no divergence trained in {settings.steps} iterations: too short for any of them"
    )
    out = [
        decide(
            "Every f-divergence of the f-GAN table trains a generator",
            f"{source}, Tables 1-2 and Sec. 4; {LECTURE_IMPROVED}",
            f"{len(good)}/{len(rows)} trained (finite, >= half the modes)"
            + (f"; failed: {', '.join(bad)}" if bad else ""),
            not bad,
            settings.steps >= FD_MIN_STEPS and bool(good),
            why,
        )
    ]
    js, gan = rows.get("jensen_shannon"), rows.get("gan")
    if js is not None and gan is not None:
        both = js.get("metrics") is not None and gan.get("metrics") is not None
        diff, same = math.nan, False
        if both:
            diff = js["held_out_estimate"] - gan["held_out_estimate"]
            same = all(
                abs(js["metrics"][k] - gan["metrics"][k])
                <= FD_TOL * max(1.0, abs(gan["metrics"][k]))
                for k in ("modes_captured", "w1")
            )
        out.append(
            decide(
                "The Jensen-Shannon and GAN rows train identically, their bounds log 4 apart",
                f"{source}, Table 1 (T_JS = T_GAN + log 2)",
                f"F_JS - F_GAN = {fmt(diff)} (log 4 = {math.log(4):.4f}); same modes and W1: "
                f"{same}",
                same and finite(diff) and abs(diff - math.log(4)) <= FD_TOL,
                both,
                "a run of the two did not finish",
            )
        )
    return out
