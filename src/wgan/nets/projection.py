"""The projection discriminator (Miyato and Koyama 2018): the condition enters through an inner
product with the critic's features.

For a critic with features phi(x) in R^F and a linear head psi(f) = w^T f + b,

    D(x, c) = psi(phi(x)) + <V c, phi(x)>,

with V in R^{F x k} learned. For a class y (c = e_y, one-hot) V c = V[:, y] is a lookup in an
``nn.Embedding(K, F)`` table; for an attribute vector c in {0, 1}^k it is ``nn.Linear(k, F,
bias=False)``. Miyato and Koyama derive this form from the log-density ratio of a conditional
model whose class conditionals are log-linear in phi(x) (their eq. 3-6); unlike concatenation it
lets every layer of phi see x alone and puts the condition only at the output.

The critic follows the package's critic protocol: ``features(x, c)`` is phi(x) (the condition does
not enter phi), ``head`` is psi, ``forward(x, c)`` is D(x, c) of shape (B, 1).
"""

from __future__ import annotations

from torch import Tensor, nn

from wgan.errors import WganError
from wgan.nets.conditional import (
    CriticWrapper,
    check_condition_sizes,
    check_conditions,
    condition_embedding,
    feature_width,
)

__all__ = ["ProjectionCritic"]


class ProjectionCritic(CriticWrapper):
    """D(x, c) = psi(phi(x)) + <V c, phi(x)> (Miyato and Koyama 2018, eq. 3).

    Args:
        net: an unconditional critic with ``features`` (B, F) and ``head = Linear(F, 1)`` (psi).
        n_classes: number of classes K (labels (B,) int64 in [0, K)); 0 with attributes.
        n_attributes: k > 0: the condition is a (B, k) float attribute vector.

    Attributes:
        embedding: V, ``nn.Embedding(K, F)`` (class y -> V[y], (F,)) or ``nn.Linear(k, F,
            bias=False)`` (c -> V c); every entry initialised U(-1/sqrt(F), 1/sqrt(F)) like the
            head psi, so that at the start <V c, phi(x)> is of the size of psi(phi(x)) per
            active attribute.
    """

    def __init__(self, net: nn.Module, n_classes: int = 0, n_attributes: int = 0) -> None:
        super().__init__()
        check_condition_sizes("ProjectionCritic", n_attributes, n_classes=n_classes)
        width = feature_width("ProjectionCritic", net, n_classes, n_attributes)  # F
        self.net = net
        self.n_classes, self.n_attributes = (0 if n_attributes else n_classes), n_attributes
        self.embedding = condition_embedding(self.n_classes, n_attributes, width)
        bound = width**-0.5
        nn.init.uniform_(self.embedding.weight, -bound, bound)
        self._adopt_input_shape(net)

    def features(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """phi(x), (B, F); the condition ``y`` does not enter the features."""
        return self.net.features(x)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """D(x, y) (B, 1) for labels (B,) or attribute vectors (B, k)."""
        if y is None:
            raise WganError("a projection critic scores (x, condition) pairs: give the labels")
        check_conditions(y, self.n_classes, self.n_attributes, x.shape[0])
        phi = self.net.features(x)  # (B, F)
        proj = (self.embedding(y).to(phi.dtype) * phi).sum(1, keepdim=True)  # (B, 1): <V c, phi>
        return self.net.head(phi) + proj  # (B, 1)
