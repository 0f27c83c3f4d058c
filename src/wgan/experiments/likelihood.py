"""Likelihood against sample quality: two models whose orderings disagree, computed exactly.

The claim (Theis, van den Oord & Bethge 2016, "A note on the evaluation of generative models",
arXiv 1511.01844, §3.2-3.3; lecture 8, "Deep Generative Models"): likelihood and sample quality
are largely independent, so one cannot stand in for the other.

* Poor likelihood, great samples: ``p1(x) = (1/n) Σ_i N(x | x_i, ε I)``, narrow Gaussians on
  the n training points. For small ε its samples are (almost) training points, as good as real
  data, but a held-out point lies many kernel widths from every ``x_i``, so its log-likelihood
  is very poor.
* Great likelihood, poor samples: ``p2(x) = 0.01 p(x) + 0.99 p_noise(x)``. Since
  ``log p2(x) ≥ log 0.01 p(x) = log p(x) − log 100``, its log-likelihood is within
  ``log 100 ≈ 4.61`` nats of the true model's, a gap that vanishes per dimension as d grows
  (``log p(x)`` is of order d), yet 99% of its samples are noise.

Here ``p`` is known in closed form: a mixture of M isotropic Gaussians (std σ per coordinate) in
d dimensions, the 8 Gaussians of ``gan_toy.py`` in the first two coordinates and 0 in the
others; ``p_noise = N(0, noise_std² I)``. For each d the experiment draws ``n_train`` training
points and ``n_test`` held-out points from p, and computes for p, p1 and p2:

* the held-out log-likelihood, exactly (log-sum-exp over the mixture components, float64), in
  nats per sample and per dimension;
* the quality of ``n_samples`` samples: the mode metrics of :func:`wgan.metrics.mode_metrics`
  with the high-quality radius generalised to d dimensions as the radius holding 99.7% of a
  mode's own samples, ``σ · sqrt(χ²_d quantile 0.997)`` (3σ in one dimension), and the exact
  W1 of the samples to the held-out points (:func:`wgan.metrics.exact_w1`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from wgan.data import make_dataset
from wgan.experiments.common import (
    ExperimentResult,
    check_settings,
    experiment_entry,
    format_table,
    progress,
    split_list,
    write_results,
)
from wgan.experiments.toy_probes import LECTURE_DGM
from wgan.experiments.verdict import Verdict, decide
from wgan.metrics import exact_w1, mode_metrics

NAME = "likelihood"
DESCRIPTION = (
    "Held-out log-likelihood (exact) against sample quality as the dimension grows, for narrow "
    "kernels on the training points (p1) and 0.01 p + 0.99 noise (p2): the orderings disagree "
    "(Theis et al. 2016)."
)

MODELS = ("p", "p1", "p2")  # the true model, narrow kernels, mostly noise
MODEL_LABELS = {
    "p": "p (true mixture)",
    "p1": "p1: narrow kernels on training points",
    "p2": "p2: 0.01 p + 0.99 noise",
}

MAX_KERNEL_STD = 0.5  # p1's kernels are "narrow" (ε small) only below half the data's σ
MIN_POINTS = 100  # held-out points and samples needed for a mean and a fraction to settle
MAX_P2_HQ = 0.1  # p2's samples count as poor when at most 10% are high quality (p: ~99.7%)


@dataclass
class LikelihoodSettings:
    """Settings of ``wgan experiment likelihood`` (fast laptop-CPU defaults; no training)."""

    dims: str = "2,8,32,128"  # comma-separated dimensions d
    dataset: str = "8gaussians"  # 2-D mixture whose modes and σ are embedded in d dimensions
    kernel_std: float = 0.1  # std of p1's kernels in units of the data's σ: ε = (kernel_std·σ)²
    noise_std: float = 1.0  # std of p_noise = N(0, noise_std² I)
    p2_weight: float = 0.01  # weight of p in p2 = w p + (1 − w) p_noise (lecture: 0.01)
    n_train: int = 1000  # training points (the centres of p1's kernels)
    n_test: int = 1000  # held-out points for the log-likelihood and W1
    n_samples: int = 1000  # samples of each model for the quality metrics
    seed: int = 0  # seed of every draw
    threads: int = 1  # torch CPU threads while running (restored after); 0: leave as is

    def validate(self) -> None:
        """Raise ConfigError for out-of-range values."""
        dims = split_list(self.dims)
        ok_dims = all(d.isdigit() and 1 <= int(d) <= 4096 for d in dims)
        checks = [
            (bool(dims) and ok_dims, "dims must be comma-separated integers in [2, 4096]"),
            (ok_dims and all(int(d) >= 2 for d in dims), "every dimension must be >= 2"),
            (self.kernel_std > 0, "kernel_std must be > 0"),
            (self.noise_std > 0, "noise_std must be > 0"),
            (0 < self.p2_weight < 1, "p2_weight must be in (0, 1)"),
            (1 <= self.n_train <= 20_000, "n_train must be in [1, 20000]"),
            (2 <= self.n_test <= 5000, "n_test must be in [2, 5000] (exact W1)"),
            (2 <= self.n_samples <= 5000, "n_samples must be in [2, 5000] (exact W1)"),
            (self.threads >= 0, "threads must be >= 0"),
        ]
        check_settings(checks, "likelihood: ")
        if make_dataset(self.dataset).modes is None:  # ConfigError for an unknown name
            check_settings([(False, f"dataset {self.dataset!r} has no modes")], "likelihood: ")


SETTINGS = LikelihoodSettings

#: ``wgan experiment all --quick``: the defaults take seconds.
QUICK: dict[str, Any] = {}


# ----------------------------------------------------------------------------------------------
# The densities, exactly
# ----------------------------------------------------------------------------------------------


def gaussian_mixture_logpdf(x: Tensor, centres: Tensor, std: float) -> Tensor:
    """``log (1/K) Σ_k N(x | c_k, std² I)`` for x (N, d) and centres (K, d): (N,), float64.

    ``log N(x | c, s² I) = −‖x − c‖² / (2 s²) − (d/2) log(2π s²)``; the sum over k is a
    log-sum-exp, exact for points many widths from every centre.
    """
    d = x.shape[1]
    sq = torch.cdist(x, centres).square()  # (N, K)
    log_norm = -0.5 * d * math.log(2 * math.pi * std**2)
    return torch.logsumexp(-sq / (2 * std**2), dim=1) - math.log(len(centres)) + log_norm


def embedded_modes(dataset: str, dim: int) -> tuple[Tensor, float]:
    """The dataset's modes (M, 2) in the first two of ``dim`` coordinates (M, dim), and σ."""
    ds = make_dataset(dataset)
    modes = torch.zeros(len(ds.modes), dim, dtype=torch.float64)
    modes[:, :2] = ds.modes.to(torch.float64)
    return modes, float(ds.sigma)


