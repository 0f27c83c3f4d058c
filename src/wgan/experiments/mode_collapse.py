"""Mode collapse on Gaussian mixtures: minimax GAN, non-saturating GAN, WGAN, WGAN-GP.

Mode collapse is the generator mapping many latent codes to one or a few modes of the data (the
"Helvetica scenario" of Goodfellow et al. 2014, Sec. 6), and a minimax GAN can cycle through the
modes: the discriminator learns to reject the mode the generator currently produces, and the
generator moves to another (Metz et al. 2017, "Unrolled Generative Adversarial Networks", arXiv
1611.02163, Fig. 1). The WGAN paper reports "In no experiment did we see evidence of mode collapse
for the WGAN algorithm" (Arjovsky et al. 2017, arXiv 1701.07875, §4.3).

Protocol (VEEGAN, Srivastava et al. 2017, arXiv 1705.07761, §5.1; PacGAN, Lin et al. 2018,
arXiv 1712.04086, §5): after training, draw 2,500 samples; a sample is *high quality* if it lies
within 3 standard deviations of its nearest mode; a mode is *captured* if it is the nearest mode
of at least one high-quality sample; PacGAN also reports the KL divergence of the histogram of
high-quality samples over the modes to the uniform distribution (:func:`wgan.metrics.mode_metrics`).
The exact W1 of the 2,500 samples to 2,500 fresh real samples is reported beside them.

Data: ``8gaussians`` and ``25gaussians`` of the WGAN-GP toy script (``gan_toy.py``). Up to a
common scale, which none of the mode metrics sees, they have the geometry of PacGAN's released
code (``synthetic_data_experiments/*/config.py`` of github.com/fjxmlzn/PacGAN): ring = 8 modes on
a circle with std / radius = 0.01 (PacGAN: radius 1, std 0.01; here radius 2/1.414, std
0.02/1.414), grid = 5 x 5 modes with std / spacing = 0.025 (PacGAN: spacing 2, std 0.05; here
spacing 2/2.828, std 0.05/2.828). The networks, optimisers and budgets are *not* the papers'
(see :data:`PUBLISHED` for theirs), so the published numbers are a reference, not a target.

Methods are the package presets (``toy-gan``, ``toy-gan-ns``, ``toy-wgan-clip``,
``toy-wgan-gp``) with the experiment's network size, dataset, steps and seed; the resolved config
of every run is written to its run directory and to ``results.json``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wgan.config import Config
from wgan.data import make_dataset
from wgan.errors import ConfigError
from wgan.experiments.claims import mode_collapse_verdicts
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

NAME = "mode-collapse"
DESCRIPTION = (
    "Modes captured, high-quality samples and KL to uniform on 8 and 25 Gaussians for the "
    "minimax GAN, non-saturating GAN, WGAN (clipping) and WGAN-GP, beside published numbers."
)

#: Method name -> (preset, label).
METHODS: dict[str, tuple[str, str]] = {
    "gan": ("toy-gan", "GAN (minimax)"),
    "gan-ns": ("toy-gan-ns", "GAN (non-saturating)"),
    "wgan-clip": ("toy-wgan-clip", "WGAN (clipping)"),
    "wgan-gp": ("toy-wgan-gp", "WGAN-GP"),
}

#: The mode-collapse protocol of the published numbers below.
PUBLISHED_PROTOCOL = (
    "2,500 samples from the trained generator; high quality = within 3 standard deviations of "
    "the nearest mode; a mode is captured if it is the nearest mode of at least one "
    "high-quality sample; KL = KL(histogram of high-quality samples over modes || uniform) "
    "(PacGAN only). VEEGAN averages over 5 runs. Geometry and networks: see each paper; "
    "PacGAN's released code uses a ring of 8 modes of radius 1 with std 0.01 and a 5x5 grid "
    "at {-4,-2,0,2,4}^2 with std 0.05."
)

#: Published numbers, as printed in each paper's Table 1, for the 2-D mixtures. Only the numbers
#: the author of this module is confident of are included; GDPP (Elfeki et al. 2019,
#: arXiv 1812.00068, Tab. 1) also reports WGAN-GP on both mixtures: see that paper.
#: ``confidence`` says how sure we are that the number is transcribed correctly (the papers'
#: tables are images; these were not re-checked against the PDFs when this module was written).
PUBLISHED: list[dict[str, Any]] = [
    # VEEGAN, Srivastava et al. 2017, arXiv 1705.07761, Table 1 (2D Ring: 8 modes; 2D Grid: 25).
    *(
        {
            "source": "VEEGAN Tab. 1",
            "dataset": dataset,
            "n_modes": n_modes,
            "method": method,
            "modes": modes,
            "high_quality_pct": hq,
            "kl": None,
            "confidence": "high",
        }
        for dataset, n_modes, rows in (
            (
                "2D ring",
                8,
                (
                    ("GAN", 1.0, 99.3),
                    ("ALI", 2.8, 0.13),
                    ("Unrolled GAN", 7.6, 35.6),
                    ("VEEGAN", 8.0, 52.9),
                ),
            ),
            (
                "2D grid",
                25,
                (
                    ("GAN", 3.3, 0.5),
                    ("ALI", 15.8, 1.6),
                    ("Unrolled GAN", 23.6, 16.0),
                    ("VEEGAN", 24.6, 40.0),
                ),
            ),
        )
        for method, modes, hq in rows
    ),
    # PacGAN, Lin et al. 2018, arXiv 1712.04086, Table 1, 2D grid (25 modes), mean over runs.
    *(
        {
            "source": "PacGAN Tab. 1",
            "dataset": "2D grid",
            "n_modes": 25,
            "method": method,
            "modes": modes,
            "high_quality_pct": hq,
            "kl": kl,
            "confidence": "medium",
        }
        for method, modes, hq, kl in (
            ("GAN", 17.3, 94.8, 0.70),
            ("PacGAN2", 23.8, 91.3, 0.13),
            ("PacGAN3", 24.6, 94.2, 0.06),
            ("PacGAN4", 24.8, 93.6, 0.04),
        )
    ),
]


@dataclass
class ModeCollapseSettings:
    """Settings of ``wgan experiment mode-collapse`` (fast laptop-CPU defaults).

    More seeds / steps: ``n_seeds=5 steps=5000``; paper-size networks: ``hidden=512``.
    """

    datasets: str = "8gaussians,25gaussians"  # comma-separated dataset names
    methods: str = "gan,gan-ns,wgan-clip,wgan-gp"  # comma-separated names from METHODS
    n_seeds: int = 2  # seeds seed, seed+1, ...
    seed: int = 0  # first training seed
    steps: int = 1000  # generator iterations per run
    hidden: int = 128  # MLP width of generator and critic (gan_toy.py: 512)
    depth: int = 3  # hidden layers of generator and critic
    batch_size: int = 256  # samples per batch
    eval_samples: int = 2500  # samples for the mode metrics and exact W1 (protocol: 2,500)
    device: str = "cpu"  # cpu | cuda | auto
    threads: int = 1  # torch CPU threads while running (restored after); 0: leave as is

    def validate(self) -> None:
        """Raise ConfigError for out-of-range values."""
        methods = split_list(self.methods)
        checks = [
            *name_checks(methods, METHODS, "methods", "method"),
            (bool(split_list(self.datasets)), "datasets must name at least one dataset"),
            (self.n_seeds >= 1, "n_seeds must be >= 1"),
            (self.steps >= 1, "steps must be >= 1"),
            (self.hidden >= 1, "hidden must be >= 1"),
            (self.depth >= 0, "depth must be >= 0"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (2 <= self.eval_samples <= 5000, "eval_samples must be in [2, 5000] (exact W1)"),
            (self.threads >= 0, "threads must be >= 0"),
        ]
        check_settings(checks, "mode-collapse: ")
        for name in split_list(self.datasets):
            dataset = make_dataset(name)  # ConfigError for an unknown name
            if dataset.modes is None:
                raise ConfigError(f"mode-collapse: dataset {name!r} has no modes to count")


SETTINGS = ModeCollapseSettings

#: ``wgan experiment all --quick``: one seed, 1,000 iterations (the least at which coverage is
#: judged, :data:`wgan.experiments.claims.MC_MIN_STEPS`), both mixtures: at this budget the
#: minimax GAN covers the ring and drops modes only on the grid.
QUICK: dict[str, Any] = {"n_seeds": 1, "eval_samples": 1000}


# ----------------------------------------------------------------------------------------------
# One run
# ----------------------------------------------------------------------------------------------


def method_config(method: str, dataset: str, seed: int, s: ModeCollapseSettings) -> Config:
    """The preset of ``method`` with the experiment's data, size, budget and seed."""
    return experiment_config(
        METHODS[method][0],
        f"{NAME}-{dataset}-{method}-s{seed}",
        [f"train.eval_samples={s.eval_samples}", f"train.log_every={min(100, s.steps)}"],
        dataset=dataset,
        batch_size=s.batch_size,
        hidden=s.hidden,
        depth=s.depth,
        steps=s.steps,
        seed=seed,
        device=s.device,
    )


