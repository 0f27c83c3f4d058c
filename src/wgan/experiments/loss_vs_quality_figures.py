"""The figure and table of the loss-vs-quality experiment: the critic's estimate against
sample quality over training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from wgan.experiments.common import (
    format_table,
)

# ----------------------------------------------------------------------------------------------
# Figure and table
# ----------------------------------------------------------------------------------------------


def plot(results: list[dict[str, Any]], dataset, path: Path) -> Path:
    """Curves per method (estimate, D loss, W1 on a twin axis), estimate vs W1, final samples."""
    from wgan.figures.plotting import legend_beside, save_figure, subplots

    n = len(results)
    fig, axes = subplots(2, max(2, n), figsize=(5.2 * max(2, n), 9.0), squeeze=False)
    for ax, res in zip(axes[0], results, strict=False):
        h = res["history"]
        steps = np.maximum(np.asarray(h["step"]), 0.5)  # step 0 drawn at 0.5 on the log axis
        ax.plot(
            steps,
            h["estimate"],
            "o-",
            ms=3,
            c="tab:blue",
            label=f"estimate of {res['estimate_of']} (held set)",
        )
        ax.plot(
            steps,
            h["run_estimate"],
            "-",
            c="tab:cyan",
            alpha=0.7,
            label="estimate (running, train)",
        )
        ax.plot(
            steps,
            h["d_loss"],
            "s--",
            ms=2,
            c="tab:green",
            alpha=0.8,
            label="critic loss (held set)",
        )
        ax.set_xscale("log")
        ax.set_xlabel("generator iteration (log scale; 0 drawn at 0.5)")
        ax.set_ylabel("critic estimate / loss")
        twin = ax.twinx()
        twin.plot(steps, h["w1"], "^-", ms=3, c="tab:red", label="exact W1 (samples, data)")
        twin.set_ylabel("exact W1 to the data", color="tab:red")
        lines = ax.get_legend_handles_labels()
        lines2 = twin.get_legend_handles_labels()
        legend_beside(ax, lines[0] + lines2[0], lines[1] + lines2[1])
        ax.set_title(
            f"{res['method']}: Spearman(estimate, W1) = {res['spearman_estimate_w1']:.2f}",
            fontsize=10,
        )
    for ax in axes[0][n:]:
        ax.axis("off")
    # Estimate against W1: a rank correlation near 1 is a monotone relation.
    ax = axes[1][0]
    for res, colour in zip(
        results, ["tab:blue", "tab:orange", "tab:green", "tab:purple"], strict=False
    ):
        h = res["history"]
        ax.scatter(
            h["w1"],
            h["estimate"],
            s=14,
            c=colour,
            label=f"{res['method']} ({res['estimate_of']}), ρ={res['spearman_estimate_w1']:.2f}",
        )
    ax.set_xlabel("exact W1 of generated samples to the data")
    ax.set_ylabel("critic estimate on the held set")
    ax.set_title("estimate vs sample quality (each point: one record)", fontsize=10)
    legend_beside(ax)
    # Final samples of every method.
    ax = axes[1][1]
    g = torch.Generator().manual_seed(3)
    data = dataset.sample(1000, generator=g).numpy()
    ax.scatter(data[:, 0], data[:, 1], s=2, c="k", zorder=3, label="real")
    for res, colour in zip(
        results, ["tab:blue", "tab:orange", "tab:green", "tab:purple"], strict=False
    ):
        x = res["_samples"]
        ax.scatter(x[:, 0], x[:, 1], s=3, c=colour, alpha=0.5, label=f"{res['method']} (final)")
    xmin, xmax, ymin, ymax = dataset.bounds()
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(ymin, ymax)
    ax.set_aspect("equal")
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.set_title("final samples", fontsize=10)
    legend_beside(ax, markerscale=3)
    for ax in axes[1][2:]:
        ax.axis("off")
    fig.suptitle("Does the critic's loss track sample quality?")
    fig.tight_layout()
    return save_figure(fig, path)


def table(results: list[dict[str, Any]]) -> str:
    headers = [
        "method",
        "estimate of",
        "records",
        "Spearman(est, W1)",
        "Spearman(running est, W1)",
        "W1 first",
        "W1 last",
        "estimate last",
        "seconds",
        "note",
    ]
    rows = []
    for r in results:
        h = r["history"]
        note = f"diverged at step {r['diverged_at']}" if r["diverged_at"] is not None else ""
        rows.append(
            [
                r["method"],
                r["estimate_of"],
                len(h["step"]),
                r["spearman_estimate_w1"],
                r["spearman_running_estimate_w1"],
                h["w1"][0],
                h["w1"][-1],
                h["estimate"][-1],
                round(r["seconds"], 1),
                note,
            ]
        )
    return format_table(headers, rows)
