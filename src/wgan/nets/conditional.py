"""Conditional wrappers around any generator or critic: on a class y or an attribute vector c.

The condition is a class index y in [0, K) (labels (B,) int64) or an attribute vector
c in {0, 1}^k (labels (B, k) float, one-hot groups and flags, :mod:`wgan.data.attributes`). Its
embedding e is a table lookup e(y) = W[y] for a class (``nn.Embedding``) and the linear map
e(c) = W c for a vector (``nn.Linear(k, E, bias=False)``), so a one-hot c = e_y embeds as the
class y does.

* Conditional GAN (Mirza and Osindero 2014): both players see the condition. The generator
  computes G(z, c) = net([z, e(c)]) and the critic D(x, c) = net([x, e(c)]), with e a learned
  embedding; for images e(c) is broadcast over space and appended as extra input channels.
* AC-GAN (Odena, Olah and Shlens 2017): the critic is unconditional but has a second head, a
  classifier over the same features: D(x) = w^T phi(x) + b and logits(x) = W_c phi(x) + b_c,
  trained with a cross-entropy term on real and generated samples: softmax over K classes, or
  for attribute vectors k independent logits (a binary cross-entropy per attribute).
* The projection discriminator (Miyato and Koyama 2018) is :mod:`wgan.nets.projection`.

The wrapped ``net`` must follow the critic protocol of this package (``features`` and
``head``, forward == head(features)) for the critics; generators only need ``forward``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from wgan.errors import ConfigError, WganError
from wgan.nets.sizes import check_positive, check_weights


def _transformed(y: Tensor) -> bool:
    """Whether ``y`` is a tensor wrapped by a torch.func transform (vmap, grad)."""
    return bool(torch._C._functorch.is_functorch_wrapped_tensor(y))


def check_labels(y: Tensor, n_classes: int, batch: int | None = None) -> None:
    """WganError unless ``y`` is a (B,) integer tensor with values in [0, n_classes).

    The range test needs a device sync and a branch on a tensor's value, so it is skipped
    while torch.compile traces and inside torch.func transforms (vmap, grad), where the labels
    come from the training step's own draws.
    """
    if y.ndim != 1 or y.dtype == torch.bool or y.is_floating_point() or y.is_complex():
        raise WganError(
            f"expected integer class labels of shape (B,), got {y.dtype} of shape {tuple(y.shape)}"
        )
    if batch is not None and y.shape[0] != batch:
        raise WganError(f"got {y.shape[0]} labels for a batch of {batch} samples")
    if torch.compiler.is_compiling() or y.numel() == 0 or _transformed(y):
        return
    bad = (y < 0) | (y >= n_classes)
    if bool(bad.any()):
        first = int(y[bad][0])
        raise WganError(
            f"class label {first} is out of range for n_classes={n_classes} "
            f"(labels must be in [0, {n_classes}))"
        )


def check_attributes(c: Tensor, k: int, batch: int | None = None) -> None:
    """WganError unless ``c`` is a (B, k) floating-point tensor of attribute vectors.

    Only the shape and dtype are checked (no device sync): the values may be any reals, e.g. a
    walk between two vectors."""
    if c.ndim != 2 or c.shape[1] != k or not c.is_floating_point():
        raise WganError(
            f"expected attribute vectors of shape (B, {k}) (float), got {c.dtype} of shape "
            f"{tuple(c.shape)}"
        )
    if batch is not None and c.shape[0] != batch:
        raise WganError(f"got {c.shape[0]} attribute vectors for a batch of {batch} samples")


def check_conditions(y: Tensor, n_classes: int, n_attributes: int, batch: int | None) -> None:
    """:func:`check_attributes` when ``n_attributes`` > 0, else :func:`check_labels`."""
    if n_attributes:
        check_attributes(y, n_attributes, batch)
    else:
        check_labels(y, n_classes, batch)


def condition_embedding(n_classes: int, n_attributes: int, dim: int) -> nn.Module:
    """e: a class index y -> W[y] (``nn.Embedding(K, dim)``), or c -> W c for attribute vectors
    c in {0, 1}^k (``nn.Linear(k, dim, bias=False)``: a one-hot c picks a column as y does)."""
    if n_attributes:
        return nn.Linear(n_attributes, dim, bias=False)
    return nn.Embedding(n_classes, dim)


def check_condition_sizes(owner: str, n_attributes: int = 0, **values: int) -> None:
    """Positive sizes; a condition is K >= 1 classes or k >= 1 attributes, not both."""
    if n_attributes:
        if values.get("n_classes"):
            raise ConfigError(f"{owner}: condition on classes or on attribute vectors, not both")
        values = {k: v for k, v in values.items() if k != "n_classes"}
        values["n_attributes"] = n_attributes
    check_positive(owner, **values)
    if "embed_dim" in values:
        key = "n_attributes" if n_attributes else "n_classes"
        n, e = values[key], values["embed_dim"]
        check_weights(owner, n * e, f"{key}={n}, embed_dim={e}")


class ConditionalGenerator(nn.Module):
    """G(z, c) = net(cat([z, e(c)], dim=1)) with a learned embedding e: conditions -> R^embed_dim.

    ``net`` was built with in_dim = latent_dim + embed_dim; ``in_dim`` of this wrapper is
    latent_dim (when ``net`` exposes ``in_dim``).

    Args:
        net: generator on (B, latent_dim + embed_dim) inputs.
        n_classes: number of classes; labels are integers in [0, n_classes) (0 with attributes).
        embed_dim: condition embedding size.
        n_attributes: k > 0: the condition is a (B, k) attribute vector, e(c) = W c.
    """

    def __init__(
        self, net: nn.Module, n_classes: int, embed_dim: int, n_attributes: int = 0
    ) -> None:
        super().__init__()
        check_condition_sizes(
            "ConditionalGenerator", n_attributes, n_classes=n_classes, embed_dim=embed_dim
        )
        self.net = net
        self.embedding = condition_embedding(n_classes, n_attributes, embed_dim)
        self.n_classes, self.embed_dim = (0 if n_attributes else n_classes), embed_dim
        self.n_attributes = n_attributes
        net_in = getattr(net, "in_dim", None)
        if net_in is not None and net_in <= embed_dim:
            raise ConfigError(
                f"ConditionalGenerator: the inner net takes {net_in} inputs, which leaves no "
                f"room for noise next to a {embed_dim}-dimensional label embedding"
            )
        self.in_dim = None if net_in is None else net_in - embed_dim
        if hasattr(net, "out_shape"):
            self.out_shape = net.out_shape

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        if self.in_dim is not None and (z.ndim != 2 or z.shape[1] != self.in_dim):
            raise WganError(f"expected noise of shape (B, {self.in_dim}), got {tuple(z.shape)}")
        check_conditions(y, self.n_classes, self.n_attributes, z.shape[0])
        return self.net(torch.cat([z, self.embedding(y)], dim=1))  # (B, latent + E) in


class CriticWrapper(nn.Module):
    """A critic built around an inner critic ``net`` (``features`` and ``head``): its ``head``
    is the inner net's score layer, and it describes its input as the inner net does."""

    net: nn.Module

    @property
    def head(self) -> nn.Module:
        """The inner net's score layer (a property, so the state dict holds it only once)."""
        return self.net.head

    def _adopt_input_shape(self, net: nn.Module) -> None:
        for attr in ("in_shape", "in_dim"):
            if hasattr(net, attr):
                setattr(self, attr, getattr(net, attr))