def run_one(method: str, dataset: str, seed: int, s: ModeCollapseSettings, root: Path) -> dict:
    """Train one (method, dataset, seed) and measure its final samples.

    Metrics come from the final evaluation of :meth:`Trainer.fit`
    (:func:`wgan.metrics.toy_metrics`): mode metrics and exact W1 on ``eval_samples`` generated
    vs as many real samples. A run whose statistics go non-finite is recorded as diverged (no
    metrics) instead of stopping the experiment.
    """
    cfg = method_config(method, dataset, seed, s)
    run = run_config(cfg, root / dataset / method / f"seed{seed}")
    out: dict[str, Any] = {"method": method, "dataset": dataset, "seed": seed}
    if run.result is not None:
        out["metrics"] = run.result.metrics
        out["figure"] = str(run.result.figure) if run.result.figure is not None else None
        out["samples"] = run.trainer.samples(1000, seed=seed + 303).numpy()  # (1000, 2), plots
        out["diverged_at"] = None
    else:
        out.update(metrics=None, figure=None, samples=None, diverged_at=run.diverged_at)
        out["error"] = run.error
    out["seconds"] = run.seconds
    out["run_dir"] = str(run.trainer.run_dir)
    out["config"] = cfg.to_dict()
    return out


# ----------------------------------------------------------------------------------------------
# Summaries
# ----------------------------------------------------------------------------------------------


