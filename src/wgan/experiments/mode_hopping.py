"""Mode hopping: the generated mode histogram over training, GANs against WGAN-GP.

The claim: generator and discriminator "get stuck in a vicious cycle": G learns to produce very
realistic samples of one mode (1s), D is fooled for a while, then D learns that mode and G
switches to another (2s) (lecture 19, "Problems with GANs"). The same cycle is drawn on a
mixture of Gaussians by Metz et al. 2017, "Unrolled Generative Adversarial Networks", arXiv
1611.02163, Fig. 1 (a standard GAN "rotates through the modes of the data distribution" and
never converges), and Goodfellow 2016, "NIPS 2016 Tutorial: Generative Adversarial Networks",
arXiv 1701.00160, §5.1.1, Fig. 22. A WGAN-GP critic kept near optimal should not chase the
generator from mode to mode (Arjovsky et al. 2017, §4.3; Gulrajani et al. 2017).

Methods: ``gan``, the minimax GAN with the DCGAN optimiser (Adam 2e-4, β1 = 0.5, both players);
``gan-metz``, the non-saturating GAN with the toy settings used for Metz et al.'s mixture
figure as we recall them from its public toy notebook (not re-checked): a generator ten times
faster than the discriminator (Adam lr 1e-3 vs 1e-4, β1 = 0.5), batch 512, 256-d noise, which
pin the batch and latent sizes of that method; ``wgan-gp``, WGAN-GP with ``gan_toy.py``'s
λ = 0.1 and Adam (5e-4, β = (0.5, 0.9)). Every learning rate is constant.

What is recorded: at ``n_records`` evenly spaced steps, the histogram of ``eval_samples``
generated samples over the modes (:func:`wgan.experiments.toy_probes.mode_histogram`: the
VEEGAN / PacGAN high-quality rule, a sample within 3σ of its nearest mode counts for it), from a
fixed noise seed, so that a change between records is a change of G, not of the noise.

What is measured from it:

* the heatmap of the fraction of samples per mode (modes x steps);
* hops: the dominant mode (the one holding at least ``concentrated`` of the high-quality
  samples, in a record with at least ``min_hq`` of them) changes between successive records
  that have one; the hop rate is hops per record transition;
* movement: the mean total-variation distance ``½ Σ_k |p_t(k) − p_s(k)|`` between successive
  normalised histograms (records with at least ``min_hq`` HQ samples) over the second half of
  training (after the early learning that moves every method's histogram);
* modes captured at the last record.
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
from wgan.errors import ConfigError
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
from wgan.experiments.toy_probes import LECTURE_PROBLEMS, mode_histogram
from wgan.experiments.verdict import Verdict, decide
from wgan.training.run import NonFiniteSamples

NAME = "mode-hopping"
DESCRIPTION = (
    "Heatmap of the generated mode histogram over training (modes x steps) for the minimax GAN "
    "and WGAN-GP on 8 and 25 Gaussians; how often the dominant mode changes (Metz et al. 2017)."
)

#: Method -> (preset, label, pinned overrides). Every optimiser setting is pinned here.
METHODS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "gan": (  # Goodfellow et al. 2014 with the DCGAN optimiser, k = 1
        "toy-gan",
        "GAN (minimax)",
        (
            "objective.name=minimax",
            "g_optim.name=adam",
            "d_optim.name=adam",
            "g_optim.lr=2e-4",
            "d_optim.lr=2e-4",
            "g_optim.betas=[0.5, 0.999]",
            "d_optim.betas=[0.5, 0.999]",
            "train.n_critic=1",
            "train.lr_decay=none",
        ),
    ),
    "gan-metz": (  # the toy protocol behind Metz et al. 2017, Fig. 1: a fast generator
        "toy-gan",
        "GAN (G lr 1e-3, D lr 1e-4)",
        (
            "objective.name=nonsaturating",
            "g_optim.name=adam",
            "d_optim.name=adam",
            "g_optim.lr=1e-3",
            "d_optim.lr=1e-4",
            "g_optim.betas=[0.5, 0.999]",
            "d_optim.betas=[0.5, 0.999]",
            "train.n_critic=1",
            "train.lr_decay=none",
            "data.batch_size=512",
            "generator.latent_dim=256",
        ),
    ),
    "wgan-gp": (  # gan_toy.py: lambda 0.1, Adam (0.5, 0.9); constant lr like the GAN
        "toy-wgan-gp",
        "WGAN-GP",
        (
            "objective.name=wasserstein",
            "constraint.clip=0",
            "constraint.penalty=two_sided",
            "constraint.penalty_weight=0.1",
            "g_optim.name=adam",
            "d_optim.name=adam",
            "g_optim.lr=5e-4",
            "d_optim.lr=5e-4",
            "g_optim.betas=[0.5, 0.9]",
            "d_optim.betas=[0.5, 0.9]",
            "train.n_critic=5",
            "train.lr_decay=none",
        ),
    ),
}

#: The GAN hops more than WGAN-GP when its late movement is at least this many times WGAN-GP's:
#: with 1,000 samples from fixed noise the movement of a generator that stopped changing is
#: near 0, so a factor of 2 separates hopping from the small drift of a converged run.
MIN_RATIO = 2.0
MIN_STEPS = 500  # fewer iterations: the first modes are still being found, nothing to hop from
MIN_RECORDS = 10  # the second half needs several transitions
MIN_COUNTED = 5  # records with enough HQ samples the GAN needs before its hops mean anything


@dataclass
class ModeHoppingSettings:
    """Settings of ``wgan experiment mode-hopping`` (fast laptop-CPU defaults)."""

    datasets: str = "8gaussians,25gaussians"  # comma-separated datasets with modes
    methods: str = "gan,gan-metz,wgan-gp"  # comma-separated names from METHODS
    seed: int = 0  # training seed
    steps: int = 2000  # generator iterations per run
    n_records: int = 40  # evenly spaced histograms over training (plus step 0)
    hidden: int = 128  # MLP width of generator and critic (gan_toy.py: 512)
    depth: int = 3  # hidden layers of generator and critic
    batch_size: int = 256  # samples per batch
    eval_samples: int = 1000  # generated samples per histogram (fixed noise)
    concentrated: float = 0.5  # share of HQ samples a mode needs to be the dominant one
    min_hq: int = 20  # HQ samples a record needs to count (fewer: hops and movement by chance)
    device: str = "cpu"  # cpu | cuda | auto
    threads: int = 1  # torch CPU threads while running (restored after); 0: leave as is

    def validate(self) -> None:
        """Raise ConfigError for out-of-range values."""
        methods = split_list(self.methods)
        checks = [
            *name_checks(methods, METHODS, "methods", "method"),
            (bool(split_list(self.datasets)), "datasets must name at least one dataset"),
            (self.steps >= 1, "steps must be >= 1"),
            (2 <= self.n_records <= self.steps, "n_records must be in [2, steps]"),
            (self.hidden >= 1, "hidden must be >= 1"),
            (self.depth >= 0, "depth must be >= 0"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (1 <= self.eval_samples <= 100_000, "eval_samples must be in [1, 100000]"),
            (0.0 < self.concentrated <= 1.0, "concentrated must be in (0, 1]"),
            (self.min_hq >= 1, "min_hq must be >= 1"),
            (self.threads >= 0, "threads must be >= 0"),
        ]
        check_settings(checks, "mode-hopping: ")
        for name in split_list(self.datasets):
            if make_dataset(name).modes is None:  # ConfigError for an unknown name
                raise ConfigError(f"mode-hopping: dataset {name!r} has no modes to count")


SETTINGS = ModeHoppingSettings

#: ``wgan experiment all --quick``: 8 Gaussians only, 1,200 iterations (judged); ~35 s on the
#: shared machine.
QUICK: dict[str, Any] = {"datasets": "8gaussians", "steps": 1200, "n_records": 24}


# ----------------------------------------------------------------------------------------------
# Histograms and what they show
# ----------------------------------------------------------------------------------------------


def dominant_modes(counts: np.ndarray, concentrated: float, min_hq: int = 1) -> list[int | None]:
    """Per record (row of ``counts``, (T, M)), the mode holding at least ``concentrated`` of
    the high-quality samples, or None (fewer than ``min_hq`` HQ samples, or no mode that
    concentrated)."""
    out: list[int | None] = []
    for row in counts:
        total = row.sum()
        k = int(row.argmax())
        out.append(k if total >= max(1, min_hq) and row[k] >= concentrated * total else None)
    return out


def hops(dominant: list[int | None]) -> int:
    """Changes of the dominant mode between successive records that have one (records without
    one, e.g. a generator in transit between modes, are skipped)."""
    seen = [d for d in dominant if d is not None]
    return sum(1 for a, b in zip(seen[:-1], seen[1:], strict=True) if a != b)


def movement(counts: np.ndarray, min_hq: int = 1) -> float:
    """Mean total-variation distance between successive normalised histograms (rows of
    ``counts``, (T, M)) among the records with at least ``min_hq`` HQ samples (a histogram of
    a handful of samples moves by chance alone); NaN with fewer than two such records."""
    kept = [row / row.sum() for row in counts if row.sum() >= max(1, min_hq)]
    tv = [0.5 * float(np.abs(a - b).sum()) for a, b in zip(kept[:-1], kept[1:], strict=True)]
    return float(np.mean(tv)) if tv else float("nan")


def hopping_stats(counts: np.ndarray, concentrated: float, min_hq: int = 1) -> dict[str, Any]:
    """Hops, hop rate, late movement (second half of the records), modes captured at the end,
    and how many records had at least ``min_hq`` HQ samples (the ones that count)."""
    dominant = dominant_modes(counts, concentrated, min_hq)
    n_hops = hops(dominant)
    return {
        "dominant": dominant,
        "hops": n_hops,
        "hop_rate": n_hops / max(1, len(counts) - 1),
        "late_movement": movement(counts[len(counts) // 2 :], min_hq),
        "records_counted": int((counts.sum(axis=1) >= max(1, min_hq)).sum()),
        "final_modes": int((counts[-1] > 0).sum()),
        "n_modes": int(counts.shape[1]),
    }


def hopping_verdict(
    dataset: str,
    gan: dict[str, Any] | None,
    wgan: dict[str, Any] | None,
    steps: int,
    n_records: int,
    label: str = "GAN",
) -> Verdict:
    """The GAN ``label`` hops between modes and WGAN-GP does not, on ``dataset``: the GAN's
    dominant mode changes at least once and its late movement is at least :data:`MIN_RATIO`
    times WGAN-GP's (``gan`` and ``wgan`` are :func:`hopping_stats` records)."""
    both = gan is not None and wgan is not None
    if both:  # numbers read back from results.json carry NaN as the string "nan"
        gan = {**gan, "late_movement": float(gan["late_movement"])}
        wgan = {**wgan, "late_movement": float(wgan["late_movement"])}
    measured = "-"
    holds = False
    if both:
        measured = (
            f"GAN: {gan['hops']} hops, late movement {gan['late_movement']:.3g}, "
            f"{gan['final_modes']}/{gan['n_modes']} modes at the end; WGAN-GP: {wgan['hops']} "
            f"hops, late movement {wgan['late_movement']:.3g}, "
            f"{wgan['final_modes']}/{wgan['n_modes']} modes; records counted (>= min_hq HQ "
            f"samples): GAN {gan['records_counted']}, WGAN-GP {wgan['records_counted']}"
        )
        g, w = gan["late_movement"], wgan["late_movement"]
        holds = (
            gan["hops"] >= 1 and math.isfinite(g) and (not math.isfinite(w) or g >= MIN_RATIO * w)
        )
    return decide(
        f"On {dataset}, the {label} hops from mode to mode as D learns each one; WGAN-GP does not",
        f"Metz et al. 2017, Unrolled GANs, Fig. 1; {LECTURE_PROBLEMS}",
        measured,
        holds,
        testable=both
        and steps >= MIN_STEPS
        and n_records >= MIN_RECORDS
        and gan["records_counted"] >= MIN_COUNTED
        and math.isfinite(gan["late_movement"]),
        why_not=f"needs the GAN and wgan-gp, steps >= {MIN_STEPS}, n_records >= {MIN_RECORDS} "
        f"and {MIN_COUNTED} GAN records with at least min_hq high-quality samples, two of them "
        "in the second half (else its movement is undefined)",
    )


