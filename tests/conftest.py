"""Shared fixtures: small, fast configs for training tests."""

import os
import tempfile

import pytest
import torch

from wgan.config import resolve

# The in-process tests train small models, for which one thread is faster than two (thread
# start-up dominates tiny matmuls) and leaves the other core to subprocess tests.
torch.set_num_threads(1)

# The digit classifier the image metrics use is trained once per test session into a private
# cache, so tests neither read nor write the user's ~/.cache.
os.environ.setdefault("WGAN_CACHE_DIR", tempfile.mkdtemp(prefix="wgan-test-cache-"))

FAST = [
    "generator.hidden=64",
    "critic.hidden=64",
    "train.progress=false",
    "train.eval_every=0",
    "train.figure_every=0",
    "train.checkpoint_every=0",
    "train.eval_samples=500",
]


@pytest.fixture
def fast_config(tmp_path):
    """resolve(preset, overrides) at small width, writing runs under tmp_path."""

    def make(preset=None, *overrides):
        cfg = resolve(preset, [*FAST, *overrides])
        cfg.out_dir = str(tmp_path / "runs")
        return cfg

    return make
