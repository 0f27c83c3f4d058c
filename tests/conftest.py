"""Shared fixtures: small, fast configs for training tests."""

import pytest

from wgan.training.threads import configure_openmp

# Before torch loads, as the `wgan` command does: OpenMP's bounded spin, so that the suite (and
# the `wgan` processes its tests start, which inherit the environment) keeps its speed beside
# other jobs (wgan.training.threads; benchmarks/RESULTS.md).
configure_openmp()

import torch  # noqa: E402
from helpers import tiny  # noqa: E402

from wgan.config import resolve  # noqa: E402

# The in-process tests train small models, for which one thread is faster than two (thread
# start-up dominates tiny matmuls) and leaves the other core to subprocess tests.
torch.set_num_threads(1)

FAST = tiny(hidden=64, eval_samples=500)


@pytest.fixture(scope="session", autouse=True)
def private_cache_dir(tmp_path_factory):
    """The wgan cache of the whole session (the digit classifier the image metrics use is
    trained once into it): a fresh directory under pytest's temporary directory, set as
    $WGAN_CACHE_DIR for every test and every process a test starts, whatever the user's
    $WGAN_CACHE_DIR, $XDG_CACHE_HOME or ~/.cache hold. So the suite neither reads a classifier
    cached by another version or machine nor writes into the user's cache."""
    path = tmp_path_factory.mktemp("wgan-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WGAN_CACHE_DIR", str(path))
        yield path


@pytest.fixture
def fast_config(tmp_path):
    """resolve(preset, overrides) at small width, writing runs under tmp_path."""

    def make(preset=None, *overrides):
        cfg = resolve(preset, [*FAST, *overrides])
        cfg.out_dir = str(tmp_path / "runs")
        return cfg

    return make


@pytest.fixture
def tiny_mode_collapse():
    """The mode-collapse experiment at a size small enough for a test (3 steps, one seed, two
    methods, one dataset), as its own experiment (not registered) for the report page."""
    from dataclasses import dataclass

    from wgan.experiments.mode_collapse import ModeCollapse, ModeCollapseSettings

    @dataclass
    class TinySettings(ModeCollapseSettings):
        steps: int = 3
        hidden: int = 16
        n_seeds: int = 1
        eval_samples: int = 100
        batch_size: int = 32
        methods: str = "gan,wgan-gp"
        datasets: str = "8gaussians"

    class TinyModeCollapse(ModeCollapse):
        description = "tiny"
        Settings = TinySettings

    return TinyModeCollapse()
