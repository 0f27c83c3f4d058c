"""Does WGAN-GP train more architectures than the standard GAN? Random architectures on digits.

Gulrajani et al. (2017, "Improved Training of Wasserstein GANs", sec. 5.1) draw 200 generator /
discriminator architectures at random from the space of their Table 1: nonlinearities (ReLU,
LeakyReLU, softplus(2x+2)/2 - 1, tanh, each net its own), depths (4, 8, 12, 20), batch norm in G
and in D (layer norm instead in the WGAN-GP critic) and base filter counts (32, 64, 128). They
train each on 32x32 ImageNet with the standard GAN (DCGAN loss, Adam 2e-4, betas (0.5, 0.999))
and with WGAN-GP (Adam 1e-4, betas (0, 0.9)), call a run a success when its Inception score is
above a threshold (IS > t), and count in their Table 2, per threshold, the architectures that
succeed with only the GAN, only WGAN-GP, both, or neither: at t = 5.0, 0 / 147 / 42 / 11. The
claim: WGAN-GP succeeds on many architectures where the standard GAN fails, and not the other
way round; the verdict checks both halves (:meth:`RandomArchitectures.verdicts`).

Here the data are the embedded 8x8 sklearn digits (resized), the score is the digit classifier's
Inception score (:func:`wgan.metrics.digit_inception_score`, 1..10; real held-out digits score
about 9), and the networks are the DCGAN builders of :mod:`wgan.nets.build` with the sampled
options, initialised with He et al.'s N(0, 2 / fan_in) (``init=he``: DCGAN's N(0, 0.02) would
fail every deep net without batch norm for both methods before training starts). Weight decay
1e-3 is applied to a normalised D, as in the paper. Every run is an ordinary run directory of a
study (:func:`wgan.scale.study.run_study`) under ``<run_dir>/runs``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, astuple, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from wgan.experiments.common import format_table, split_list
from wgan.experiments.framework import register
from wgan.experiments.robustness import METHODS, DigitStudy, Scores, StudySettings, show_is
from wgan.experiments.verdict import Verdict, decide

#: The paper's counts at IS > 5.0 over 200 architectures on 32x32 ImageNet (Gulrajani et al.
#: 2017, sec. 5.1, Table 2).
PUBLISHED = {"threshold": 5.0, "only_gan": 0, "only_wgan_gp": 147, "both": 42, "neither": 11}
#: "Not the other way round": the standard GAN may succeed where WGAN-GP fails on at most this
#: fraction of the architectures. The paper saw it on 0 of 200 (Table 2, IS > 5), which bounds the
#: rate by 3/200 = 1.5% (rule of three, 95%); 5% lets the smallest judged study
#: (:data:`MIN_ARCHITECTURES` = 20) have one such architecture, and at a true rate of 1.5% two or
#: more of 20 happen in under 4% of studies.
MAX_ONLY_GAN = 0.05
NONLINEARITIES = ("relu", "leaky_relu", "softplus", "tanh")
#: Fewer architectures or generator iterations than this: the verdict is "not tested".
MIN_ARCHITECTURES, MIN_STEPS = 20, 2000


def _numbers(text: str, kind: type, low: float, high: float = float("inf")) -> list | None:
    """The comma-separated numbers of ``text`` if all parse and lie in [low, high]; else None."""
    try:
        values = [kind(v) for v in split_list(text)]
    except ValueError:
        return None
    return values if values and all(low <= v <= high for v in values) else None


@dataclass
class RandomArchitecturesSettings(StudySettings):
    """Settings of ``wgan experiment random-architectures``; ``seed`` is the seed of the draw,
    and run i trains with seed + i. The default (20 architectures, 8x8 digits, 2,000 generator
    iterations, filters 8/16/32) is the smallest size the verdict judges (about an hour on 2
    CPU cores); the paper's size is ``n_architectures=200 filters=32,64,128 resolution=32
    batch_size=64 steps=20000`` (with a GPU, ``launcher=local jobs=K`` or ``launcher=ray``)."""

    n_architectures: int = MIN_ARCHITECTURES  # architectures drawn (the paper: 200)
    steps: int = MIN_STEPS  # generator iterations per run, both methods
    nonlinearities: str = "relu,leaky_relu,softplus,tanh"  # values drawn for G's and D's
    depths: str = "4,8,12,20"  # convolutions in G and in D (values drawn)
    filters: str = "8,16,32"  # base filter counts drawn (the paper's 32,64,128, scaled down)
    thresholds: str = "2,3,4,5,6,7,8,9"  # digit-IS thresholds of the success table
    verdict_threshold: float = 5.0  # the threshold the verdict reads (the paper's 5.0)
    weight_decay: float = 1e-3  # on D's optimiser when D is normalised (the paper's 1e-3)

    LIMITS = {
        "n_architectures": "[1, 10000]",
        "verdict_threshold": "[1, 10]",
        "weight_decay": ">= 0",
    }

    def checks(self) -> list[tuple[bool, str]]:
        nonlin, depths = split_list(self.nonlinearities), _numbers(self.depths, int, 1)
        levels, r = self.resolution.bit_length() - 3, self.resolution  # 2x upsamplings from 4x4
        known = bool(nonlin) and all(a in NONLINEARITIES for a in nonlin)
        thresholds = _numbers(self.thresholds, float, 1, 10)
        return [
            *super().checks(),
            (known, f"nonlinearities must be among {', '.join(NONLINEARITIES)}"),
            (depths is not None, "depths must be integers >= 1, e.g. 4,8,12,20"),
            (bool(_numbers(self.filters, int, 1)), "filters must be integers >= 1, e.g. 32,64,128"),
            (thresholds is not None, "thresholds must be numbers in [1, 10]"),
            (not depths or min(depths) >= levels, f"depths must be >= {levels} at resolution {r}"),
        ]


@dataclass(frozen=True)
class Architecture:
    """One point of the space: each option for G and for D."""

    g_activation: str
    d_activation: str
    g_depth: int
    d_depth: int
    g_batch_norm: bool
    d_batch_norm: bool  # layer norm instead under the gradient penalty
    g_filters: int
    d_filters: int

    def nets(self) -> dict[str, tuple]:
        """G's and D's (activation, depth, batch norm, filters), by config section."""
        return {"generator": astuple(self)[::2], "critic": astuple(self)[1::2]}

    def overrides(self) -> list[str]:
        """The ``generator.*`` / ``critic.*`` config overrides of this architecture."""
        out = []
        for net, (act, depth, bn, filters) in self.nets().items():
            out += [f"{net}.activation={act}", f"{net}.layers={depth}"]
            out += [f"{net}.norm={'batch' if bn else 'none'}", f"{net}.width={filters}"]
        return [*out, "generator.init=he", "critic.init=he"]  # He init, as the paper's code

    def label(self) -> str:
        """Short text: G and D as activation/depth/norm/filters."""
        g, d = (f"{a}/{n}/{'bn' if bn else '-'}/{f}" for a, n, bn, f in self.nets().values())
        return f"G {g}  D {d}"


def sample_architectures(
    n: int,
    seed: int,
    nonlinearities: Sequence[str] = NONLINEARITIES,
    depths: Sequence[int] = (4, 8, 12, 20),
    filters: Sequence[int] = (32, 64, 128),
) -> list[Architecture]:
    """``n`` architectures drawn from the space at ``seed`` (numpy ``default_rng``; the same
    ``seed`` gives the same list). Each of the eight options is drawn balanced, independently of
    the others as in a uniform draw: its k values are repeated to length ``n`` and shuffled, so
    each appears floor(n / k) or ceil(n / k) times, and every value appears once ``n`` >= k."""
    rng = np.random.default_rng(seed)
    space = [v for v in (nonlinearities, depths, (True, False), filters) for _net in ("G", "D")]
    columns = [[values[i % len(values)] for i in rng.permutation(n)] for values in space]
    return [Architecture(*values) for values in zip(*columns, strict=True)]


def draw(s: RandomArchitecturesSettings) -> list[Architecture]:
    """The architectures of the settings ``s``."""
    space = (split_list(s.nonlinearities), _numbers(s.depths, int, 1), _numbers(s.filters, int, 1))
    return sample_architectures(s.n_architectures, s.seed, *space)


def success_table(scores: list[tuple], thresholds: list[float]) -> list[dict[str, Any]]:
    """Per threshold t, how many (GAN score, WGAN-GP score) pairs succeed with only the GAN,
    only WGAN-GP, both, or neither; success is a score above t, ``IS > t``, as in Gulrajani et
    al. 2017, Table 2 (a failed run, score None, succeeds at no t)."""
    hits = [
        Counter((g is not None and g > t, w is not None and w > t) for g, w in scores)
        for t in thresholds
    ]
    return [
        {
            "threshold": t,
            "only_gan": hit[1, 0],
            "only_wgan_gp": hit[0, 1],
            "both": hit[1, 1],
            "neither": hit[0, 0],
        }
        for t, hit in zip(thresholds, hits, strict=True)
    ]


@register
class RandomArchitectures(DigitStudy):
    """The paper's Table 2: each random architecture trained with the GAN and with WGAN-GP."""

    name = "random-architectures"
    description = (
        "WGAN-GP paper, sec. 5.1 and Table 2: N random G/D architectures (nonlinearity, depth, "
        "batch norm, filters) trained with the standard GAN and with WGAN-GP on the digits; how "
        "many succeed (IS > threshold) at each digit-Inception-score threshold (only GAN / only "
        "WGAN-GP / both / neither)."
    )
    Settings = RandomArchitecturesSettings
    methods = {m: METHODS[m] for m in ("gan", "wgan-gp")}
    quick = {"n_architectures": 1, "steps": 20, "filters": "8", "depths": "4", "eval_samples": 200}

    def architectures(self, s: RandomArchitecturesSettings) -> list[tuple[str, list[str]]]:
        """``archNNN`` and its overrides, with weight decay on a normalised D."""
        decay, archs = [f"d_optim.weight_decay={s.weight_decay}"], enumerate(draw(s))
        return [(f"arch{i:03d}", [*a.overrides(), *decay * a.d_batch_norm]) for i, a in archs]

    def numbers(self, s: RandomArchitecturesSettings, scores: Scores) -> dict:
        """The success table at each threshold, the paper's row, each architecture's scores."""
        per_arch = []
        for i, a in enumerate(draw(s)):
            g, w = scores[f"arch{i:03d}", "gan"], scores[f"arch{i:03d}", "wgan-gp"]
            per_arch.append({"index": i, **asdict(a), "gan_is": g, "wgan_gp_is": w})
        thresholds = sorted({*_numbers(s.thresholds, float, 1, 10), s.verdict_threshold})
        success = success_table([(p["gan_is"], p["wgan_gp_is"]) for p in per_arch], thresholds)
        return {"success": success, "published": PUBLISHED, "architectures": per_arch}

    def verdicts(self, numbers: dict, s: RandomArchitecturesSettings) -> list[Verdict]:
        """At ``verdict_threshold`` t, both halves of the claim: WGAN-GP succeeds (IS > t) on more
        architectures than the standard GAN, ``only_wgan_gp + both > only_gan + both``, and the
        GAN rarely succeeds where WGAN-GP fails, ``only_gan <= MAX_ONLY_GAN * n`` (the paper:
        189 vs 42 of 200, and only GAN 0 vs only WGAN-GP 147). Not tested below
        :data:`MIN_ARCHITECTURES` architectures or :data:`MIN_STEPS` iterations, or when no run
        reached t."""
        row = next(r for r in numbers["success"] if r["threshold"] == s.verdict_threshold)
        gan, wgp = row["only_gan"] + row["both"], row["only_wgan_gp"] + row["both"]
        n = s.n_architectures
        rare = row["only_gan"] <= MAX_ONLY_GAN * n
        measured = f"at IS > {row['threshold']:g}: WGAN-GP {wgp}/{n}, GAN {gan}/{n} (only GAN "
        measured += f"{row['only_gan']} (at most {MAX_ONLY_GAN:.0%} of {n} allowed), only WGAN-GP "
        measured += f"{row['only_wgan_gp']}, both {row['both']}, neither {row['neither']}); paper "
        measured += "189/200 vs 42/200, only GAN 0 vs only WGAN-GP 147, on 32x32 ImageNet"
        small = n < MIN_ARCHITECTURES or s.steps < MIN_STEPS
        why = f"{n} architectures x {s.steps} generator iterations; the claim is tested from "
        why += f"{MIN_ARCHITECTURES} architectures and {MIN_STEPS} iterations"
        if not small and gan + wgp == 0:
            small, why = True, "no run scored above the threshold with either method"
        claim = "WGAN-GP trains more of the random architectures to the score threshold than the "
        claim += "standard GAN, and the standard GAN rarely succeeds where WGAN-GP fails"
        source = "Gulrajani et al. 2017, WGAN-GP, sec. 5.1, Table 2 (32x32 ImageNet, IS > t)"
        holds = wgp > gan and rare
        return [decide(claim, source, measured, holds, testable=not small, why_not=why)]

    def figures(self, s, numbers, records, run_dir: Path) -> list[Path]:
        """GAN score against WGAN-GP score, one point per architecture (failed runs at 1, as x)."""
        from wgan.figures.plotting import legend_beside, save_figure, subplots

        t, real = s.verdict_threshold, numbers["real_digit_is"]
        scores = [(a["gan_is"], a["wgan_gp_is"]) for a in numbers["architectures"]]
        fig, ax = subplots(figsize=(5.0, 4.6))
        ok = [(g, w) for g, w in scores if g is not None and w is not None]
        bad = [(g or 1.0, w or 1.0) for g, w in scores if g is None or w is None]
        if ok:
            ax.scatter(*zip(*ok, strict=True), s=25, c="tab:blue", label="architecture")
        if bad:
            ax.scatter(*zip(*bad, strict=True), s=30, marker="x", c="tab:red", label="a run failed")
        ax.plot([1, 10], [1, 10], c="0.6", lw=1, ls="--", label="equal scores")
        ax.axvline(t, c="0.8", lw=1)
        ax.axhline(t, c="0.8", lw=1, label=f"threshold {t:g}")
        ax.axhline(real, c="tab:green", lw=1, ls=":", label=f"real digits ({real:.2f})")
        ax.set(xlabel="standard GAN: digit Inception score", xlim=(0.8, 10.2), aspect="equal")
        ax.set(ylabel="WGAN-GP: digit Inception score", ylim=(0.8, 10.2))
        ax.set_title(f"{len(scores)} random architectures", fontsize=9)
        legend_beside(ax)
        return [save_figure(fig, run_dir / "random_architectures.png")]

    def table(self, s: RandomArchitecturesSettings, numbers: dict[str, Any]) -> str:
        """The success table beside the paper's row, then each architecture's scores."""
        head = ["IS threshold", "only GAN", "only WGAN-GP", "both", "neither"]
        rows = [[f"{r['threshold']:g}", *list(r.values())[1:]] for r in numbers["success"]]
        paper = ["5 (paper, 200 archs, 32x32 ImageNet)", 0, 147, 42, 11]  # Table 2
        success = format_table(head, [*rows, paper])
        head = ["#", "architecture (act/depth/norm/filters)", "GAN IS", "WGAN-GP IS"]
        rows = [
            [p["index"], a.label(), show_is(p["gan_is"]), show_is(p["wgan_gp_is"])]
            for p, a in zip(numbers["architectures"], draw(s), strict=True)
        ]
        return "\n\n".join([success, format_table(head, rows), self.footer(s, numbers)])
