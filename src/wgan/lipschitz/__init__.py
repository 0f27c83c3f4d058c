r"""Lipschitz analysis of critics: exact layer constants, product bounds, empirical lower bounds.

A WGAN critic must be 1-Lipschitz (Kantorovich-Rubinstein duality).  This package measures how
far a given network is from that constraint, from both sides:

* **upper bounds** -- :func:`network_lipschitz_bound` multiplies per-layer constants
  (:func:`layer_lipschitz`): :math:`\operatorname{Lip}(h_L \circ \dots \circ h_1) \le
  \prod_l \operatorname{Lip}(h_l)`.  For linear layers the constant is the spectral norm; for
  convolutions it is computed *exactly* with the FFT (:func:`conv2d_lipschitz_fft`, Sedghi,
  Gupta & Long 2019), not estimated by power iteration on the reshaped kernel as spectral
  normalisation does;
* **lower bounds** -- :func:`empirical_lipschitz` evaluates
  :math:`\max \lVert \nabla_x D(x) \rVert_2` on data, generated and interpolated samples.

The true Lipschitz constant lies between the two.  All norms are Euclidean (the operator norm
is the spectral norm, i.e. the largest singular value).

Modules: :mod:`~wgan.lipschitz.conv` (exact operator norms of convolutions),
:mod:`~wgan.lipschitz.activations` (:math:`\sup |f'|` of elementwise activations),
:mod:`~wgan.lipschitz.layers` (per-layer constants), :mod:`~wgan.lipschitz.bounds` (network
upper bound and empirical lower bound).  Imports flow one way: conv, activations -> layers ->
bounds.

Sources: H. Sedghi, V. Gupta and P. Long, *The Singular Values of Convolutional Layers*,
ICLR 2019 (FFT block diagonalisation); T. Miyato et al., *Spectral Normalization for GANs*,
ICLR 2018; C. Szegedy et al., *Intriguing properties of neural networks*, 2014 (layer-product
bound); A. Virmaux and K. Scaman, *Lipschitz regularity of deep neural networks*, NeurIPS 2018;
H. Gouk et al., *Regularisation of neural networks by enforcing Lipschitz continuity*,
Machine Learning 110 (2021) (pooling, batch norm, dropout constants); I. Gulrajani et al.,
*Improved Training of Wasserstein GANs*, NeurIPS 2017 (interpolates).
"""

from __future__ import annotations

from wgan.constraints import interpolates
from wgan.lipschitz.bounds import empirical_lipschitz, network_lipschitz_bound
from wgan.lipschitz.conv import PaddingMode as PaddingMode
from wgan.lipschitz.conv import conv2d_lipschitz_bound, conv2d_lipschitz_fft
from wgan.lipschitz.layers import layer_lipschitz

__all__ = [
    "conv2d_lipschitz_bound",
    "conv2d_lipschitz_fft",
    "empirical_lipschitz",
    "interpolates",
    "layer_lipschitz",
    "network_lipschitz_bound",
]
