"""wgan: train, measure and understand GANs, from the minimax GAN through f-GAN to WGAN-GP.

The main API, imported lazily (``import wgan`` stays cheap: torch loads on first use)::

    import wgan
    cfg = wgan.resolve("toy-wgan-gp", ["train.steps=500"])
    result = wgan.train_run(cfg)   # = wgan.training.train.train(cfg)
    run = wgan.load_run(result.run_dir)
    x = run.samples(2500)
"""

from __future__ import annotations

import importlib
from typing import Any


def _version() -> str:
    """The installed distribution's version (read on first use of ``wgan.__version__``:
    importlib.metadata is slow to import, and ``wgan --help`` should not wait for it)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("wgan")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0.0.0+unknown"


#: Public name -> the module that defines it.
_API = {
    "resolve": "wgan.config",
    "Config": "wgan.config",
    "config_keys": "wgan.config",  # every key: type, default, range, meaning (wgan config)
    # ``wgan.training.train`` is the module of the loop's entry points: train() is there
    "train_run": "wgan.training.train",
    "resume": "wgan.training.train",
    "Trainer": "wgan.training.trainer",
    "load_run": "wgan.training.run",
    "Run": "wgan.training.run",
    "GANStep": "wgan.gan.step",
    "make_objective": "wgan.objectives",
    "make_constraints": "wgan.constraints",
    "make_dataset": "wgan.data",
    "run_sweep": "wgan.scale.sweep",
    "run_experiment": "wgan.experiments",
    "WganError": "wgan.errors",
    "ConfigError": "wgan.errors",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name == "__version__":
        globals()[name] = _version()
        return globals()[name]
    if name in _API:
        attr = "train" if name == "train_run" else name
        value = getattr(importlib.import_module(_API[name]), attr)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'wgan' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API) | {"__version__"})
