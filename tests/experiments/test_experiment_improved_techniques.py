"""The improved-techniques experiment: the summary reads the metrics the evaluation reports."""

import math

import pytest
import torch
from torch import nn

from wgan.experiments import get_experiment
from wgan.experiments.improved_techniques import ImprovedTechniquesSettings
from wgan.metrics.images import STACKED_N_MODES, stacked_digits_metrics


class TinyClassifier(nn.Module):
    """A stand-in for the digit classifier (4x4 digits): features are the pixels."""

    resolution = 4

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(16, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)  # (N, 1, 4, 4) -> (N, 16)


def test_stacked_digits_summary_reads_the_evaluation_keys():
    """Records carrying what the stacked-digits evaluator returns (its metric function, run on
    random images) give finite modes out of 1,000 and the mode KL as quality and KL."""
    torch.manual_seed(0)
    classifier = TinyClassifier()
    records = []
    for seed in (0, 1):
        images = torch.rand(300, 3, 4, 4, generator=torch.Generator().manual_seed(seed))
        metrics = stacked_digits_metrics(images, classifier)
        key = {"dataset": "stacked_digits", "objective": "minimax", "seed": seed}
        records.append({**key, "technique": "none", "method": "none", "metrics": metrics})
    numbers = get_experiment("improved-techniques").summarise(
        ImprovedTechniquesSettings(datasets="stacked_digits"), records
    )
    (row,) = numbers["summary"]
    covered = [r["metrics"]["modes_covered"] for r in records]
    kls = [r["metrics"]["mode_kl"] for r in records]
    assert row["n_modes"] == STACKED_N_MODES
    assert all(math.isfinite(v) for v in (*row["modes"], *row["quality"], *row["kl"]))
    assert row["modes"][0] == pytest.approx(sum(covered) / 2)
    assert row["quality"][0] == row["kl"][0] == pytest.approx(sum(kls) / 2)
    assert row["quality_key"] == "mode_kl"
    assert row["seeds"] == 2 and row["diverged"] == 0
