"""The layers of the "improved techniques" (Salimans et al. 2016): minibatch discrimination
and virtual batch normalisation.

* Minibatch discrimination: each sample sees how close the others are, through a learned tensor
  T (:class:`MinibatchDiscrimination`); the cheap variant is the minibatch standard deviation of
  Karras et al. (2018) (:class:`MinibatchStdDev`). Both sit between the critic's features and
  its head (:class:`BatchAwareCritic`). :class:`FeatureCritic` exposes the features that feature
  matching (:func:`wgan.gan.tricks.feature_matching_loss`) compares.
* Virtual batch normalisation: statistics of a fixed reference batch plus the current sample
  (:class:`VirtualBatchNorm`, :class:`VirtualBatchNet`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from wgan.errors import ConfigError, WganError

# ---------------------------------------------------------------------------------------------
# Minibatch discrimination
# ---------------------------------------------------------------------------------------------


MINIBATCH_CHUNK = 1024  # larger batches are scored in independent chunks (memory B^2 kernels dim)


class MinibatchDiscrimination(nn.Module):
    """o(x_i)_b = sum_{j != i} exp(-|| M_{i,b} - M_{j,b} ||_1), M_i = f(x_i) T (Salimans et al.
    2016, sec. 3.2).

    T is a learned (F, kernels * kernel_dim) tensor: each sample's features f (F,) become
    ``kernels`` rows of ``kernel_dim``; the output (B, kernels) measures, per row, how close the
    other samples of the batch are. It makes the critic's score of one sample depend on the
    whole batch, so a generator that collapses is easy to spot. Batches over
    :data:`MINIBATCH_CHUNK` samples (evaluation maps over grids) are scored in independent chunks
    of that size: the pairwise distances take memory B^2 x kernels x kernel_dim.
    """

    def __init__(self, in_features: int, kernels: int = 16, kernel_dim: int = 8) -> None:
        super().__init__()
        for key, value in (("in_features", in_features), ("kernels", kernels),
                           ("kernel_dim", kernel_dim)):  # fmt: skip
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"minibatch discrimination: {key} must be >= 1, got {value!r}")
        self.kernels, self.kernel_dim = kernels, kernel_dim
        self.T = nn.Parameter(torch.randn(in_features, kernels * kernel_dim) * 0.1)
        self.out_features = kernels

    def forward(self, f: Tensor) -> Tensor:
        if f.shape[0] > MINIBATCH_CHUNK:  # e.g. a critic map over a grid: independent chunks
            return torch.cat([self(c) for c in f.split(MINIBATCH_CHUNK)])
        m = (f @ self.T).view(-1, self.kernels, self.kernel_dim).transpose(0, 1)  # (K, B, dim)
        l1 = torch.cdist(m, m, p=1.0)  # (K, B, B): ||M_i,b - M_j,b||_1, without (B, B, K, dim)
        return torch.exp(-l1).sum(2).T - 1.0  # (B, K): minus exp(0) of j = i


class MinibatchStdDev(nn.Module):
    """The mean over features of the per-feature standard deviation over the batch, one value
    appended to every sample's features (Karras et al. 2018, sec. 3): (B, F) -> (B, 1)."""

    out_features = 1

    def forward(self, f: Tensor) -> Tensor:
        std = (f.float().var(0, unbiased=False) + 1e-8).sqrt().mean()  # 0-d
        return std.expand(f.shape[0], 1).to(f.dtype)  # (B, 1)


class BatchAwareCritic(nn.Module):
    """A critic with ``features`` and ``head`` whose head also sees a batch statistic.

    D(x_i) = head([phi(x_i), layer(phi(X))_i]) with ``layer`` a :class:`MinibatchDiscrimination`
    or :class:`MinibatchStdDev`; ``features`` stays phi (the layer feature matching uses).
    Arguments after x (the labels of a conditional critic) go to the inner critic's features.
    """

    def __init__(self, critic: nn.Module, layer: nn.Module) -> None:
        super().__init__()
        head = getattr(critic, "head", None)
        if not isinstance(head, nn.Linear) or not hasattr(critic, "features"):
            raise ConfigError(
                "minibatch features need a critic with features() and a linear head "
                "(MLP, DCGAN, ResNet, concat-conditional)"
            )
        self.inner, self.layer = critic, layer
        self.head = nn.Linear(head.in_features + layer.out_features, head.out_features)
        for attr in ("in_shape", "in_dim", "n_classes"):
            if hasattr(critic, attr):
                setattr(self, attr, getattr(critic, attr))

    def features(self, x: Tensor, *args: Any) -> Tensor:
        return self.inner.features(x, *args)

    def forward(self, x: Tensor, *args: Any) -> Tensor:
        phi = self.inner.features(x, *args)  # (B, F)
        return self.head(torch.cat([phi, self.layer(phi)], dim=1))  # (B, 1)


