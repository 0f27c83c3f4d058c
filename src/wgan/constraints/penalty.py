"""The gradient penalty on interpolates (WGAN-GP) and the per-sample input-gradient norms.

:func:`interpolates` draws the points between paired real and generated samples,
:func:`input_gradient_norm` (autograd, double backward under
:class:`~wgan.constraints.const_mask.ConstantMasks`) and :func:`input_gradient_norm_func`
(``torch.func.grad``, for compiled and vmapped steps) take ``||grad_x D(x)||_2`` per sample,
and :class:`GradientPenalty` turns the norms into the two-sided, one-sided or one-sided
squared penalty.

Sources: I. Gulrajani et al., *Improved Training of Wasserstein GANs*, NeurIPS 2017 (WGAN-GP,
one-sided variant in sec. 4); H. Petzka, A. Fischer and D. Lukovnikov, *On the regularization
of Wasserstein GANs*, ICLR 2018 (one-sided squared); T. Karras et al., *Analyzing and Improving
the Image Quality of StyleGAN*, CVPR 2020 (lazy regularisation).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from wgan.constraints.base import Constraint, check_real
from wgan.constraints.const_mask import ConstantMasks
from wgan.errors import ConfigError, WganError


def interpolates(
    real: Tensor, fake: Tensor, generator: torch.Generator | Tensor | None = None
) -> Tensor:
    r"""Random points on segments between paired samples (WGAN-GP's :math:`\hat x`).

    :math:`\hat x_i = \epsilon_i x_i + (1 - \epsilon_i) \tilde x_i` with
    :math:`\epsilon_i \sim U[0, 1]` drawn once per sample (broadcast over the other
    dimensions).  Gulrajani et al. (2017) observe that the optimal critic has gradient norm 1
    on such segments between coupled real and generated points.

    Args:
        real: real batch ``(B, ...)``.
        fake: generated batch with the same shape.
        generator: optional ``torch.Generator`` for reproducible :math:`\epsilon`, or the
            weights themselves, a tensor of shape (B,) drawn beforehand (the training step
            draws them with its other random numbers).

    Returns:
        Tensor of the same shape (not detached: detach it if no gradient to the inputs is
        wanted).

    Raises:
        WganError: if the shapes differ or the batch is empty.
    """
    # Shapes and types only: this runs inside compiled and vmapped steps (no value checks).
    if not isinstance(real, Tensor) or not isinstance(fake, Tensor):
        raise WganError(
            f"interpolates needs real and fake tensors, got {type(real).__name__} and "
            f"{type(fake).__name__}"
        )
    if real.shape != fake.shape:
        raise WganError(
            f"real and fake must have the same shape, got {tuple(real.shape)} and "
            f"{tuple(fake.shape)}"
        )
    if real.ndim == 0 or real.shape[0] == 0:
        raise WganError(f"interpolates needs a non-empty batch, got shape {tuple(real.shape)}")
    eps_shape = (real.shape[0],) + (1,) * (real.ndim - 1)
    if isinstance(generator, Tensor):
        if generator.numel() != real.shape[0]:
            raise WganError(
                f"interpolates needs one weight per sample: {real.shape[0]} samples but weights "
                f"of shape {tuple(generator.shape)}"
            )
        eps = generator.to(real.dtype).reshape(eps_shape)
    elif generator is None or isinstance(generator, torch.Generator):
        eps = torch.rand(eps_shape, generator=generator, dtype=real.dtype, device=real.device)
    else:
        raise WganError(
            "interpolates: generator must be a torch.Generator, a (B,) tensor of weights or "
            f"None, got {type(generator).__name__}"
        )
    return eps * real + (1.0 - eps) * fake


def _check_inputs(x: Tensor, owner: str) -> None:
    """WganError unless ``x`` is a non-empty batch ``(B, ...)`` with B >= 1 (shape only)."""
    if not isinstance(x, Tensor):
        raise WganError(f"{owner} needs a tensor batch (B, ...), got {type(x).__name__}")
    if x.ndim < 2 or x.shape[0] == 0:
        raise WganError(
            f"{owner} needs a non-empty batch of shape (B, ...) with B >= 1, got {tuple(x.shape)}"
        )


def input_gradient_norm(
    critic: Callable[[Tensor], Tensor],
    x: Tensor,
    create_graph: bool = False,
    scale: Tensor | None = None,
) -> Tensor:
    """||grad_x D(x)||_2 per sample, shape (B,), in float32.

    Summing D over the batch gives each sample's own input gradient, because sample i's output
    depends only on sample i (true for critics without batch norm).

    ``scale`` is the fp16 loss scale: the gradient is taken of ``scale * sum D`` (so small
    gradients do not underflow in half precision) and divided by ``scale`` before the norm, so
    the penalty always sees the *unscaled* gradient (PyTorch AMP's gradient-penalty recipe).

    With ``create_graph`` the forward runs under :class:`ConstantMasks`, so the later backward
    through the gradient skips the all-zero branch that ReLU, leaky ReLU and average pooling
    would send through the forward pass (same values, fewer FLOPs).
    """
    _check_inputs(x, "input_gradient_norm")
    x = x.detach().requires_grad_(True)
    # With create_graph (the penalty), ReLU/pooling masks are constants of the double backward.
    with ConstantMasks() if create_graph else contextlib.nullcontext():
        out = critic(x).float().sum()
    if scale is not None:
        out = out * scale
    (grad,) = torch.autograd.grad(out, x, create_graph=create_graph)
    grad = grad.float()
    if scale is not None:
        grad = grad / scale
    return grad.flatten(1).norm(2, dim=1)


def input_gradient_norm_func(
    critic: Callable[[Tensor], Tensor], x: Tensor, scale: Tensor | None = None
) -> Tensor:
    """:func:`input_gradient_norm` through ``torch.func.grad`` instead of ``autograd.grad``.

    grad_x sum_i D(x_i) is a pure function transform, so the penalty can sit inside a function
    that ``torch.compile`` captures (compiling a module differentiated with
    ``autograd.grad(create_graph=True)`` is not supported in PyTorch 2.x). The result stays on
    the ordinary autograd graph of the critic's weights, so the loop is unchanged; values equal
    the autograd path's (``tests/training/test_image_training.py``).
    """

    _check_inputs(x, "input_gradient_norm_func")

    def total(inputs: Tensor) -> Tensor:
        with ConstantMasks(functional=True):  # masks: constants of the double backward
            out = critic(inputs).float().sum()
        return out * scale if scale is not None else out

    grad = torch.func.grad(total)(x.detach()).float()
    if scale is not None:
        grad = grad / scale
    return grad.flatten(1).norm(2, dim=1)


@dataclass
class GradientPenalty(Constraint):
    """The gradient penalty on interpolates between real and generated samples.

    * two-sided (WGAN-GP, Gulrajani et al. 2017):
      lambda * E[(||grad D(x_hat)||_2 - t)^2];
    * one-sided: lambda * E[max(0, ||grad D(x_hat)||_2 - t)] (penalising only norms above t, the
      alternative Gulrajani et al. 2017 mention in sec. 4);
    * one-sided squared: lambda * E[max(0, ||grad D(x_hat)||_2 - t)^2] (Petzka et al. 2018).

    with x_hat = eps x + (1 - eps) x_tilde, eps ~ U[0, 1] per sample, and target t = 1 by default.
    ``every`` > 1 is lazy regularisation (Karras et al. 2020, StyleGAN2): the penalty is applied
    on one critic step in ``every``, counted over all critic steps of the run, and multiplied by
    ``every`` so that its average strength is lambda (the factor is applied by
    :meth:`wgan.gan.loss.GANLoss.critic_terms`). ``impl`` picks how grad_x D is taken: ``autograd``
    (double backward, with constant activation masks) or ``func`` (``torch.func.grad``, for
    compiled and vmapped steps).
    """

    weight: float = 10.0
    mode: str = "two_sided"
    target: float = 1.0
    every: int = 1
    impl: str = "autograd"

    def __post_init__(self) -> None:
        if self.mode not in ("two_sided", "one_sided", "one_sided_squared"):
            raise ConfigError(
                f"unknown penalty '{self.mode}' (choose two_sided, one_sided, one_sided_squared)"
            )
        owner = "GradientPenalty"
        self.weight = check_real(owner, "penalty weight lambda", self.weight, 0.0, strict=False)
        self.target = check_real(owner, "penalty target", self.target, 0.0, strict=True)
        if isinstance(self.every, bool) or not isinstance(self.every, int) or self.every < 1:
            raise ConfigError(f"{owner}: every must be an integer >= 1, got {self.every!r}")
        if self.impl not in ("autograd", "func"):
            raise ConfigError(f"unknown penalty implementation '{self.impl}' (autograd or func)")

    def value(
        self,
        grad_norm: Tensor,
        weight: float | Tensor | None = None,
        target: float | Tensor | None = None,
    ) -> Tensor:
        """lambda * E[phi(||grad|| - t)] for per-sample gradient norms (B,).

        ``weight`` and ``target`` override lambda and t (a sweep passes one value per run).
        """
        weight = self.weight if weight is None else weight
        excess = grad_norm - (self.target if target is None else target)
        if self.mode == "two_sided":
            per_sample = excess.square()
        elif self.mode == "one_sided":
            per_sample = excess.clamp_min(0.0)
        else:
            per_sample = excess.clamp_min(0.0).square()
        return weight * per_sample.mean()

    def penalty(
        self,
        critic: Callable[[Tensor], Tensor],
        real: Tensor,
        fake: Tensor,
        eps: Tensor | torch.Generator | None,
        scale: Tensor | None = None,
        weight: float | Tensor | None = None,
        target: float | Tensor | None = None,
        impl: str | None = None,
    ) -> dict[str, Tensor]:
        """``{'penalty', 'grad_norm'}`` on interpolates with weights ``eps`` (B,) (or drawn from
        a generator); ``impl`` overrides :attr:`impl` (a functional step always uses func)."""
        x_hat = interpolates(real.detach(), fake.detach(), eps)
        # create_graph: the penalty's own gradient w.r.t. the critic's weights is needed.
        if (impl or self.impl) == "func":
            norms = input_gradient_norm_func(critic, x_hat, scale=scale)
        else:
            norms = input_gradient_norm(critic, x_hat, create_graph=True, scale=scale)
        return {"penalty": self.value(norms, weight, target), "grad_norm": norms.detach().mean()}
