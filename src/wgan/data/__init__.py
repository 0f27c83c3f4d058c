"""Embedded toy 2-D datasets (generated in code, sampled with a ``torch.Generator``) and image
datasets read from local files or from scikit-learn (nothing is downloaded).

See :mod:`wgan.data.toy` for the protocol of each toy dataset and its sources,
:mod:`wgan.data.images` for the image datasets (``is_image = True``), and
:mod:`wgan.data.build` for the registry that maps every dataset name to its loader.
"""

from wgan.data.build import make_image_dataset
from wgan.data.cifar import load_cifar
from wgan.data.digits import StackedDigits, load_digits_dataset
from wgan.data.idx import load_idx, load_mnist_dir
from wgan.data.image_files import load_image_folder
from wgan.data.images import IMAGE_DATASETS, ImageDataset
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
    "IMAGE_DATASETS",
    "EightGaussians",
    "GaussianMixture",
    "Grid",
    "ImageDataset",
    "ParallelLines",
    "Ring",
    "StackedDigits",
    "SwissRoll",
    "ToyDataset",
    "TwentyFiveGaussians",
    "load_cifar",
    "load_digits_dataset",
    "load_idx",
    "load_image_folder",
    "load_mnist_dir",
    "make_dataset",
    "make_image_dataset",
    "resolve_dataset_name",
]