def mean_std(values: list[float]) -> tuple[float, float, int]:
    """Mean and sample standard deviation (ddof=1; 0 for one value) of the finite values."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if v.size == 0:
        return float("nan"), float("nan"), 0
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0, int(v.size)


def _pm(mean: float, std: float, digits: int) -> str:
    return "-" if math.isnan(mean) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def summarise(runs_: list[dict], datasets: list[str], methods: list[str]) -> list[dict]:
    """One row per (dataset, method): mean ± std over seeds of every metric."""
    rows = []
    for dataset in datasets:
        for method in methods:
            group = [r for r in runs_ if r["dataset"] == dataset and r["method"] == method]
            done = [r["metrics"] for r in group if r["metrics"] is not None]
            row: dict[str, Any] = {
                "dataset": dataset,
                "method": method,
                "label": METHODS[method][1],
                "n_seeds": len(group),
                "n_diverged": len(group) - len(done),
                "n_modes": done[0]["n_modes"] if done else None,
            }
            for key, scale in (
                ("modes_captured", 1.0),
                ("high_quality_fraction", 100.0),
                ("kl_to_uniform", 1.0),
                ("w1", 1.0),
            ):
                values = [m[key] * scale if m.get(key) is not None else None for m in done]
                mean, std, n = mean_std(values)
                name = "high_quality_pct" if key == "high_quality_fraction" else key
                row[name] = {"mean": mean, "std": std, "n": n, "per_seed": values}
            rows.append(row)
    return rows


def tables(rows: list[dict], s: ModeCollapseSettings) -> str:
    """Our table (mean ± std over seeds) and the published table, as plain text."""
    ours = []
    for r in rows:
        note = f"{r['n_diverged']} diverged" if r["n_diverged"] else ""
        no_hq = r["modes_captured"]["n"] - r["kl_to_uniform"]["n"]
        if no_hq:
            note += ("; " if note else "") + f"KL undefined (no HQ sample) in {no_hq} seed(s)"
        ours.append(
            [
                r["dataset"],
                r["label"],
                f"{_pm(r['modes_captured']['mean'], r['modes_captured']['std'], 1)}"
                f" / {r['n_modes'] if r['n_modes'] is not None else '?'}",
                _pm(r["high_quality_pct"]["mean"], r["high_quality_pct"]["std"], 1),
                _pm(r["kl_to_uniform"]["mean"], r["kl_to_uniform"]["std"], 2),
                _pm(r["w1"]["mean"], r["w1"]["std"], 3),
                r["n_seeds"],
                note,
            ]
        )
    head = [
        "dataset",
        "method",
        "modes captured",
        "high quality %",
        "KL to uniform",
        "exact W1",
        "seeds",
        "note",
    ]
    published = [
        [
            p["source"],
            f"{p['dataset']} ({p['n_modes']} modes)",
            p["method"],
            f"{p['modes']:g}",
            f"{p['high_quality_pct']:g}",
            "-" if p["kl"] is None else f"{p['kl']:g}",
            p["confidence"],
        ]
        for p in PUBLISHED
    ]
    return "\n".join(
        [
            f"This run: mean ± std (ddof=1) over {s.n_seeds} seed(s); {s.eval_samples} samples; "
            f"MLPs {s.depth}x{s.hidden}; {s.steps} generator iterations.",
            format_table(head, ours),
            "",
            "As published (from each paper's Table 1; their networks and budgets, not ours):",
            format_table(
                ["source", "data", "method", "modes", "high quality %", "KL", "transcription"],
                published,
            ),
            f"Protocol: {PUBLISHED_PROTOCOL}",
        ]
    )


def plot_samples(runs_: list[dict], datasets: list[str], methods: list[str], path: Path) -> Path:
    """Scatter plots of generated samples (first seed) over the real modes, one per run."""
    from wgan.figures.plotting import legend_beside, save_figure, scatter_panel, subplots

    first = min(r["seed"] for r in runs_)
    nrow, ncol = len(datasets), len(methods)
    fig, axes = subplots(nrow, ncol, figsize=(3.6 * ncol, 3.7 * nrow), squeeze=False)
    for i, name in enumerate(datasets):
        dataset = make_dataset(name)
        real = dataset.sample(1000, generator=torch.Generator().manual_seed(5)).numpy()
        modes = dataset.modes.numpy()
        for j, method in enumerate(methods):
            ax = axes[i][j]
            run = next(
                r
                for r in runs_
                if r["dataset"] == name and r["method"] == method and r["seed"] == first
            )
            if run["samples"] is not None:
                m = run["metrics"]
                title = (
                    f"{METHODS[method][1]}\n{m['modes_captured']}/{m['n_modes']} modes, "
                    f"HQ {100 * m['high_quality_fraction']:.1f}%"
                )
            else:
                title = f"{METHODS[method][1]}\ndiverged at step {run['diverged_at']}"
            scatter_panel(ax, real, run["samples"], modes, dataset.bounds(), f"{name}: {title}")
    # one legend, beside the top-right panel (the samples fill the panels)
    full = max(axes.flat, key=lambda a: len(a.get_legend_handles_labels()[1]))
    legend_beside(axes[0][-1], *full.get_legend_handles_labels(), markerscale=3)
    fig.suptitle(f"Generated samples after training (seed {first})")
    fig.tight_layout()
    return save_figure(fig, path)


# ----------------------------------------------------------------------------------------------
# Entry point
# ----------------------------------------------------------------------------------------------


@experiment_entry
def run(settings: ModeCollapseSettings, run_dir: Path) -> ExperimentResult:
    """Train every (dataset, method, seed), measure the modes, tabulate and plot."""
    datasets, methods = split_list(settings.datasets), split_list(settings.methods)
    seeds = [settings.seed + k for k in range(settings.n_seeds)]
    all_runs = []
    with progress(len(datasets) * len(methods) * len(seeds), NAME) as bar:
        for dataset in datasets:
            for method in methods:
                for seed in seeds:
                    bar.set_postfix_str(f"{dataset} {method} seed {seed}")
                    all_runs.append(run_one(method, dataset, seed, settings, run_dir))
                    bar.update(1)
    rows = summarise(all_runs, datasets, methods)
    text = tables(rows, settings)
    figure = plot_samples(all_runs, datasets, methods, run_dir / "mode_collapse_samples.png")
    numbers = {
        "summary": rows,
        "runs": [{k: v for k, v in r.items() if k != "samples"} for r in all_runs],
        "published": PUBLISHED,
        "published_protocol": PUBLISHED_PROTOCOL,
        "sizes": {
            "hidden": settings.hidden,
            "depth": settings.depth,
            "steps": settings.steps,
            "eval_samples": settings.eval_samples,
            "std": "sample standard deviation over seeds (ddof=1)",
        },
    }
    write_results(run_dir, NAME, settings, numbers)
    verdicts = mode_collapse_verdicts(numbers, settings)
    return ExperimentResult(NAME, run_dir, numbers, text, [figure], verdicts)
