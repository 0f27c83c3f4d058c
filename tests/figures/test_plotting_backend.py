"""Importing the package must leave the user's matplotlib backend alone.

Figures are built as bare ``matplotlib.figure.Figure`` objects and written with ``savefig``, which
picks a PNG canvas for that one call, so no module needs ``matplotlib.use`` at all. The check runs
in a fresh interpreter: the backend is process-wide state, and pytest's own process may already
have imported pyplot.
"""

import subprocess
import sys

MODULES = [
    "wgan.figures.plotting",
    "wgan.training.train",
    "wgan.experiments",
    "wgan.experiments.clipping_vs_penalty",
    "wgan.experiments.f_divergences",
    "wgan.experiments.loss_vs_quality",
    "wgan.experiments.mode_collapse",
    "wgan.experiments.overfitting",
    "wgan.experiments.parallel_lines",
]

SCRIPT = """
import importlib, sys
import matplotlib
matplotlib.use("svg")  # a non-Agg backend that works without a display
for name in sys.argv[1:]:
    importlib.import_module(name)
print(matplotlib.get_backend())
"""


def test_importing_wgan_keeps_the_users_matplotlib_backend():
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, *MODULES], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().lower() == "svg", proc.stdout + proc.stderr


def test_figures_are_written_without_selecting_a_backend(tmp_path):
    """Drawing and saving a figure (the path every experiment takes) keeps the backend too."""
    script = """
import sys
import matplotlib
matplotlib.use("svg")
import numpy as np
import torch
from wgan.nets import MLP
from wgan.figures.plotting import plot_toy, save_figure, subplots

torch.manual_seed(0)
rng = np.random.default_rng(0)
fig = plot_toy(MLP(2, 1, hidden=8, depth=1), rng.normal(size=(50, 2)), rng.normal(size=(50, 2)),
               (-3, 3, -3, 3), "toy")
a = save_figure(fig, sys.argv[1] + "/toy.png")
fig, axes = subplots(1, 2, figsize=(4, 2), squeeze=False)
axes[0][1].plot([0, 1], [1, 0])
b = save_figure(fig, sys.argv[1] + "/lines.png")
assert a.read_bytes()[:8] == b.read_bytes()[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
print(matplotlib.get_backend())
"""
    proc = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().lower() == "svg", proc.stdout + proc.stderr
