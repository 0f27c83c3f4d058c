"""Weight clipping (WGAN, Arjovsky et al. 2017): a projection onto [-c, c] after each step.

Sources: M. Arjovsky, S. Chintala and L. Bottou, *Wasserstein GAN*, ICML 2017;
I. Gulrajani et al., *Improved Training of Wasserstein GANs*, NeurIPS 2017 (sec. 3: why
clipping is a poor constraint).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from wgan.constraints.base import Constraint, check_real


@dataclass
class WeightClipping(Constraint):
    """Clip every critic parameter to [-c, c] after each critic step (WGAN, Arjovsky et al. 2017).

    This keeps the weights in a compact set so that the critic family is K-Lipschitz for some K
    (Arjovsky et al. 2017). Gulrajani et al. (2017, sec. 3) show why it is a poor constraint: the
    weights pile up at +/-c and the gradients vanish or explode through deep critics.
    """

    c: float = 0.01

    def __post_init__(self) -> None:
        # c <= 0 would set every weight to 0 or to -|c|; nan or inf would clip nothing.
        self.c = check_real("WeightClipping", "c", self.c, 0.0, strict=True)

    @torch.no_grad()
    def project_(self, params: list[Tensor], clip: float | Tensor | None = None) -> None:
        c = self.c if clip is None else clip
        for p in params:
            # out of place, then copied: clamp_ has no vmap batching rule (a sweep clips too)
            if isinstance(c, Tensor):
                p.copy_(torch.minimum(torch.maximum(p, -c), c))  # c per run under vmap
            else:
                p.copy_(p.clamp(-c, c))
