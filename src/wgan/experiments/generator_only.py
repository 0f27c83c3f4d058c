"""A generator trained alone against a frozen discriminator, and against an optimal critic.

The claims (Goodfellow 2016, "NIPS 2016 Tutorial: Generative Adversarial Networks", arXiv
1701.00160, §5.1.1, and Arjovsky et al. 2017, "Wasserstein GAN", arXiv 1701.07875, §3):

1. A generator trained extensively without updates to the discriminator converges to the one
   sample that fools the discriminator most, whatever its latent input: ``G* = argmax_x D(x)``
   for every z (Goodfellow 2016, §5.1.1).
2. A critic trained to optimality avoids mode collapse: the WGAN critic can (and should) be
   trained to optimality, and its gradients then keep G spread over the data (Arjovsky et al.
   2017, §3).

What is run, on a 2-D mixture whose samples live in a box (the plotting box of the dataset; G's
samples are clamped into it, as images live in a pixel range, so that D has a maximiser; a ReLU
D grows without bound along some direction of the open plane):

* ``gan-frozen``: a GAN (``gan_objective``, minimax by default) trained ``pretrain_steps``,
  then G alone for ``g_steps`` against its discriminator, frozen. In that phase G minimises
  ``g_loss``, by default the non-saturating ``−log D(G(z))``: it has the same maximiser of D
  as the minimax ``log(1 − D(G(z)))``, which saturates against a confident D so that G
  hardly moves (``g_loss=minimax`` shows it);
* ``wgan-frozen``: a WGAN-GP trained ``pretrain_steps``, its critic then trained to optimality
  (``optimal_steps`` critic updates against the fixed G's clamped samples, by
  :func:`wgan.experiments.common.fit_critic`), then G alone against it, frozen;
* ``wgan-optimal``: the same start, then WGAN-GP training goes on for ``g_steps`` generator
  iterations (each after the run's 5 critic updates, with its own optimiser states, G not
  clamped), and every ``refit_every`` iterations the critic is trained back toward optimality
  with ``refit_steps`` more updates: the claim's regime, a critic kept near optimal;
* ``wgan-lagging``: the same start and the same WGAN-GP continuation, but one critic update
  per generator iteration and no refits: a critic not kept optimal, the comparison that
  claim 2 needs (a critic kept optimal must do measurably better than it).

What is measured at ``n_records`` records of the G-only phase, on ``eval_samples`` samples from
fixed noise: the spread (mean distance to the samples' centroid: 0 for a single point), modes
captured and the high-quality fraction (VEEGAN / PacGAN rule, :func:`wgan.metrics.mode_metrics`),
the mean distance of the samples to the argmax of the critic over a grid of the box, and the
critic's mean value at the samples against its maximum on the grid.

In the G-only phase the clamp's gradient is passed straight through
(:func:`wgan.experiments.toy_probes.generator_alone`): a sample that D pushes against the box
stays on its edge, one that D pulls back returns.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wgan.data import make_dataset
from wgan.experiments import common, toy_probes
from wgan.experiments import framework as fw
from wgan.experiments.verdict import Verdict, decide
from wgan.metrics import mode_metrics
from wgan.objectives import make_objective
from wgan.training.trainer import Trainer

_GAN = ("train.n_critic=1", "g_optim.lr=2e-4", "d_optim.lr=2e-4")  # objective: gan_objective
_WGAN = ("objective.name=wasserstein", "train.lr_decay=none")
_WGAN_GP = (*_WGAN, "train.n_critic=5")
#: The conditions; ``info["joint"]``: WGAN-GP training goes on (critic and G) instead of G
#: alone; ``info["refit"]``: the critic is also refitted toward optimality while G trains.
#: ``wgan-lagging`` continues from the same shared pretraining (its ``n_critic`` only applies
#: after it) with one critic update per generator update, as in a GAN (Goodfellow et al. 2014,
#: k = 1), and no refits: the critic that is *not* kept optimal, the comparison of claim 2.
CONDITIONS = fw.method_table(
    fw.Method("gan-frozen", "GAN, D frozen", "toy-gan", _GAN),
    fw.Method("wgan-frozen", "WGAN-GP, optimal critic frozen", "toy-wgan-gp", _WGAN_GP),
    fw.Method(
        "wgan-optimal",
        "WGAN-GP, critic kept optimal",
        "toy-wgan-gp",
        _WGAN_GP,
        {"joint": True, "refit": True},
    ),
    fw.Method(
        "wgan-lagging",
        "WGAN-GP, 1 critic step per G step",
        "toy-wgan-gp",
        (*_WGAN, "train.n_critic=1"),
        {"joint": True},
    ),
)

COLLAPSED = 0.2  # a spread below 20% of the data's is a collapse to (near) one point
NEAR_ARGMAX = 0.1  # "at the argmax": within 10% of the box's half-width of it, on average
KEPT = 0.5  # a generator that keeps at least half the data's spread has not collapsed
MIN_G_STEPS = 500  # fewer G-only steps than this are not "trained extensively"
#: "Measurably better" than the lagging critic: a final spread higher by at least this fraction
#: of the data's. At the quick size, seeds 0-2, the final spreads of both WGAN-GP continuations
#: lie in 1.366-1.393 (data 1.413): seed-to-seed noise of about 0.02 of the data's spread. 0.1
#: is five times that, and a tenth of the data's spread.
BETTER_SPREAD = 0.1
#: ... or at least this many more modes captured at the end: one mode may come and go between
#: records (the rule of :data:`KEPT`'s verdict already forgives losing one), two may not.
BETTER_MODES = 2


@dataclass
class GeneratorOnlySettings(fw.Settings):
    """Settings of ``wgan experiment generator-only`` (fast laptop-CPU defaults)."""

    dataset: str = "8gaussians"  # toy dataset with modes
    gan_objective: str = "minimax"  # the GAN's pretraining losses: minimax | nonsaturating
    g_loss: str = "nonsaturating"  # G's loss alone against the frozen D: nonsaturating | minimax
    pretrain_steps: int = 1500  # ordinary GAN / WGAN-GP iterations before G trains alone
    g_steps: int = 1000  # generator updates of the G-only phase
    optimal_steps: int = 1000  # critic updates that bring the WGAN-GP critic to optimality
    refit_every: int = 50  # wgan-optimal: generator iterations between critic refits
    refit_steps: int = 100  # wgan-optimal: extra critic updates per refit
    n_records: int = 10  # records over the G-only phase (plus its start)
    hidden: int = 128  # MLP width of generator and critic (gan_toy.py: 512)
    depth: int = 3  # hidden layers of generator and critic
    batch_size: int = 256  # samples per batch
    eval_samples: int = 1000  # samples per record (fixed noise)
    grid: int = 101  # grid points per axis for the argmax of the critic
    device: str = "cpu"  # cpu | cuda | auto

    #: The training-config keys these settings mirror (``train.steps=`` for ``steps=``).
    TRAIN_KEYS = {
        "dataset": ("data.name",),
        "hidden": ("generator.hidden", "critic.hidden"),
        "depth": ("generator.depth", "critic.depth"),
        "batch_size": ("data.batch_size",),
        "eval_samples": ("train.eval_samples",),
        "device": ("train.device",),
    }
    LIMITS = {"pretrain_steps": ">= 1", "g_steps": ">= 1", "optimal_steps": ">= 0"}
    LIMITS |= {"refit_every": ">= 1", "refit_steps": ">= 0", "hidden": ">= 1", "depth": ">= 0"}
    LIMITS |= {"batch_size": ">= 1", "eval_samples": "[2, 100000]", "grid": "[2, 1000]"}

    def checks(self) -> list[tuple[bool, str]]:
        losses = {self.gan_objective, self.g_loss} <= {"nonsaturating", "minimax"}
        no_modes = toy_probes.modeless([self.dataset])
        return [
            *super().checks(),
            (losses, "gan_objective and g_loss must be nonsaturating or minimax"),
            (1 <= self.n_records <= self.g_steps, "n_records must be in [1, g_steps]"),
            (not no_modes, f"dataset {self.dataset!r} has no modes to count"),
        ]


@torch.no_grad()
def snapshot(
    trainer: Trainer, s: GeneratorOnlySettings, argmax: np.ndarray, d_max: float
) -> dict[str, Any]:
    """The record of one moment of the G-only phase (see the module docstring)."""
    data = trainer.dataset
    x = toy_probes.box_samples(trainer, s.eval_samples, s.seed + 303, data.bounds())  # (N, 2)
    m = mode_metrics(x, data.modes, data.sigma)
    return {
        "spread": toy_probes.spread(x),
        "modes_captured": m["modes_captured"],
        "high_quality_fraction": m["high_quality_fraction"],
        "distance_to_argmax": float(np.linalg.norm(x.numpy() - argmax, axis=1).mean()),
        "critic_at_samples": float(trainer.critic_fn()(x.to(trainer.device)).float().mean()),
        "critic_max": d_max,
        "argmax": argmax.tolist(),
    }


def _change(records: list[dict[str, Any]], key: str, spec: str = ".3g") -> str:
    """``key`` at the first and the last record: ``"a -> b"``, each formatted with ``spec``."""
    return f"{records[0][key]:{spec}} -> {records[-1][key]:{spec}}"


def collapse_verdict(condition: str, result: dict[str, Any] | None, g_steps: int) -> Verdict:
    """Claim 1 on a frozen-critic condition (``gan-frozen`` or ``wgan-frozen``): G collapses to
    the critic's argmax: final spread below :data:`COLLAPSED` times the data's and mean distance
    to the argmax below :data:`NEAR_ARGMAX` times the box's half-width. Not tested when G had
    already collapsed before the phase (spread below :data:`KEPT` times the data's: nothing
    left to lose) or with fewer than :data:`MIN_G_STEPS` steps."""
    measured, holds, testable = "-", False, False
    if result is not None:
        records, ref, half = result["records"], result["data_spread"], result["box_half_width"]
        first, last = records[0], records[-1]
        measured = (
            f"spread {_change(records, 'spread')} (data {ref:.3g}); modes "
            f"{_change(records, 'modes_captured', '')}; mean distance to argmax D "
            f"{_change(records, 'distance_to_argmax')} (box half-width {half:.3g}); D at samples "
            f"{_change(records, 'critic_at_samples')} (max {last['critic_max']:.3g})"
        )
        holds = last["spread"] < COLLAPSED * ref and last["distance_to_argmax"] < NEAR_ARGMAX * half
        testable = g_steps >= MIN_G_STEPS and first["spread"] >= KEPT * ref
    which = {"gan-frozen": "a GAN's discriminator", "wgan-frozen": "an optimal WGAN critic"}
    return decide(
        "Trained alone against a fixed discriminator, the generator converges to the single "
        f"point that fools it most, whatever its input z ({which[condition]}, frozen)",
        "Goodfellow 2016, NIPS tutorial, §5.1.1",
        measured,
        holds,
        testable=testable,
        why_not=f"needs {condition}, g_steps >= {MIN_G_STEPS} and a pretrained generator "
        f"that had not collapsed already (spread >= {KEPT} x the data's)",
    )


def optimal_verdict(
    opt: dict[str, Any] | None, lagging: dict[str, Any] | None, g_steps: int
) -> Verdict:
    """Claim 2: a critic kept optimal avoids mode collapse, and it is the optimality that does.

    ``opt`` (``wgan-optimal``) must keep the collapse away: final spread ``s_opt`` at least
    :data:`KEPT` times the data's ``s_data`` and no fewer modes than at the start minus one;
    and it must do measurably better than the same continuation with a critic that is not kept
    optimal (``lagging``, ``wgan-lagging``: one critic update per generator update, no refits):
    ``s_opt − s_lag ≥`` :data:`BETTER_SPREAD` ``· s_data`` or ``m_opt − m_lag ≥``
    :data:`BETTER_MODES` (final modes captured). A lagging critic that keeps G just as spread
    shows no effect of optimality: the claim does not hold. (``wgan-frozen`` is no comparison:
    G trained alone against any frozen critic collapses, claim 1, so any healthy WGAN-GP would
    beat it.) Not tested without both conditions or below :data:`MIN_G_STEPS` steps."""
    measured, holds = "-", False
    if opt is not None:
        records, ref = opt["records"], opt["data_spread"]
        last = records[-1]
        measured = (
            f"kept optimal: spread {_change(records, 'spread')} (data {ref:.3g}); modes "
            f"{_change(records, 'modes_captured', '')}; high quality "
            f"{_change(records, 'high_quality_fraction', '.2f')}"
        )
        modes_kept = last["modes_captured"] >= records[0]["modes_captured"] - 1
        holds = last["spread"] >= KEPT * ref and modes_kept
        if lagging is not None:
            lag = lagging["records"]
            measured += (
                f"; 1 critic step per G step: spread {_change(lag, 'spread')}, modes "
                f"{_change(lag, 'modes_captured', '')}"
            )
            wider = last["spread"] - lag[-1]["spread"] >= BETTER_SPREAD * ref
            more = last["modes_captured"] - lag[-1]["modes_captured"] >= BETTER_MODES
            holds = holds and (wider or more)
    return decide(
        "A critic trained to optimality avoids mode collapse: G trained against it keeps its "
        "spread and its modes, measurably better than against a critic not kept optimal",
        "Arjovsky et al. 2017, WGAN, §3",
        measured,
        holds,
        testable=opt is not None and lagging is not None and g_steps >= MIN_G_STEPS,
        why_not=f"needs wgan-optimal, its comparison wgan-lagging and g_steps >= {MIN_G_STEPS}",
    )


@fw.register
class GeneratorOnly(fw.Experiment):
    """G trained alone against a frozen discriminator, and against an optimal critic."""

    name = "generator-only"
    description = (
        "Freeze a trained discriminator and train G alone: spread, modes and distance to the "
        "argmax of D; beside it a WGAN critic trained to optimality, frozen and kept optimal, "
        "against one that lags (Goodfellow 2016; Arjovsky et al. 2017)."
    )
    Settings = GeneratorOnlySettings
    methods = CONDITIONS
    #: Smaller nets and phases, MIN_G_STEPS G-only steps (judged); ~16 s on the shared machine.
    quick = {"pretrain_steps": 800, "g_steps": MIN_G_STEPS, "optimal_steps": 300}
    quick |= {"n_records": 5, "hidden": 64}

    def cells(self, s: GeneratorOnlySettings) -> list[fw.Cell]:
        """Every condition; conditions with the same preset share one pretraining (kept here
        for the run: the second starts from a copy of the first's state)."""
        self._pretrained: dict[str, Any] = {}
        return [fw.Cell(c, s.dataset, s.seed) for c in CONDITIONS.values()]

    def units(self, s: GeneratorOnlySettings, cell: fw.Cell) -> int:
        """The G-only steps, and the pretraining for the first condition of each preset."""
        first = next(c for c in CONDITIONS.values() if c.preset == cell.method.preset)
        return s.g_steps + (s.pretrain_steps if first is cell.method else 0)

    def pretrained(self, s: GeneratorOnlySettings, cell: fw.Cell, ctx: fw.Context) -> Trainer:
        """``cell``'s trainer after pretraining (a GAN with ``gan_objective``) and, for a WGAN
        critic, ``optimal_steps`` critic updates to optimality; or a copy of a shared one."""
        c, folder = cell.method, cell.folder(ctx.run_dir)
        pinned = (f"objective.name={s.gan_objective}",) if c.preset == "toy-gan" else ()
        name, overrides = f"generator-only-{c.name}", [*pinned, *c.overrides]
        cfg = common.experiment_config(c.preset, name, overrides, s, steps=s.pretrain_steps)
        if c.preset in self._pretrained:
            return Trainer(cfg, folder, state=copy.deepcopy(self._pretrained[c.preset]))
        trainer = common.make_trainer(cfg, folder)
        trainer.advance(s.pretrain_steps)
        if cfg.objective.name == "wasserstein":  # to optimality against the pretrained G
            toy_probes.fit_critic_to_box(trainer, s.optimal_steps, trainer.dataset.bounds())
        ctx.bar.update(s.pretrain_steps)
        self._pretrained[c.preset] = copy.deepcopy(trainer.state())
        return trainer

    def measure(self, s: GeneratorOnlySettings, cell: fw.Cell, ctx: fw.Context) -> dict[str, Any]:
        """Pretrain (or copy a shared pretraining), then train G alone with records."""
        start, info = time.time(), cell.method.info
        joint, refit = info.get("joint", False), info.get("refit", False)
        trainer = self.pretrained(s, cell, ctx)
        bounds = trainer.dataset.bounds()
        argmax, d_max = toy_probes.critic_argmax(trainer, bounds, s.grid)
        records = [{"g_step": 0, **snapshot(trainer, s, argmax, d_max)}]
        samples = {0: toy_probes.box_samples(trainer, 500, s.seed + 303, bounds).numpy()}
        opt = toy_probes.generator_optimiser(trainer)
        wasserstein = trainer.cfg.objective.name == "wasserstein"
        g_objective = trainer.loss.objective if wasserstein else make_objective(s.g_loss)
        for target in toy_probes.record_steps(s.g_steps, s.n_records)[1:]:
            done = records[-1]["g_step"]
            ctx.bar.update(target - done)
            if joint:  # WGAN-GP iterations (and a critic refit every refit_every): D moves
                while done < target:
                    n = min(target - done, s.refit_every - done % s.refit_every)
                    trainer.advance(n)
                    done += n
                    if refit and done % s.refit_every == 0:
                        trainer.train_critic(s.refit_steps)
                argmax, d_max = toy_probes.critic_argmax(trainer, bounds, s.grid)
            else:
                toy_probes.generator_alone(trainer, target - done, bounds, opt, g_objective)
            records.append({"g_step": target, **snapshot(trainer, s, argmax, d_max)})
        samples[s.g_steps] = toy_probes.box_samples(trainer, 500, s.seed + 303, bounds).numpy()
        held = toy_probes.held_real(trainer.dataset, s.eval_samples, s.seed + 101)
        return {
            "condition": cell.method.name,
            "label": cell.method.label,
            "records": records,
            "_samples": samples,
            "data_spread": toy_probes.spread(held),
            "box_half_width": (bounds[1] - bounds[0]) / 2,
            "seconds": time.time() - start,
            "run_dir": str(trainer.run_dir),
        }

    def summarise(self, s: GeneratorOnlySettings, records: list[dict]) -> dict[str, Any]:
        """Every condition's records (without the sample arrays) and the data's spread."""
        conditions = [common.public(r) for r in records]
        return {"conditions": conditions, "data_spread": records[0]["data_spread"]}

    def verdicts(self, numbers: dict[str, Any], settings: GeneratorOnlySettings) -> list[Verdict]:
        """Three verdicts from the conditions' records (first and last record of each): 1-2.
        :func:`collapse_verdict` on ``gan-frozen`` and on ``wgan-frozen``; 3.
        :func:`optimal_verdict`, ``wgan-optimal`` against ``wgan-lagging``."""
        results, g_steps = {c["condition"]: c for c in numbers["conditions"]}, settings.g_steps
        names = ("gan-frozen", "wgan-frozen")
        frozen = [collapse_verdict(c, results.get(c), g_steps) for c in names]
        optimal = optimal_verdict(results.get("wgan-optimal"), results.get("wgan-lagging"), g_steps)
        return [*frozen, optimal]

    def figures(self, s: GeneratorOnlySettings, numbers, records, run_dir: Path) -> list[Path]:
        """``generator_only.png``: samples before and after the G-only phase over the box (argmax
        of D marked), and the spread, modes and distance to the argmax over the phase."""
        from wgan.figures.plotting import legend_beside, save_figure, scatter_panel, subplots

        data, n = make_dataset(s.dataset), len(records)
        real = toy_probes.held_real(data, 1000, 5).numpy()
        fig, axes = subplots(2, max(n, 3), figsize=(4.4 * max(n, 3), 8.4), squeeze=False)
        for ax, r in zip(axes[0], records, strict=False):
            last = max(r["_samples"])
            start, end = r["_samples"][0].T, r["_samples"][last].T  # (2, 500) each
            scatter_panel(ax, real, None, data.modes.numpy(), data.bounds(), "")
            ax.scatter(*start, s=3, c="tab:blue", alpha=0.5, label="G, start")
            ax.scatter(*end, s=3, c="tab:orange", alpha=0.6, label=f"G, {last} steps")
            am = r["records"][-1]["argmax"]
            ax.scatter([am[0]], [am[1]], s=90, marker="*", c="k", label="argmax of D (grid)")
            ax.set_title(r["label"], fontsize=9)
        legend_beside(axes[0][n - 1], markerscale=2)
        for ax in [*axes[0][n:], *axes[1][3:]]:
            ax.axis("off")
        for ax, key, ylabel in (
            (axes[1][0], "spread", "spread (mean distance to centroid)"),
            (axes[1][1], "modes_captured", "modes captured"),
            (axes[1][2], "distance_to_argmax", "mean distance to argmax of D"),
        ):
            for r in records:
                steps = [rec["g_step"] for rec in r["records"]]
                ax.plot(steps, [rec[key] for rec in r["records"]], "o-", ms=3, label=r["label"])
            ax.set(xlabel="generator-only step", ylabel=ylabel)
            ax.set_title(ylabel.split(" (")[0], fontsize=9)
        axes[1][0].axhline(records[0]["data_spread"], c="0.5", ls="--", lw=1, label="data spread")
        legend_beside(axes[1][2])
        fig.suptitle("Generator trained alone: frozen discriminator vs optimal critic")
        fig.tight_layout()
        return [save_figure(fig, run_dir / "generator_only.png")]

    def table(self, s: GeneratorOnlySettings, numbers: dict[str, Any]) -> str:
        """Per condition: first -> last record of the G-only phase."""
        formats = {"spread": ".3f", "modes_captured": "", "high_quality_fraction": ".2f"}
        formats["distance_to_argmax"] = ".3f"
        rows = []
        for r in numbers["conditions"]:
            last = r["records"][-1]
            changes = [_change(r["records"], key, spec) for key, spec in formats.items()]
            critic = f"{last['critic_at_samples']:.3g} / {last['critic_max']:.3g}"
            rows.append([r["label"], *changes, critic])
        head = ["condition", "spread", "modes", "high quality", "dist. to argmax D", "D(G) / max D"]
        box = tuple(round(b, 2) for b in make_dataset(s.dataset).bounds())
        return (
            f"{common.format_table(head, rows)}\n({s.dataset}; MLPs {s.depth}x{s.hidden}; "
            f"{s.pretrain_steps} pretraining iterations, {s.g_steps} G-only steps; data spread "
            f"{numbers['data_spread']:.3f}; samples clamped to the box {box})"
        )
