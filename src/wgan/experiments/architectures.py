"""Seven architectures against four GAN methods on the digits: the WGAN-GP paper's Figure 2.

Gulrajani et al. (2017, "Improved Training of Wasserstein GANs", sec. 5.1, Figure 2) train
seven generator / critic architectures with DCGAN, LSGAN, WGAN with weight clipping and WGAN-GP
and show a grid of samples: (1) the DCGAN baseline, (2) G without batch norm and with a constant
filter count, (3) G a 4-layer 512-unit ReLU MLP, (4) no normalisation in G or D, (5) gated
multiplicative nonlinearities tanh(a) * sigmoid(b) everywhere, (6) tanh everywhere, (7) a
101-layer ResNet G and D. Their claim: WGAN-GP trains every one of them, while each other
method fails on some.

Here the data are the embedded digits, the networks come from config options
(:mod:`wgan.nets.build`), the optimisers are each method's published ones
(:data:`wgan.experiments.robustness.METHODS`), and each cell of the figure is a 4x4 grid of
samples of one (architecture, method) run, titled by its digit Inception score
(:func:`wgan.metrics.digit_inception_score`). The deep ResNet has ``resnet_blocks`` residual
blocks (50: 101 layers, the paper's; fewer by default to fit the CPU budget).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from wgan.config import Config
from wgan.experiments.common import (
    ExperimentResult,
    check_settings,
    experiment_entry,
    format_table,
    split_list,
    write_results,
)
from wgan.experiments.robustness import METHODS, digit_is, method_config, train_all
from wgan.experiments.verdict import Verdict, decide

NAME = "architectures"
DESCRIPTION = (
    "WGAN-GP paper, Figure 2: seven architectures (DCGAN, no-BN constant-width G, MLP G, no "
    "normalisation, gated units, tanh, deep ResNet) x DCGAN / LSGAN / WGAN-clip / WGAN-GP on "
    "the digits: a sample grid and a digit-Inception-score table."
)

#: setting -> label; the overrides are made by :func:`setting_overrides`.
ARCHITECTURES: dict[str, str] = {
    "dcgan": "DCGAN baseline",
    "no_bn_const_g": "G: no BN, constant filters",
    "mlp_g": "G: 4x512 ReLU MLP",
    "no_norm": "no norm in G or D",
    "gated": "gated tanh*sigmoid",
    "tanh": "tanh everywhere",
    "resnet": "deep ResNet",
}
#: Fewer generator iterations than this: the verdict is "not tested".
MIN_STEPS = 2000


@dataclass
class ArchitecturesSettings:
    """Settings of ``wgan experiment architectures``.

    The default (8x8 digits, 200 generator iterations, base width 16, a 6-block ResNet) is
    sized for about 15 minutes on 2 CPU cores: the samples show which runs start to learn, not
    converged models. The paper's sizes: ``resolution=32 width=64 batch_size=64 steps=20000
    resnet_blocks=50`` (101 layers), e.g. on a GPU with ``jobs=4``.
    """

    architectures: str = ",".join(ARCHITECTURES)  # settings to train (rows of the grid)
    methods: str = ",".join(METHODS)  # gan, lsgan, wgan-clip, wgan-gp (columns of the grid)
    resolution: int = 8  # digits side: 8, 16, 32 or 64
    width: int = 16  # base filter count of G and D (the paper: 64)
    steps: int = 200  # generator iterations per run
    batch_size: int = 32  # batch size (the paper: 64)
    resnet_blocks: int = 6  # residual blocks of the deep ResNet (50: the paper's 101 layers)
    threshold: float = 5.0  # a run "succeeds" at this digit Inception score (verdict)
    eval_samples: int = 1000  # samples scored by the digit classifier at the end of a run
    seed: int = 0  # the i-th setting trains with seed + i (all methods alike)
    launcher: str = "local"  # how runs are carried out: local processes or ray
    jobs: int = 2  # runs at a time
    address: str = ""  # ray cluster address ("": a local Ray)
    device: str = "cpu"  # train.device of every run: cpu, cuda, auto
    threads: int = 1  # torch CPU threads per run (0: torch's default)

    def validate(self) -> None:
        archs, methods = split_list(self.architectures), split_list(self.methods)
        checks = [
            (
                bool(archs) and all(a in ARCHITECTURES for a in archs),
                f"architectures must be among {', '.join(ARCHITECTURES)}",
            ),
            (
                bool(methods) and all(m in METHODS for m in methods),
                f"methods must be among {', '.join(METHODS)}",
            ),
            (self.resolution in (8, 16, 32, 64), "resolution must be 8, 16, 32 or 64"),
            (1 <= self.width <= 4096, "width must be in [1, 4096]"),
            (self.steps >= 1, "steps must be >= 1"),
            (self.batch_size >= 2, "batch_size must be >= 2"),
            (1 <= self.resnet_blocks <= 1000, "resnet_blocks must be in [1, 1000]"),
            (1.0 <= self.threshold <= 10.0, "threshold must be in [1, 10]"),
            (2 <= self.eval_samples <= 100_000, "eval_samples must be in [2, 100000]"),
            (self.launcher in ("local", "ray"), "launcher must be local or ray"),
            (1 <= self.jobs <= 1024, "jobs must be in [1, 1024]"),
            (self.threads >= 0, "threads must be >= 0"),
        ]
        check_settings(checks, f"{NAME}: ")
        n = self.resolution.bit_length() - 3  # 2x resampling steps from 4x4
        least = max(n, 3 + max(n - 2, 0))  # G: n upsampling blocks; D: its default count
        check_settings(
            [
                (
                    "resnet" not in archs or self.resnet_blocks >= least,
                    f"resnet_blocks must be >= {least} at resolution {self.resolution}",
                )
            ],
            f"{NAME}: ",
        )


#: ``wgan experiment all --quick``: two settings, two methods, a few iterations.
QUICK: dict[str, Any] = {
    "architectures": "dcgan,gated",
    "methods": "gan,wgan-gp",
    "steps": 20,
    "width": 8,
    "eval_samples": 200,
}


def setting_overrides(arch: str, width: int, resnet_blocks: int) -> list[str]:
    """The ``generator.*`` / ``critic.*`` overrides of one of the seven settings (batch norm in
    D becomes layer norm under the gradient penalty, in :func:`~wgan.experiments.robustness.
    method_config`)."""
    base = [
        f"generator.width={width}",
        f"critic.width={width}",
        "generator.norm=batch",
        "critic.norm=batch",
    ]
    extra = {
        "dcgan": [],
        "no_bn_const_g": ["generator.norm=none", "generator.constant_width=true"],
        "mlp_g": [
            "generator.arch=mlp",
            "generator.depth=4",
            "generator.hidden=512",
            "generator.norm=none",
        ],
        "no_norm": ["generator.norm=none", "critic.norm=none"],
        "gated": ["generator.activation=gated", "critic.activation=gated"],
        "tanh": ["generator.activation=tanh", "critic.activation=tanh"],
        "resnet": [
            "generator.arch=resnet",
            "critic.arch=resnet",
            f"generator.blocks={resnet_blocks}",
            f"critic.blocks={resnet_blocks}",
        ],
    }[arch]
    # He init for the DCGAN nets (as the paper's code; DCGAN's N(0, 0.02) would leave the
    # settings without normalisation with input-independent outputs before training starts)
    dcgan_g = arch not in ("mlp_g", "resnet")
    dcgan_d = arch != "resnet"
    init = ["generator.init=he"] * dcgan_g + ["critic.init=he"] * dcgan_d
    return [*base, *extra, *init]  # later overrides win


def plot_grid(
    samples: dict[tuple[str, str], torch.Tensor | None],
    scores: dict[tuple[str, str], float | None],
    archs: list[str],
    methods: list[str],
    path: Path,
    title: str,
) -> Path:
    """Rows: architectures; columns: methods; each cell a 4x4 grid of samples (grey: failed)."""
    from wgan.figures.images import image_grid
    from wgan.figures.plotting import plot_image_grid, save_figure

    cells = []
    shape = next(s.shape for s in samples.values() if s is not None)  # (16, 1, R, R)
    for a in archs:
        row = []
        for m in methods:
            x = samples[(a, m)]
            x = torch.zeros(shape) if x is None else x  # a failed run: a grey block
            row.append(image_grid(x, nrow=4, padding=1) * 2 - 1)  # (1, H', W') in [-1, 1]
        cells.append(torch.stack(row))
    images = torch.stack(cells)  # (rows, cols, 1, H', W')

    def name(m: str) -> str:
        return METHODS[m][2].replace(" (standard GAN)", "")

    cols = [name(m) for m in methods]
    rows = [
        f"{ARCHITECTURES[a]}\n"
        + "  ".join("fail" if scores[(a, m)] is None else f"{scores[(a, m)]:.1f}" for m in methods)
        for a in archs
    ]
    fig = plot_image_grid(
        images, rows, cols, title, xlabel="method", ylabel="architecture (digit IS per method)"
    )
    fig.set_size_inches(1.6 * len(methods) + 2.6, 1.45 * len(archs) + 1.2)
    return save_figure(fig, path)


def _verdict(
    scores: dict[tuple[str, str], float | None],
    archs: list[str],
    methods: list[str],
    settings: ArchitecturesSettings,
) -> Verdict:
    t = settings.threshold
    wins = {m: sum((scores[(a, m)] or 0.0) >= t for a in archs) for m in methods}
    measured = ", ".join(f"{METHODS[m][2]} {wins[m]}/{len(archs)}" for m in methods)
    testable = "wgan-gp" in methods and len(methods) > 1 and settings.steps >= MIN_STEPS
    why = (
        "needs WGAN-GP and another method"
        if "wgan-gp" not in methods or len(methods) == 1
        else f"{settings.steps} generator iterations; tested from {MIN_STEPS}"
    )
    others = [wins[m] for m in methods if m != "wgan-gp"]
    holds = wins.get("wgan-gp", 0) == len(archs) and all(w < len(archs) for w in others)
    return decide(
        "WGAN-GP trains every architecture setting, each other method fails on some",
        "Gulrajani et al. 2017, WGAN-GP, sec. 5.1 and Figure 2",
        f"settings with digit IS >= {t:g}: {measured}",
        holds,
        testable=testable,
        why_not=why,
    )


def study_runs(settings: ArchitecturesSettings) -> list[tuple[str, Config]]:
    """The study's ``(name, config)`` runs, ``<architecture>-<method>``, seeded ``seed + i``
    for the i-th architecture (every method of one architecture starts from the same seed)."""
    archs, methods = split_list(settings.architectures), split_list(settings.methods)
    runs = []
    for i, arch in enumerate(archs):
        for method in methods:
            name = f"{arch}-{method}"
            overrides = setting_overrides(arch, settings.width, settings.resnet_blocks)
            cfg = method_config(
                method,
                name,
                overrides,
                resolution=settings.resolution,
                batch_size=settings.batch_size,
                steps=settings.steps,
                seed=settings.seed + i,
                device=settings.device,
                eval_samples=settings.eval_samples,
            )
            runs.append((name, cfg))
    return runs


@experiment_entry
def run(settings: ArchitecturesSettings, run_dir: Path) -> ExperimentResult:
    """Train every (architecture, method), sample, score, tabulate and plot."""
    from wgan.metrics import digit_inception_score, digits_split
    from wgan.training.run import load_run

    archs, methods = split_list(settings.architectures), split_list(settings.methods)
    runs = study_runs(settings)
    records = train_all(
        runs,
        run_dir / "runs",
        settings.launcher,
        settings.jobs,
        settings.address,
        settings.threads,
    )
    scores: dict[tuple[str, str], float | None] = {}
    samples: dict[tuple[str, str], torch.Tensor | None] = {}
    for arch in archs:
        for method in methods:
            record = records[f"{arch}-{method}"]
            scores[(arch, method)] = digit_is(record)
            samples[(arch, method)] = None
            if scores[(arch, method)] is not None:
                x = load_run(record["run_dir"]).samples(16, seed=0)  # (16, 1, R, R)
                samples[(arch, method)] = x if bool(torch.isfinite(x).all()) else None
    real_is = digit_inception_score(digits_split(settings.resolution)[2])["digit_is"]
    r = settings.resolution
    title = (
        f"{r}x{r} digits, {settings.steps} generator iterations, width {settings.width} "
        f"(real digits: IS {real_is:.2f})"
    )
    figure = plot_grid(samples, scores, archs, methods, run_dir / "architectures.png", title)

    def cell(v: float | None) -> str:
        return "failed" if v is None else f"{v:.2f}"

    table = format_table(
        ["architecture", *[METHODS[m][2] for m in methods]],
        [[ARCHITECTURES[a], *[cell(scores[(a, m)]) for m in methods]] for a in archs],
    )
    verdict = _verdict(scores, archs, methods, settings)
    text = (
        f"digit Inception score of each run (real held-out digits: {real_is:.2f})\n\n{table}"
        f"\n\n{settings.steps} generator iterations per run, batch {settings.batch_size}, "
        f"{r}x{r} digits, base width {settings.width}, ResNet {settings.resnet_blocks} blocks."
    )
    numbers: dict[str, Any] = {
        "scores": {f"{a}/{m}": scores[(a, m)] for a in archs for m in methods},
        "real_digit_is": real_is,
        "runs": [records[name] for name, _ in runs],
        "verdicts": [verdict.to_dict()],
    }
    write_results(run_dir, NAME, settings, numbers)
    return ExperimentResult(NAME, run_dir, numbers, text, [figure], [verdict])


SETTINGS = ArchitecturesSettings
