"""Momentum on the critic: a weight-clipped WGAN trained with RMSProp against Adam.

The claim: "WGAN training becomes unstable at times when one uses a momentum based optimizer
such as Adam (with β1 > 0) on the critic, or when one uses high learning rates"; the critic's
loss is non-stationary, and RMSProp does well even on such problems (Arjovsky, Chintala &
Bottou 2017, "Wasserstein GAN", arXiv 1701.07875, §3). The gradient penalty's paper then trains
WGAN-GP with Adam at β1 = 0, β2 = 0.9 without trouble (Gulrajani et al. 2017, "Improved
Training of Wasserstein GANs", arXiv 1704.00028, Algorithm 1).

What is run: the clipped WGAN (clip c, n_critic 5) on a toy mixture, with the critic's optimiser
RMSProp or Adam at several β1 (β2 = 0.999), the generator always on RMSProp, every optimiser at
the same learning rate, for several seeds; and WGAN-GP (λ = 0.1 as in ``gan_toy.py``) with Adam
(β1 = 0, β2 = 0.9) on both players as the reference.

What is measured, at ``n_records`` evenly spaced records on a held set (real samples from their
own seed, generated samples from a fixed noise seed):

* the critic's estimate ``Ŵ = E_real D(x) − E_fake D(G(z))`` (K · a lower bound of W1 for a
  K-Lipschitz critic) and the exact W1 of the samples to the held set
  (:func:`wgan.metrics.exact_w1`);
* instability: the roughness of the estimate over the second half of training,
  ``std(ΔŴ) / mean |Ŵ|`` (:func:`wgan.experiments.toy_probes.roughness`), scale-free because
  the clipped critic's Lipschitz constant K is unknown;
* the divergence rate: the fraction of seeds whose run went non-finite or ended with a larger
  W1 than it started with;
* the final W1.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from wgan.config import Config
from wgan.data import make_dataset
from wgan.experiments.common import (
    ExperimentResult,
    check_settings,
    experiment_config,
    experiment_entry,
    format_table,
    make_trainer,
    name_checks,
    progress,
    split_list,
    write_results,
)
from wgan.experiments.loss_vs_quality import held_out_terms
from wgan.experiments.mode_collapse import mean_std
from wgan.experiments.toy_probes import LECTURE_WGAN, held_real, roughness
from wgan.experiments.verdict import Verdict, decide

NAME = "momentum"
DESCRIPTION = (
    "Clipped WGAN with RMSProp vs Adam (several beta1) on the critic, several seeds: critic "
    "estimate and exact W1 over training, instability, divergence rate, final W1; WGAN-GP with "
    "Adam (beta1 = 0) beside it (Arjovsky et al. 2017, §3; Gulrajani et al. 2017)."
)

#: Optimiser name -> (label, critic optimiser, critic betas, gradient penalty?). The clipped runs
#: differ only in the critic's optimiser; ``gp-adam-0`` is WGAN-GP with its paper's Adam.
OPTIMISERS: dict[str, tuple[str, str, tuple[float, float], bool]] = {
    "rmsprop": ("WGAN clip, RMSProp", "rmsprop", (0.0, 0.9), False),
    "adam-0.9": ("WGAN clip, Adam β1=0.9", "adam", (0.9, 0.999), False),
    "adam-0.5": ("WGAN clip, Adam β1=0.5", "adam", (0.5, 0.999), False),
    "adam-0": ("WGAN clip, Adam β1=0", "adam", (0.0, 0.999), False),
    "gp-adam-0": ("WGAN-GP, Adam β1=0", "adam", (0.0, 0.9), True),
}

#: An Adam β1 > 0 run counts as less stable than RMSProp when its mean roughness is at least this
#: many times RMSProp's: seed-to-seed scatter of the roughness was about ±50% in the runs made
#: while writing this experiment, so a smaller ratio is not told apart from chance.
MIN_RATIO = 1.5
#: Fewer generator iterations than this leave the clipped critic's estimate in its initial rise,
#: and the second half of training (where roughness is measured) too short to judge.
MIN_STEPS = 300
MIN_RECORDS = 10  # records in the second half need at least a handful of changes


@dataclass
class MomentumSettings:
    """Settings of ``wgan experiment momentum`` (fast laptop-CPU defaults)."""

    dataset: str = "8gaussians"  # toy dataset
    optimisers: str = "rmsprop,adam-0.9,adam-0.5,adam-0,gp-adam-0"  # names from OPTIMISERS
    n_seeds: int = 3  # seeds seed, seed+1, ...
    seed: int = 0  # first training seed
    steps: int = 1000  # generator iterations per run
    lr: float = 1e-4  # learning rate of every optimiser, both players (WGAN paper: 5e-5)
    clip: float = 0.01  # weight clipping bound c of the clipped runs (WGAN paper: 0.01)
    penalty_weight: float = 0.1  # WGAN-GP lambda (gan_toy.py: 0.1)
    hidden: int = 64  # MLP width of generator and critic (gan_toy.py: 512)
    depth: int = 3  # hidden layers of generator and critic
    batch_size: int = 64  # samples per batch (WGAN paper: 64)
    n_records: int = 50  # evenly spaced records of the estimate and exact W1 (plus step 0)
    eval_samples: int = 500  # held real samples = generated samples per record (exact W1)
    device: str = "cpu"  # cpu | cuda | auto
    threads: int = 1  # torch CPU threads while running (restored after); 0: leave as is

    def validate(self) -> None:
        """Raise ConfigError for out-of-range values."""
        names = split_list(self.optimisers)
        checks = [
            *name_checks(names, OPTIMISERS, "optimisers", "optimiser"),
            (self.n_seeds >= 1, "n_seeds must be >= 1"),
            (self.steps >= 1, "steps must be >= 1"),
            (self.lr > 0, "lr must be > 0"),
            (self.clip > 0, "clip must be > 0"),
            (self.penalty_weight >= 0, "penalty_weight must be >= 0"),
            (self.hidden >= 1, "hidden must be >= 1"),
            (self.depth >= 0, "depth must be >= 0"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (2 <= self.n_records <= self.steps, "n_records must be in [2, steps]"),
            (2 <= self.eval_samples <= 5000, "eval_samples must be in [2, 5000] (exact W1)"),
            (self.threads >= 0, "threads must be >= 0"),
        ]
        check_settings(checks, "momentum: ")
        make_dataset(self.dataset)  # ConfigError for an unknown dataset


SETTINGS = MomentumSettings

#: ``wgan experiment all --quick``: the smallest size that is judged (2 seeds, MIN_STEPS,
#: MIN_RECORDS); ~16 s on the shared machine.
QUICK: dict[str, Any] = {"n_seeds": 2, "steps": MIN_STEPS, "n_records": MIN_RECORDS}


# ----------------------------------------------------------------------------------------------
# One run
# ----------------------------------------------------------------------------------------------


def optimiser_config(name: str, seed: int, s: MomentumSettings) -> Config:
    """The training config of optimiser ``name`` (every optimiser setting pinned here)."""
    _, d_name, betas, gp = OPTIMISERS[name]
    common = [f"d_optim.lr={s.lr}", f"g_optim.lr={s.lr}", "train.lr_decay=none"]
    if gp:
        preset = "toy-wgan-gp"
        pinned = [
            "constraint.clip=0",
            "constraint.penalty=two_sided",
            f"constraint.penalty_weight={s.penalty_weight}",
            "g_optim.name=adam",
            f"g_optim.betas=[{betas[0]}, {betas[1]}]",
        ]
    else:
        preset = "toy-wgan-clip"
        pinned = [f"constraint.clip={s.clip}", "constraint.penalty=none", "g_optim.name=rmsprop"]
    pinned += [f"d_optim.name={d_name}", f"d_optim.betas=[{betas[0]}, {betas[1]}]"]
    return experiment_config(
        preset,
        f"{NAME}-{name}-s{seed}",
        ["objective.name=wasserstein", "train.n_critic=5", *pinned, *common],
        dataset=s.dataset,
        batch_size=s.batch_size,
        hidden=s.hidden,
        depth=s.depth,
        steps=s.steps,
        seed=seed,
        device=s.device,
    )


def record_steps(steps: int, n_records: int) -> list[int]:
    """Step 0 and ``n_records`` evenly spaced steps up to ``steps``."""
    return sorted({0, *np.linspace(0, steps, n_records + 1).round().astype(int).tolist()})


def run_one(name: str, seed: int, s: MomentumSettings, root: Path, bar: Any) -> dict[str, Any]:
    """Train one (optimiser, seed), recording the held estimate and exact W1."""
    start = time.time()
    trainer = make_trainer(optimiser_config(name, seed, s), root / name / f"seed{seed}")
    real = held_real(trainer.dataset, s.eval_samples, s.seed + 101)
    history: dict[str, list[float]] = {"step": [], "estimate": [], "w1": []}
    diverged_at = None
    for target in record_steps(s.steps, s.n_records):
        n = target - trainer.step
        running = trainer.advance(n)
        bar.update(n)
        held = held_out_terms(trainer, real, s.seed + 202)
        history["step"].append(trainer.step)
        history["estimate"].append(held["estimate"])
        history["w1"].append(held["w1"])
        if not held["finite"] or not all(math.isfinite(v) for v in running.values()):
            diverged_at = trainer.step
            bar.update(s.steps - trainer.step)
            break
    second = len(history["estimate"]) // 2
    w1 = history["w1"]
    failed = diverged_at is not None or not (math.isfinite(w1[-1]) and w1[-1] <= w1[0])
    return {
        "optimiser": name,
        "seed": seed,
        "history": history,
        "roughness": roughness(history["estimate"][second:]),
        "w1_initial": w1[0],
        "w1_final": w1[-1],
        "diverged_at": diverged_at,
        "failed": failed,  # non-finite, or W1 ended above where it started
        "seconds": time.time() - start,
        "run_dir": str(trainer.run_dir),
    }


# ----------------------------------------------------------------------------------------------
# Summary and verdicts
# ----------------------------------------------------------------------------------------------


def summarise(runs_: list[dict], names: list[str]) -> dict[str, dict[str, Any]]:
    """Per optimiser: mean ± std over seeds of roughness and final W1, and the divergence rate."""
    out = {}
    for name in names:
        group = [r for r in runs_ if r["optimiser"] == name]
        rough = mean_std([r["roughness"] for r in group])
        w1 = mean_std([r["w1_final"] for r in group])
        out[name] = {
            "label": OPTIMISERS[name][0],
            "n_seeds": len(group),
            "roughness": {"mean": rough[0], "std": rough[1], "n": rough[2]},
            "w1_final": {"mean": w1[0], "std": w1[1], "n": w1[2]},
            "divergence_rate": sum(r["failed"] for r in group) / len(group),
        }
    return out


def _fmt(x: float) -> str:
    return f"{x:.3g}" if math.isfinite(x) else str(x)


def momentum_verdicts(
    summary: dict[str, dict[str, Any]], steps: int, n_records: int
) -> list[Verdict]:
    """The two verdicts from the per-optimiser summary (see :func:`summarise`).

    1. Adam with β1 > 0 on a clipped critic is less stable than RMSProp: every such run's mean
       roughness is at least :data:`MIN_RATIO` times RMSProp's.
    2. WGAN-GP with Adam β1 = 0 is stable: no seed failed and its roughness is at most
       RMSProp's (the WGAN paper's stable choice).

    Each is "not tested" when its optimisers were not run, with fewer than 2 seeds, fewer than
    :data:`MIN_STEPS` iterations or :data:`MIN_RECORDS` records.
    """
    big = steps >= MIN_STEPS and n_records >= MIN_RECORDS
    why_small = f"needs steps >= {MIN_STEPS}, n_records >= {MIN_RECORDS} and n_seeds >= 2"
    rms = summary.get("rmsprop")
    adams = [n for n in ("adam-0.9", "adam-0.5") if n in summary]
    seeds_ok = all(v["n_seeds"] >= 2 for v in summary.values())

    def rough(name: str) -> float:
        return summary[name]["roughness"]["mean"]

    def describe(names: list[str]) -> str:
        return "; ".join(
            f"{summary[n]['label']}: roughness {_fmt(rough(n))}, "
            f"divergence rate {summary[n]['divergence_rate']:.2f}, "
            f"final W1 {_fmt(summary[n]['w1_final']['mean'])}"
            for n in names
        )

    verdicts = []
    names = (["rmsprop"] if rms else []) + adams
    ok = rms is not None and bool(adams) and all(math.isfinite(rough(n)) for n in names)
    holds = ok and all(rough(n) >= MIN_RATIO * rough("rmsprop") for n in adams)
    verdicts.append(
        decide(
            "A weight-clipped WGAN is unstable with a momentum optimiser (Adam, β1 > 0) on the "
            "critic: its loss is non-stationary, unlike with RMSProp",
            f"Arjovsky et al. 2017, WGAN, §3; {LECTURE_WGAN}",
            describe(names) if names else "-",
            holds,
            testable=ok and big and seeds_ok,
            why_not=f"RMSProp and an Adam with β1 > 0 must be run; {why_small}",
        )
    )
    gp = summary.get("gp-adam-0")
    ok = gp is not None and rms is not None and math.isfinite(gp["roughness"]["mean"])
    holds = ok and gp["divergence_rate"] == 0 and rough("gp-adam-0") <= rough("rmsprop")
    verdicts.append(
        decide(
            "WGAN-GP trains stably with Adam (β1 = 0, β2 = 0.9): no divergence and a critic "
            "loss no rougher than a clipped WGAN's with RMSProp",
            f"Gulrajani et al. 2017, WGAN-GP, Algorithm 1; {LECTURE_WGAN}",
            describe([n for n in ("gp-adam-0", "rmsprop") if n in summary]),
            holds,
            testable=ok and big and seeds_ok,
            why_not=f"gp-adam-0 and rmsprop must be run; {why_small}",
        )
    )
    return verdicts


# ----------------------------------------------------------------------------------------------
# Figure and table
# ----------------------------------------------------------------------------------------------


def figure(runs_: list[dict], summary: dict[str, dict[str, Any]], names: list[str]):
    """One panel per optimiser (estimate per seed, exact W1 on a twin axis), then roughness
    and final W1 per optimiser with one dot per seed.

    The estimate is drawn from the first record after step 0: the initial critic is not yet
    clipped, and its estimate would set the scale of a clipped critic's curve."""
    from wgan.figures.plotting import legend_beside, subplots

    n = len(names)
    fig, axes = subplots(2, max(n, 3), figsize=(4.2 * max(n, 3), 7.6), squeeze=False)
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink"]
    twins = []
    for ax, name in zip(axes[0], names, strict=False):
        twin = ax.twinx()
        twins.append(twin)
        for r, c in zip([r for r in runs_ if r["optimiser"] == name], colours * 10, strict=False):
            h = r["history"]
            ax.plot(
                h["step"][1:],
                h["estimate"][1:],
                "-",
                c=c,
                lw=1,
                label=f"estimate, seed {r['seed']}",
            )
            twin.plot(h["step"], h["w1"], ":", c=c, lw=1, label=f"exact W1, seed {r['seed']}")
        ax.set_xlabel("generator iteration")
        ax.set_ylabel("critic estimate E D(real) − E D(fake)")
        twin.set_ylabel("exact W1 to held data (dotted)")
        ax.set_title(f"{OPTIMISERS[name][0]}", fontsize=9)
    handles, labels = axes[0][0].get_legend_handles_labels()
    h2, l2 = twins[0].get_legend_handles_labels()
    for ax in axes[0][n:]:
        ax.axis("off")
    labels_x = names
    for ax, key, ylabel in (
        (axes[1][0], "roughness", "roughness std(ΔŴ) / mean |Ŵ| (2nd half)"),
        (axes[1][1], "w1_final", "final exact W1"),
    ):
        means = [summary[m][key]["mean"] for m in names]
        ax.bar(range(n), means, color="0.8", label="mean over seeds")
        for i, m in enumerate(names):
            vals = [r[key] for r in runs_ if r["optimiser"] == m]
            ax.scatter(
                [i] * len(vals), vals, s=12, c="k", zorder=3, label="one seed" if i == 0 else None
            )
        ax.set_xticks(range(n), labels_x, fontsize=7, rotation=30)
        ax.set_xlabel("critic optimiser")
        ax.set_ylabel(ylabel)
        ax.set_title(key.replace("_", " "), fontsize=9)
        legend_beside(ax)
    for ax in axes[1][2:]:
        ax.axis("off")
    # The curves' legend in the empty bottom-right panel: beside the last curve panel it would
    # sit on that panel's twin-axis label.
    axes[1][2].legend(handles + h2, labels + l2, loc="upper left", fontsize=7, title="curves")
    fig.suptitle("Momentum on the critic: clipped WGAN with RMSProp vs Adam; WGAN-GP with Adam")
    fig.tight_layout()
    return fig