# ----------------------------------------------------------------------------------------------
# One run
# ----------------------------------------------------------------------------------------------


def method_config(method: str, dataset: str, s: ModeHoppingSettings) -> Config:
    """The preset of ``method`` with the experiment's data, size, budget and seed."""
    preset, _, pinned = METHODS[method]
    return experiment_config(
        preset,
        f"{NAME}-{dataset}-{method}",
        pinned,
        dataset=dataset,
        batch_size=s.batch_size,
        hidden=s.hidden,
        depth=s.depth,
        steps=s.steps,
        seed=s.seed,
        device=s.device,
    )


def run_one(method: str, dataset: str, s: ModeHoppingSettings, root: Path, bar: Any) -> dict:
    """Train one (method, dataset), recording the mode histogram at evenly spaced steps."""
    start = time.time()
    trainer = make_trainer(method_config(method, dataset, s), root / dataset / method)
    data = trainer.dataset
    targets = sorted({0, *np.linspace(0, s.steps, s.n_records + 1).round().astype(int).tolist()})
    steps, rows, diverged_at = [], [], None
    for target in targets:
        n = target - trainer.step
        running = trainer.advance(n)
        bar.update(n)
        try:
            x = trainer.samples(s.eval_samples, seed=s.seed + 303)  # (N, 2), fixed noise
        except NonFiniteSamples:
            x = None
        if x is None or not all(math.isfinite(v) for v in running.values()):
            diverged_at = trainer.step
            bar.update(s.steps - trainer.step)
            break
        steps.append(trainer.step)
        rows.append(mode_histogram(x, data.modes, data.sigma))
    counts = np.stack(rows) if rows else np.zeros((0, len(data.modes)), dtype=int)  # (T, M)
    stats = hopping_stats(counts, s.concentrated, s.min_hq) if len(counts) else None
    return {
        "method": method,
        "dataset": dataset,
        "steps": steps,
        "counts": counts.tolist(),
        "stats": stats,
        "diverged_at": diverged_at,
        "seconds": time.time() - start,
        "run_dir": str(trainer.run_dir),
    }


