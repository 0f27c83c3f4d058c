"""Shared fixtures: small, fast configs for training tests."""

import pytest

from wgan.training.threads import configure_openmp

# Before torch loads, as the `wgan` command does: OpenMP's bounded spin, so that the suite (and
# the `wgan` processes its tests start, which inherit the environment) keeps its speed beside
# other jobs (wgan.training.threads; benchmarks/RESULTS.md).
configure_openmp()

import torch  # noqa: E402

from wgan.config import resolve  # noqa: E402

# The in-process tests train small models, for which one thread is faster than two (thread
# start-up dominates tiny matmuls) and leaves the other core to subprocess tests.
torch.set_num_threads(1)

FAST = [
    "generator.hidden=64",
    "critic.hidden=64",
    "train.progress=false",
    "train.eval_every=0",
    "train.figure_every=0",
    "train.checkpoint_every=0",
    "train.eval_samples=500",
]


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
    """Settings of a mode-collapse experiment small enough for a test (3 steps, one seed)."""
    from wgan.experiments import mode_collapse

    def make():
        return mode_collapse.SETTINGS(
            steps=3,
            hidden=16,
            n_seeds=1,
            eval_samples=100,
            batch_size=32,
            methods="gan,wgan-gp",
            datasets="8gaussians",
        )

    return make
