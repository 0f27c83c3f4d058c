r"""Refining samples with the trained critic: does it help? (Tanaka 2019; Che et al. 2020;
Ansari et al. 2021)

A trained critic is an estimate of more than a training signal: a WGAN critic approximates the
Kantorovich potential between the data and the generator, and a GAN discriminator's logit the
log density ratio :math:`\log p_{data}/p_G` (Goodfellow et al. 2014, Prop. 1). Three methods
spend it at sampling time, with no training:

* DOT, discriminator optimal transport (Tanaka 2019): each sample y moves to
  :math:`\arg\min_x \|x - y\| - D(x)/K_{eff}`, with :math:`K_{eff}` the critic's Lipschitz
  constant measured on pairs of generated samples;
* DDLS, discriminator-driven latent sampling (Che et al. 2020): Langevin dynamics on the latent
  energy :math:`E(z) = \|z\|^2/2 - d(G(z))`, which samples :math:`p_0(z) e^{d(G(z))}`, the
  latent law whose push-forward is the data distribution when d is the optimal logit;
* discriminator gradient flow (Ansari et al. 2021): :math:`x \leftarrow x + \eta \nabla D(x)`.

For each dataset and seed the experiment trains the dataset's preset once, then evaluates the
same latent draws raw and refined by each method (:meth:`wgan.training.run.Run.evaluate` with
``refine``): on the Gaussian mixtures the high-quality fraction (within 3 sigma of a mode), the
modes captured and the exact W1 to held-out data; on digits the classifier Fréchet distance to
the held-out digits and the classes covered. A method "helps" on a dataset when its quality
measure improves by a margin and its distance to the data gets no worse; the verdict of a method
holds when it helps on every dataset, and does not hold otherwise: refinement may well not help.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wgan.config import resolve
from wgan.experiments import common
from wgan.experiments import framework as fw
from wgan.experiments.verdict import Verdict, decide, finite, fmt

METHODS = fw.method_table(
    fw.Method("dot", "DOT (Tanaka 2019)"),
    fw.Method("ddls", "DDLS (Che et al. 2020)"),
    fw.Method("flow", "gradient flow (Ansari et al. 2021)"),
)
#: The preset each dataset trains with (its own networks, objective and optimisers).
PRESETS = {"8gaussians": "toy-wgan-gp", "25gaussians": "toy-wgan-gp-25", "digits": "digits-wgan-gp"}

#: "Helps" on a mixture: at least 2 points more of high-quality samples (the two-sample noise of
#: the fraction at 2,500 samples is about 1 point) with W1 at most 5 % above the raw samples'.
HQ_GAIN = 0.02
W1_SLACK = 0.05
#: "Helps" on digits: the classifier Fréchet distance at least 5 % below the raw samples'.
FD_GAIN = 0.05
#: Generator iterations below which the critic is not worth asking (an untrained critic's
#: gradient moves samples anywhere).
MIN_TOY_STEPS = 500
MIN_IMAGE_STEPS = 500


@dataclass
class RefinementSettings(fw.Settings):
    """Settings of ``wgan experiment refinement`` (defaults: ~15 minutes on 2 CPU cores)."""

    datasets: str = "8gaussians,25gaussians,digits"  # from 8gaussians, 25gaussians, digits
    methods: str = "dot,ddls,flow"  # comma-separated refinement methods
    n_seeds: int = 1  # seeds seed, seed+1, ...
    steps: int = 1000  # generator iterations of the mixtures' runs
    image_steps: int = 1500  # generator iterations of the digits run
    eval_samples: int = 2500  # samples per measurement on the mixtures (protocol: 2,500)
    image_eval_samples: int = 1000  # samples per measurement on digits
    refine_steps: int = 0  # steps of every method; 0: each method's default
    device: str = "cpu"  # cpu | cuda | auto

    #: The training-config keys these settings mirror (``train.steps=`` for ``steps=``).
    TRAIN_KEYS = {
        "steps": ("train.steps",),
        "eval_samples": ("train.eval_samples",),
        "device": ("train.device",),
    }
    LIMITS = {
        **dict.fromkeys(("n_seeds", "steps", "image_steps"), ">= 1"),
        **dict.fromkeys(("eval_samples", "image_eval_samples"), "[2, 20000]"),
        "refine_steps": ">= 0",
    }

    def checks(self) -> list[tuple[bool, str]]:
        datasets = common.split_list(self.datasets)
        unknown = [d for d in datasets if d not in PRESETS]
        return [
            *super().checks(),
            (bool(datasets), "datasets must name at least one dataset"),
            (not unknown, f"unknown datasets {unknown}; valid: {', '.join(PRESETS)}"),
        ]


def helps(dataset: str, raw: dict[str, Any], refined: dict[str, Any]) -> bool:
    """Whether ``refined`` metrics improve on ``raw`` (see the module docstring)."""
    if dataset == "digits":
        fd, fd_raw = refined.get("fd_classifier"), raw.get("fd_classifier")
        return finite(fd, fd_raw) and fd <= (1 - FD_GAIN) * fd_raw
    hq, hq_raw = refined.get("high_quality_fraction"), raw.get("high_quality_fraction")
    w1, w1_raw = refined.get("w1"), raw.get("w1")
    if not finite(hq, hq_raw, w1, w1_raw):
        return False
    return hq >= hq_raw + HQ_GAIN and w1 <= (1 + W1_SLACK) * w1_raw


def trained_enough(dataset: str, s: RefinementSettings) -> bool:
    """Whether the dataset's runs trained long enough for their critic to be asked."""
    if dataset == "digits":
        return s.image_steps >= MIN_IMAGE_STEPS
    return s.steps >= MIN_TOY_STEPS