def sample_mixture(centres: Tensor, std: float, n: int, g: torch.Generator) -> Tensor:
    """``n`` samples (n, d) of the uniform mixture of N(c_k, std² I)."""
    k = torch.randint(len(centres), (n,), generator=g)
    return centres[k] + std * torch.randn(n, centres.shape[1], generator=g, dtype=torch.float64)


def model_logpdf(
    name: str, x: Tensor, modes: Tensor, sigma: float, train: Tensor, s: Any
) -> Tensor:
    """Exact ``log q(x)`` (N,) of model ``name`` (p, p1 or p2) at x (N, d)."""
    log_p = gaussian_mixture_logpdf(x, modes, sigma)
    if name == "p":
        return log_p
    if name == "p1":
        return gaussian_mixture_logpdf(x, train, s.kernel_std * sigma)
    zero = torch.zeros(1, x.shape[1], dtype=torch.float64)
    log_noise = gaussian_mixture_logpdf(x, zero, s.noise_std)
    # log(w p + (1 − w) p_noise), a two-term log-sum-exp
    return torch.logaddexp(log_p + math.log(s.p2_weight), log_noise + math.log1p(-s.p2_weight))


def model_samples(
    name: str, n: int, modes: Tensor, sigma: float, train: Tensor, s: Any, g: torch.Generator
) -> Tensor:
    """``n`` samples (n, d) of model ``name``."""
    if name == "p":
        return sample_mixture(modes, sigma, n, g)
    if name == "p1":
        return sample_mixture(train, s.kernel_std * sigma, n, g)
    from_p = torch.rand(n, generator=g) < s.p2_weight  # (n,) which samples come from p
    x = s.noise_std * torch.randn(n, modes.shape[1], generator=g, dtype=torch.float64)
    x[from_p] = sample_mixture(modes, sigma, int(from_p.sum()), g)
    return x


def hq_threshold(dim: int, coverage: float = 0.997) -> float:
    """The high-quality radius in units of σ: ``sqrt(χ²_d quantile)`` at ``coverage``."""
    from scipy.stats import chi2

    return float(math.sqrt(chi2.ppf(coverage, dim)))