def feature_width(owner: str, net: nn.Module, n_classes: int, n_attributes: int) -> int:
    """F, the width of ``net``'s features, after checking that ``net`` has ``features`` and a
    score layer ``head = nn.Linear(F, 1)``, and that an (F x K) or (F x k) condition matrix fits
    the weight limit."""
    head = getattr(net, "head", None)
    if not isinstance(head, nn.Linear) or head.out_features != 1 or not hasattr(net, "features"):
        raise ConfigError(
            f"{owner}: the inner critic needs features() and a 'head' nn.Linear(F, 1) on them"
        )
    outputs = n_attributes or n_classes
    name = "n_attributes" if n_attributes else "n_classes"
    check_weights(
        owner, head.in_features * outputs, f"{name}={outputs} on {head.in_features} features"
    )
    return head.in_features


class ConditionalCritic(CriticWrapper):
    """D(x, c) = net([x, e(c)]) for images (extra channels) or vectors (extra features).

    For images x (B, C, H, W), e(c) (B, E) is broadcast to (B, E, H, W) and concatenated as
    channels, so ``net`` was built with C + E input channels; for vectors x (B, D) the input
    is (B, D + E). ``in_shape`` (images) or ``in_dim`` (vectors) describe x without the label.

    Args:
        net: critic with ``features`` and ``head`` on the concatenated input.
        n_classes: number of classes (0 with attributes).
        embed_dim: condition embedding size E.
        n_attributes: k > 0: the condition is a (B, k) attribute vector, e(c) = W c.
    """

    def __init__(
        self, net: nn.Module, n_classes: int, embed_dim: int, n_attributes: int = 0
    ) -> None:
        super().__init__()
        check_condition_sizes(
            "ConditionalCritic", n_attributes, n_classes=n_classes, embed_dim=embed_dim
        )
        self.net = net
        self.embedding = condition_embedding(n_classes, n_attributes, embed_dim)
        self.n_classes, self.embed_dim = (0 if n_attributes else n_classes), embed_dim
        self.n_attributes = n_attributes
        self.in_shape: tuple[int, int, int] | None = None
        self.in_dim: int | None = None
        if hasattr(net, "in_shape"):
            c, h, w = net.in_shape
            if c <= embed_dim:
                raise ConfigError(
                    f"ConditionalCritic: the inner net takes {c} channels, which leaves no room "
                    f"for image channels next to a {embed_dim}-channel label embedding"
                )
            self.in_shape = (c - embed_dim, h, w)
        elif hasattr(net, "in_dim"):
            if net.in_dim <= embed_dim:
                raise ConfigError(
                    f"ConditionalCritic: the inner net takes {net.in_dim} inputs, which leaves "
                    f"no room for data next to a {embed_dim}-dimensional label embedding"
                )
            self.in_dim = net.in_dim - embed_dim

    def _joint(self, x: Tensor, y: Tensor) -> Tensor:
        if x.ndim == 4:
            if self.in_shape is not None and tuple(x.shape[1:]) != self.in_shape:
                c, h, w = self.in_shape
                raise WganError(
                    f"expected images of shape (B, {c}, {h}, {w}), got {tuple(x.shape)}"
                )
            check_conditions(y, self.n_classes, self.n_attributes, x.shape[0])
            e = self.embedding(y)  # (B, E)
            e = e[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])  # (B, E, H, W)
            return torch.cat([x, e], dim=1)  # (B, C + E, H, W)
        if x.ndim == 2:
            if self.in_dim is not None and x.shape[1] != self.in_dim:
                raise WganError(f"expected input of shape (B, {self.in_dim}), got {tuple(x.shape)}")
            check_conditions(y, self.n_classes, self.n_attributes, x.shape[0])
            return torch.cat([x, self.embedding(y)], dim=1)  # (B, D + E)
        raise WganError(f"expected images (B, C, H, W) or vectors (B, D), got {tuple(x.shape)}")

    def features(self, x: Tensor, y: Tensor) -> Tensor:
        """The inner net's features of the labelled input, (B, F)."""
        return self.net.features(self._joint(x, y))

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.net.head(self.features(x, y))  # (B, 1)


