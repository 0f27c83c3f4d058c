r"""Lipschitz constants of elementwise activations: :math:`\sup_x |f'(x)|`.

For an elementwise map :math:`x \mapsto (f(x_i))_i` the Lipschitz constant w.r.t. the
Euclidean norm is :math:`\sup |f'|`.  Closed forms where they exist (ReLU family, ELU, SELU,
sigmoid, hard activations, erf-GELU); SiLU, Mish and tanh-GELU are computed numerically (a fine
grid refined by bounded Brent minimisation) and cached.  Discontinuous activations
(Hardshrink with :math:`\lambda > 0`, Threshold) have no constant.

Sources: H. Gouk et al., *Regularisation of neural networks by enforcing Lipschitz
continuity*, Machine Learning 110 (2021); A. Virmaux and K. Scaman, *Lipschitz regularity of
deep neural networks*, NeurIPS 2018.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from scipy.optimize import minimize_scalar
from torch import Tensor, nn

from wgan.nets.mlp import ShiftedSoftplus

_SELU_SCALE = 1.0507009873554804934193349852946
_SELU_ALPHA = 1.6732632423543772848170429916717


@functools.cache
def _sup_abs_derivative(name: str) -> float:
    """sup_x |f'(x)| for a smooth scalar activation: fine grid + bounded Brent refinement."""
    fns: dict[str, Callable[[Tensor], Tensor]] = {
        "silu": F.silu,
        "mish": F.mish,
        "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    }
    fn = fns[name]

    def deriv(x: Tensor) -> Tensor:
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            (g,) = torch.autograd.grad(fn(x).sum(), x)
        return g

    grid = torch.linspace(-30.0, 30.0, 600_001, dtype=torch.float64)
    d = deriv(grid).abs()
    i = int(d.argmax())
    step = float(grid[1] - grid[0])
    x0 = float(grid[i])
    res = minimize_scalar(
        lambda t: -float(deriv(torch.tensor([t], dtype=torch.float64)).abs()),
        bounds=(x0 - 2 * step, x0 + 2 * step),
        method="bounded",
        options={"xatol": 1e-12},
    )
    return max(float(d[i]), -float(res.fun))


def _gelu_erf_constant() -> float:
    # d/dx x Phi(x) = Phi(x) + x phi(x); its extrema solve phi(x) (2 - x^2) = 0: x = +-sqrt(2).
    r = math.sqrt(2.0)
    Phi = 0.5 * (1.0 + math.erf(r / math.sqrt(2.0)))
    phi = math.exp(-1.0) / math.sqrt(2.0 * math.pi)
    return Phi + r * phi


def activation_constant(module: nn.Module) -> tuple[float | None, bool, str] | None:
    """(constant, exact, note) for elementwise activations; None if not an activation."""
    one = (1.0, True, "elementwise, sup |f'| = 1")
    if isinstance(module, nn.ReLU | nn.ReLU6 | nn.Tanh | nn.Softsign | nn.LogSigmoid):
        return one
    if isinstance(module, nn.Softplus | nn.CELU | nn.Tanhshrink | nn.Softshrink):
        return one
    if isinstance(module, ShiftedSoftplus):
        # d/dx [softplus(2x + 2)/2 - 1] = sigmoid(2x + 2) in (0, 1), with supremum 1.
        return (1.0, True, "sigmoid(2x + 2) < 1, sup = 1")
    if isinstance(module, nn.LeakyReLU):
        return (max(1.0, abs(module.negative_slope)), True, "max(1, |negative_slope|)")
    if isinstance(module, nn.PReLU):
        a = float(module.weight.detach().abs().max())
        return (max(1.0, a), True, "max(1, max |a|) for the learned slopes a")
    if isinstance(module, nn.RReLU):
        if module.training:
            a = max(abs(module.lower), abs(module.upper))
            return (max(1.0, a), True, "training mode: slopes drawn from [lower, upper]")
        a = abs((module.lower + module.upper) / 2)
        return (max(1.0, a), True, "eval mode: slope (lower + upper) / 2")
    if isinstance(module, nn.ELU):
        return (max(1.0, abs(module.alpha)), True, "max(1, |alpha|)")
    if isinstance(module, nn.SELU):
        return (_SELU_SCALE * _SELU_ALPHA, True, "scale * alpha")
    if isinstance(module, nn.Sigmoid):
        return (0.25, True, "sigma'(0) = 1/4")
    if isinstance(module, nn.Hardsigmoid):
        return (1.0 / 6.0, True, "slope 1/6 on [-3, 3]")
    if isinstance(module, nn.Hardswish):
        return (1.5, True, "derivative (2x + 3) / 6 reaches 3/2 at x = 3")
    if isinstance(module, nn.Hardtanh):
        return (1.0, True, "slope 1 between min_val and max_val")
    if isinstance(module, nn.GELU):
        if module.approximate == "tanh":
            return (_sup_abs_derivative("gelu_tanh"), True, "sup |f'| computed numerically")
        return (_gelu_erf_constant(), True, "Phi(sqrt 2) + sqrt 2 phi(sqrt 2)")
    if isinstance(module, nn.SiLU):
        return (_sup_abs_derivative("silu"), True, "sup |f'| computed numerically")
    if isinstance(module, nn.Mish):
        return (_sup_abs_derivative("mish"), True, "sup |f'| computed numerically")
    if isinstance(module, nn.Hardshrink):
        if module.lambd == 0:
            return one
        return (None, False, "Hardshrink jumps at +-lambda: discontinuous, not Lipschitz")
    if isinstance(module, nn.Threshold):
        return (None, False, "Threshold is discontinuous, not Lipschitz")
    return None