def measure_dim(dim: int, s: LikelihoodSettings) -> dict[str, Any]:
    """Log-likelihoods and sample quality of p, p1, p2 in ``dim`` dimensions."""
    g = torch.Generator().manual_seed(s.seed * 7919 + dim)
    modes, sigma = embedded_modes(s.dataset, dim)
    train = sample_mixture(modes, sigma, s.n_train, g)  # (n_train, d)
    test = sample_mixture(modes, sigma, s.n_test, g)  # (n_test, d), never seen by p1
    threshold = hq_threshold(dim)
    out: dict[str, Any] = {"dim": dim, "hq_threshold_sigma": threshold}
    for name in MODELS:
        ll = model_logpdf(name, test, modes, sigma, train, s)  # (n_test,)
        x = model_samples(name, s.n_samples, modes, sigma, train, s, g)  # (n_samples, d)
        m = mode_metrics(x, modes, sigma, threshold=threshold)
        out[name] = {
            "loglik": float(ll.mean()),
            "loglik_per_dim": float(ll.mean()) / dim,
            "high_quality_fraction": m["high_quality_fraction"],
            "modes_captured": m["modes_captured"],
            "n_modes": m["n_modes"],
            "kl_to_uniform": m["kl_to_uniform"],
            "w1": exact_w1(x, test)["w1"],
        }
    return out


# ----------------------------------------------------------------------------------------------
# Verdicts
# ----------------------------------------------------------------------------------------------


def likelihood_verdicts(per_dim: list[dict[str, Any]], s: LikelihoodSettings) -> list[Verdict]:
    """Three verdicts from :func:`measure_dim` records (one per dimension, increasing d).

    The claims are about growing dimension ("for high dimensions", Theis et al. 2016), so each
    is judged at the largest d and on the trend over d; every d is reported.

    1. p1 has great samples and a poor likelihood: at the largest d its HQ fraction is within
       0.05 of the true model's and its held-out log-likelihood is below p2's, and its
       per-dimension gap to p, ``(ℓ(p) − ℓ(p1)) / d``, grows from the smallest to the largest d.
    2. p2 has a near-optimal likelihood and poor samples: its per-dimension gap to p shrinks from
       the smallest to the largest d, and at most :data:`MAX_P2_HQ` of its samples are high
       quality at every d.
    3. The orderings disagree as d grows: likelihood ranks p2 above p1 while the HQ fraction
       ranks p1 above p2 at the largest d and at every d above the first where they disagree.

    "Not tested" with a single dimension, with p1's kernels not narrow (``kernel_std`` >=
    :data:`MAX_KERNEL_STD`), or with fewer than :data:`MIN_POINTS` held-out points or samples.
    """
    testable = (
        len(per_dim) >= 2
        and s.kernel_std < MAX_KERNEL_STD
        and min(s.n_test, s.n_samples) >= MIN_POINTS
    )
    why = (
        f"needs two or more dimensions, kernel_std < {MAX_KERNEL_STD} (ε small) and n_test, "
        f"n_samples >= {MIN_POINTS}"
    )
    dims = [r["dim"] for r in per_dim]
    last = per_dim[-1]

    def row(key: str, name: str) -> str:
        return ", ".join(f"d={r['dim']}: {r[name][key]:.4g}" for r in per_dim)

    def gaps(name: str) -> list[float]:
        return [(r["p"]["loglik"] - r[name]["loglik"]) / r["dim"] for r in per_dim]

    def listed(values: list[float]) -> str:
        return ", ".join(f"d={d}: {v:.3g}" for d, v in zip(dims, values, strict=True))

    g1, g2 = gaps("p1"), gaps("p2")
    p1_ok = (
        last["p1"]["high_quality_fraction"] >= last["p"]["high_quality_fraction"] - 0.05
        and last["p1"]["loglik"] < last["p2"]["loglik"]
        and g1[-1] > g1[0]
    )
    v1 = decide(
        "Narrow kernels on the training points (p1) give great samples but a poor held-out "
        "likelihood, poorer per dimension as d grows",
        f"Theis et al. 2016, §3.2; {LECTURE_DGM}",
        f"HQ fraction p1 {row('high_quality_fraction', 'p1')} (true p: "
        f"{row('high_quality_fraction', 'p')}); log-likelihood p1 {row('loglik', 'p1')}, p2 "
        f"{row('loglik', 'p2')}; per-dimension gap ℓ(p) − ℓ(p1): {listed(g1)}",
        p1_ok,
        testable=testable,
        why_not=why,
    )
    p2_ok = g2[-1] < g2[0] and all(r["p2"]["high_quality_fraction"] <= MAX_P2_HQ for r in per_dim)
    v2 = decide(
        f"{s.p2_weight:g} p + {1 - s.p2_weight:g} noise (p2) has a near-optimal likelihood "
        f"(within log {1 / s.p2_weight:g} nats, less per dimension as d grows) but poor samples",
        f"Theis et al. 2016, §3.3; {LECTURE_DGM}",
        f"per-dimension gap ℓ(p) − ℓ(p2): {listed(g2)}; HQ fraction p2 "
        f"{row('high_quality_fraction', 'p2')}",
        p2_ok,
        testable=testable,
        why_not=why,
    )
    disagree = [
        r["p2"]["loglik"] > r["p1"]["loglik"]
        and r["p1"]["high_quality_fraction"] > r["p2"]["high_quality_fraction"]
        for r in per_dim
    ]
    first = disagree.index(True) if any(disagree) else len(disagree)
    where = [d for d, x in zip(dims, disagree, strict=True) if x]
    v3 = decide(
        "As the dimension grows, likelihood and sample quality order the models oppositely "
        "(likelihood: p2 above p1; samples: p1 above p2)",
        f"Theis et al. 2016, §3; {LECTURE_DGM}",
        f"orderings disagree at d = {', '.join(map(str, where)) or 'none'} of "
        f"{', '.join(map(str, dims))}",
        any(disagree) and all(disagree[first:]),
        testable=testable,
        why_not=why,
    )
    return [v1, v2, v3]