# ----------------------------------------------------------------------------------------------
# Figure, table, entry point
# ----------------------------------------------------------------------------------------------


def figure(runs_: list[dict], datasets: list[str], methods: list[str], s: ModeHoppingSettings):
    """Heatmaps: fraction of samples per mode (rows) at each record (columns); white dots mark
    the dominant mode where there is one."""
    from wgan.figures.plotting import subplots

    nrow, ncol = len(datasets), len(methods)
    fig, axes = subplots(nrow, ncol, figsize=(5.0 * ncol, 3.6 * nrow), squeeze=False)
    for i, dataset in enumerate(datasets):
        for j, method in enumerate(methods):
            ax = axes[i][j]
            r = next(x for x in runs_ if x["dataset"] == dataset and x["method"] == method)
            counts = np.asarray(r["counts"], dtype=float)  # (T, M)
            label = METHODS[method][1]
            ax.set_xlabel("generator iteration")
            ax.set_ylabel("mode index")
            if not len(counts):
                ax.set_title(f"{dataset}, {label}: diverged at step {r['diverged_at']}", fontsize=9)
                continue
            steps = np.asarray(r["steps"])
            frac = counts.T / s.eval_samples  # (M, T)
            edges = np.concatenate(
                [steps, [steps[-1] + (steps[-1] - steps[-2] if len(steps) > 1 else 1)]]
            )
            mesh = ax.pcolormesh(
                edges, np.arange(frac.shape[0] + 1) - 0.5, frac, cmap="magma", vmin=0.0,
                vmax=max(float(frac.max()), 1e-9), shading="flat",
            )  # fmt: skip
            fig.colorbar(mesh, ax=ax, label="fraction of samples")
            centres = (edges[:-1] + edges[1:]) / 2
            dom = r["stats"]["dominant"]
            xs = [c for c, d in zip(centres, dom, strict=True) if d is not None]
            ys = [d for d in dom if d is not None]
            ax.scatter(xs, ys, s=6, c="white", edgecolors="none")
            st = r["stats"]
            ax.set_title(
                f"{dataset}, {label}: {st['hops']} hops, late movement "
                f"{st['late_movement']:.2f}\n(white dots: dominant mode)",
                fontsize=9,
            )
    fig.suptitle("Generated mode histogram over training (fixed noise, high-quality samples)")
    fig.tight_layout()
    return fig