class AuxClassifierCritic(CriticWrapper):
    """AC-GAN critic: a score and class (or attribute) logits from one shared feature map phi(x).

    ``forward(x) = net.head(phi(x))`` (B, 1), ``logits(x) = classifier(phi(x))`` (B, K) with
    ``classifier = Linear(F, K)``, and ``score_and_logits`` returns both from one evaluation of
    phi. For attribute vectors (``n_attributes`` = k) the head is multi-label: (B, k) logits, one
    independent Bernoulli per attribute. Note that under a gradient penalty only the score is
    penalised.

    Args:
        net: critic with ``features`` (B, F) and ``head = Linear(F, 1)``.
        n_classes: number of classes (0 with attributes).
        n_attributes: k > 0: k attribute logits instead of class logits.
    """

    def __init__(self, net: nn.Module, n_classes: int, n_attributes: int = 0) -> None:
        super().__init__()
        check_condition_sizes("AuxClassifierCritic", n_attributes, n_classes=n_classes)
        width = feature_width("AuxClassifierCritic", net, n_classes, n_attributes)
        self.net = net
        self.n_classes, self.n_attributes = (0 if n_attributes else n_classes), n_attributes
        self.classifier = nn.Linear(width, n_attributes or n_classes)
        self._adopt_input_shape(net)

    def features(self, x: Tensor) -> Tensor:
        """The shared features phi(x), (B, F)."""
        return self.net.features(x)

    def forward(self, x: Tensor, with_logits: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """The score (B, 1); with ``with_logits``, :meth:`score_and_logits` (one entry point for
        :func:`torch.func.functional_call`)."""
        if with_logits:
            return self.score_and_logits(x)
        return self.net.head(self.features(x))  # (B, 1)

    def logits(self, x: Tensor) -> Tensor:
        """Class logits (B, n_classes), or attribute logits (B, n_attributes)."""
        return self.classifier(self.features(x))

    def score_and_logits(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(score (B, 1), logits (B, K or k)) from one feature evaluation."""
        phi = self.features(x)  # (B, F)
        return self.net.head(phi), self.classifier(phi)
