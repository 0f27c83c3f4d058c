"""Lipschitz constraints on the critic, composable with any objective.

Three mechanisms, each a small object with up to three hooks that the training loop calls
without knowing the maths:

* ``prepare(critic)``: change the parametrisation once (spectral normalisation);
* ``penalty(critic, real, fake, generator)``: a loss term added to the critic loss (the
  gradient penalty);
* ``project(critic)``: a projection after each critic optimiser step (weight clipping).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from wgan.errors import ConfigError, WganError


class Constraint:
    """Base class: every hook is a no-op."""

    def prepare(self, critic: nn.Module) -> nn.Module:
        return critic

    def penalty(
        self,
        critic: Callable[[Tensor], Tensor],
        real: Tensor,
        fake: Tensor,
        eps: Tensor | torch.Generator | None,
        scale: Tensor | None = None,
        **overrides: Any,
    ) -> dict[str, Tensor]:
        return {}

    def project(self, critic: nn.Module) -> None:
        self.project_(list(critic.parameters()))

    def project_(self, params: list[Tensor], clip: float | Tensor | None = None) -> None:
        """The projection on a list of parameter tensors (in place); ``clip`` overrides c."""
        return None


@dataclass
class WeightClipping(Constraint):
    """Clip every critic parameter to [-c, c] after each critic step (WGAN, Arjovsky et al. 2017).

    This keeps the weights in a compact set so that the critic family is K-Lipschitz for some K
    (Arjovsky et al. 2017). Gulrajani et al. (2017, sec. 3) show why it is a poor constraint: the
    weights pile up at +/-c and the gradients vanish or explode through deep critics.
    """

    c: float = 0.01

    @torch.no_grad()
    def project_(self, params: list[Tensor], clip: float | Tensor | None = None) -> None:
        c = self.c if clip is None else clip
        for p in params:
            # out of place, then copied: clamp_ has no vmap batching rule (a sweep clips too)
            if isinstance(c, Tensor):
                p.copy_(torch.minimum(torch.maximum(p, -c), c))  # c per run under vmap
            else:
                p.copy_(p.clamp(-c, c))


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
    if real.shape != fake.shape:
        raise WganError(
            f"real and fake must have the same shape, got {tuple(real.shape)} and "
            f"{tuple(fake.shape)}"
        )
    if real.ndim == 0 or real.shape[0] == 0:
        raise WganError(f"interpolates needs a non-empty batch, got shape {tuple(real.shape)}")
    eps_shape = (real.shape[0],) + (1,) * (real.ndim - 1)
    if isinstance(generator, Tensor):
        eps = generator.to(real.dtype).reshape(eps_shape)
    else:
        eps = torch.rand(eps_shape, generator=generator, dtype=real.dtype, device=real.device)
    return eps * real + (1.0 - eps) * fake


# -- the penalty's double backward without multiplications by zero -----------------------------
#
# The penalty differentiates grad_x D(x_hat) w.r.t. the weights (a second derivative). For
# ReLU, leaky ReLU and average pooling, the backward op reads a saved tensor only for a mask or
# a shape: relu's backward is threshold_backward(g, y, 0) = g * [y > 0], and its derivative
# w.r.t. y is zero (derivatives.yaml: ``self: zeros_like(grad)``). Autograd still sends that
# dense zero tensor back through the whole forward pass on x_hat: one weight-gradient and one
# input-gradient product per layer, all multiplying zeros (2/14 of the toy WGAN-GP's matmul
# FLOPs). The functions below compute the same forward and the same backward kernel, with the
# saved tensor detached, so the zero branch is never built. The values are bit for bit those of
# the plain ops; only additions of exact zeros to weight gradients disappear. Activations with a
# real second derivative (tanh, softplus, layer norm, ...) are left alone.


class _ReLUConstMask(torch.autograd.Function):
    """relu(x) whose backward treats the mask [relu(x) > 0] as a constant."""

    @staticmethod
    def forward(x: Tensor) -> Tensor:
        return torch.relu(x)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        ctx.save_for_backward(output.detach())  # the mask's source, cut from the graph
        ctx.set_materialize_grads(False)  # no gradient in, none out (no zeros made up)

    @staticmethod
    def backward(ctx, grad: Tensor | None) -> Tensor | None:
        if grad is None:
            return None
        (y,) = ctx.saved_tensors
        return torch.ops.aten.threshold_backward(grad, y, 0)  # ReluBackward0's own kernel


class _LeakyReLUConstMask(torch.autograd.Function):
    """leaky_relu(x, slope) whose backward treats the sign of x as a constant."""

    @staticmethod
    def forward(x: Tensor, slope: float) -> Tensor:
        return torch.nn.functional.leaky_relu(x, slope)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        x, ctx.slope = inputs
        ctx.save_for_backward(x.detach())
        ctx.set_materialize_grads(False)

    @staticmethod
    def backward(ctx, grad: Tensor | None) -> tuple[Tensor | None, None]:
        if grad is None:
            return None, None
        (x,) = ctx.saved_tensors
        return torch.ops.aten.leaky_relu_backward(grad, x, ctx.slope, False), None


class _AvgPool2dConstShape(torch.autograd.Function):
    """avg_pool2d whose backward reads its input only for the shape (as a constant)."""

    @staticmethod
    def forward(x: Tensor, args: tuple) -> Tensor:
        return torch.ops.aten.avg_pool2d(x, *args)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        x, ctx.args = inputs
        ctx.save_for_backward(x.detach())
        ctx.set_materialize_grads(False)

    @staticmethod
    def backward(ctx, grad: Tensor | None) -> tuple[Tensor | None, None]:
        if grad is None:
            return None, None
        (x,) = ctx.saved_tensors
        return torch.ops.aten.avg_pool2d_backward(grad, x, *ctx.args), None


def _pair(v) -> list[int]:
    return [int(v), int(v)] if isinstance(v, int) else [int(a) for a in v]


def _avg_pool2d_args(
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> tuple:
    """F.avg_pool2d's arguments in aten's order (stride [] = the kernel size, as in aten)."""
    stride = [] if stride is None or stride == [] else _pair(stride)
    return (
        _pair(kernel_size),
        stride,
        _pair(padding),
        ceil_mode,
        count_include_pad,
        divisor_override,
    )


class _ConstantMasks(torch.overrides.TorchFunctionMode):
    """Within it, relu / leaky_relu / avg_pool2d calls use the constant-mask versions above.

    Out-of-place calls only (an in-place activation runs unchanged).
    """

    RELU = (torch.nn.functional.relu, torch.relu, Tensor.relu)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in self.RELU and len(args) == 1 and not kwargs.get("inplace", False):
            return _ReLUConstMask.apply(args[0])
        if func is torch.nn.functional.leaky_relu:
            bound = _leaky_relu_args(*args, **kwargs)
            if bound is not None:
                return _LeakyReLUConstMask.apply(*bound)
        if func is torch.nn.functional.avg_pool2d and args:
            return _AvgPool2dConstShape.apply(args[0], _avg_pool2d_args(*args[1:], **kwargs))
        return func(*args, **kwargs)


def _leaky_relu_args(
    x: Tensor, negative_slope: float = 0.01, inplace: bool = False
) -> tuple[Tensor, float] | None:
    return None if inplace else (x, float(negative_slope))


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

    With ``create_graph`` the forward runs under :class:`_ConstantMasks`, so the later backward
    through the gradient skips the all-zero branch that ReLU, leaky ReLU and average pooling
    would send through the forward pass (same values, fewer FLOPs).
    """
    x = x.detach().requires_grad_(True)
    # With create_graph (the penalty), ReLU/pooling masks are constants of the double backward.
    with _ConstantMasks() if create_graph else contextlib.nullcontext():
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
    the autograd path's (``tests/test_image_training.py``).
    """

    def total(inputs: Tensor) -> Tensor:
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
    :meth:`wgan.game.GANLoss.critic_terms`). ``impl`` picks how grad_x D is taken: ``autograd``
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
        if self.weight < 0:
            raise ConfigError("penalty weight lambda must be >= 0")
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


@dataclass
class SpectralNorm(Constraint):
    """Spectral normalisation (Miyato et al. 2018): W / sigma_max(W) for every linear/conv layer.

    sigma_max is tracked by one power iteration per forward pass (PyTorch's parametrisation).
    What this bounds: the spectral norm of each weight *reshaped to a matrix* (out, in * k * k).
    For a linear layer that is exactly its Lipschitz constant, so an MLP critic with
    1-Lipschitz activations is (about) 1-Lipschitz. For a convolution it is not the operator
    norm: the reshaped kernel's norm can be smaller than the convolution's by up to a factor
    sqrt(k * k) (an all-ones 3x3 kernel has reshaped norm 3 but stretches inputs by 9, so after
    normalisation it still stretches them 3x; with zero padding on a small image, about 2.81x).
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


class Constraints(Constraint):
    """Several constraints applied together (e.g. spectral norm plus a gradient penalty)."""

    def __init__(self, parts: list[Constraint]) -> None:
        self.parts = parts

    def prepare(self, critic: nn.Module) -> nn.Module:
        for part in self.parts:
            critic = part.prepare(critic)
        return critic

    def penalty(
        self,
        critic: Callable[[Tensor], Tensor],
        real: Tensor,
        fake: Tensor,
        eps: Tensor | torch.Generator | None,
        scale: Tensor | None = None,
        **overrides: Any,
    ) -> dict[str, Tensor]:
        terms: dict[str, Tensor] = {}
        for part in self.parts:
            terms.update(part.penalty(critic, real, fake, eps, scale, **overrides))
        return terms

    def project_(self, params: list[Tensor], clip: float | Tensor | None = None) -> None:
        for part in self.parts:
            part.project_(params, clip)

    @property
    def has_penalty(self) -> bool:
        return any(isinstance(p, GradientPenalty) for p in self.parts)

    @property
    def has_projection(self) -> bool:
        return any(isinstance(p, WeightClipping) for p in self.parts)

    @property
    def penalty_every(self) -> int:
        """How often (in critic steps) the penalty terms are due; 1 when there are none."""
        return max((p.every for p in self.parts if isinstance(p, GradientPenalty)), default=1)


def make_constraints(
    clip: float = 0.0,
    penalty: str = "none",
    penalty_weight: float = 10.0,
    penalty_target: float = 1.0,
    penalty_every: int = 1,
    spectral_norm: bool = False,
    penalty_impl: str = "autograd",
) -> Constraints:
    """Compose the constraints a config asks for (see :class:`wgan.config.ConstraintConfig`)."""
    parts: list[Constraint] = []
    if spectral_norm:
        parts.append(SpectralNorm())
    if penalty != "none":
        parts.append(
            GradientPenalty(penalty_weight, penalty, penalty_target, penalty_every, penalty_impl)
        )
    if clip > 0:
        parts.append(WeightClipping(clip))
    return Constraints(parts)
