"""The penalty's double backward without multiplications by zero (the constant-mask trick).

The penalty differentiates grad_x D(x_hat) w.r.t. the weights (a second derivative). For
ReLU, leaky ReLU and average pooling, the backward op reads a saved tensor only for a mask or
a shape: relu's backward is threshold_backward(g, y, 0) = g * [y > 0], and its derivative
w.r.t. y is zero (derivatives.yaml: ``self: zeros_like(grad)``). Autograd still sends that
dense zero tensor back through the whole forward pass on x_hat: one weight-gradient and one
input-gradient product per layer, all multiplying zeros (2/14 of the toy WGAN-GP's matmul
FLOPs). The functions below compute the same forward and the same backward kernel, with the
saved tensor detached, so the zero branch is never built. The values are bit for bit those of
the plain ops; only additions of exact zeros to weight gradients disappear. Activations with a
real second derivative (tanh, softplus, layer norm, ...) are left alone.

:class:`ConstantMasks` is the ``TorchFunctionMode`` that swaps these functions in for
``relu`` / ``leaky_relu`` / ``avg_pool2d``; :func:`wgan.constraints.penalty.input_gradient_norm`
runs the critic under it when it builds the penalty's graph.
"""

from __future__ import annotations

import torch
from torch import Tensor


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


class ConstantMasks(torch.overrides.TorchFunctionMode):
    """Within it, relu / leaky_relu / avg_pool2d calls treat their masks as constants.

    Eager autograd (``functional=False``) uses the custom functions above. The functional
    penalty (``torch.func.grad``, compiled or vmapped; ``functional=True``) cannot: a custom
    ``autograd.Function`` with detached saved tensors cuts the weights' gradient there. It writes
    relu(x) as ``x * m`` and leaky_relu(x, a) as ``x * m_a`` instead, with the mask ``m = [x > 0]``
    (``m_a`` = 1 or a) computed without a graph: the backward of a product by a constant is the
    product by the same constant, so the zero branch is never built either, and the values equal
    the plain ops' up to the sign of zeros (average pooling runs unchanged there).

    Out-of-place calls only (an in-place activation runs unchanged).
    """

    RELU = (torch.nn.functional.relu, torch.relu, Tensor.relu)

    def __init__(self, functional: bool = False) -> None:
        super().__init__()
        self.functional = functional

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in self.RELU and len(args) == 1 and not kwargs.get("inplace", False):
            x = args[0]
            if not self.functional:
                return _ReLUConstMask.apply(x)
            with torch.no_grad():
                mask = (x > 0).to(x.dtype)
            return x * mask
        if func is torch.nn.functional.leaky_relu:
            bound = _leaky_relu_args(*args, **kwargs)
            if bound is not None:
                if not self.functional:
                    return _LeakyReLUConstMask.apply(*bound)
                x, slope = bound
                with torch.no_grad():
                    mask = torch.where(x > 0, 1.0, slope).to(x.dtype)
                return x * mask
        if func is torch.nn.functional.avg_pool2d and args and not self.functional:
            return _AvgPool2dConstShape.apply(args[0], _avg_pool2d_args(*args[1:], **kwargs))
        return func(*args, **kwargs)


def _leaky_relu_args(
    x: Tensor, negative_slope: float = 0.01, inplace: bool = False
) -> tuple[Tensor, float] | None:
    return None if inplace else (x, float(negative_slope))