class FeatureCritic(nn.Module):
    """A critic whose ``forward(x, *args, features=True)`` returns its features phi(x).

    Feature matching needs d(x) inside the training step, where a critic is called through
    :func:`torch.func.functional_call`, which only reaches ``forward``; this wrapper routes the
    feature call through it. Other keyword arguments (``with_logits`` of an AC-GAN critic) pass
    through.
    """

    def __init__(self, critic: nn.Module) -> None:
        super().__init__()
        if not hasattr(critic, "features"):
            raise ConfigError("feature matching needs a critic with features() (every wgan net)")
        self.inner = critic
        for attr in ("in_shape", "in_dim", "n_classes"):
            if hasattr(critic, attr):
                setattr(self, attr, getattr(critic, attr))

    @property
    def head(self) -> nn.Module:
        return self.inner.head

    def features(self, x: Tensor, *args: Any) -> Tensor:
        return self.inner.features(x, *args)

    def score_and_logits(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.inner.score_and_logits(x)

    def forward(self, x: Tensor, *args: Any, features: bool = False, **kwargs: Any) -> Any:
        if features:
            return self.inner.features(x, *args)
        return self.inner(x, *args, **kwargs)


# ---------------------------------------------------------------------------------------------
# Virtual batch normalisation
# ---------------------------------------------------------------------------------------------


class VirtualBatchNorm(nn.Module):
    """Batch norm whose statistics come from a fixed reference batch plus the current sample.

    Salimans et al. (2016, sec. 3.4): "each example x is normalized based on the statistics
    collected on a reference batch of examples that are chosen once and fixed at the start of
    training, and on x itself". The input is [reference rows; current rows] (the reference
    batch, ``n_ref`` rows, is run through the network with every batch by
    :class:`VirtualBatchNet`): the reference rows are normalised with their own statistics, and
    each current row x_i with those of the reference batch and x_i together,
    mu_i = (n mu_ref + m_i) / (n + 1), E_i[x^2] = (n s_ref + s_i) / (n + 1), per channel (m_i,
    s_i: the channel's mean and mean square over x_i's own positions). A sample's output does
    not depend on the other samples of its batch.
    """

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.n_ref = 0  # set by VirtualBatchNet
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        n = self.n_ref
        if n < 1:
            raise WganError("VirtualBatchNorm runs inside a VirtualBatchNet (a reference batch)")
        dims = tuple(range(2, x.ndim))  # positions of a (B, C, ...) map; () for (B, C)
        xf = x.float()
        ref, cur = xf[:n], xf[n:]
        shape = (1, -1) + (1,) * len(dims)
        # Centred (two-pass) moments, combined with the parallel-variance rule: no E[x^2] -
        # mean^2 cancellation, so batched (vmapped) and single runs round alike.
        ref_mean = ref.mean(dim=(0, *dims))  # (C,)
        ref_var = (ref - ref_mean.view(shape)).square().mean(dim=(0, *dims))  # (C,)
        if dims:
            cur_mean = cur.mean(dim=dims)  # (B', C)
            view = cur_mean.shape + (1,) * len(dims)  # (B', C, 1, 1)
            cur_var = (cur - cur_mean.view(view)).square().mean(dim=dims)  # (B', C)
        else:
            cur_mean, view = cur, cur.shape
            cur_var = torch.zeros_like(cur)
        mean = (n * ref_mean + cur_mean) / (n + 1)  # (B', C)
        var = (
            n * (ref_var + (ref_mean - mean).square()) + cur_var + (cur_mean - mean).square()
        ) / (n + 1)
        ref_out = (ref - ref_mean.view(shape)) / (ref_var.view(shape) + self.eps).sqrt()
        cur_out = (cur - mean.view(view)) / (var.view(view) + self.eps).sqrt()
        out = torch.cat([ref_out, cur_out]) * self.weight.view(shape) + self.bias.view(shape)
        return out.to(x.dtype)


class VirtualBatchNet(nn.Module):
    """A generator net with virtual batch norm: the fixed reference inputs ride along.

    ``forward(z, *labels)`` runs net([z_ref; z]) and returns the rows of z: the reference noise
    ``z_ref`` (n_ref, latent) (and its labels, for a conditional net) is drawn once at the start
    of the run and is a buffer, so it is saved in the checkpoint and survives a resume.
    """

    def __init__(self, net: nn.Module, z_ref: Tensor, labels_ref: Tensor | None = None) -> None:
        super().__init__()
        layers = [m for m in net.modules() if isinstance(m, VirtualBatchNorm)]
        if not layers:
            raise ConfigError("VirtualBatchNet needs a net with VirtualBatchNorm layers")
        self.net = net
        self.register_buffer("z_ref", z_ref.clone())
        self.register_buffer("labels_ref", None if labels_ref is None else labels_ref.clone())
        for layer in layers:
            layer.n_ref = int(z_ref.shape[0])
        for attr in ("n_classes",):
            if hasattr(net, attr):
                setattr(self, attr, getattr(net, attr))

    def forward(self, z: Tensor, *args: Tensor) -> Tensor:
        n = self.z_ref.shape[0]
        z_all = torch.cat([self.z_ref.to(z.dtype), z])
        if args and self.labels_ref is not None:
            return self.net(z_all, torch.cat([self.labels_ref, args[0]]))[n:]
        return self.net(z_all, *args)[n:]
