"""f-GAN with every divergence of the f-GAN table on one toy mixture (Nowozin et al. 2016).

Nowozin, Cseke & Tomioka 2016 ("f-GAN: Training Generative Neural Samplers using Variational
Divergence Minimization", arXiv 1606.00709) train a generator ``Q_θ`` against a critic
``T_ω = g_f(V_ω)`` on the variational lower bound (their eq. 6)

    F(θ, ω) = E_{x~P}[g_f(V_ω(x))] - E_{x~Q_θ}[f*(g_f(V_ω(x)))]  ≤  D_f(P ‖ Q_θ),

with ``f*`` the Fenchel conjugate of the convex generator ``f`` of the divergence and ``g_f`` an
output activation into ``dom f*`` (their Tables 1-2; here :data:`wgan.objectives.DIVERGENCES`).
The critic maximises ``F``; the generator minimises it (``generator_loss=saddle``, the preset
default) or maximises ``E_Q[g_f(V(G(z)))]`` (``alternative``, their §3.2).

For every divergence this experiment reports:

* the final estimate: the trainer's running mean of ``F`` (``d/estimate``) over the last
  ``final_window`` generator iterations, and ``F`` on a held set (2,500 real / 2,500 generated
  samples) at the end. It is a *lower bound* of the divergence the critic implies; for
  ``jensen_shannon`` it bounds 2 JSD and for ``gan`` it bounds ``2 JSD - log 4`` (see
  :mod:`wgan.objectives.fdivergence_table` for the constants of each row);
* modes captured, fraction of high-quality samples and KL to uniform
  (:func:`wgan.metrics.mode_metrics`, VEEGAN / PacGAN protocol, 2,500 samples, 3σ) and the
  exact W1 of 2,500 samples to 2,500 real ones (:func:`wgan.metrics.exact_w1`).

Divergences whose statistics become non-finite stop with :class:`wgan.errors.TrainingDiverged`;
the table says "diverged at step N" for them (N is the first logged step with a non-finite
value, logged every ``log_every`` iterations) and the experiment goes on with the next one.

A consistency check hides in the table: ``jensen_shannon`` and ``gan`` train *identically*.
Their activations differ by a constant, ``T_JS = T_GAN + log 2``, and so do their conjugates,
``f*_JS(T_JS) = f*_GAN(T_GAN) - log 2``, so ``F_JS = F_GAN + log 4`` with the same gradients:
from the same seed both rows show the same samples and metrics, and estimates ``log 4`` apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from wgan.data import make_dataset
from wgan.experiments import common
from wgan.experiments import framework as fw
from wgan.experiments.verdict import Verdict, decide, finite, fmt
from wgan.objectives import DIVERGENCES
from wgan.training.trainer import Trainer

#: Every run uses the same networks, optimiser and budget (the ``toy-gan`` optimiser, Adam 2e-4,
#: betas (0.5, 0.999), one critic step per generator step, pinned here), so the rows differ only
#: in ``f``, ``f*`` and ``g_f``.
PINNED = (
    "objective.name=fgan",
    "g_optim.name=adam",
    "d_optim.name=adam",
    "g_optim.lr=2e-4",
    "d_optim.lr=2e-4",
    "g_optim.betas=[0.5, 0.999]",
    "d_optim.betas=[0.5, 0.999]",
    "train.n_critic=1",
    "train.lr_decay=none",
    "constraint.clip=0",
    "constraint.penalty=none",
)
#: One method per divergence of the f-GAN table, all on the ``toy-gan`` preset.
METHODS = fw.method_table(*(fw.Method(d, d, "toy-gan") for d in DIVERGENCES))

#: A finite estimate larger than this in magnitude is reported as exploded (no divergence of
#: these toy distributions is anywhere near it; the critic has run off to huge outputs).
EXPLODED = 1e6

FD_MIN_STEPS = 1000  # the toy f-GANs need about this many iterations to spread over the ring
FD_MIN_MODES = 0.5  # "trains a generator": finite, and at least half the modes captured
FD_TOL = 0.01  # JS vs GAN rows: equal metrics and estimates log 4 apart, to this tolerance
FD_SOURCE = "Nowozin, Cseke & Tomioka 2016, f-GAN"


@dataclass
class FDivergencesSettings(fw.TrainingSettings):
    """Settings of ``wgan experiment f-divergences`` (fast laptop-CPU defaults; one ``seed`` for
    every divergence). Paper-size networks: ``hidden=512``; longer runs: ``steps=10000``."""

    dataset: str = "8gaussians"  # toy dataset name
    divergences: str = "all"  # "all", or comma-separated: kl, reverse_kl, pearson, gan, ...
    generator_loss: Literal["saddle", "alternative"] = "saddle"  # minimise F, or max E_Q[g_f(V)]
    pi: float = 0.5  # weight of weighted_jensen_shannon
    steps: int = 2000  # generator iterations per divergence
    log_every: int = 10  # statistics read back (and checked for NaN/inf) this often
    final_window: int = 200  # the final estimate averages the last this many iterations

    #: The training-config keys these settings mirror (``train.steps=`` for ``steps=``).
    TRAIN_KEYS = {
        "dataset": ("data.name",),
        "generator_loss": ("objective.generator_loss",),
        "pi": ("objective.pi",),
    }
    LIMITS = {"eval_samples": "[2, 5000]", "log_every": ">= 1", "final_window": ">= 1"}

    def divergence_list(self) -> list[str]:
        """The divergences to train, in order (``all``: the whole f-GAN table)."""
        names = self.divergences
        return list(DIVERGENCES) if names.strip() == "all" else common.split_list(names)

    def checks(self) -> list[tuple[bool, str]]:
        names = self.divergence_list()
        has_modes = make_dataset(self.dataset).modes is not None  # an unknown name raises
        return [
            *super().checks(),
            *common.name_checks(names, DIVERGENCES, "divergences", "divergence", "all, "),
            (0.0 < self.pi < 1.0, "pi must be in (0, 1)"),
            (has_modes, f"dataset {self.dataset!r} has no modes to count"),
        ]


@torch.no_grad()
def held_out_estimate(trainer: Trainer, s: FDivergencesSettings, seed: int) -> float:
    """``F = E_P[T] - E_Q[f*(T)]`` on ``eval_samples`` real and as many generated samples."""
    g, n = torch.Generator().manual_seed(seed), s.eval_samples
    real = trainer.dataset.sample(n, generator=g).to(trainer.device)  # (n, dim)
    fake = trainer.samples(n, seed=seed + 1).to(trainer.device)  # (n, dim)
    terms = trainer.loss.objective.critic_loss(trainer.critic(real), trainer.critic(fake))
    return float(terms["estimate"])


def status(r: dict[str, Any]) -> str:
    """``ok``, ``diverged at step N`` (non-finite) or ``estimate exploded`` (finite but huge)."""
    if r["metrics"] is None:
        return f"diverged at step {r['diverged_at']}"
    if not all(abs(r[k]) <= EXPLODED for k in ("final_estimate", "held_out_estimate")):
        return f"finished; estimate exploded (|F| > {EXPLODED:g})"
    return "ok"


@fw.register
class FDivergences(fw.Experiment):
    """One f-GAN per divergence of the f-GAN table (Nowozin et al. 2016)."""

    name = "f-divergences"
    description = (
        "f-GAN with every divergence of the f-GAN table on 8 Gaussians: final variational "
        "estimate, modes captured, high-quality samples and exact W1 per divergence (Nowozin et "
        "al. 2016)."
    )
    Settings = FDivergencesSettings
    methods = METHODS
    #: Six of the divergences (those that train at the default size and total variation, which
    #: did not) at the default budget; at 1,000 iterations of 3x64 nets none had trained yet.
    quick = {
        "divergences": "kl,reverse_kl,squared_hellinger,jensen_shannon,gan,total_variation",
        "eval_samples": 1000,
    }

    def cells(self, s: FDivergencesSettings) -> list[fw.Cell]:
        """One cell per divergence, all on ``dataset`` from ``seed``."""
        return [fw.Cell(METHODS[d], s.dataset, s.seed) for d in s.divergence_list()]

    def measure(self, s: FDivergencesSettings, cell: fw.Cell, ctx: fw.Context) -> dict[str, Any]:
        """One f-GAN run (logged to its ``metrics.jsonl``): history, estimates, sample metrics."""
        divergence = cell.method.name
        objective = {"divergence": divergence, "generator_loss": s.generator_loss, "pi": s.pi}
        overrides = [*PINNED, *(f"objective.{k}={v}" for k, v in objective.items())]
        overrides += [f"train.eval_samples={s.eval_samples}", f"train.log_every={s.log_every}"]
        cfg = common.experiment_config(
            cell.method.preset, f"{self.name}-{divergence}", overrides, s
        )
        keys = {"estimate": "d/estimate", "d_loss": "d/loss", "g_loss": "g/loss"}
        history: dict[str, list] = {"step": [], **{k: [] for k in keys}}

        def record(trainer: Trainer, values: dict[str, float]) -> None:  # every logged step
            history["step"].append(trainer.step)
            for key, name in keys.items():
                history[key].append(values.get(name, math.nan))

        r = common.train_cell(cfg, ctx.run_dir / divergence, 0, track=True, hook=record)
        trainer, ok = r["_trainer"], r["metrics"] is not None
        window = [
            e
            for st, e in zip(history["step"], history["estimate"], strict=True)
            if st > trainer.step - s.final_window and math.isfinite(e)
        ]
        r |= dict(divergence=divergence, method=divergence, dataset=s.dataset, history=history)
        r["final_estimate"] = float(np.mean(window)) if window and ok else math.nan
        r["held_out_estimate"] = held_out_estimate(trainer, s, s.seed + 404) if ok else math.nan
        r["_samples"] = trainer.samples(1000, seed=s.seed + 505).numpy() if ok else None  # (n, 2)
        return r

    def summarise(self, s: FDivergencesSettings, records: list[dict]) -> dict[str, Any]:
        """Each divergence's record and status; the sizes."""
        public = map(common.public, records)
        rows = {r.pop("divergence"): {"status": status(r), **r} for r in public}
        sizes = {k: getattr(s, k) for k in ("hidden", "depth", "steps", "eval_samples")}
        return {"divergences": rows, "sizes": sizes}

    def verdicts(self, numbers: dict[str, Any], settings: Any) -> list[Verdict]:
        """Every divergence of the f-GAN table trains a generator (Nowozin et al. 2016), and the
        JS and GAN rows train identically (their bounds differ by log 4)."""
        rows = numbers["divergences"]
        ok = {n: r["metrics"] for n, r in rows.items() if r["status"] == "ok" and r.get("metrics")}
        good = [n for n, m in ok.items() if m["modes_captured"] >= FD_MIN_MODES * m["n_modes"]]
        bad = [n for n in rows if n not in good]
        # When not one divergence trained, the budget is too short for any of them (at 1,000
        # iterations with 3x64 nets every row was still near its initial W1 of ~1, 0-3 modes): the
        # run says nothing about which divergences can be trained.
        why = f"no divergence trained in {settings.steps} iterations: too short for any of them"
        if settings.steps < FD_MIN_STEPS:
            why = f"{settings.steps} generator iterations < {FD_MIN_STEPS}"
        measured = f"{len(good)}/{len(rows)} trained (finite, >= half the modes)"
        measured += f"; failed: {', '.join(bad)}" if bad else ""
        claim = "Every f-divergence of the f-GAN table trains a generator"
        source = f"{FD_SOURCE}, Tables 1-2 and Sec. 4"
        testable = settings.steps >= FD_MIN_STEPS and bool(good)
        out = [decide(claim, source, measured, not bad, testable, why)]
        js, gan = rows.get("jensen_shannon"), rows.get("gan")
        if js is None or gan is None:
            return out
        both = js["metrics"] is not None and gan["metrics"] is not None
        diff = js["held_out_estimate"] - gan["held_out_estimate"] if both else math.nan
        jm, gm, keys = js["metrics"], gan["metrics"], ("modes_captured", "w1")
        same = both and all(abs(jm[k] - gm[k]) <= FD_TOL * max(1.0, abs(gm[k])) for k in keys)
        log4 = math.log(4)
        measured = f"F_JS - F_GAN = {fmt(diff)} (log 4 = {log4:.4f}); same modes and W1: {same}"
        holds = same and finite(diff) and abs(diff - log4) <= FD_TOL
        claim = "The Jensen-Shannon and GAN rows train identically, their bounds log 4 apart"
        source = f"{FD_SOURCE}, Table 1 (T_JS = T_GAN + log 2)"
        note = "a run of the two did not finish"
        return [*out, decide(claim, source, measured, holds, both, note)]

    def figures(self, s, numbers, records, run_dir: Path) -> list[Path]:
        """Generated samples, and bars per divergence: estimate, modes, quality, W1."""
        from wgan.figures.plotting import legend_beside, save_figure, subplots

        path = run_dir / "f_divergences_samples.png"
        samples = common.sample_grid(records, METHODS, "f-GAN samples per divergence", path)
        finished = [r["metrics"] is not None for r in records]  # not diverged: samples measured
        sane = [status(r) == "ok" for r in records]  # and an estimate that did not explode
        panels = [
            ("final estimate (train)", lambda r: r["final_estimate"], sane, "lower bound of D_f"),
            ("modes captured", lambda r: r["metrics"]["modes_captured"], finished, "modes"),
            (
                "high-quality samples",
                lambda r: 100 * r["metrics"]["high_quality_fraction"],
                finished,
                "% within 3σ of a mode",
            ),
            ("exact W1 to the data", lambda r: r["metrics"]["w1"], finished, "W1"),
        ]
        fig, axes = subplots(1, 4, figsize=(18, 4.6))
        x = np.arange(len(records))
        for ax, (title, value, ok, ylabel) in zip(axes, panels, strict=True):
            vals = [value(r) if good else 0.0 for r, good in zip(records, ok, strict=True)]
            ax.bar(x, vals, color="tab:blue", label="trained")
            bad = [i for i, good in enumerate(ok) if not good]
            if bad:
                ax.bar(bad, [0.0] * len(bad), color="tab:gray", label="diverged / exploded")
                for i in bad:
                    ax.annotate("x", (i, 0), ha="center", va="bottom", color="tab:red")
            ax.axhline(0.0, color="k", lw=0.5)
            ax.set_xticks(
                x, [r["divergence"] for r in records], rotation=60, ha="right", fontsize=7
            )
            ax.set_title(title, fontsize=10)
            ax.set(ylabel=ylabel, xlabel="divergence (red x: diverged or exploded, no value)")
        legend_beside(axes[-1])
        fig.suptitle("f-GAN: one bar per divergence")
        fig.tight_layout()
        return [samples, save_figure(fig, run_dir / "f_divergences_bars.png")]

    def table(self, s: FDivergencesSettings, numbers: dict[str, Any]) -> str:
        """One row per divergence: estimates, mode metrics, W1, seconds and status."""
        rows = []
        for name, r in numbers["divergences"].items():
            m = r["metrics"]
            kl = None if m is None else m.get("kl_to_uniform")
            cells = (
                ["-"] * 6
                if m is None
                else [
                    r["final_estimate"],
                    r["held_out_estimate"],
                    f"{m['modes_captured']}/{m['n_modes']}",
                    round(100 * m["high_quality_fraction"], 1),
                    "-" if kl is None else round(kl, 3),
                    round(m["w1"], 4),
                ]
            )
            rows.append([name, *cells, round(r["seconds"], 1), r["status"]])
        headers = [
            "divergence",
            "estimate (train)",
            "estimate (held)",
            "modes",
            "high quality %",
            "KL to uniform",
            "exact W1",
            "seconds",
            "status",
        ]
        note = (
            f"(dataset {s.dataset}; f-GAN generator loss '{s.generator_loss}'; MLPs {s.depth}x"
            f"{s.hidden}; {s.steps} generator iterations, Adam 2e-4; estimate (train) = mean of "
            f"d/estimate over the last {s.final_window} iterations; estimate (held) and metrics on "
            f"{s.eval_samples} samples; each estimate is a lower bound of its divergence: "
            "jensen_shannon bounds 2 JSD, gan bounds 2 JSD - log 4)"
        )
        return common.format_table(headers, rows) + "\n" + note
