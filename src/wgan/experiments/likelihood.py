"""Likelihood against sample quality: two models whose orderings disagree, computed exactly.

An analytic demonstration, not an empirical test: nothing is trained, and p1 and p2 are the
constructions of Theis, van den Oord & Bethge (2016, "A note on the evaluation of generative
models"), built so that the claims hold; at the default settings the verdicts hold by
construction (the bound below, and samples that are training points plus ``0.1 σ`` noise). What
the experiment adds is the exact size of each effect as the dimension grows, and a check that
the constructions are implemented right. Its verdicts say so (:data:`ANALYTIC`).

The claim (Theis, van den Oord & Bethge 2016, "A note on the evaluation of generative models",
arXiv 1511.01844, §3.2-3.3): likelihood and sample quality are largely independent, so one
cannot stand in for the other.

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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from wgan.data import make_dataset
from wgan.experiments import framework as fw
from wgan.experiments.common import format_table, split_list
from wgan.experiments.verdict import Verdict, decide
from wgan.figures import plotting
from wgan.metrics import exact_w1, mode_metrics

MODELS = (  # the compared models: the true one, narrow kernels, mostly noise
    fw.Method("p", "p (true mixture)"),
    fw.Method("p1", "p1: narrow kernels on training points"),
    fw.Method("p2", "p2: 0.01 p + 0.99 noise"),
)

MAX_KERNEL_STD = 0.5  # p1's kernels are "narrow" (ε small) only below half the data's σ
MIN_POINTS = 100  # held-out points and samples needed for a mean and a fraction to settle
MAX_P2_HQ = 0.1  # p2's samples count as poor when at most 10% are high quality (p: ~99.7%)
#: The label of every verdict (its note): these are demonstrations of constructions, whose claims
#: hold by design at the defaults, not tests of a trained model.
ANALYTIC = (
    "analytic demonstration, not an empirical test: p1 and p2 are constructed so that the claim "
    "holds, as in Theis et al. 2016, 'A note on the evaluation of generative models'"
)


@dataclass
class LikelihoodSettings(fw.Settings):
    """Settings of ``wgan experiment likelihood`` (fast laptop-CPU defaults; no training)."""

    dims: str = "2,8,32,128"  # comma-separated dimensions d
    dataset: str = "8gaussians"  # 2-D mixture whose modes and σ are embedded in d dimensions
    kernel_std: float = 0.1  # std of p1's kernels in units of the data's σ: ε = (kernel_std·σ)²
    noise_std: float = 1.0  # std of p_noise = N(0, noise_std² I)
    p2_weight: float = 0.01  # weight of p in p2 = w p + (1 − w) p_noise (Theis et al.: 0.01)
    n_train: int = 1000  # training points (the centres of p1's kernels)
    n_test: int = 1000  # held-out points for the log-likelihood and W1 (exact W1: <= 5000)
    n_samples: int = 1000  # samples of each model for the quality metrics (exact W1: <= 5000)

    #: The training-config keys these settings mirror.
    TRAIN_KEYS = {"dataset": ("data.name",), "n_train": ("data.n_train",)}
    LIMITS = {
        "kernel_std": "> 0",
        "noise_std": "> 0",
        "n_train": "[1, 20000]",
        "n_test": "[2, 5000]",
        "n_samples": "[2, 5000]",
    }

    def checks(self) -> list[tuple[bool, str]]:
        dims = split_list(self.dims)
        ok = all(d.isdigit() and 1 <= int(d) <= 4096 for d in dims)
        modes = make_dataset(self.dataset).modes  # ConfigError for an unknown name
        return [
            *super().checks(),
            (bool(dims) and ok, "dims must be comma-separated integers in [2, 4096]"),
            (ok and all(int(d) >= 2 for d in dims), "every dimension in dims must be >= 2"),
            (0 < self.p2_weight < 1, "p2_weight must be in (0, 1)"),
            (modes is not None, f"dataset {self.dataset!r} has no modes"),
        ]


def gaussian_mixture_logpdf(x: Tensor, centres: Tensor, std: float) -> Tensor:
    """``log (1/K) Σ_k N(x | c_k, std² I)`` for x (N, d) and centres (K, d): (N,), float64.

    ``log N(x | c, s² I) = −‖x − c‖² / (2 s²) − (d/2) log(2π s²)``; the sum over k is a
    log-sum-exp, exact for points many widths from every centre.
    """
    sq = torch.cdist(x, centres).square()  # (N, K)
    log_norm = -0.5 * x.shape[1] * math.log(2 * math.pi * std**2)
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
    log_noise = gaussian_mixture_logpdf(x, x.new_zeros(1, x.shape[1]), s.noise_std)
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


def figure(per_dim: list[dict[str, Any]]) -> Any:
    """Held-out log-likelihood per dimension, HQ fraction and exact W1 against d, per model."""
    fig, axes = plotting.subplots(1, 3, figsize=(15.0, 4.0), squeeze=False)
    panels = (
        ("loglik_per_dim", "held-out log-likelihood per dimension (nats)", "symlog"),
        ("high_quality_fraction", "high-quality fraction of samples", "linear"),
        ("w1", "exact W1 of samples to held-out data", "linear"),
    )
    dims = [r["dim"] for r in per_dim]
    for ax, (key, ylabel, scale) in zip(axes[0], panels, strict=True):
        for model, marker in zip(MODELS, "os^", strict=True):
            ax.plot(dims, [r[model.name][key] for r in per_dim], marker + "-", label=model.label)
        ax.set_xscale("log", base=2)
        ax.set(yscale=scale, xlabel="dimension d", ylabel=ylabel)
        ax.set_title(ylabel.split(" (")[0], fontsize=9)
    plotting.legend_beside(axes[0][2])
    fig.suptitle(
        "Likelihood vs sample quality (higher log-likelihood is better; lower W1 is better)"
    )
    fig.tight_layout()
    return fig


@fw.register
class Likelihood(fw.Experiment):
    """Exact held-out likelihood against sample quality of p, p1, p2 as the dimension grows."""

    name = "likelihood"
    description = (
        "Held-out log-likelihood (exact) against sample quality as the dimension grows, for "
        "narrow kernels on the training points (p1) and 0.01 p + 0.99 noise (p2): the orderings "
        "disagree; an analytic demonstration, not an empirical test (Theis et al. 2016)."
    )
    Settings = LikelihoodSettings  # its defaults take seconds: no quick size

    def cells(self, s: LikelihoodSettings) -> list[fw.Cell]:
        """One cell per dimension d (``Cell.value``), increasing."""
        return [fw.Cell(seed=s.seed, value=d) for d in sorted(map(int, split_list(s.dims)))]

    def measure(self, s: LikelihoodSettings, cell: fw.Cell, ctx: fw.Context) -> dict[str, Any]:
        """Log-likelihoods and sample quality of p, p1, p2 in ``cell.value`` dimensions; high
        quality: within ``σ · sqrt(χ²_d quantile 0.997)`` of a mode."""
        from scipy.stats import chi2

        dim = cell.value
        g = torch.Generator().manual_seed(s.seed * 7919 + dim)
        modes, sigma = embedded_modes(s.dataset, dim)
        train = sample_mixture(modes, sigma, s.n_train, g)  # (n_train, d)
        test = sample_mixture(modes, sigma, s.n_test, g)  # (n_test, d), never seen by p1
        threshold = float(math.sqrt(chi2.ppf(0.997, dim)))  # in units of σ
        out: dict[str, Any] = {"dim": dim, "hq_threshold_sigma": threshold}
        keys = ("high_quality_fraction", "modes_captured", "n_modes", "kl_to_uniform")
        for model in MODELS:
            ll = float(model_logpdf(model.name, test, modes, sigma, train, s).mean())  # n_test
            x = model_samples(model.name, s.n_samples, modes, sigma, train, s, g)  # (n_samples, d)
            m = mode_metrics(x, modes, sigma, threshold=threshold)
            quality = {k: m[k] for k in keys} | {"w1": exact_w1(x, test)["w1"]}
            out[model.name] = {"loglik": ll, "loglik_per_dim": ll / dim, **quality}
        return out

    def summarise(self, settings: LikelihoodSettings, records: list[dict]) -> dict[str, Any]:
        return {"per_dim": records}

    def figures(self, settings, numbers, records, run_dir: Path) -> list[Path]:
        return [plotting.save_figure(figure(numbers["per_dim"]), run_dir / "likelihood.png")]

    def table(self, s: LikelihoodSettings, numbers: dict[str, Any]) -> str:
        keys = ("loglik", "loglik_per_dim", "high_quality_fraction")
        rows = []
        for r in numbers["per_dim"]:
            for m in MODELS:
                q = r[m.name]
                modes = f"{q['modes_captured']}/{q['n_modes']}"
                rows.append([r["dim"], m.label, *(q[k] for k in keys), modes, q["w1"]])
        head = ["d", "model", "log-lik (nats)", "per dim", "HQ fraction", "modes", "exact W1"]
        return format_table(head, rows) + (
            f"\n(held-out log-likelihood: mean over {s.n_test} points, exact; quality: "
            f"{s.n_samples} samples, high quality = within σ·sqrt(χ²_d 0.997) of a mode; "
            f"p1 kernel std {s.kernel_std:g}σ; noise std {s.noise_std:g}; an analytic "
            f"demonstration of Theis et al. 2016's constructions, not an empirical test)"
        )

    def verdicts(self, numbers: dict[str, Any], s: LikelihoodSettings) -> list[Verdict]:
        """The three claims, judged at the largest d and on the trend over d (Theis et al. 2016:
        "for high dimensions"), each condition beside its claim below; not tested with one d,
        with ``kernel_std`` >= :data:`MAX_KERNEL_STD` (kernels not narrow), or with fewer than
        :data:`MIN_POINTS` held-out points or samples. Each is labelled an analytic
        demonstration (source and note, :data:`ANALYTIC`): at the defaults it holds by
        construction."""
        per_dim = numbers["per_dim"]
        few = min(s.n_test, s.n_samples) < MIN_POINTS
        testable = len(per_dim) >= 2 and s.kernel_std < MAX_KERNEL_STD and not few
        why = (
            f"needs two or more dimensions, kernel_std < {MAX_KERNEL_STD} (ε small) and n_test, "
            f"n_samples >= {MIN_POINTS}"
        )
        dims, last = [r["dim"] for r in per_dim], per_dim[-1]

        def row(key: str, name: str) -> str:
            return ", ".join(f"d={r['dim']}: {r[name][key]:.4g}" for r in per_dim)

        def gap(name: str) -> tuple[list[float], str]:  # per-dimension gap to p, and as text
            g = [(r["p"]["loglik"] - r[name]["loglik"]) / r["dim"] for r in per_dim]
            return g, ", ".join(f"d={d}: {v:.3g}" for d, v in zip(dims, g, strict=True))

        (g1, t1), (g2, t2) = gap("p1"), gap("p2")
        hq = "high_quality_fraction"
        disagree = [
            r["p2"]["loglik"] > r["p1"]["loglik"] and r["p1"][hq] > r["p2"][hq] for r in per_dim
        ]
        first = disagree.index(True) if any(disagree) else len(disagree)
        where = ", ".join(str(d) for d, x in zip(dims, disagree, strict=True) if x) or "none"
        w = s.p2_weight
        claims = [
            (
                "Narrow kernels on the training points (p1) give great samples but a poor held-out "
                "likelihood, poorer per dimension as d grows",
                "§3.2",
                f"HQ fraction p1 {row(hq, 'p1')} (true p: {row(hq, 'p')}); log-likelihood p1 "
                f"{row('loglik', 'p1')}, p2 {row('loglik', 'p2')}; per-dimension gap "
                f"ℓ(p) − ℓ(p1): {t1}",
                last["p1"][hq] >= last["p"][hq] - 0.05
                and last["p1"]["loglik"] < last["p2"]["loglik"]
                and g1[-1] > g1[0],
            ),
            (
                f"{w:g} p + {1 - w:g} noise (p2) has a near-optimal likelihood (within log "
                f"{1 / w:g} nats, less per dimension as d grows) but poor samples",
                "§3.3",
                f"per-dimension gap ℓ(p) − ℓ(p2): {t2}; HQ fraction p2 {row(hq, 'p2')}",
                g2[-1] < g2[0] and all(r["p2"][hq] <= MAX_P2_HQ for r in per_dim),
            ),
            (
                "As the dimension grows, likelihood and sample quality order the models oppositely "
                "(likelihood: p2 above p1; samples: p1 above p2)",
                "§3",
                f"orderings disagree at d = {where} of {', '.join(map(str, dims))}",
                any(disagree) and all(disagree[first:]),
            ),
        ]
        paper = "Theis et al. 2016, 'A note on the evaluation of generative models'"
        verdicts = [
            decide(
                claim,
                f"{paper}, {sec}, analytic demonstration",
                measured,
                ok,
                testable,
                why,
            )
            for claim, sec, measured, ok in claims
        ]
        return [replace(v, note=f"{v.note}; {ANALYTIC}" if v.note else ANALYTIC) for v in verdicts]
