"""Mode hopping: the generated mode histogram over training, GANs against WGAN-GP.

The claim: generator and discriminator get stuck in a cycle: G learns to produce realistic samples
of one mode, D is fooled for a while, then D learns that mode and G switches to another. The
cycle is drawn on a mixture of Gaussians by Metz et al. 2017, "Unrolled Generative Adversarial
Networks", arXiv 1611.02163, Fig. 1 (a standard GAN "rotates through the modes of the data
distribution" and never converges), and Goodfellow 2016, "NIPS 2016 Tutorial: Generative
Adversarial Networks", arXiv 1701.00160, §5.1.1, Fig. 22. A WGAN-GP critic kept near optimal
should not chase the generator from mode to mode (Arjovsky et al. 2017, §4.3; Gulrajani et al.
2017).

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
  that have one; hops and the hop rate (hops per record transition) are counted over the
  second half of the records, the part the movement is measured on and the verdicts judge
  (the hops of the whole run, early learning included, are reported beside them);
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

from wgan.experiments import framework as fw
from wgan.experiments.common import experiment_config, format_table, make_trainer, split_list
from wgan.experiments.toy_probes import advance_to, mode_histogram, modeless, record_steps
from wgan.experiments.verdict import Verdict, decide
from wgan.training.run import NonFiniteSamples


def _pinned(objective: str, n_critic: int, g_lr: str, d_lr: str, beta2: str, *more: str):
    """Every optimiser setting: Adam (β1 = 0.5) on both players at constant learning rates."""
    pinned = (f"objective.name={objective}", f"train.n_critic={n_critic}", "train.lr_decay=none")
    pinned += ("g_optim.name=adam", "d_optim.name=adam", f"g_optim.lr={g_lr}", f"d_optim.lr={d_lr}")
    return (*pinned, f"g_optim.betas=[0.5, {beta2}]", f"d_optim.betas=[0.5, {beta2}]", *more)


_METZ = ("data.batch_size=512", "generator.latent_dim=256")  # Metz et al.'s batch and noise size
_GP = ("constraint.clip=0", "constraint.penalty=two_sided", "constraint.penalty_weight=0.1")
METHODS = fw.method_table(
    # Goodfellow et al. 2014 with the DCGAN optimiser, k = 1
    fw.Method("gan", "GAN (minimax)", "toy-gan", _pinned("minimax", 1, "2e-4", "2e-4", "0.999")),
    # the toy protocol behind Metz et al. 2017, Fig. 1: a fast generator
    fw.Method(
        "gan-metz",
        "GAN (G lr 1e-3, D lr 1e-4)",
        "toy-gan",
        _pinned("nonsaturating", 1, "1e-3", "1e-4", "0.999", *_METZ),
    ),
    # gan_toy.py: lambda 0.1, Adam (0.5, 0.9); constant lr like the GAN
    fw.Method(
        "wgan-gp", "WGAN-GP", "toy-wgan-gp", _pinned("wasserstein", 5, "5e-4", "5e-4", "0.9", *_GP)
    ),
)

#: The GAN hops more than WGAN-GP when its late movement is at least this many times WGAN-GP's:
#: with 1,000 samples from fixed noise the movement of a generator that stopped changing is
#: near 0, so a factor of 2 separates hopping from the small drift of a converged run.
MIN_RATIO = 2.0
MIN_STEPS = 500  # fewer iterations: the first modes are still being found, nothing to hop from
MIN_RECORDS = 10  # the second half needs several transitions
#: Records with enough HQ samples that each method needs in the second half (the judged part)
#: before its hops and its movement mean anything.
MIN_COUNTED = 5


@dataclass
class ModeHoppingSettings(fw.TrainingSettings):
    """Settings of ``wgan experiment mode-hopping`` (fast laptop-CPU defaults)."""

    datasets: str = "8gaussians,25gaussians"  # comma-separated datasets with modes
    methods: str = "gan,gan-metz,wgan-gp"  # comma-separated names from METHODS
    steps: int = 2000  # generator iterations per run
    n_records: int = 80  # evenly spaced histograms over training (plus step 0)
    eval_samples: int = 2000  # generated samples per histogram (fixed noise)
    concentrated: float = 0.5  # share of HQ samples a mode needs to be the dominant one
    min_hq: int = 20  # HQ samples a record needs to count (fewer: hops and movement by chance)

    LIMITS = {"eval_samples": "[1, 100000]", "min_hq": ">= 1"}

    def checks(self) -> list[tuple[bool, str]]:
        no_modes = modeless(split_list(self.datasets))
        return [
            *super().checks(),
            (bool(split_list(self.datasets)), "datasets must name at least one dataset"),
            (2 <= self.n_records <= self.steps, "n_records must be in [2, steps]"),
            (0.0 < self.concentrated <= 1.0, "concentrated must be in (0, 1]"),
            (not no_modes, f"datasets {no_modes} have no modes to count"),
        ]


def dominant_modes(counts: np.ndarray, concentrated: float, min_hq: int = 1) -> list[int | None]:
    """Per record (row of ``counts``, (T, M)), the mode holding at least ``concentrated`` of
    the high-quality samples, or None (fewer than ``min_hq`` HQ samples, or no mode that
    concentrated)."""
    total, top = counts.sum(axis=1), counts.max(axis=1)  # (T,) each
    held = (total >= max(1, min_hq)) & (top >= concentrated * total)  # (T,)
    return [int(k) if ok else None for k, ok in zip(counts.argmax(axis=1), held, strict=True)]


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
    """The statistics of one run's histograms ``counts`` (T, M), judged on the second half of
    the records, ``counts[T // 2:]`` (after the early learning that moves every method's
    histogram): ``hops``, the changes of the dominant mode there (:func:`hops` of the dominant
    modes of those records), ``hop_rate`` (per record transition there), ``late_movement``
    (:func:`movement` there) and ``records_counted``, its records with at least ``min_hq`` HQ
    samples; for the whole run, ``hops_all`` and ``records_counted_all``; and the modes
    captured at the last record."""
    dominant = dominant_modes(counts, concentrated, min_hq)
    half = len(counts) // 2
    counted = counts.sum(axis=1) >= max(1, min_hq)  # (T,)
    late_hops = hops(dominant[half:])
    return {
        "dominant": dominant,
        "hops": late_hops,
        "hop_rate": late_hops / max(1, len(counts) - half - 1),
        "late_movement": movement(counts[half:], min_hq),
        "records_counted": int(counted[half:].sum()),
        "hops_all": hops(dominant),
        "records_counted_all": int(counted.sum()),
        "final_modes": int((counts[-1] > 0).sum()),
        "n_modes": int(counts.shape[1]),
    }


def _untested_because(gan: dict, wgan: dict, steps: int, n_records: int) -> list[str]:
    """Why :func:`hopping_verdict` cannot judge these runs (empty: it can)."""
    why = []
    if steps < MIN_STEPS or n_records < MIN_RECORDS:
        why.append(f"needs steps >= {MIN_STEPS} and n_records >= {MIN_RECORDS}")
    for name, run in (("the GAN", gan), ("WGAN-GP", wgan)):
        if run.get("diverged_at") is not None:
            why.append(f"{name} diverged at step {run['diverged_at']}")
        if run["records_counted"] < MIN_COUNTED:
            why.append(
                f"{name} has {run['records_counted']} records in the second half with at least "
                f"min_hq high-quality samples (needs {MIN_COUNTED})"
            )
        elif not math.isfinite(float(run["late_movement"])):  # results.json: NaN is "nan"
            why.append(f"{name}'s late movement is undefined")
    return why


def hopping_verdict(
    dataset: str, gan: dict | None, wgan: dict | None, steps: int, n_records: int, label: str
) -> Verdict:
    """The GAN ``label`` hops between modes and WGAN-GP does not, on ``dataset``, judged on the
    second half of the records (after the early learning that moves every method): the GAN's
    dominant mode changes at least once there (``hops``) and its late movement ``m_GAN``
    is at least :data:`MIN_RATIO` times WGAN-GP's, ``m_GAN ≥ MIN_RATIO · m_WGAN-GP``.

    ``gan`` and ``wgan`` are :func:`hopping_stats` records, with the run's ``diverged_at``.
    Not tested (the note says why) unless both ran without diverging, the settings are large
    enough, and each has at least :data:`MIN_COUNTED` counted records in the second half, and
    so a finite late movement: a WGAN-GP that diverged or had too few high-quality samples has
    no measured movement, and "WGAN-GP does not hop" cannot be read from it."""
    measured, holds, why = "-", False, ["needs the GAN and wgan-gp"]
    if gan is not None and wgan is not None:
        # numbers read back from results.json carry NaN as the string "nan"
        g, w = float(gan["late_movement"]), float(wgan["late_movement"])
        measured = (
            f"second half: GAN {gan['hops']} hops, late movement {g:.3g}; WGAN-GP {wgan['hops']} "
            f"hops, late movement {w:.3g}; records counted there (>= min_hq HQ samples): GAN "
            f"{gan['records_counted']}, WGAN-GP {wgan['records_counted']}; at the end: GAN "
            f"{gan['final_modes']}/{gan['n_modes']} modes, WGAN-GP {wgan['final_modes']}/"
            f"{wgan['n_modes']}"
        )
        if "hops_all" in gan:
            measured += f"; hops over the whole run: GAN {gan['hops_all']}"
        why = _untested_because(gan, wgan, steps, n_records)
        holds = not why and gan["hops"] >= 1 and g >= MIN_RATIO * w
    return decide(
        f"On {dataset}, the {label} hops from mode to mode as D learns each one; WGAN-GP does not",
        "Metz et al. 2017, Unrolled GANs, Fig. 1",
        measured,
        holds,
        testable=not why,
        why_not="; ".join(why),
    )


@fw.register
class ModeHopping(fw.Experiment):
    """The generated mode histogram over training, GANs against WGAN-GP."""

    name = "mode-hopping"
    description = (
        "Heatmap of the generated mode histogram over training (modes x steps) for the minimax "
        "GAN and WGAN-GP on 8 and 25 Gaussians; how often the dominant mode changes (Metz et al. "
        "2017)."
    )
    Settings = ModeHoppingSettings
    methods = METHODS
    #: 8 Gaussians only, 1,200 iterations (judged); ~35 s on the shared machine.
    quick = {"datasets": "8gaussians", "steps": 1200, "n_records": 24}

    def cells(self, s: ModeHoppingSettings) -> list[fw.Cell]:
        """Every dataset x method, one seed."""
        methods = [METHODS[m] for m in split_list(s.methods)]
        return [fw.Cell(m, d, s.seed) for d in split_list(s.datasets) for m in methods]

    def units(self, s: ModeHoppingSettings, cell: fw.Cell) -> int:
        """Generator iterations."""
        return s.steps

    def measure(self, s: ModeHoppingSettings, cell: fw.Cell, ctx: fw.Context) -> dict[str, Any]:
        """Train one (method, dataset), recording the mode histogram at evenly spaced steps."""
        start, method, dataset = time.time(), cell.method, cell.dataset
        name = f"{self.name}-{dataset}-{method.name}"
        cfg = experiment_config(method.preset, name, method.overrides, s, dataset=dataset)
        trainer = make_trainer(cfg, cell.folder(ctx.run_dir))
        data = trainer.dataset
        steps, rows, diverged_at = [], [], None
        for target in record_steps(s.steps, s.n_records):
            finite = advance_to(trainer, target, ctx.bar)
            try:
                x = trainer.samples(s.eval_samples, seed=s.seed + 303)  # (N, 2), fixed noise
            except NonFiniteSamples:
                finite = False
            if not finite:
                diverged_at = trainer.step
                break
            steps.append(trainer.step)
            rows.append(mode_histogram(x, data.modes, data.sigma))
        counts = np.stack(rows) if rows else np.zeros((0, len(data.modes)), dtype=int)  # (T, M)
        return {
            "method": method.name,
            "dataset": dataset,
            "steps": steps,
            "counts": counts.tolist(),
            "stats": hopping_stats(counts, s.concentrated, s.min_hq) if len(counts) else None,
            "diverged_at": diverged_at,
            "seconds": time.time() - start,
            "run_dir": str(trainer.run_dir),
        }

    def summarise(self, s: ModeHoppingSettings, records: list[dict]) -> dict[str, Any]:
        """Every run's histograms and statistics."""
        return {"runs": records, "min_ratio": MIN_RATIO}

    def verdicts(self, numbers: dict[str, Any], settings: ModeHoppingSettings) -> list[Verdict]:
        """One per (dataset, GAN method): each GAN against WGAN-GP (:func:`hopping_verdict`)."""
        out = []
        gans = [m for m in split_list(settings.methods) if m.startswith("gan")] or ["gan"]
        for dataset in split_list(settings.datasets):
            stats = {  # with each run's divergence, which the verdict needs
                r["method"]: r["stats"] and {**r["stats"], "diverged_at": r["diverged_at"]}
                for r in numbers["runs"]
                if r["dataset"] == dataset
            }
            for gan in gans:
                args = (stats.get(gan), stats.get("wgan-gp"), settings.steps, settings.n_records)
                out.append(hopping_verdict(dataset, *args, METHODS[gan].label))
        return out

    def figures(self, s: ModeHoppingSettings, numbers, records, run_dir: Path) -> list[Path]:
        """``mode_hopping.png``, heatmaps: fraction of samples per mode (rows) at each record
        (columns); white dots mark the dominant mode where there is one."""
        from wgan.figures.plotting import save_figure, subplots

        datasets, methods = split_list(s.datasets), split_list(s.methods)
        nrow, ncol = len(datasets), len(methods)
        fig, axes = subplots(nrow, ncol, figsize=(5.0 * ncol, 3.6 * nrow), squeeze=False)
        for r in records:
            ax = axes[datasets.index(r["dataset"])][methods.index(r["method"])]
            counts = np.asarray(r["counts"], dtype=float)  # (T, M)
            title = f"{r['dataset']}, {METHODS[r['method']].label}"
            ax.set(xlabel="generator iteration", ylabel="mode index")
            if not len(counts):
                ax.set_title(f"{title}: diverged at step {r['diverged_at']}", fontsize=9)
                continue
            steps, frac = np.asarray(r["steps"]), counts.T / s.eval_samples  # (M, T)
            width = steps[-1] - steps[-2] if len(steps) > 1 else 1  # of the last record's column
            edges = np.append(steps, steps[-1] + width)
            mesh = ax.pcolormesh(
                edges,
                np.arange(frac.shape[0] + 1) - 0.5,
                frac,
                cmap="magma",
                vmin=0.0,
                vmax=max(float(frac.max()), 1e-9),
                shading="flat",
            )
            fig.colorbar(mesh, ax=ax, label="fraction of samples")
            centres, st = (edges[:-1] + edges[1:]) / 2, r["stats"]
            dominant = np.array(st["dominant"], dtype=float)  # (T,), NaN (not drawn): none
            ax.scatter(centres, dominant, s=6, c="white", edgecolors="none")
            hopping = f"{st['hops_all']} hops ({st['hops']} late), late movement "
            hopping += f"{st['late_movement']:.2f}"
            ax.set_title(f"{title}: {hopping}\n(white dots: dominant mode)", fontsize=9)
        fig.suptitle("Generated mode histogram over training (fixed noise, high-quality samples)")
        fig.tight_layout()
        return [save_figure(fig, run_dir / "mode_hopping.png")]

    def table(self, s: ModeHoppingSettings, numbers: dict[str, Any]) -> str:
        """Per run: hops over the whole run; hops, hop rate, late movement and records counted
        over the second half (what the verdicts judge); final modes."""
        rows = []
        for r in numbers["runs"]:
            st, label = r["stats"], METHODS[r["method"]].label
            if st is None:
                rows.append([r["dataset"], label, *["-"] * 6, "diverged"])
                continue
            note = f"diverged at step {r['diverged_at']}" if r["diverged_at"] is not None else ""
            moved = [st["hops"], f"{st['hop_rate']:.3f}", f"{st['late_movement']:.3f}"]
            ends = [st["records_counted"], f"{st['final_modes']}/{st['n_modes']}", note]
            rows.append([r["dataset"], label, st["hops_all"], *moved, *ends])
        head = ["dataset", "method", "hops (all)", "hops", "hop rate", "late movement (TV)"]
        return (
            f"{format_table([*head, 'records counted', 'final modes', 'note'], rows)}\n(MLPs "
            f"{s.depth}x{s.hidden}; {s.steps} generator iterations; {s.n_records} records of "
            f"{s.eval_samples} samples from fixed noise; a dominant mode holds >= "
            f"{s.concentrated:g} of the HQ samples, in records with >= {s.min_hq} of them (the "
            "records counted); hops, hop rate, late movement (mean TV between successive counted "
            "histograms) and records counted are over the second half of the records)"
        )
