r"""A WGAN-GP critic memorises a small training set (Gulrajani et al. 2017, Sec. 5).

Gulrajani et al. 2017 ("Meaningful loss curves and detecting overfitting") train WGAN-GP with
enough capacity on too little data and observe that the critic's negative loss on the training
set gradually increases even while the one on a validation set drops: the critic overfits. In the
critic's terms: its Wasserstein estimate on the *training* set,

.. math::

    \hat W_{train} = \frac{1}{n}\sum_{i \le n} f(x_i) - E_z f(G(z)),

keeps a healthy value while the same critic, against the same generated samples, scores fresh
data from the same distribution lower and lower:

.. math::

    \hat W_{held} = E_{x \sim P_r} f(x) - E_z f(G(z)), \qquad
    \text{gap} = \hat W_{train} - \hat W_{held} = \frac{1}{n}\sum_i f(x_i) - E_{P_r} f.

For a critic that generalises, the gap is ~0 (both terms estimate the same expectation). A gap
that grows means the critic has learnt *the sample*, not the distribution: it puts peaks on the
training points (and the generator, following its gradient, moves onto them); held-out points
between the peaks score below the memorised fakes, so :math:`\hat W_{held}` can even turn
negative. With a 1-Lipschitz critic the gap is bounded by the mean distance from a fresh point
to the training set; the toy protocol's weak penalty (:math:`\lambda = 0.1`, ``gan_toy.py``)
lets slopes exceed 1 and the gap grow further.

Protocol: WGAN-GP (preset ``toy-wgan-gp``: 3-layer ReLU MLPs, Adam(1e-4, betas (0.5, 0.9)), 5 critic
steps per generator step, two-sided penalty) trained on a fixed finite training set of ``n_train``
points (``data.n_train``) of a toy dataset, and a control run with a large training set
(``control_n_train``). Every ``eval_every`` generator iterations both estimates are computed on the
whole training set (up to ``eval_samples`` points of it), ``eval_samples`` held-out points (fresh
samples from a fixed seed, never trained on) and ``eval_samples`` generated points (fixed latent
seed). At the end, the exact W1 between the generated samples and the training set vs the held-out
set tells whether the generator has moved onto the training points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wgan.data import resolve_dataset_name
from wgan.errors import TrainingDiverged
from wgan.experiments import framework as fw
from wgan.experiments.common import experiment_config, format_table
from wgan.experiments.loss_vs_quality import train_through
from wgan.experiments.verdict import Verdict, decide, finite, fmt
from wgan.figures import plotting
from wgan.metrics import exact_w1
from wgan.training.trainer import Trainer

FINAL_KEYS = ("est_train", "est_heldout", "gap", "critic_loss")
#: The two runs: the small training set (``n_train``) and the large-data control.
RUNS = fw.method_table(
    fw.Method("small", "small training set", "toy-wgan-gp"),
    fw.Method("control", "large-data control", "toy-wgan-gp"),
)


@dataclass
class OverfittingSettings(fw.TrainingSettings):
    """Settings of the overfitting experiment (defaults: ~2-4 minutes on 2 CPU cores). Batches
    are drawn with replacement from the training set; the held-out points and the generated
    points use their own seeds, never the training stream."""

    dataset: str = "swissroll"  # toy dataset name
    n_train: int = 32  # size of the small training set (data.n_train)
    control_n_train: int = 8192  # training-set size of the control run (0: no control run)
    steps: int = 800  # generator iterations per run
    hidden: int = 256  # MLP width of generator and critic (unless critic_hidden, generator_hidden)
    critic_hidden: int = 0  # critic MLP width (0: hidden)
    generator_hidden: int = 0  # generator MLP width (0: hidden)
    n_critic: int = 5  # critic steps per generator iteration
    gp_weight: float = 0.1  # lambda (toy protocol of gan_toy.py)
    lr: float = 1e-4  # Adam, both players, betas (0.5, 0.9)
    eval_every: int = 20  # generator iterations between two measurements
    eval_samples: int = 2048  # held-out and generated points per measurement
    final_window: int = 5  # "final" values are means over the last this many measurements

    #: The training-config keys these settings mirror (``train.steps=`` for ``steps=``).
    TRAIN_KEYS = {
        "dataset": ("data.name",),
        "n_train": ("data.n_train",),
        "critic_hidden": ("critic.hidden",),
        "generator_hidden": ("generator.hidden",),
        "n_critic": ("train.n_critic",),
        "gp_weight": ("constraint.penalty_weight",),
        "lr": ("g_optim.lr", "d_optim.lr"),
        "eval_every": ("train.eval_every",),
    }
    LIMITS = {"n_train": ">= 1", "control_n_train": ">= 0", "n_critic": ">= 1", "lr": "> 0"}
    LIMITS |= {"critic_hidden": ">= 0", "generator_hidden": ">= 0", "gp_weight": ">= 0"}
    LIMITS |= {"eval_every": ">= 1", "final_window": ">= 1"}

    def checks(self) -> list[tuple[bool, str]]:
        name = resolve_dataset_name(self.dataset)  # raises ConfigError for unknown names
        device = self.device == "auto" or self.device.startswith(("cpu", "cuda"))
        return [
            *super().checks(),
            (name != "parallel_lines", "parallel_lines is not a dataset of this experiment"),
            (device, "device must be cpu, cuda, cuda:N or auto"),
        ]


@torch.no_grad()
def estimates(trainer: Trainer, held_out: torch.Tensor, fake: torch.Tensor) -> dict[str, float]:
    """The critic's W estimate on the training set (whole, or its first ``m`` points if larger)
    and on held-out data ``held_out`` (m, 2), same fakes ``fake`` (k, 2); all on its device."""
    critic = trainer.critic
    train = trainer.train_set[: held_out.shape[0]]  # (min(n, m), 2)
    d_fake = critic(fake).mean()
    est_train = float(critic(train).mean() - d_fake)
    est_held = float(critic(held_out).mean() - d_fake)
    return {"est_train": est_train, "est_heldout": est_held, "gap": est_train - est_held}


def plot(records: list[dict[str, Any]], path: Path) -> Path:
    """The estimates on training and held-out data, the gap and the critic loss over training,
    and the small-data run's critic with its samples (``records``: :meth:`Overfitting.measure`'s,
    the small-data run first)."""
    fig, axes = plotting.subplots(1, 3, figsize=(17, 5))
    curves = (  # per panel: (key, colour, label suffix, line width); -critic loss is negated
        [("est_train", "tab:red", "on training set", None)]
        + [("est_heldout", "tab:blue", "on held-out data", None)],
        [("gap", "tab:purple", "train - held-out", None)]
        + [("critic_loss", "tab:grey", "-critic loss (train batches)", 0.8)],
    )
    for ax, panel in zip(axes[:2], curves, strict=True):
        values = [0.0]  # the y-range: after the first 10% of iterations (a transient), with 0
        for r in records:
            hist, style = r["history"], "-" if r["run"] == "small" else "--"
            late = [h for h in hist if h["step"] > 0.1 * hist[-1]["step"]] or hist
            steps = [h["step"] for h in hist]
            for key, colour, what, lw in panel:
                sign = -1.0 if key == "critic_loss" else 1.0
                ys = [sign * h[key] for h in hist]
                ax.plot(steps, ys, style, color=colour, lw=lw, label=f"{r['label']}: {what}")
                values += [sign * h[key] for h in late]
        ax.axhline(0.0, color="k", lw=0.6)
        lo, hi = min(values), max(values)
        pad = 0.1 * (hi - lo) + 1e-6
        ax.set(ylim=(lo - pad, hi + pad), xlabel="generator iteration")
        note = "y-range: iterations after the first 10%"
        ax.text(0.99, 0.01, note, transform=ax.transAxes, ha="right", va="bottom", size=7, c="grey")
        plotting.legend_beside(ax)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("critic estimate  mean f(real) - mean f(fake)")
    axes[0].set_title("Critic's W estimate: training set vs held-out data")
    axes[1].set_ylabel("estimate gap / negative critic loss")
    axes[1].set_title("Memorisation gap = mean f(train) - mean f(held-out)")

    ax, small, held_out = axes[2], records[0]["_trainer"], records[-1]["_held_out"]
    bounds = small.dataset.bounds()
    was_training = small.critic.training
    small.critic.eval()
    X, Y, Z = plotting.critic_grid(small.critic, bounds, 128)
    small.critic.train(was_training)
    cs = ax.contourf(X, Y, Z, levels=30, cmap="viridis", alpha=0.9)
    fig.colorbar(cs, ax=ax, label="critic value f(x)")
    ax.scatter(*held_out[:1000].numpy().T, s=3, c="tab:cyan", alpha=0.5, label="held-out data")
    ax.scatter(*small.samples(1000, seed=31337).numpy().T, s=3, c="white", label="generated")
    train = small.train_set.cpu().numpy()  # (n, 2)
    ax.scatter(*train.T, s=30, marker="x", c="tab:red", label=f"training set (n = {len(train)})")
    ax.set(xlim=bounds[:2], ylim=bounds[2:], aspect="equal", xlabel="x1", ylabel="x2")
    ax.set_title(f"Small-data run at step {small.step}: critic and samples")
    fig.suptitle(
        "WGAN-GP overfitting: the critic memorises a small training set (Gulrajani et al. 2017)"
    )
    fig.tight_layout()
    # beyond the colorbar: the contour map fills the axes, so no legend fits inside
    handles, labels = ax.get_legend_handles_labels()
    plotting.legend_right_of_figure(fig, handles, labels, markerscale=2, facecolor="0.6")
    return plotting.save_figure(fig, path)


#: Generator iterations before the critic can have learnt the points: 800 is the budget at which
#: the gap was measured (0.70 against 0.012 for the control); at 300 iterations (3x128 nets)
#: both gaps were still about zero (-0.07 and -0.11), the critic not yet specialised.
OF_MIN_STEPS = 800
OF_MAX_TRAIN = 512  # "a small training set": at most this many points
OF_MIN_GAP = 0.05  # the train - held-out gap in W1 units (data spread ~1) ...
OF_CONTROL_FACTOR = 3.0  # ... and at least 3x the gap of the large-data control run


@fw.register
class Overfitting(fw.Experiment):
    """WGAN-GP on a small training set and on a large one: the critic's estimates over training."""

    name = "overfitting"
    description = (
        "WGAN-GP on a tiny training set: the critic's estimate on the training set stays up while "
        "on held-out data it drops (the critic memorises); a large-data control stays at gap ~0"
    )
    Settings = OverfittingSettings
    #: The default 800 iterations (the least at which memorisation is judged, OF_MIN_STEPS),
    #: narrower nets, fewer measurements.
    quick = {"hidden": 128, "eval_every": 40, "eval_samples": 1024}

    def cells(self, s: OverfittingSettings) -> list[fw.Cell]:
        """The small-data run, then the control run (unless ``control_n_train`` is 0)."""
        sizes = {"small": s.n_train, "control": s.control_n_train}
        return [
            fw.Cell(m, s.dataset, s.seed, sizes[m.name]) for m in RUNS.values() if sizes[m.name]
        ]

    def units(self, s: OverfittingSettings, cell: fw.Cell) -> int:
        return s.steps  # generator iterations

    def measure(self, s: OverfittingSettings, cell: fw.Cell, ctx: fw.Context) -> dict[str, Any]:
        """Train one WGAN-GP run on ``cell.value`` points, measuring both estimates every
        ``eval_every`` iterations; then the final values and the memorisation W1."""
        n, folder = cell.value, ctx.run_dir / f"{cell.method.name}-n{cell.value}"
        overrides = [f"data.n_train={n}", f"constraint.penalty_weight={s.gp_weight}"]
        overrides += [f"g_optim.lr={s.lr}", f"d_optim.lr={s.lr}", f"train.n_critic={s.n_critic}"]
        hidden = (s.generator_hidden or s.hidden, s.critic_hidden or s.hidden)
        cfg = experiment_config("toy-wgan-gp", f"overfitting-n{n}", overrides, s, hidden=hidden)
        trainer = Trainer(cfg, folder)
        g = torch.Generator().manual_seed(s.seed + 424_242)  # never the training stream
        held_out = trainer.dataset.sample(s.eval_samples, generator=g).to(trainer.device)  # (m, 2)
        history: list[dict[str, float]] = []
        targets = (*range(s.eval_every, s.steps, s.eval_every), s.steps)
        for running in train_through(trainer, targets, ctx.bar):
            fake = trainer.samples(s.eval_samples, seed=s.seed + 777).to(trainer.device)
            record = {"step": trainer.step, **estimates(trainer, held_out, fake)}
            record["critic_loss"] = running.get("d/loss", math.nan)  # on training batches
            record["critic_estimate_batches"] = running.get("d/estimate", math.nan)
            if not all(math.isfinite(v) for v in record.values()):
                raise TrainingDiverged(
                    f"training diverged at step {trainer.step} (n_train={n}); "
                    "try a lower lr or a larger gp_weight"
                )
            history.append(record)
        folder.rmdir()  # the Trainer's own folder stays empty (no checkpoints here)
        held_out = held_out.cpu()
        final = {k: float(np.mean([h[k] for h in history[-s.final_window :]])) for k in FINAL_KEYS}
        fake = trainer.samples(1024, seed=31337)  # (1024, 2) on the CPU: W1 to train / held-out
        final["w1_fake_to_train"] = float(exact_w1(fake, trainer.train_set[:2048].cpu())["w1"])
        final["w1_fake_to_heldout"] = float(exact_w1(fake, held_out[:1024])["w1"])
        return {
            "run": cell.method.name,
            "label": f"n_train = {n}",
            "n_train": n,
            "history": history,
            "final": final,
            "_trainer": trainer,
            "_held_out": held_out,
        }

    def summarise(self, s: OverfittingSettings, records: list[dict]) -> dict[str, Any]:
        """Each run's measurements and final values; the small run's final estimates and gap
        (and the control's gap)."""
        runs = {r["run"]: {k: r[k] for k in ("n_train", "history", "final")} for r in records}
        small = runs["small"]["final"]
        summary = {f"final_{k}_small": small[k] for k in ("gap", "est_train", "est_heldout")}
        summary["final_window"] = s.final_window
        if "control" in runs:
            summary["final_gap_control"] = runs["control"]["final"]["gap"]
        return {"runs": runs, "summary": summary}

    def verdicts(self, numbers: dict[str, Any], settings: Any) -> list[Verdict]:
        """A WGAN-GP critic trained on a small set scores it above fresh data from the same law
        (Gulrajani et al. 2017, Sec. 5, 'Meaningful loss curves and detecting overfitting')."""
        s = numbers["summary"]
        gap, control = s["final_gap_small"], s.get("final_gap_control")
        testable = settings.steps >= OF_MIN_STEPS and settings.n_train <= OF_MAX_TRAIN
        why = f"needs steps >= {OF_MIN_STEPS} and n_train <= {OF_MAX_TRAIN} "
        why += f"(got {settings.steps}, {settings.n_train})"
        ok = finite(gap) and gap >= OF_MIN_GAP
        measured = f"gap (train - held-out estimate) = {fmt(gap)} with n_train = {settings.n_train}"
        if control is not None:
            ok = ok and finite(control) and gap >= OF_CONTROL_FACTOR * abs(control)
            measured += f", {fmt(control)} with n_train = {settings.control_n_train}"
        claim = "A critic trained on too little data memorises it: its estimate on the training "
        claim += "set exceeds the one on held-out data"
        source = "Gulrajani et al. 2017, Sec. 5 'Meaningful loss curves and detecting "
        source += "overfitting'"
        return [decide(claim, source, measured, ok, testable, why)]

    def figures(self, s, numbers, records, run_dir: Path) -> list[Path]:
        return [plot(records, run_dir / "overfitting.png")]

    def table(self, s: OverfittingSettings, numbers: dict[str, Any]) -> str:
        """The final estimates, gap, critic loss and memorisation W1 of each run."""
        keys = [*FINAL_KEYS, "w1_fake_to_train", "w1_fake_to_heldout"]
        rows = [
            [f"n_train = {r['n_train']}", *(r["final"][k] for k in keys)]
            for r in numbers["runs"].values()
        ]
        head = ["run", "W est train", "W est held-out", "gap", "critic loss"]
        head += ["W1(G, train)", "W1(G, held-out)"]
        return (
            f"WGAN-GP on {resolve_dataset_name(s.dataset)}, {s.steps} generator iterations; "
            f"estimates are means over the last {s.final_window} measurements (every "
            f"{s.eval_every} iterations)\n" + format_table(head, rows)
        )
