"""The character-level generator and critic of the WGAN-GP paper's language model.

Gulrajani et al. (2017), "Improved Training of Wasserstein GANs", sec. 5 ("Modeling discrete
data with a continuous generator") and appendix; reference code ``gan_language.py``:

* generator: ``z ~ N(0, I_128)`` -> ``Linear(128, C * L)`` -> reshape ``(B, C, L)`` -> 5
  residual blocks -> ``Conv1d(C, V, 1)`` -> softmax over the ``V`` symbols at each position,
  ``G(z)[b, :, t]`` a point of the probability simplex; no sampling step, so the output is
  continuous in ``z`` and in the weights;
* critic: ``Conv1d(V, C, 1)`` on the softmax (fake) or one-hot (real) ``(B, V, L)`` -> 5
  residual blocks -> flatten ``(B, C * L)`` -> ``Linear(C * L, 1)``;
* residual block: ``y = x + 0.3 * conv(relu(conv(relu(x))))`` with two ``Conv1d(C, C, k)``
  ('same' padding, k = 5), no normalisation (batch norm would break the per-sample penalty).

The paper: C = 512 channels, L = 32, 5 blocks, kernel 5. Width (``C``), depth (blocks) and
kernel are the config's ``width``, ``depth`` and ``kernel``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from wgan.errors import WganError
from wgan.nets.sizes import check_positive, check_weights

__all__ = ["RESIDUAL_SCALE", "ResBlock1d", "TextCritic", "TextGenerator"]

RESIDUAL_SCALE = 0.3  # gan_language.py: ``return inputs + (0.3 * output)``


class ResBlock1d(nn.Module):
    """``x + scale * conv2(relu(conv1(relu(x))))`` on ``(B, C, L)``, shape-preserving."""

    def __init__(self, width: int, kernel: int = 5, scale: float = RESIDUAL_SCALE) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(width, width, kernel, padding=kernel // 2)
        self.conv2 = nn.Conv1d(width, width, kernel, padding=kernel // 2)
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(torch.relu(x))  # (B, C, L)
        h = self.conv2(torch.relu(h))  # (B, C, L)
        return x + self.scale * h


def _check(owner: str, vocab: int, seq_len: int, width: int, depth: int, kernel: int) -> None:
    check_positive(owner, vocab=vocab, seq_len=seq_len, width=width, kernel=kernel)
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
        raise WganError(f"{owner}: depth must be an integer >= 0, got {depth!r}")
    blocks = depth * 2 * (width * width * kernel + width)
    check_weights(owner, blocks + 2 * width * seq_len * max(vocab, width), f"width={width}")


class TextGenerator(nn.Module):
    """``(B, latent_dim)`` noise -> ``(B, V, L)`` softmax over the vocabulary at each position."""

    def __init__(
        self,
        latent_dim: int,
        vocab: int,
        seq_len: int,
        width: int = 512,
        depth: int = 5,
        kernel: int = 5,
    ) -> None:
        super().__init__()
        _check("TextGenerator", vocab, seq_len, width, depth, kernel)
        self.width, self.seq_len, self.vocab = width, seq_len, vocab
        self.fc = nn.Linear(latent_dim, width * seq_len)
        self.blocks = nn.Sequential(*(ResBlock1d(width, kernel) for _ in range(depth)))
        self.out = nn.Conv1d(width, vocab, 1)

    def logits(self, z: Tensor) -> Tensor:
        """The pre-softmax scores ``(B, V, L)``."""
        h = self.fc(z).view(z.shape[0], self.width, self.seq_len)  # (B, C, L)
        return self.out(self.blocks(h))  # (B, V, L)

    def forward(self, z: Tensor) -> Tensor:
        return torch.softmax(self.logits(z), dim=1)  # (B, V, L), sums to 1 over V


class TextCritic(nn.Module):
    """``(B, V, L)`` one-hot or softmax sequences -> scores ``(B, 1)``.

    ``features(x)`` is the flattened last residual map ``(B, C * L)`` and ``head`` the linear
    score, so ``forward(x) == head(features(x))`` like the other critics.
    """

    def __init__(
        self, vocab: int, seq_len: int, width: int = 512, depth: int = 5, kernel: int = 5
    ) -> None:
        super().__init__()
        _check("TextCritic", vocab, seq_len, width, depth, kernel)
        self.in_shape = (vocab, seq_len)
        self.inp = nn.Conv1d(vocab, width, 1)
        self.blocks = nn.Sequential(*(ResBlock1d(width, kernel) for _ in range(depth)))
        self.feature_dim = width * seq_len
        self.head = nn.Linear(self.feature_dim, 1)

    def features(self, x: Tensor) -> Tensor:
        if tuple(x.shape[1:]) != self.in_shape:
            raise WganError(
                f"TextCritic expects sequences of shape (B, {self.in_shape[0]}, "
                f"{self.in_shape[1]}), got {tuple(x.shape)}"
            )
        return self.blocks(self.inp(x)).flatten(1)  # (B, C * L)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))  # (B, 1)
