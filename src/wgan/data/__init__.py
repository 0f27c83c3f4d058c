"""Embedded toy 2-D datasets (generated in code, sampled with a ``torch.Generator``) and image
datasets read from local files or from scikit-learn (nothing is downloaded).

See :mod:`wgan.data.toy` for the protocol of each toy dataset and its sources,
:mod:`wgan.data.images` for the image datasets (``is_image = True``), :mod:`wgan.data.shapes`
and :mod:`wgan.data.attribute_files` for images with attribute vectors, and
:mod:`wgan.data.build` for the registry that maps every dataset name to its loader.
"""

from wgan.data.attribute_files import load_attribute_folder, load_celeba
from wgan.data.attributes import AttributeSchema
from wgan.data.build import held_out, make_image_dataset
from wgan.data.cifar import load_cifar
from wgan.data.digits import StackedDigits, load_digits_dataset
from wgan.data.idx import load_idx, load_mnist_dir
from wgan.data.image_files import load_image_folder
from wgan.data.images import IMAGE_DATASETS, ImageDataset
from wgan.data.shapes import SHAPES_SCHEMA, make_shapes, read_shape_attributes
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
    "SHAPES_SCHEMA",
    "AttributeSchema",
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
    "held_out",
    "load_attribute_folder",
    "load_celeba",
    "load_cifar",
    "load_digits_dataset",
    "load_idx",
    "load_image_folder",
    "load_mnist_dir",
    "make_dataset",
    "make_image_dataset",
    "make_shapes",
    "read_shape_attributes",
    "resolve_dataset_name",
]
