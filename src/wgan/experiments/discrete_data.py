"""Discrete data from a continuous generator: WGAN-GP against the minimax and non-saturating GANs.

Claim (Gulrajani et al. 2017, "Improved Training of Wasserstein GANs", sec. 5, "Modeling
discrete data with a continuous generator"; reference code ``gan_language.py``): a generator
whose output is a softmax per character, read directly by the critic (no sampling, so real
one-hot text and generated text never share support), trains with the gradient penalty into a
character language model; "we could not" make the standard GAN loss work in that setting.
The reason given: the KL and JS divergences between the disjoint supports are saturated (JS = 1
bit, infinite KL), while the Wasserstein critic under the Lipschitz penalty keeps a useful
gradient pointing into the simplex.

Protocol here: the same text nets (:mod:`wgan.nets.text`, the ``text-wgan-gp`` preset's sizes),
data (by default the embedded Markov corpus, whose exact n-gram law is known), optimiser (Adam,
the preset's learning rate and betas (0.5, 0.9)), batch, ``n_critic`` and seed for every method,
and no feature matching (the paper's setting; the preset's feature-matching term would give the
standard GANs a second, non-adversarial signal, so the setting ``feature_matching`` is 0 unless
asked); only the objective differs: ``wasserstein`` with the two-sided penalty (lambda = 10),
``minimax`` and ``nonsaturating`` without a penalty. Every ``eval_every`` generator iterations
each run is measured by JS-1..4 of 640 argmax-decoded samples against held-out text (bits,
:mod:`wgan.metrics.ngram`), beside the real-vs-real baseline, and sample lines are kept at a few
steps. Outputs: ``discrete_data_js.png`` (JS-n over training, one panel per n), a table of final
values, a table of samples, and ``results.json``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wgan.config import resolve
from wgan.errors import WganError
from wgan.experiments import framework as fw
from wgan.experiments.common import format_table, make_trainer, split_list
from wgan.experiments.verdict import Verdict, decide

#: Every method runs the settings' preset; only the objective and the penalty differ.
METHODS = fw.method_table(
    fw.Method(
        "wgan-gp", "WGAN-GP", "", ("objective.name=wasserstein", "constraint.penalty=two_sided")
    ),
    fw.Method("gan", "GAN (minimax)", "", ("objective.name=minimax", "constraint.penalty=none")),
    fw.Method(
        "gan-ns",
        "GAN (non-saturating)",
        "",
        ("objective.name=nonsaturating", "constraint.penalty=none"),
    ),
)


@dataclass
class DiscreteDataSettings(fw.Settings):
    """Settings (defaults: a few CPU minutes); ``seed`` seeds every run, alike for each method."""

    preset: str = "text-wgan-gp"  # the nets, optimiser and data of every method
    methods: str = "wgan-gp,gan,gan-ns"  # comma-separated, from wgan-gp, gan, gan-ns
    data: str = "markov_text"  # markov_text (embedded, exact n-gram law) or text (a file)
    data_path: str = ""  # the UTF-8 file when data=text
    steps: int = 500  # generator iterations per method
    eval_every: int = 50  # generator iterations between JS-1..4 measurements
    eval_samples: int = 640  # sequences per measurement (gan_language.py: 10 batches of 64)
    sample_lines: int = 3  # lines per method in the samples table
    width: int = 0  # channels of both nets (0: the preset's)
    depth: int = -1  # residual blocks of both nets (-1: the preset's)
    feature_matching: float = 0.0  # tricks.feature_matching of every method (0: the paper's)
    device: str = "cpu"  # torch device of the runs

    #: The training-config keys these settings mirror (``train.steps=`` for ``steps=``).
    TRAIN_KEYS = {
        "data": ("data.name",),
        "data_path": ("data.path",),
        "steps": ("train.steps",),
        "eval_every": ("train.eval_every",),
        "eval_samples": ("train.eval_samples",),
        "width": ("generator.width", "critic.width"),
        "depth": ("generator.depth", "critic.depth"),
        "feature_matching": ("tricks.feature_matching",),
        "device": ("train.device",),
    }
    LIMITS = {
        "steps": ">= 1",
        "eval_every": ">= 1",
        "eval_samples": ">= 2",
        "sample_lines": ">= 0",
        "width": ">= 0",
        "depth": ">= -1",
        "seed": ">= 0",
    }

    def checks(self) -> list[tuple[bool, str]]:
        return [
            *super().checks(),
            (self.data in ("markov_text", "text"), "data must be markov_text or text"),
            (self.data != "text" or bool(self.data_path), "data=text needs data_path=FILE"),
        ]

    def validate(self) -> None:
        super().validate()
        resolve(self.preset, self.overrides())  # a bad preset or size is a ConfigError now

    def overrides(self) -> list[str]:
        """The config overrides every method shares (data, sizes, budget, seed, device)."""
        out = [
            f"data.name={self.data}",
            f"train.steps={self.steps}",
            f"train.seed={self.seed}",
            f"tricks.feature_matching={self.feature_matching}",
            f"train.device={self.device}",
            f"train.eval_samples={self.eval_samples}",
            "train.checkpoint_every=0",
            f"train.log_every={min(self.eval_every, 50)}",
            "train.progress=false",
            "train.eval_every=0",
            "train.figure_every=0",
        ]
        out += [f"data.path={self.data_path}"] * (self.data == "text")
        for key in ("generator", "critic"):
            out += [f"{key}.width={self.width}"] * bool(self.width)
            out += [f"{key}.depth={self.depth}"] * (self.depth >= 0)
        return out


CLAIM = (
    "a softmax generator read directly by the critic learns character n-grams with WGAN-GP, "
    "and not with the standard GAN objectives"
)
SOURCE = "Gulrajani et al. 2017, Improved Training of Wasserstein GANs, sec. 5"
MIN_STEPS = 300  # below this even WGAN-GP has not moved JS-4 much on the embedded corpus
MARGIN = 0.1  # bits of JS-4: WGAN-GP's fall from initialisation, and every GAN's gap above it


def _js4(result: dict[str, Any], index: int) -> float:
    """JS-4 at the first (0) or last (-1) measurement; a run that stopped counts as 1 bit."""
    if result["error"] and index == -1:
        return 1.0
    return float(result["curve"][index]["js4"]) if result["curve"] else math.nan


@fw.register
class DiscreteData(fw.Experiment):
    """Each objective trains the same softmax generator and critic on the same text."""

    name = "discrete-data"
    description = (
        "Character language model with a softmax generator (WGAN-GP sec. 5): JS-1..4 over training "
        "for WGAN-GP vs the minimax and non-saturating GANs on the same nets and data."
    )
    Settings = DiscreteDataSettings
    methods = METHODS
    quick = {"steps": 300, "eval_every": 100}

    def cells(self, s: DiscreteDataSettings) -> list[fw.Cell]:
        return [fw.Cell(METHODS[m], seed=s.seed) for m in split_list(s.methods)]

    def units(self, s: DiscreteDataSettings, cell: fw.Cell) -> int:
        return s.steps

    def measure(self, s: DiscreteDataSettings, cell: fw.Cell, ctx: fw.Context) -> dict[str, Any]:
        """Train one method, measuring JS-1..4 (and keeping samples) every ``eval_every`` steps;
        a run that stops on non-finite values is a result (``error``), not a crash."""
        method = cell.method
        cfg = resolve(s.preset, [*s.overrides(), *method.overrides])
        cfg.name = f"{self.name}-{method.name}"
        trainer = make_trainer(cfg, ctx.run_dir / method.name)
        curve, samples, error = [], {}, None
        try:  # measured at step 0, every eval_every steps and at the end
            for stop in [*range(0, s.steps, s.eval_every), s.steps]:
                n = stop - trainer.step
                trainer.advance(n)
                ctx.bar.update(n)
                m = trainer.evaluate()
                curve.append({"step": trainer.step, **m})
                samples[str(trainer.step)] = trainer.text(max(1, s.sample_lines))[: s.sample_lines]
                ctx.bar.set_postfix_str(f"{method.name} step {trainer.step} JS-4 {m['js4']:.3f}")
        except WganError as err:
            error = f"stopped at step {trainer.step}: {err}"
        record = {"method": method.name, "label": method.label, "curve": curve}
        return {**record, "samples": samples, "error": error}

    def summarise(self, s: DiscreteDataSettings, records: list[dict]) -> dict[str, Any]:
        """Each method's JS curve, samples and error, and the protocol."""
        protocol = "same nets, data, optimiser, batch, n_critic and seed; only the objective (and "
        protocol += "the penalty, WGAN-GP only) differs; JS in bits of 640 samples vs held-out text"
        return {"methods": records, "protocol": protocol}

    def verdicts(self, numbers: dict[str, Any], settings: Any) -> list[Verdict]:
        """The claim, decided from the JS-4 curves: WGAN-GP's JS-4 falls by at least ``MARGIN``
        bits from initialisation, and each standard GAN ends at least ``MARGIN`` bits above it (a
        run that stopped on non-finite values counts as 1 bit, the maximum). Not tested without
        WGAN-GP and a standard GAN, or with fewer than ``MIN_STEPS`` generator iterations."""
        by = {r["method"]: r for r in numbers["methods"]}
        gans = [by[m] for m in ("gan", "gan-ns") if m in by]
        if "wgan-gp" not in by or not gans:
            return [decide(CLAIM, SOURCE, "-", False, False, "needs wgan-gp and gan or gan-ns")]
        wgan = by["wgan-gp"]
        w0, w1 = _js4(wgan, 0), _js4(wgan, -1)
        others = {g["label"]: _js4(g, -1) for g in gans}
        measured = f"JS-4 WGAN-GP {w0:.3f} -> {w1:.3f}; "
        measured += ", ".join(f"{label} {v:.3f}" for label, v in others.items())
        steps = wgan["curve"][-1]["step"] if wgan["curve"] else 0
        holds = w1 <= w0 - MARGIN and all(v >= w1 + MARGIN for v in others.values())
        why = f"{steps} generator iterations; at least {MIN_STEPS} are needed"
        return [decide(CLAIM, SOURCE, measured, holds, steps >= MIN_STEPS, why)]

    def figures(self, s, numbers, records, run_dir: Path) -> list[Path]:
        """JS-n over training, one panel per n, one line per method, the baseline dashed (and,
        beside it, ``samples.txt``: the table of :meth:`table`)."""
        from wgan.figures.plotting import legend_beside, save_figure, subplots

        (run_dir / "samples.txt").write_text(self.table(s, numbers) + "\n", encoding="utf-8")
        results, first = numbers["methods"], numbers["methods"][0]["curve"]
        fig, axes = subplots(1, 4, figsize=(16, 3.8), squeeze=False)
        for n, ax in enumerate(axes[0], start=1):
            for r in results:
                js = [c[f"js{n}"] for c in r["curve"]]
                ax.plot([c["step"] for c in r["curve"]], js, marker="o", ms=3, label=r["label"])
            if first:
                base = [c[f"js{n}_baseline"] for c in first]
                ax.plot([c["step"] for c in first], base, "k--", lw=1, label="real vs real")
            ax.set(title=f"JS-{n} (bits)", xlabel="generator iteration", ylim=(0, None))
            ax.set_ylabel(f"JS of character {n}-grams (bits)")
        legend_beside(axes[0][-1])
        fig.suptitle("Character n-gram JS of argmax-decoded samples vs held-out text")
        fig.tight_layout()
        return [save_figure(fig, run_dir / "discrete_data_js.png")]

    def table(self, s: DiscreteDataSettings, numbers: dict[str, Any]) -> str:
        """The final JS-n of each method beside the baseline, then sample lines at the first,
        middle and last measured steps."""
        results, rows = numbers["methods"], []
        for r in results:
            last, first = (r["curve"][-1], r["curve"][0]) if r["curve"] else ({}, {})
            js = [last.get(f"js{n}", math.nan) for n in range(1, 5)] + [first.get("js4", math.nan)]
            rows.append([r["label"], last.get("step", 0), *js, r["error"] or ""])
        base = results[0]["curve"][-1] if results[0]["curve"] else {}
        real = [base.get(f"js{n}_baseline", math.nan) for n in range(1, 5)]
        rows.append(["real vs real", "", *real, "", ""])
        head = ["method", "step", "JS-1", "JS-2", "JS-3", "JS-4", "JS-4 at 0", "note"]
        text = [format_table(head, rows), "", "Samples (argmax-decoded, one sequence per line):"]
        for r in results:
            steps = sorted(r["samples"], key=int)
            for step in steps if len(steps) <= 3 else [steps[0], steps[len(steps) // 2], steps[-1]]:
                lines = [line.replace("\n", " ") for line in r["samples"][step]]
                text += [f"  {r['label']:<22} step {int(step):>6}  |{line}|" for line in lines]
        return "\n".join(text)
