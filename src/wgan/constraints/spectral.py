"""Spectral normalisation (Miyato et al. 2018): W / sigma_max(W) for every linear/conv layer.

:class:`SpectralNorm` registers the vmappable power-iteration parametrisation
:class:`SpectrallyNormalised` on every ``nn.Linear``, ``nn.Conv1d``, ``nn.Conv2d`` and
``nn.ConvTranspose2d`` of the critic.

Source: T. Miyato, T. Kataoka, M. Koyama and Y. Yoshida, *Spectral Normalization for
Generative Adversarial Networks*, ICLR 2018.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from wgan.constraints.base import Constraint


@dataclass
class SpectralNorm(Constraint):
    """Spectral normalisation (Miyato et al. 2018): W / sigma_max(W) for every linear/conv layer.

    sigma_max is tracked by one power iteration per forward pass (PyTorch's parametrisation).
    What this bounds: the spectral norm of each weight *reshaped to a matrix* (out, in * k * k).
    For a linear layer that is exactly its Lipschitz constant, so an MLP critic with
    1-Lipschitz activations is (about) 1-Lipschitz. For a convolution it is not the operator
    norm: the reshaped kernel's norm can be smaller than the convolution's by up to a factor
    sqrt(k * k) (an all-ones 3x3 kernel has reshaped norm 3 but stretches inputs by 9, so after
    normalisation it still stretches them 3x; with zero padding on an 8x8 image, 2.76x).
    :mod:`wgan.lipschitz` computes the true operator norms of convolutions.
    """

    def prepare(self, critic: nn.Module) -> nn.Module:
        layers = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d)
        for module in list(critic.modules()):
            if isinstance(module, layers):
                dim = 1 if isinstance(module, nn.ConvTranspose2d) else 0  # the output channels
                parametrize.register_parametrization(
                    module, "weight", SpectrallyNormalised(module.weight, dim)
                )
        return critic


class SpectrallyNormalised(nn.Module):
    """The parametrisation W -> W / sigma(W) with sigma from power iteration (Miyato et al. 2018).

    W is read as the matrix (out, in * k * k) (output channels along ``dim``). In training mode
    each forward pass takes one power-iteration step on the buffers u (out,), v (in * k * k,)
    and writes them back in place, so the step can run under :func:`torch.func.grad` and
    :func:`torch.func.vmap` (the buffers are inputs of the transformed function); sigma =
    u^T W v is differentiated with u, v held fixed, as in PyTorch's own
    ``nn.utils.parametrizations.spectral_norm``, which cannot be vmapped (it writes with
    ``out=``).
    """

    def __init__(self, weight: Tensor, dim: int = 0, eps: float = 1e-12, warmup: int = 15):
        super().__init__()
        self.dim, self.eps = dim, eps
        mat = self._matrix(weight.detach())  # (out, in * k * k)
        u = nn.functional.normalize(torch.randn(mat.shape[0], dtype=mat.dtype), dim=0, eps=eps)
        v = nn.functional.normalize(torch.randn(mat.shape[1], dtype=mat.dtype), dim=0, eps=eps)
        self.register_buffer("_u", u.to(mat.device))
        self.register_buffer("_v", v.to(mat.device))
        with torch.no_grad():
            for _ in range(warmup):  # start near the top singular pair
                self._power_step(mat)

    def _matrix(self, weight: Tensor) -> Tensor:
        return weight.movedim(self.dim, 0).flatten(1)

    @torch.no_grad()
    def _power_step(self, mat: Tensor) -> None:
        u = nn.functional.normalize(mat @ self._v, dim=0, eps=self.eps)  # (out,)
        v = nn.functional.normalize(mat.T @ u, dim=0, eps=self.eps)  # (in * k * k,)
        self._u.copy_(u)
        self._v.copy_(v)

    def forward(self, weight: Tensor) -> Tensor:
        mat = self._matrix(weight)
        if self.training:
            self._power_step(mat.detach())
        u, v = self._u.clone(), self._v.clone()  # constants of the gradient
        sigma = (u * (mat @ v)).sum()  # u^T W v ~ the largest singular value
        return weight / sigma
