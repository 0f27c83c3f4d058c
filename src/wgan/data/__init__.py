"""Embedded toy 2-D datasets (generated in code, sampled with a ``torch.Generator``).

See :mod:`wgan.data.toy` for the protocol of each dataset and its sources.
"""

from wgan.data.toy import (
    ALIASES,
    DATASETS,
    EightGaussians,
    GaussianMixture,
    Grid,
    ParallelLines,
    Ring,
    SwissRoll,
    ToyDataset,
    TwentyFiveGaussians,
    make_dataset,
    resolve_dataset_name,
)

__all__ = [
    "ALIASES",
    "DATASETS",
    "EightGaussians",
    "GaussianMixture",
    "Grid",
    "ParallelLines",
    "Ring",
    "SwissRoll",
    "ToyDataset",
    "TwentyFiveGaussians",
    "make_dataset",
    "resolve_dataset_name",
]
