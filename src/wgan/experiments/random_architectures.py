"""Does WGAN-GP train more architectures than the standard GAN? Random architectures on digits.

Gulrajani et al. (2017, "Improved Training of Wasserstein GANs", sec. 5.1 and Table 1) draw 200
generator / discriminator architectures at random from a space of nonlinearities (ReLU,
LeakyReLU, softplus(2x+2)/2 - 1, tanh, each net its own), depths (4, 8, 12, 20), batch norm in
G and in D (layer norm instead in the WGAN-GP critic) and base filter counts (32, 64, 128), train
each with the standard GAN (DCGAN loss, Adam 2e-4, betas (0.5, 0.999)) and with WGAN-GP (Adam
1e-4, betas (0, 0.9)), and count at each Inception-score threshold the architectures that
succeed with only the GAN, only WGAN-GP, both, or neither; at a threshold of 5.0 on CIFAR-10 they
report 0 / 147 / 42 / 11. The claim: WGAN-GP succeeds on many architectures where the standard
GAN fails, and not the other way round.

Here the data are the embedded 8x8 sklearn digits (resized), the score is the digit classifier's
Inception score (:func:`wgan.metrics.digit_inception_score`, 1..10; real held-out digits score
about 9), and the networks are the DCGAN builders of :mod:`wgan.nets.build` with the sampled
options, initialised with He et al.'s N(0, 2 / fan_in) (``init=he``: DCGAN's N(0, 0.02) would
fail every deep net without batch norm for both methods before training starts). Weight decay
1e-3 is applied to a normalised D, as in the paper. Every run is an
ordinary run directory of a study (:func:`wgan.scale.study.run_study`) under ``<run_dir>/runs``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from wgan.config import Config
from wgan.experiments.common import (
    ExperimentResult,
    check_settings,
    experiment_entry,
    format_table,
    split_list,
    write_results,
)
from wgan.experiments.robustness import digit_is, method_config, train_all
from wgan.experiments.verdict import Verdict, decide

NAME = "random-architectures"
DESCRIPTION = (
    "WGAN-GP paper, Table 1: N random G/D architectures (nonlinearity, depth, batch norm, "
    "filters) trained with the standard GAN and with WGAN-GP on the digits; how many succeed "
    "at each digit-Inception-score threshold (only GAN / only WGAN-GP / both / neither)."
)

#: The paper's counts at IS 5.0 over 200 architectures on CIFAR-10 (Gulrajani et al. 2017, Table 1).
PUBLISHED = {"threshold": 5.0, "only_gan": 0, "only_wgan_gp": 147, "both": 42, "neither": 11}
NONLINEARITIES = ("relu", "leaky_relu", "softplus", "tanh")
METHODS = ("gan", "wgan-gp")
#: Fewer architectures or generator iterations than this: the verdict is "not tested".
MIN_ARCHITECTURES, MIN_STEPS = 20, 2000


@dataclass
class RandomArchitecturesSettings:
    """Settings of ``wgan experiment random-architectures``.

    The default (4 architectures, 8x8 digits, 600 generator iterations, filters 8/16/32) is sized
    for about 15 minutes on 2 CPU cores and only shows the protocol; the paper's size is
    ``n_architectures=200 filters=32,64,128 resolution=32 batch_size=64 steps=20000`` (with a
    GPU, ``launcher=local jobs=K`` or ``launcher=ray``). Runs finished in the same run directory
    are skipped when the experiment is re-run there.
    """

    n_architectures: int = 4  # architectures drawn (the paper: 200)
    seed: int = 0  # seed of the draw; run i trains with seed + i
    resolution: int = 8  # digits side: 8, 16, 32 or 64
    steps: int = 600  # generator iterations per run, both methods
    batch_size: int = 32  # batch size (the paper: 64)
    nonlinearities: str = "relu,leaky_relu,softplus,tanh"  # values drawn for G's and D's
    depths: str = "4,8,12,20"  # convolutions in G and in D (values drawn)
    filters: str = "8,16,32"  # base filter counts drawn (the paper's 32,64,128, scaled down)
    thresholds: str = "2,3,4,5,6,7,8,9"  # digit-IS thresholds of the success table
    verdict_threshold: float = 5.0  # the threshold the verdict reads (the paper's 5.0)
    weight_decay: float = 1e-3  # on D's optimiser when D is normalised (the paper's 1e-3)
    eval_samples: int = 1000  # samples scored by the digit classifier at the end of a run
    launcher: str = "local"  # how runs are carried out: local processes or ray
    jobs: int = 2  # runs at a time
    address: str = ""  # ray cluster address ("": a local Ray)
    device: str = "cpu"  # train.device of every run: cpu, cuda, auto
    threads: int = 1  # torch CPU threads per run (0: torch's default)

    def validate(self) -> None:
        nonlin = split_list(self.nonlinearities)
        checks = [
            (1 <= self.n_architectures <= 10_000, "n_architectures must be in [1, 10000]"),
            (self.resolution in (8, 16, 32, 64), "resolution must be 8, 16, 32 or 64"),
            (self.steps >= 1, "steps must be >= 1"),
            (self.batch_size >= 2, "batch_size must be >= 2"),
            (
                bool(nonlin) and all(a in NONLINEARITIES for a in nonlin),
                f"nonlinearities must be among {', '.join(NONLINEARITIES)}",
            ),
            (_ints(self.depths, 1) is not None, "depths must be integers >= 1, e.g. 4,8,12,20"),
            (_ints(self.filters, 1) is not None, "filters must be integers >= 1, e.g. 32,64,128"),
            (_floats(self.thresholds) is not None, "thresholds must be numbers in [1, 10]"),
            (1.0 <= self.verdict_threshold <= 10.0, "verdict_threshold must be in [1, 10]"),
            (self.weight_decay >= 0, "weight_decay must be >= 0"),
            (2 <= self.eval_samples <= 100_000, "eval_samples must be in [2, 100000]"),
            (self.launcher in ("local", "ray"), "launcher must be local or ray"),
            (1 <= self.jobs <= 1024, "jobs must be in [1, 1024]"),
            (self.threads >= 0, "threads must be >= 0"),
        ]
        check_settings(checks, f"{NAME}: ")
        levels = int(np.log2(self.resolution)) - 2
        depths = _ints(self.depths, 1) or []
        check_settings(
            [
                (
                    min(depths) >= levels,
                    f"depths must be >= {levels} at resolution {self.resolution}",
                )
            ],
            f"{NAME}: ",
        )


#: ``wgan experiment all --quick``: one architecture, a few iterations (the protocol only).
QUICK: dict[str, Any] = {
    "n_architectures": 1,
    "steps": 20,
    "filters": "8",
    "depths": "4",
    "eval_samples": 200,
}


def _ints(text: str, least: int) -> list[int] | None:
    try:
        values = [int(v) for v in split_list(text)]
    except ValueError:
        return None
    return values if values and min(values) >= least else None


def _floats(text: str) -> list[float] | None:
    try:
        values = [float(v) for v in split_list(text)]
    except ValueError:
        return None
    return values if values and all(1.0 <= v <= 10.0 for v in values) else None


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

    def overrides(self) -> list[str]:
        """The ``generator.*`` / ``critic.*`` config overrides of this architecture."""
        return [
            f"generator.activation={self.g_activation}",
            f"critic.activation={self.d_activation}",
            f"generator.layers={self.g_depth}",
            f"critic.layers={self.d_depth}",
            f"generator.norm={'batch' if self.g_batch_norm else 'none'}",
            f"critic.norm={'batch' if self.d_batch_norm else 'none'}",
            f"generator.width={self.g_filters}",
            f"critic.width={self.d_filters}",
            # He init (as the paper's code): DCGAN's N(0, 0.02) leaves a deep net without
            # batch norm with outputs independent of its input before any training
            "generator.init=he",
            "critic.init=he",
        ]

    def label(self) -> str:
        """Short text: G and D as activation/depth/norm/filters."""

        def net(act: str, depth: int, bn: bool, filters: int) -> str:
            return f"{act}/{depth}/{'bn' if bn else '-'}/{filters}"

        g = net(self.g_activation, self.g_depth, self.g_batch_norm, self.g_filters)
        d = net(self.d_activation, self.d_depth, self.d_batch_norm, self.d_filters)
        return f"G {g}  D {d}"


def sample_architectures(
    n: int,
    seed: int,
    nonlinearities: tuple[str, ...] | list[str] = NONLINEARITIES,
    depths: tuple[int, ...] | list[int] = (4, 8, 12, 20),
    filters: tuple[int, ...] | list[int] = (32, 64, 128),
) -> list[Architecture]:
    """``n`` architectures drawn from the space at ``seed`` (numpy ``default_rng``).

    Each of the eight options is drawn balanced: its values are repeated to length ``n`` and
    shuffled independently of the other options, so every value of every option appears
    floor(n / k) or ceil(n / k) times (k = number of values), and every value appears once
    ``n`` >= k. The options are independent of each other, as in a uniform draw; the same
    ``seed`` gives the same list.
    """
    rng = np.random.default_rng(seed)

    def column(values: list[Any]) -> list[Any]:
        tiled = (values * (n // len(values) + 1))[:n]
        return [tiled[i] for i in rng.permutation(n)]

    acts, deps, fils = list(nonlinearities), [int(d) for d in depths], [int(f) for f in filters]
    cols = [
        column(acts),
        column(acts),
        column(deps),
        column(deps),
        column([True, False]),
        column([True, False]),
        column(fils),
        column(fils),
    ]
    return [Architecture(*values) for values in zip(*cols, strict=True)]


def success_table(
    scores: list[tuple[float | None, float | None]], thresholds: list[float]
) -> list[dict[str, Any]]:
    """Per threshold t, how many (GAN score, WGAN-GP score) pairs reach t with only the GAN,
    only WGAN-GP, both, or neither (a failed run, score None, does not reach any t)."""
    rows = []
    for t in thresholds:
        gan = [g is not None and g >= t for g, _ in scores]
        wgp = [w is not None and w >= t for _, w in scores]
        rows.append(
            {
                "threshold": t,
                "only_gan": sum(a and not b for a, b in zip(gan, wgp, strict=True)),
                "only_wgan_gp": sum(b and not a for a, b in zip(gan, wgp, strict=True)),
                "both": sum(a and b for a, b in zip(gan, wgp, strict=True)),
                "neither": sum(not a and not b for a, b in zip(gan, wgp, strict=True)),
            }
        )
    return rows


def plot_scatter(
    scores: list[tuple[float | None, float | None]], threshold: float, real_is: float, path: Path
) -> Path:
    """GAN score against WGAN-GP score, one point per architecture (failed runs at 1, as x)."""
    from wgan.figures.plotting import legend_beside, save_figure, subplots

    fig, ax = subplots(figsize=(5.0, 4.6))
    ok = [(g, w) for g, w in scores if g is not None and w is not None]
    bad = [(g or 1.0, w or 1.0) for g, w in scores if g is None or w is None]
    if ok:
        ax.scatter(*zip(*ok, strict=True), s=25, c="tab:blue", label="architecture")
    if bad:
        ax.scatter(*zip(*bad, strict=True), s=30, marker="x", c="tab:red", label="a run failed")
    ax.plot([1, 10], [1, 10], c="0.6", lw=1, ls="--", label="equal scores")
    ax.axvline(threshold, c="0.8", lw=1)
    ax.axhline(threshold, c="0.8", lw=1, label=f"threshold {threshold:g}")
    ax.axhline(real_is, c="tab:green", lw=1, ls=":", label=f"real digits ({real_is:.2f})")
    ax.set_xlim(0.8, 10.2)
    ax.set_ylim(0.8, 10.2)
    ax.set_aspect("equal")
    ax.set_xlabel("standard GAN: digit Inception score")
    ax.set_ylabel("WGAN-GP: digit Inception score")
    ax.set_title(f"{len(scores)} random architectures", fontsize=9)
    legend_beside(ax)
    return save_figure(fig, path)


def _verdict(row: dict[str, Any], settings: RandomArchitecturesSettings) -> Verdict:
    gan, wgp = row["only_gan"] + row["both"], row["only_wgan_gp"] + row["both"]
    n = settings.n_architectures
    measured = (
        f"at IS >= {row['threshold']:g}: WGAN-GP {wgp}/{n}, GAN {gan}/{n} (only GAN "
        f"{row['only_gan']}, only WGAN-GP {row['only_wgan_gp']}, both {row['both']}, neither "
        f"{row['neither']}); paper 189/200 vs 42/200 on CIFAR-10"
    )
    small = n < MIN_ARCHITECTURES or settings.steps < MIN_STEPS
    why = (
        f"{n} architectures x {settings.steps} generator iterations; the claim is tested from "
        f"{MIN_ARCHITECTURES} architectures and {MIN_STEPS} iterations"
    )
    if not small and gan + wgp == 0:
        small, why = True, "no run reached the threshold with either method"
    return decide(
        "WGAN-GP trains more of the random architectures to the score threshold than the "
        "standard GAN",
        "Gulrajani et al. 2017, WGAN-GP, sec. 5.1 and Table 1",
        measured,
        wgp > gan,
        testable=not small,
        why_not=why,
    )


def study_runs(
    settings: RandomArchitecturesSettings,
) -> tuple[list[Architecture], list[tuple[str, Config]]]:
    """The sampled architectures and the study's ``(name, config)`` runs: ``archNNN-gan`` and
    ``archNNN-wgan-gp`` per architecture, seeded ``seed + NNN``, weight decay on a normalised D.
    """
    archs = sample_architectures(
        settings.n_architectures,
        settings.seed,
        split_list(settings.nonlinearities),
        _ints(settings.depths, 1) or [],
        _ints(settings.filters, 1) or [],
    )
    runs = []
    for i, arch in enumerate(archs):
        for method in METHODS:
            extra = [f"d_optim.weight_decay={settings.weight_decay}"] if arch.d_batch_norm else []
            name = f"arch{i:03d}-{method}"
            cfg = method_config(
                method,
                name,
                [*arch.overrides(), *extra],
                resolution=settings.resolution,
                batch_size=settings.batch_size,
                steps=settings.steps,
                seed=settings.seed + i,
                device=settings.device,
                eval_samples=settings.eval_samples,
            )
            runs.append((name, cfg))
    return archs, runs


@experiment_entry
def run(settings: RandomArchitecturesSettings, run_dir: Path) -> ExperimentResult:
    """Sample the architectures, train each with both methods, tabulate, plot, decide."""
    from wgan.metrics import digit_inception_score, digits_split

    archs, runs = study_runs(settings)
    records = train_all(
        runs,
        run_dir / "runs",
        settings.launcher,
        settings.jobs,
        settings.address,
        settings.threads,
    )
    scores = [
        (digit_is(records.get(f"arch{i:03d}-gan")), digit_is(records.get(f"arch{i:03d}-wgan-gp")))
        for i in range(len(archs))
    ]
    real_is = digit_inception_score(digits_split(settings.resolution)[2])["digit_is"]
    thresholds = sorted({*(_floats(settings.thresholds) or []), settings.verdict_threshold})
    rows = success_table(scores, thresholds)
    figure = plot_scatter(
        scores, settings.verdict_threshold, real_is, run_dir / "random_architectures.png"
    )
    per_arch = [
        {"index": i, **asdict(a), "gan_is": g, "wgan_gp_is": w}
        for i, (a, (g, w)) in enumerate(zip(archs, scores, strict=True))
    ]
    row = next(r for r in rows if r["threshold"] == settings.verdict_threshold)
    verdict = _verdict(row, settings)

    def cell(v: float | None) -> str:
        return "failed" if v is None else f"{v:.2f}"

    text = "\n\n".join(
        [
            format_table(
                ["IS threshold", "only GAN", "only WGAN-GP", "both", "neither"],
                [[f"{r['threshold']:g}", *list(r.values())[1:]] for r in rows]
                + [["5 (paper, 200 archs, CIFAR-10)", 0, 147, 42, 11]],
            ),
            format_table(
                ["#", "architecture (act/depth/norm/filters)", "GAN IS", "WGAN-GP IS"],
                [
                    [p["index"], a.label(), cell(g), cell(w)]
                    for p, a, (g, w) in zip(per_arch, archs, scores, strict=True)
                ],
            ),
            f"digit Inception score of the real held-out digits at {settings.resolution}x"
            f"{settings.resolution}: {real_is:.2f}; {settings.steps} generator iterations per run, "
            f"batch {settings.batch_size}.",
        ]
    )
    numbers = {
        "success": rows,
        "published": PUBLISHED,
        "architectures": per_arch,
        "real_digit_is": real_is,
        "runs": [records[name] for name, _ in runs],
        "verdicts": [verdict.to_dict()],
    }
    write_results(run_dir, NAME, settings, numbers)
    return ExperimentResult(NAME, run_dir, numbers, text, [figure], [verdict])


SETTINGS = RandomArchitecturesSettings