def table(summary: dict[str, dict[str, Any]], s: MomentumSettings) -> str:
    rows = [
        [
            v["label"],
            f"{_fmt(v['roughness']['mean'])} ± {_fmt(v['roughness']['std'])}",
            f"{v['divergence_rate']:.2f}",
            f"{_fmt(v['w1_final']['mean'])} ± {_fmt(v['w1_final']['std'])}",
            v["n_seeds"],
        ]
        for v in summary.values()
    ]
    head = ["run", "roughness of estimate", "divergence rate", "final exact W1", "seeds"]
    return "\n".join(
        [
            format_table(head, rows),
            f"(mean ± std over seeds; {s.dataset}; MLPs {s.depth}x{s.hidden}; {s.steps} generator "
            f"iterations at lr {s.lr:g}; clip {s.clip:g}; roughness = std of the estimate's "
            f"changes / its mean size over the second half of {s.n_records} records; divergence "
            "= non-finite or final W1 above the initial)",
        ]
    )


# ----------------------------------------------------------------------------------------------
# Entry point
# ----------------------------------------------------------------------------------------------


def body(settings: MomentumSettings, run_dir: Path) -> ExperimentResult:
    """Train every (optimiser, seed), summarise, judge, plot."""
    from wgan.figures.plotting import save_figure

    names = split_list(settings.optimisers)
    seeds = [settings.seed + k for k in range(settings.n_seeds)]
    with progress(settings.steps * len(names) * len(seeds), NAME) as bar:
        runs_ = []
        for name in names:
            for seed in seeds:
                bar.set_postfix_str(f"{name} seed {seed}")
                runs_.append(run_one(name, seed, settings, run_dir, bar))
    summary = summarise(runs_, names)
    verdicts = momentum_verdicts(summary, settings.steps, settings.n_records)
    path = save_figure(figure(runs_, summary, names), run_dir / "momentum.png")
    numbers = {"summary": summary, "runs": runs_, "min_ratio": MIN_RATIO}
    write_results(run_dir, NAME, settings, numbers)
    text = table(summary, settings) + "\n" + "\n".join(v.line() for v in verdicts)
    return ExperimentResult(NAME, run_dir, numbers, text, [path], verdicts)


run = experiment_entry(body)