def table(runs_: list[dict]) -> str:
    rows = []
    for r in runs_:
        st = r["stats"]
        if st is None:
            rows.append(
                [r["dataset"], METHODS[r["method"]][1], "-", "-", "-", "-", "-", "diverged"]
            )
            continue
        note = f"diverged at step {r['diverged_at']}" if r["diverged_at"] is not None else ""
        rows.append(
            [
                r["dataset"],
                METHODS[r["method"]][1],
                st["hops"],
                f"{st['hop_rate']:.3f}",
                f"{st['late_movement']:.3f}",
                st["records_counted"],
                f"{st['final_modes']}/{st['n_modes']}",
                note,
            ]
        )
    head = [
        "dataset",
        "method",
        "hops",
        "hop rate",
        "late movement (TV)",
        "records counted",
        "final modes",
        "note",
    ]
    return format_table(head, rows)


def body(settings: ModeHoppingSettings, run_dir: Path) -> ExperimentResult:
    """Train every (dataset, method), record the histograms, judge and plot."""
    from wgan.figures.plotting import save_figure

    datasets, methods = split_list(settings.datasets), split_list(settings.methods)
    with progress(settings.steps * len(datasets) * len(methods), NAME) as bar:
        runs_ = []
        for dataset in datasets:
            for method in methods:
                bar.set_postfix_str(f"{dataset} {method}")
                runs_.append(run_one(method, dataset, settings, run_dir, bar))
    verdicts = []  # one per (dataset, GAN method): each GAN against WGAN-GP
    for dataset in datasets:
        stats = {r["method"]: r["stats"] for r in runs_ if r["dataset"] == dataset}
        for gan in [m for m in methods if m.startswith("gan")] or ["gan"]:
            verdicts.append(
                hopping_verdict(
                    dataset,
                    stats.get(gan),
                    stats.get("wgan-gp"),
                    settings.steps,
                    settings.n_records,
                    METHODS[gan][1],
                )
            )
    path = save_figure(figure(runs_, datasets, methods, settings), run_dir / "mode_hopping.png")
    numbers = {"runs": runs_, "min_ratio": MIN_RATIO}
    write_results(run_dir, NAME, settings, numbers)
    text = "\n".join(
        [
            table(runs_),
            f"(MLPs {settings.depth}x{settings.hidden}; {settings.steps} generator iterations; "
            f"{settings.n_records} records of {settings.eval_samples} samples from fixed noise; "
            f"a dominant mode holds >= {settings.concentrated:g} of the HQ samples, in records "
            f"with >= {settings.min_hq} of them; late movement "
            "= mean TV between successive counted histograms over the second half)",
            *(v.line() for v in verdicts),
        ]
    )
    return ExperimentResult(NAME, run_dir, numbers, text, [path], verdicts)


run = experiment_entry(body)