# ----------------------------------------------------------------------------------------------
# Figure, table, entry point
# ----------------------------------------------------------------------------------------------


def figure(per_dim: list[dict[str, Any]]):
    """Held-out log-likelihood per dimension, HQ fraction and exact W1 against d, per model."""
    from wgan.figures.plotting import legend_beside, subplots

    dims = [r["dim"] for r in per_dim]
    fig, axes = subplots(1, 3, figsize=(15.0, 4.0), squeeze=False)
    panels = (
        ("loglik_per_dim", "held-out log-likelihood per dimension (nats)", "symlog"),
        ("high_quality_fraction", "high-quality fraction of samples", "linear"),
        ("w1", "exact W1 of samples to held-out data", "linear"),
    )
    for ax, (key, ylabel, scale) in zip(axes[0], panels, strict=True):
        for name, marker in zip(MODELS, ("o", "s", "^"), strict=True):
            ax.plot(dims, [r[name][key] for r in per_dim], marker + "-", label=MODEL_LABELS[name])
        ax.set_xscale("log", base=2)
        ax.set_yscale(scale)
        ax.set_xlabel("dimension d")
        ax.set_ylabel(ylabel)
        ax.set_title(ylabel.split(" (")[0], fontsize=9)
    legend_beside(axes[0][2])
    fig.suptitle(
        "Likelihood vs sample quality (higher log-likelihood is better; lower W1 is better)"
    )
    fig.tight_layout()
    return fig


def table(per_dim: list[dict[str, Any]]) -> str:
    rows = [
        [
            r["dim"],
            MODEL_LABELS[name],
            r[name]["loglik"],
            r[name]["loglik_per_dim"],
            r[name]["high_quality_fraction"],
            f"{r[name]['modes_captured']}/{r[name]['n_modes']}",
            r[name]["w1"],
        ]
        for r in per_dim
        for name in MODELS
    ]
    head = ["d", "model", "log-lik (nats)", "per dim", "HQ fraction", "modes", "exact W1"]
    return format_table(head, rows)


def body(settings: LikelihoodSettings, run_dir: Path) -> ExperimentResult:
    """Measure every dimension, judge, plot."""
    from wgan.figures.plotting import save_figure

    start = time.time()
    dims = sorted(int(d) for d in split_list(settings.dims))
    per_dim = []
    with progress(len(dims), NAME) as bar:
        for d in dims:
            bar.set_postfix_str(f"d={d}")
            per_dim.append(measure_dim(d, settings))
            bar.update(1)
    verdicts = likelihood_verdicts(per_dim, settings)
    path = save_figure(figure(per_dim), run_dir / "likelihood.png")
    numbers = {"per_dim": per_dim, "seconds": time.time() - start}
    write_results(run_dir, NAME, settings, numbers)
    text = "\n".join(
        [
            table(per_dim),
            f"(held-out log-likelihood: mean over {settings.n_test} points, exact; quality: "
            f"{settings.n_samples} samples, high quality = within σ·sqrt(χ²_d 0.997) of a mode; "
            f"p1 kernel std {settings.kernel_std:g}σ; noise std {settings.noise_std:g})",
            *(v.line() for v in verdicts),
        ]
    )
    return ExperimentResult(NAME, run_dir, numbers, text, [path], verdicts)


run = experiment_entry(body)