def quality(dataset: str, metrics: dict[str, Any] | None) -> str:
    """The numbers a verdict quotes for one evaluation."""
    if not metrics:
        return "failed"
    if dataset == "digits":
        return f"FD {fmt(metrics.get('fd_classifier'))}"
    hq, w1 = metrics.get("high_quality_fraction"), metrics.get("w1")
    return f"HQ {fmt(100 * hq) if finite(hq) else hq}%, W1 {fmt(w1)}"


@fw.register
class Refinement(fw.Experiment):
    """Raw samples against DOT, DDLS and gradient flow, on the mixtures and digits."""

    name = "refinement"
    description = (
        "Samples refined by the trained critic (DOT, DDLS, discriminator gradient flow) against "
        "the raw samples of the same latent draws: high quality and W1 on 8 and 25 Gaussians, "
        "classifier FD on digits; each method's verdict can say it does not help."
    )
    Settings = RefinementSettings
    methods = METHODS
    #: 8 Gaussians only, MIN_TOY_STEPS iterations (judged), 1,000 samples, flow and DOT (DDLS's
    #: 1,000 Langevin steps cost a minute on its own).
    quick = {"datasets": "8gaussians", "methods": "dot,flow", "steps": MIN_TOY_STEPS}
    quick |= {"eval_samples": 1000}

    def cells(self, s: RefinementSettings) -> list[fw.Cell]:
        """One training run per dataset x seed; every method refines its samples."""
        seeds = [s.seed + k for k in range(s.n_seeds)]
        return [fw.Cell(None, d, k) for d in common.split_list(s.datasets) for k in seeds]

    def measure(self, s: RefinementSettings, cell: fw.Cell, ctx: fw.Context) -> dict[str, Any]:
        """Train the dataset's preset, then evaluate its raw and refined samples (the same
        latent draws: the evaluation's fixed seed)."""
        image = cell.dataset == "digits"
        n = s.image_eval_samples if image else s.eval_samples
        overrides = [
            *common.QUIET,
            f"train.steps={s.image_steps if image else s.steps}",
            f"train.seed={cell.seed}",
            f"train.device={s.device}",
            f"train.eval_samples={n}",
        ]
        cfg = resolve(PRESETS[cell.dataset], overrides)
        cfg.name = f"{self.name}-{cell.dataset}-s{cell.seed}"
        record = {"dataset": cell.dataset, "seed": cell.seed}
        record |= common.train_cell(cfg, cell.folder(ctx.run_dir), n_samples=0)
        trainer = record["_trainer"]
        record["refined"], record["refine_seconds"], record["_samples"] = {}, {}, {}
        if record["metrics"] is None:
            return record
        record["raw"] = trainer.evaluate(n)
        figure_samples = 0 if image else 500
        if figure_samples:
            record["_samples"]["raw"] = trainer.samples(figure_samples).numpy()  # (500, 2)
        steps = s.refine_steps or None
        for method in common.split_list(s.methods):
            start = time.time()
            record["refined"][method] = trainer.evaluate(n, refine=method, refine_steps=steps)
            record["refine_seconds"][method] = time.time() - start
            if figure_samples:
                x = trainer.samples(figure_samples, refine=method, refine_steps=steps)
                record["_samples"][method] = x.numpy()  # (500, 2)
        return record

    def summarise(self, s: RefinementSettings, records: list[dict]) -> dict[str, Any]:
        """Per dataset x seed: the raw and refined metrics, and which methods helped."""
        runs = []
        for r in records:
            run = common.public(r)
            raw = r.get("raw")
            run["helps"] = {m: helps(r["dataset"], raw, got) for m, got in r["refined"].items()}
            runs.append(run)
        return {"runs": runs, "margins": {"hq_gain": HQ_GAIN, "w1_slack": W1_SLACK}}

    def verdicts(self, numbers: dict[str, Any], settings: Any) -> list[Verdict]:
        runs = numbers["runs"]
        out = []
        for method in common.split_list(settings.methods):
            label = METHODS[method].label
            measured = "; ".join(
                f"{r['dataset']} s{r['seed']}: raw {quality(r['dataset'], r.get('raw'))} -> "
                f"{quality(r['dataset'], r['refined'].get(method))}"
                for r in runs
            )
            short = [r["dataset"] for r in runs if not trained_enough(r["dataset"], settings)]
            failed = [r["dataset"] for r in runs if r.get("raw") is None]
            why = (
                f"runs too short to trust the critic: {', '.join(short)}"
                if short
                else f"training failed on {', '.join(failed)}"
            )
            out.append(
                decide(
                    f"Refining the samples with the trained critic by {label} improves them "
                    "(more high-quality samples, W1 no worse; lower FD on digits)",
                    f"{label}; Arjovsky et al. 2017 (the critic as a potential)",
                    measured,
                    bool(runs) and all(r["helps"].get(method, False) for r in runs),
                    testable=bool(runs) and not short and not failed,
                    why_not=why,
                )
            )
        return out

    def figures(self, s, numbers, records, run_dir: Path) -> list[Path]:
        """Raw and refined samples of each mixture's first seed (digits: none)."""
        from wgan.data import make_dataset
        from wgan.figures import plotting

        shown = [r for r in records if r["seed"] == s.seed and r["_samples"]]
        if not shown:
            return []
        columns = ["raw", *common.split_list(s.methods)]
        fig, axes = plotting.subplots(
            len(shown), len(columns), figsize=(3.6 * len(columns), 3.7 * len(shown)), squeeze=False
        )
        for row, r in zip(axes, shown, strict=True):
            data = make_dataset(r["dataset"])
            real = data.sample(1000).numpy()
            for ax, key in zip(row, columns, strict=True):
                metrics = r["raw"] if key == "raw" else r["refined"][key]
                title = f"{r['dataset']}: {key}\n{quality(r['dataset'], metrics)}"
                modes = data.modes.numpy()
                plotting.scatter_panel(ax, real, r["_samples"][key], modes, data.bounds(), title)
        fig.suptitle(f"Samples refined by the critic (seed {s.seed})")
        fig.tight_layout()
        return [plotting.save_figure(fig, run_dir / "refinement.png")]

    def table(self, s: RefinementSettings, numbers: dict[str, Any]) -> str:
        rows = []
        for r in numbers["runs"]:
            for key in ["raw", *r["refined"]]:
                m = r.get("raw") if key == "raw" else r["refined"][key]
                if not m:
                    rows.append([r["dataset"], r["seed"], key, "failed", "", "", ""])
                    continue
                image = r["dataset"] == "digits"
                rows.append(
                    [
                        r["dataset"],
                        r["seed"],
                        key,
                        m.get("classes_covered" if image else "modes_captured"),
                        m.get("high_quality_fraction", "-"),
                        m.get("fd_classifier" if image else "w1"),
                        "-" if key == "raw" else ("yes" if r["helps"][key] else "no"),
                    ]
                )
        head = ["dataset", "seed", "samples", "modes", "high quality", "W1 / FD", "helps"]
        return common.format_table(head, rows)
