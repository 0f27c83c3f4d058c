r"""Lipschitz analysis of critics: exact layer constants, product bounds, empirical lower bounds.

A WGAN critic must be 1-Lipschitz (Kantorovich-Rubinstein duality).  This module measures how
far a given network is from that constraint, from both sides:

* **upper bounds** -- :func:`network_lipschitz_bound` multiplies per-layer constants
  (:func:`layer_lipschitz`): :math:`\operatorname{Lip}(h_L \circ \dots \circ h_1) \le
  \prod_l \operatorname{Lip}(h_l)`.  For linear layers the constant is the spectral norm; for
  convolutions it is computed *exactly* with the FFT (:func:`conv2d_lipschitz_fft`, Sedghi,
  Gupta & Long 2019), not estimated by power iteration on the reshaped kernel as spectral
  normalisation does;
* **lower bounds** -- :func:`empirical_lipschitz` evaluates
  :math:`\max \lVert \nabla_x D(x) \rVert_2` on data, generated and interpolated samples.

The true Lipschitz constant lies between the two.  All norms are Euclidean (the operator norm
is the spectral norm, i.e. the largest singular value).

Sources: H. Sedghi, V. Gupta and P. Long, *The Singular Values of Convolutional Layers*,
ICLR 2019 (FFT block diagonalisation); T. Miyato et al., *Spectral Normalization for GANs*,
ICLR 2018; C. Szegedy et al., *Intriguing properties of neural networks*, 2014 (layer-product
bound); A. Virmaux and K. Scaman, *Lipschitz regularity of deep neural networks*, NeurIPS 2018;
H. Gouk et al., *Regularisation of neural networks by enforcing Lipschitz continuity*,
Machine Learning 110 (2021) (pooling, batch norm, dropout constants); I. Gulrajani et al.,
*Improved Training of Wasserstein GANs*, NeurIPS 2017 (interpolates).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from scipy.optimize import minimize_scalar
from torch import Tensor, nn
from torch.nn.utils import parametrize

from wgan.constraints import interpolates
from wgan.errors import WganError
from wgan.nets.mlp import ShiftedSoftplus

__all__ = [
    "conv2d_lipschitz_bound",
    "conv2d_lipschitz_fft",
    "empirical_lipschitz",
    "interpolates",
    "layer_lipschitz",
    "network_lipschitz_bound",
]

PaddingMode = str  # "zeros" | "circular" | "reflect" | "replicate"

_SVD_CHUNK_ELEMENTS = 1 << 22  # complex entries per batched SVD call


# --------------------------------------------------------------------------------------
# Convolutions
# --------------------------------------------------------------------------------------


def _pair(v: int | Sequence[int], name: str) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    t = tuple(int(x) for x in v)
    if len(t) != 2:
        raise WganError(f"{name} must be an int or a pair of ints, got {v!r}")
    return t  # type: ignore[return-value]


def _check_weight(weight: Tensor) -> Tensor:
    if not isinstance(weight, Tensor):
        raise WganError(f"weight must be a torch.Tensor, got {type(weight).__name__}")
    if weight.ndim != 4:
        raise WganError(
            f"conv2d weight must have shape (D, C, k_h, k_w), got {tuple(weight.shape)}"
        )
    if weight.numel() == 0:
        raise WganError("conv2d weight is empty")
    w = weight.detach().to(torch.float64)
    if not torch.isfinite(w).all():
        raise WganError("conv2d weight contains non-finite values")
    return w


def _check_size(input_size: Sequence[int]) -> tuple[int, int]:
    try:
        H, W = (int(s) for s in input_size)
    except (TypeError, ValueError) as exc:
        raise WganError(f"input_size must be a pair (H, W), got {input_size!r}") from exc
    if H < 1 or W < 1:
        raise WganError(f"input_size must be positive, got {(H, W)}")
    return H, W


def _symbol_norm(w: Tensor, grid: tuple[int, int]) -> float:
    """max over DFT frequencies of the grid of sigma_max of the (D, C) kernel-DFT matrix.

    Kernel taps are folded modulo the grid (``w[.., a, b]`` lands on ``(a mod N_h, b mod N_w)``),
    which is what a circular convolution on that grid does with a kernel larger than the grid;
    for ``k <= N`` this is plain zero-padding of the kernel.
    """
    D, C, kh, kw = w.shape
    Nh, Nw = grid
    idx_h = torch.arange(kh, device=w.device) % Nh
    idx_w = torch.arange(kw, device=w.device) % Nw
    tmp = torch.zeros(D, C, Nh, kw, dtype=w.dtype, device=w.device).index_add_(2, idx_h, w)
    folded = torch.zeros(D, C, Nh, Nw, dtype=w.dtype, device=w.device).index_add_(3, idx_w, tmp)
    # Real kernels: K(-omega) = conj(K(omega)) has the same singular values, so the half
    # spectrum of rfft2 covers every frequency.
    K = torch.fft.rfft2(folded)  # (D, C, Nh, Nw // 2 + 1)
    blocks = K.permute(2, 3, 0, 1).reshape(-1, D, C)
    chunk = max(1, _SVD_CHUNK_ELEMENTS // (D * C))
    best = 0.0
    for start in range(0, blocks.shape[0], chunk):
        s = torch.linalg.svdvals(blocks[start : start + chunk])
        best = max(best, float(s[..., 0].max()))
    return best


def conv2d_lipschitz_fft(weight: Tensor, input_size: tuple[int, int]) -> float:
    r"""Exact spectral norm of a stride-1, circularly padded 2-D convolution on ``H x W`` inputs.

    Let the layer map :math:`x \in \mathbb{R}^{C \times H \times W}` to
    :math:`y \in \mathbb{R}^{D \times H \times W}`,
    :math:`y_d(u) = \sum_c \sum_{a,b} w_{d,c}(a, b)\, x_c(u + (a, b))` with indices taken modulo
    :math:`(H, W)` (PyTorch's cross-correlation with circular padding ``k // 2``; the shift
    of the window does not matter).

    **Derivation (Sedghi, Gupta & Long 2019).**  For one input and one output channel the map
    is a doubly-circulant matrix, diagonalised by the 2-D DFT :math:`\mathcal{F}`: for every
    frequency :math:`\omega = (\omega_1, \omega_2)`,
    :math:`\widehat{y}(\omega) = \widehat{w}(\omega)\, \widehat{x}(\omega)` (up to complex
    conjugation and a unit-modulus phase, because PyTorch correlates rather than convolves).
    With channels, the same unitary :math:`\mathcal{F}` applied to every channel turns the
    :math:`DHW \times CHW` layer matrix into a block-diagonal matrix with one
    :math:`D \times C` block per frequency,

    .. math::

        M_\omega = \bigl(\widehat{w}_{d,c}(\omega)\bigr)_{d,c}, \qquad
        \widehat{w}_{d,c}(\omega) = \sum_{a,b} w_{d,c}(a, b)\,
        e^{-2\pi i (a\omega_1 / H + b\omega_2 / W)},

    the DFTs of the kernels zero-padded to :math:`H \times W`.  Unitary changes of basis and
    a permutation preserve singular values, so the singular values of the layer are the union
    over :math:`\omega` of those of :math:`M_\omega`, and

    .. math::  L = \lVert \mathrm{conv} \rVert_{2 \to 2} = \max_\omega \sigma_{\max}(M_\omega).

    Conjugation/phase do not change singular values, so correlation and convolution give the
    same :math:`L`.  Computed with ``torch.fft.rfft2`` (real kernels: :math:`M_{-\omega} =
    \overline{M_\omega}`, so half the spectrum suffices) and a batched
    ``torch.linalg.svdvals``, in float64.  Kernels larger than the grid are folded modulo
    ``(H, W)``, which is what circular padding does.

    Args:
        weight: ``(D, C, k_h, k_w)`` kernel (``nn.Conv2d.weight``, ``groups=1``).
        input_size: ``(H, W)``, the spatial size of the (circular) input.

    Returns:
        The exact Lipschitz constant :math:`L` (a Python float).

    Source: Sedghi, Gupta and Long, *The Singular Values of Convolutional Layers*, ICLR 2019
    (main theorem: the singular values are the union of those of the per-frequency blocks).
    """
    w = _check_weight(weight)
    return _symbol_norm(w, _check_size(input_size))


def _expand_groups(w: Tensor, groups: int) -> Tensor:
    """``(D, C/g, kh, kw)`` grouped kernel -> equivalent dense block-diagonal ``(D, C, kh, kw)``."""
    if groups == 1:
        return w
    D, Cg, kh, kw = w.shape
    if D % groups:
        raise WganError(f"out channels {D} not divisible by groups={groups}")
    Dg = D // groups
    full = w.new_zeros(D, Cg * groups, kh, kw)
    for g in range(groups):
        full[g * Dg : (g + 1) * Dg, g * Cg : (g + 1) * Cg] = w[g * Dg : (g + 1) * Dg]
    return full


def _dilate(w: Tensor, dilation: tuple[int, int]) -> Tensor:
    dh, dw = dilation
    if dh == 1 and dw == 1:
        return w
    D, C, kh, kw = w.shape
    out = w.new_zeros(D, C, dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    out[:, :, ::dh, ::dw] = w
    return out


def _parse_pad(
    pad: int | Sequence[int] | str, kernel: tuple[int, int]
) -> tuple[tuple[int, int], tuple[int, int]]:
    """-> ((top, bottom), (left, right)); "same" follows PyTorch (extra pixel at the end)."""
    if isinstance(pad, str):
        if pad == "valid":
            return ((0, 0), (0, 0))
        if pad == "same":
            out = []
            for k in kernel:
                total = k - 1
                out.append((total // 2, total - total // 2))
            return (out[0], out[1])
        raise WganError(f"pad must be an int, a pair, 'same' or 'valid', got {pad!r}")
    ph, pw = _pair(pad, "pad")
    if ph < 0 or pw < 0:
        raise WganError(f"pad must be non-negative, got {(ph, pw)}")
    return ((ph, ph), (pw, pw))


def _pad_multiplicity(n: int, lo: int, hi: int, mode: str) -> int:
    """Largest number of copies of one input index produced by 1-D padding ``mode``."""
    if lo == 0 and hi == 0:
        return 1
    idx = torch.arange(n, dtype=torch.float64).view(1, 1, n)
    try:
        padded = F.pad(idx, (lo, hi), mode=mode)
    except (RuntimeError, ValueError, NotImplementedError) as exc:
        raise WganError(f"{mode} padding ({lo}, {hi}) is invalid for size {n}: {exc}") from exc
    return int(torch.bincount(padded.view(-1).long(), minlength=n).max())


def _conv_bound(
    w: Tensor,
    input_size: tuple[int, int],
    padding: PaddingMode,
    pads: tuple[tuple[int, int], tuple[int, int]],
    stride: tuple[int, int],
) -> dict[str, Any]:
    """Core of :func:`conv2d_lipschitz_bound` for a dense, already dilated float64 kernel."""
    H, W = input_size
    kh, kw = w.shape[-2:]
    (th, bh), (lw, rw) = pads
    o1h, o1w = H + th + bh - kh + 1, W + lw + rw - kw + 1  # stride-1 output size
    if o1h < 1 or o1w < 1:
        raise WganError(
            f"kernel {(kh, kw)} (after dilation) is larger than the padded input "
            f"{(H + th + bh, W + lw + rw)}: the convolution has an empty output"
        )
    strided = stride != (1, 1)
    if padding == "zeros":
        # y = R C_N E x with E: zero-embedding (isometry), C_N: circular conv on an N-grid,
        # R: row selection; valid for every N >= H + max(top, bottom) (and likewise for W).
        grids_h = sorted({H + max(th, bh), H + th + bh})
        grids_w = sorted({W + max(lw, rw), W + lw + rw})
        value, grid = math.inf, (0, 0)
        for Nh in grids_h:
            for Nw in grids_w:
                v = _symbol_norm(w, (Nh, Nw))
                if v < value:
                    value, grid = v, (Nh, Nw)
        exact = kh == 1 and kw == 1
        note = (
            "zero padding: upper bound from the circular convolution on the padded grid "
            f"{grid} (the zero-padded layer is a restriction of it)"
        )
        if exact:
            note = "1x1 kernel: exact (the per-frequency matrix is constant)"
    elif padding == "circular":
        if max(th, bh) > H or max(lw, rw) > W:
            raise WganError(
                f"circular padding {pads} larger than the input {(H, W)} is not supported"
            )
        # Output u is the circular correlation at shift (u - top) mod H: rows of C_H, each
        # repeated at most ceil(o1 / H) times.
        mult = math.ceil(o1h / H) * math.ceil(o1w / W)
        grid = (H, W)
        value = _symbol_norm(w, grid) * math.sqrt(mult)
        exact = o1h == H and o1w == W and not strided
        note = (
            "circular padding, output size = input size: exact"
            if exact
            else "circular padding with output size != input size: upper bound"
        )
    elif padding in ("reflect", "replicate"):
        mh = _pad_multiplicity(H, th, bh, padding)
        mwid = _pad_multiplicity(W, lw, rw, padding)
        grid = (H + th + bh, W + lw + rw)
        value = math.sqrt(mh * mwid) * _symbol_norm(w, grid)
        exact = False
        note = (
            f"{padding} padding: ||pad|| = sqrt(max copies) = {math.sqrt(mh * mwid):.6g} times "
            f"the circular bound on the padded grid {grid}"
        )
    else:
        raise WganError(
            f"unknown padding mode {padding!r}; use 'zeros', 'circular', 'reflect' or 'replicate'"
        )
    if strided:
        exact = exact and kh == 1 and kw == 1 and padding == "zeros"
        note += (
            f"; stride {stride}: the strided layer keeps a subset of the stride-1 outputs, "
            "so the stride-1 value is an upper bound"
        )
    return {
        "value": float(value),
        "exact": bool(exact),
        "padding": padding,
        "pad": pads,
        "grid": tuple(grid),
        "stride": stride,
        "note": note,
    }


def conv2d_lipschitz_bound(
    weight: Tensor,
    input_size: tuple[int, int],
    padding: PaddingMode = "zeros",
    *,
    pad: int | tuple[int, int] | str = "same",
    stride: int | tuple[int, int] = 1,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
) -> dict[str, Any]:
    r"""Lipschitz constant (exact or upper bound) of a 2-D convolution with any padding mode.

    **Zero padding** (``padding="zeros"``, PyTorch's default).  Pad the input by
    :math:`(t, b)` rows and :math:`(l, r)` columns.  Write the layer as
    :math:`y = R\, C_N\, E\, x` where :math:`E` embeds :math:`x` into an :math:`N_h \times N_w`
    grid with zeros around it (an isometry), :math:`C_N` is the *circular* convolution on that
    grid, and :math:`R` keeps the outputs whose window never wraps around (a row selection,
    :math:`\lVert R \rVert \le 1`).  This identity holds for every
    :math:`N_h \ge H + \max(t, b)` (wrapped-around taps only ever read padding zeros), in
    particular for the full padded size :math:`N_h = H + t + b`.  Hence

    .. math::  \lVert \mathrm{conv}_{\text{zeros}} \rVert \le \lVert C_N \rVert
               = \max_{\omega \in \text{grid } N} \sigma_{\max}(M_\omega),

    computed by :func:`conv2d_lipschitz_fft` on the padded grid (the smallest value over
    :math:`N \in \{H + \max(t, b), H + t + b\}` is reported).  It is an *upper bound*: the
    zero-padded layer is a Toeplitz, not a circulant, operator; it is exact for 1x1 kernels.

    **Circular padding**: exact (:func:`conv2d_lipschitz_fft`) when the output has the input's
    size (``pad="same"`` with odd kernels, stride 1); otherwise each output is a row of the
    circular operator repeated at most :math:`\lceil o / H\rceil` times, giving the bound
    :math:`L_{\text{circ}} \sqrt{\lceil o_h/H\rceil \lceil o_w/W\rceil}`.

    **Reflect / replicate padding**: the padding map :math:`P` copies some pixels, so
    :math:`\lVert P\rVert = \sqrt{\text{max number of copies}}`; the layer is a valid
    convolution of :math:`Px`, bounded by the circular norm on the padded grid.

    **Stride** :math:`s > 1`: the strided layer keeps a subset of the stride-1 outputs (a row
    selection), so the stride-1 value is still an upper bound (exact only for 1x1 kernels
    with zero padding).  **Dilation** is handled by inserting zeros in the kernel, **groups**
    by the equivalent block-diagonal dense kernel.

    Args:
        weight: kernel ``(D, C / groups, k_h, k_w)``.
        input_size: ``(H, W)`` of the layer input.
        padding: padding *mode*: ``"zeros"``, ``"circular"``, ``"reflect"`` or ``"replicate"``.
        pad: padding *amount*: int, ``(p_h, p_w)``, ``"same"`` (default; PyTorch convention,
            extra pixel at the end for even kernels) or ``"valid"``.
        stride, dilation, groups: as in :class:`torch.nn.Conv2d`.

    Returns:
        dict with ``"value"`` (float), ``"exact"`` (bool: True iff ``value`` is the exact
        Lipschitz constant, False if it is an upper bound), ``"padding"`` (mode),
        ``"pad"`` (``((top, bottom), (left, right))``), ``"grid"`` (the FFT grid used),
        ``"stride"`` and ``"note"`` (a sentence explaining the result).

    Sources: Sedghi, Gupta and Long (ICLR 2019); Gouk et al. (2021) (convolutional layers).
    """
    w = _check_weight(weight)
    H, W = _check_size(input_size)
    if not isinstance(groups, int) or groups < 1:
        raise WganError(f"groups must be a positive int, got {groups!r}")
    s = _pair(stride, "stride")
    d = _pair(dilation, "dilation")
    if min(s) < 1 or min(d) < 1:
        raise WganError(f"stride and dilation must be >= 1, got {s} and {d}")
    w = _dilate(_expand_groups(w, groups), d)
    pads = _parse_pad(pad, (w.shape[-2], w.shape[-1]))
    return _conv_bound(w, (H, W), padding, pads, s)


# --------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------

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


def _activation(module: nn.Module) -> tuple[float | None, bool, str] | None:
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


def _effective_weight(module: nn.Module) -> Tensor:
    """``module.weight`` as used in forward (spectral-norm parametrisations included).

    Parametrisations are read in eval mode so that reading the weight does not advance a
    spectral-norm power iteration.
    """
    if parametrize.is_parametrized(module, "weight"):
        plist = module.parametrizations["weight"]  # type: ignore[index]
        flags = [(m, m.training) for m in plist.modules()]
        plist.eval()
        try:
            with torch.no_grad():
                w = module.weight
        finally:
            for m, t in flags:
                m.training = t
        return w.detach()
    return module.weight.detach()


def _norm_scale(module: nn.Module, running_var: Tensor, eps: float, affine: bool) -> float:
    scale = 1.0 / torch.sqrt(running_var.detach().to(torch.float64) + eps)
    if affine and getattr(module, "weight", None) is not None:
        scale = scale * module.weight.detach().to(torch.float64).abs()
    return float(scale.max())


def _pool_mult(k: int, s: int, d: int = 1) -> int:
    """Max number of windows (kernel k, stride s, dilation d) covering one input index."""
    return min(k, (d * (k - 1)) // s + 1)


def _adaptive_windows(n: int, out: int) -> tuple[float, bool]:
    """(max_a sum_{w containing a} 1/|w|, windows partition [0, n)) for adaptive pooling."""
    s = [0.0] * n
    count = [0] * n
    for i in range(out):
        start = (i * n) // out
        end = -((-(i + 1) * n) // out)
        for a in range(start, end):
            s[a] += 1.0 / (end - start)
            count[a] += 1
    return max(s), all(c == 1 for c in count)


def _adaptive_counts(n: int, out: int) -> int:
    count = [0] * n
    for i in range(out):
        for a in range((i * n) // out, -((-(i + 1) * n) // out)):
            count[a] += 1
    return max(count)


def _spatial(input_shape: Sequence[int] | None, k: int, module: nn.Module) -> tuple[int, ...]:
    if input_shape is None or len(input_shape) < k:
        raise WganError(
            f"{type(module).__name__} needs input_shape with at least {k} spatial dimension(s), "
            f"got {input_shape!r}"
        )
    return tuple(int(s) for s in input_shape[-k:])


def _conv_layer(module: nn.Conv1d | nn.Conv2d, input_shape: Sequence[int] | None):
    w = _effective_weight(module).to(torch.float64)
    if isinstance(module, nn.Conv1d):
        (L,) = _spatial(input_shape, 1, module)
        w = w.unsqueeze(2)  # (D, C, 1, k): a 1-D conv is a 2-D conv on a 1 x L grid
        size = (1, L)
        stride = (1, module.stride[0])
        dilation = (1, module.dilation[0])
        pad_1d = module.padding
        k_eff = dilation[1] * (w.shape[-1] - 1) + 1
        if isinstance(pad_1d, str):
            pads = ((0, 0), _parse_pad(pad_1d, (1, k_eff))[1])
        else:
            pads = ((0, 0), (pad_1d[0], pad_1d[0]))
    else:
        size = _spatial(input_shape, 2, module)
        stride = tuple(module.stride)
        dilation = tuple(module.dilation)
        kh = dilation[0] * (w.shape[-2] - 1) + 1
        kw = dilation[1] * (w.shape[-1] - 1) + 1
        if isinstance(module.padding, str):
            pads = _parse_pad(module.padding, (kh, kw))
        else:
            pads = _parse_pad(tuple(module.padding), (kh, kw))
    w = _dilate(_expand_groups(w, module.groups), dilation)  # type: ignore[arg-type]
    mode = module.padding_mode
    res = _conv_bound(w, size, mode, pads, stride)  # type: ignore[arg-type]
    return res["value"], res["exact"], res["note"]


def _conv_transpose_layer(module: nn.ConvTranspose2d, input_shape: Sequence[int] | None):
    H, W = _spatial(input_shape, 2, module)
    k = module.kernel_size
    s, p, d, op = module.stride, module.padding, module.dilation, module.output_padding
    out = [(n - 1) * s[i] - 2 * p[i] + d[i] * (k[i] - 1) + op[i] + 1 for i, n in enumerate((H, W))]
    # conv_transpose2d is the adjoint of conv2d (same weight, stride, padding) acting on the
    # transposed layer's output size; an operator and its adjoint have the same norm.
    w = _effective_weight(module).to(torch.float64)  # (C_in, D_out / g, kh, kw)
    w = _dilate(_expand_groups(w, module.groups), d)  # type: ignore[arg-type]
    pads = ((p[0], p[0]), (p[1], p[1]))
    res = _conv_bound(w, (out[0], out[1]), "zeros", pads, tuple(s))  # type: ignore[arg-type]
    note = "adjoint of a conv2d on the output grid: " + res["note"]
    return res["value"], res["exact"], note


def layer_lipschitz(module: nn.Module, input_shape: Sequence[int] | None = None) -> dict[str, Any]:
    r"""Lipschitz constant (w.r.t. the Euclidean norm) of a single layer.

    * ``nn.Linear``: :math:`\sigma_{\max}(W)` (``torch.linalg.matrix_norm(W, ord=2)``), exact;
      the bias does not matter.  Spectral-norm parametrised layers (``torch.nn.utils.
      parametrizations.spectral_norm`` or the older hook version) use the *effective* weight
      ``module.weight``, so the exact norm of the normalised weight is reported (the power
      iteration only estimates it).
    * ``nn.Conv2d`` / ``nn.Conv1d``: :func:`conv2d_lipschitz_bound` on the input's spatial size
      (exact for circular padding with same-size output and stride 1; an upper bound for zero
      padding and for stride > 1, where the stride-1 value bounds the strided layer).
    * ``nn.ConvTranspose2d``: the adjoint of the matching ``conv2d`` on the output grid (same
      norm), hence the same bound.
    * elementwise activations: :math:`\sup |f'|` -- ReLU, ReLU6, Tanh, Softplus, CELU, Softsign,
      Hardtanh, LogSigmoid, Tanhshrink, Softshrink: 1; LeakyReLU: :math:`\max(1, |a|)`; PReLU:
      :math:`\max(1, \max|a|)`; ELU: :math:`\max(1, |\alpha|)`; SELU: :math:`\lambda\alpha
      \approx 1.7581`; Sigmoid: 1/4; Hardsigmoid: 1/6; Hardswish: 3/2; GELU:
      :math:`\Phi(\sqrt2) + \sqrt2\,\varphi(\sqrt2) \approx 1.1289`; SiLU, Mish, tanh-GELU:
      computed numerically.  Hardshrink and Threshold are discontinuous (no constant).
    * BatchNorm (eval mode, running statistics): the per-channel affine map
      :math:`x \mapsto \gamma (x - \mu) / \sqrt{\sigma^2 + \epsilon} + \beta` has constant
      :math:`\max_c |\gamma_c| / \sqrt{\sigma^2_c + \epsilon}` (exact).  In training mode it
      uses batch statistics (the map couples the samples of a batch): no constant.
      InstanceNorm is treated the same way when it tracks running statistics in eval mode.
    * LayerNorm, GroupNorm, RMSNorm, InstanceNorm with instance statistics: no useful constant
      (the data-dependent scale :math:`1/\sqrt{\operatorname{var}(x) + \epsilon}` makes the
      Jacobian as large as :math:`\max|\gamma| / \sqrt{\epsilon}` near constant inputs).
    * ``nn.Identity``, ``nn.Flatten``, ``nn.Unflatten``: 1.  ``nn.Dropout*``: 1 in eval mode;
      in training mode the kept units are scaled by :math:`1/(1-p)`, which is the constant for
      a fixed mask.
    * pooling: MaxPool1d/2d: :math:`\sqrt{m}` where :math:`m` is the largest number of windows
      sharing an input (1, exact, for non-overlapping windows); AvgPool1d/2d:
      :math:`\sqrt{m / |w|}` (exact :math:`1/\sqrt{|w|}` for non-overlapping windows without
      padding); AdaptiveAvgPool1d/2d: :math:`\sqrt{\max_a \sum_{w \ni a} 1/|w|}` per axis
      (exact when the windows partition the input); AdaptiveMaxPool1d/2d: :math:`\sqrt{m}`.
      Pooling bounds follow from :math:`\lVert y \rVert^2 \le \sum_w c_w \lVert x_w \rVert^2`
      (Cauchy-Schwarz per window).
    * ``nn.Upsample`` (nearest modes): a 0/1 selection matrix, constant
      :math:`\sqrt{\text{max copies of one input}}` (exact).

    Args:
        module: the layer.
        input_shape: shape of the layer's input (a leading batch dimension is allowed; only
            the trailing spatial dimensions are used).  Needed for convolutions, pooling and
            upsampling.

    Returns:
        dict with ``"lipschitz"`` (float, or ``None`` when the layer has no usable global
        constant), ``"exact"`` (True if the value is the exact constant, False for an upper
        bound) and ``"note"`` (how it was obtained, or why there is no constant).

    Raises:
        WganError: for a module type this function does not know (the message names it), or
            an ``input_shape`` that is missing or inconsistent with the layer.
    """
    name = type(module).__name__

    def out(value: float | None, exact: bool, note: str) -> dict[str, Any]:
        return {"lipschitz": None if value is None else float(value), "exact": exact, "note": note}

    act = _activation(module)
    if act is not None:
        return out(*act)
    if isinstance(module, nn.Linear):
        w = _effective_weight(module).to(torch.float64)
        return out(float(torch.linalg.matrix_norm(w, ord=2)), True, "largest singular value")
    if isinstance(module, nn.Conv2d | nn.Conv1d):
        return out(*_conv_layer(module, input_shape))
    if isinstance(module, nn.ConvTranspose2d):
        return out(*_conv_transpose_layer(module, input_shape))
    if isinstance(module, nn.Identity | nn.Flatten | nn.Unflatten):
        return out(1.0, True, "isometry (reshape / identity)")
    if isinstance(module, nn.Dropout | nn.Dropout1d | nn.Dropout2d | nn.Dropout3d):
        if module.training and module.p > 0:
            if module.p >= 1:
                return out(0.0, True, "p = 1: constant zero output")
            return out(1.0 / (1.0 - module.p), True, "training mode: kept units scaled 1/(1-p)")
        return out(1.0, True, "eval mode: identity")
    if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d | nn.BatchNorm3d | nn.SyncBatchNorm):
        if module.training or module.running_var is None:
            return out(
                None,
                False,
                f"{name} uses batch statistics (training mode or track_running_stats=False): "
                "the output of one sample depends on the whole batch; call .eval() to analyse "
                "the running-statistics affine map",
            )
        return out(
            _norm_scale(module, module.running_var, module.eps, module.affine),
            True,
            "max_c |gamma_c| / sqrt(running_var_c + eps)",
        )
    if isinstance(module, nn.InstanceNorm1d | nn.InstanceNorm2d | nn.InstanceNorm3d):
        if module.track_running_stats and not module.training and module.running_var is not None:
            return out(
                _norm_scale(module, module.running_var, module.eps, module.affine),
                True,
                "running statistics: max_c |gamma_c| / sqrt(running_var_c + eps)",
            )
        return out(None, False, f"{name} divides by the per-instance std (see LayerNorm)")
    if isinstance(module, nn.LayerNorm | nn.GroupNorm | nn.RMSNorm):
        eps = getattr(module, "eps", None)
        return out(
            None,
            False,
            f"{name} divides by a data-dependent std: x -> (x - mean) / sqrt(var(x) + eps) has "
            "Jacobian norm up to max|gamma| / sqrt(eps) near constant inputs "
            f"(eps = {eps}), a vacuous constant, and no useful closed-form global bound",
        )
    if isinstance(module, nn.MaxPool1d | nn.MaxPool2d | nn.AvgPool1d | nn.AvgPool2d):
        return out(*_pool_layer(module))
    if isinstance(module, nn.AdaptiveAvgPool1d | nn.AdaptiveAvgPool2d):
        return out(*_adaptive_pool_layer(module, input_shape, average=True))
    if isinstance(module, nn.AdaptiveMaxPool1d | nn.AdaptiveMaxPool2d):
        return out(*_adaptive_pool_layer(module, input_shape, average=False))
    if isinstance(module, nn.Upsample):
        return out(*_upsample_layer(module, input_shape))
    if isinstance(module, nn.Sequential) and len(module) == 0:
        return out(1.0, True, "empty Sequential: identity")
    raise WganError(
        f"cannot bound the Lipschitz constant of module type {name}: it is not one of the "
        "supported layers (Linear, Conv1d/2d, ConvTranspose2d, elementwise activations, "
        "BatchNorm in eval mode, pooling, Upsample, Identity/Flatten/Dropout)"
    )


def _pool_layer(module: nn.Module) -> tuple[float, bool, str]:
    nd = 1 if isinstance(module, nn.MaxPool1d | nn.AvgPool1d) else 2

    def tup(v: Any) -> tuple[int, ...]:
        return (v,) * nd if isinstance(v, int) else tuple(v)

    k = tup(module.kernel_size)
    s = tup(module.stride if module.stride is not None else module.kernel_size)
    d = tup(getattr(module, "dilation", 1))
    mult = math.prod(_pool_mult(k[i], s[i], d[i]) for i in range(nd))
    if isinstance(module, nn.MaxPool1d | nn.MaxPool2d):
        exact = mult == 1
        return (math.sqrt(mult), exact, "max pooling: sqrt(max windows sharing an input)")
    size = math.prod(k)
    pad = tup(module.padding)
    override = getattr(module, "divisor_override", None)
    if override:
        factor = size / float(override) ** 2
        note = "average pooling with divisor_override: sqrt(m |w| / divisor^2)"
        exact = False
    elif not module.ceil_mode and (all(p == 0 for p in pad) or module.count_include_pad):
        # every window lies inside the padded input and is divided by its full size |w|
        factor = 1.0 / size
        exact = mult == 1 and all(p == 0 for p in pad)
        note = "average pooling: sqrt(m / |w|)" + (" (non-overlapping: exact)" if exact else "")
    else:
        factor = 1.0
        exact = False
        note = (
            "average pooling (ceil_mode or count_include_pad=False): sqrt(m), since each "
            "divisor is at least the number of valid inputs in its window"
        )
    return (math.sqrt(mult * factor), exact, note)


def _adaptive_pool_layer(
    module: nn.Module, input_shape: Sequence[int] | None, average: bool
) -> tuple[float, bool, str]:
    nd = 1 if isinstance(module, nn.AdaptiveAvgPool1d | nn.AdaptiveMaxPool1d) else 2
    spatial = _spatial(input_shape, nd, module)
    osz = module.output_size
    osz = (osz,) * nd if isinstance(osz, int) or osz is None else tuple(osz)
    outs = [spatial[i] if osz[i] is None else int(osz[i]) for i in range(nd)]
    if average:
        total, exact = 1.0, True
        for n, o in zip(spatial, outs, strict=True):
            sa, part = _adaptive_windows(n, o)
            total *= sa
            exact = exact and part
        return (math.sqrt(total), exact, "adaptive average pooling: sqrt(max_a sum 1/|w|)")
    m = math.prod(_adaptive_counts(n, o) for n, o in zip(spatial, outs, strict=True))
    return (math.sqrt(m), m == 1, "adaptive max pooling: sqrt(max windows sharing an input)")


def _upsample_layer(
    module: nn.Upsample, input_shape: Sequence[int] | None
) -> tuple[float, bool, str]:
    if module.mode not in ("nearest", "nearest-exact"):
        raise WganError(
            f"cannot bound nn.Upsample(mode={module.mode!r}): only nearest modes are supported"
        )
    if input_shape is None or len(input_shape) < 3:
        raise WganError(f"nn.Upsample needs the full input shape (N, C, ...), got {input_shape!r}")
    shape = (1, 1, *[int(s) for s in input_shape[2:]])
    n = math.prod(shape)
    idx = torch.arange(n, dtype=torch.float64).reshape(shape)
    with torch.no_grad():
        y = module(idx)
    copies = int(torch.bincount(y.reshape(-1).round().long(), minlength=n).max())
    return (math.sqrt(copies), True, "nearest upsampling: sqrt(max copies of one input)")


# --------------------------------------------------------------------------------------
# Networks
# --------------------------------------------------------------------------------------


def _leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Leaf modules; a parametrised layer counts as a leaf, its parametrisations do not."""
    leaves = []
    for name, mod in model.named_modules():
        if "parametrizations" in name.split("."):
            continue
        kids = [n for n, _ in mod.named_children() if n != "parametrizations"]
        if not kids:
            leaves.append((name, mod))
    return leaves


def network_lipschitz_bound(
    model: nn.Module, input_shape: Sequence[int], *, strict: bool = False
) -> dict[str, Any]:
    r"""Layer-product upper bound on the Lipschitz constant of a feed-forward network.

    For :math:`h = h_L \circ \dots \circ h_1`,
    :math:`\lVert h(x) - h(y)\rVert \le \prod_l \operatorname{Lip}(h_l)\,\lVert x - y\rVert`
    (Szegedy et al. 2014; Miyato et al. 2018).  The bound can be very loose (Virmaux & Scaman
    2018 show it ignores how consecutive layers align), but it is a guaranteed upper bound,
    while :func:`empirical_lipschitz` is a guaranteed lower bound.

    The leaf modules are found by a forward pass on ``torch.zeros(input_shape)`` with forward
    hooks, in eval mode and without gradients (the modules' training flags are restored
    afterwards and used for the analysis, so BatchNorm left in training mode is reported as
    unbounded).  Each call of a leaf module is one factor, in call order, with the input shape
    it saw; a spectral-norm parametrised layer is one leaf.  The function assumes the
    forward is a plain chain of these calls: if a call's input is not the previous call's
    output (a functional op such as ``x * 2`` or ``torch.cat``, or a skip connection, in
    ``forward``), the chain is broken and the result lists a warning, since the bound then
    ignores those operations.

    Args:
        model: the network (``nn.Sequential`` or any module whose leaves are called in order).
        input_shape: the full input shape including the batch dimension, e.g. ``(1, 2)`` or
            ``(1, 3, 32, 32)``.
        strict: raise instead of warning when the forward is not a plain chain of leaf calls.

    Returns:
        dict with ``"bound"`` (float, the product), ``"layers"`` (list of dicts with
        ``"name"``, ``"type"``, ``"lipschitz"``, ``"exact"``, ``"input_shape"``, ``"note"``) and
        ``"warnings"`` (list of str; empty when the forward is a clean chain).

    Raises:
        WganError: if some leaf has no usable constant (the message names it and says why), if
            the forward pass fails on ``input_shape``, if no leaf module is called, or (with
            ``strict=True``) if the forward is not a plain chain.
    """
    leaves = _leaves(model)
    calls: list[tuple[str, nn.Module, tuple[int, ...], int, int]] = []

    def make_hook(name: str) -> Callable[..., None]:
        def hook(mod: nn.Module, args: tuple[Any, ...], output: Any) -> None:
            inp = args[0] if args and isinstance(args[0], Tensor) else None
            out_t = output if isinstance(output, Tensor) else None
            calls.append(
                (
                    name,
                    mod,
                    tuple(inp.shape) if inp is not None else (),
                    inp.data_ptr() if inp is not None else -1,
                    out_t.data_ptr() if out_t is not None else -2,
                )
            )

        return hook

    handles = [m.register_forward_hook(make_hook(n)) for n, m in leaves]
    flags = [(m, m.training) for m in model.modules()]
    try:
        param = next(model.parameters(), None)
        dtype = param.dtype if param is not None and param.is_floating_point() else None
        device = param.device if param is not None else None
        x = torch.zeros(tuple(int(s) for s in input_shape), dtype=dtype, device=device)
        model.eval()
        with torch.no_grad():
            y = model(x)
    except WganError:
        raise
    except Exception as exc:  # noqa: BLE001 - report any forward failure as a user error
        raise WganError(
            f"forward pass of {type(model).__name__} on zeros{tuple(input_shape)} failed: {exc}"
        ) from exc
    finally:
        for h in handles:
            h.remove()
        for m, t in flags:
            m.training = t
    if not calls:
        raise WganError(f"no leaf module of {type(model).__name__} was called in forward")

    warnings: list[str] = []
    prev_ptr = x.data_ptr()
    prev_name = "the model input"
    layers = []
    bound = 1.0
    for name, mod, shape, in_ptr, out_ptr in calls:
        label = name or type(mod).__name__
        if in_ptr != prev_ptr:
            warnings.append(
                f"input of {label!r} is not the output of {prev_name}: operations between them "
                "(functional ops or skip connections in forward) are not in the bound"
            )
        try:
            res = layer_lipschitz(mod, shape)
        except WganError as exc:
            raise WganError(f"layer {label!r}: {exc}") from exc
        if res["lipschitz"] is None:
            raise WganError(
                f"layer {label!r} ({type(mod).__name__}) has no usable Lipschitz constant: "
                f"{res['note']}"
            )
        bound *= res["lipschitz"]
        layers.append(
            {
                "name": label,
                "type": type(mod).__name__,
                "lipschitz": res["lipschitz"],
                "exact": res["exact"],
                "input_shape": shape,
                "note": res["note"],
            }
        )
        prev_ptr, prev_name = out_ptr, repr(label)
    if isinstance(y, Tensor) and y.data_ptr() != prev_ptr:
        warnings.append(
            f"the model output is not the output of {prev_name}: operations after it are not "
            "in the bound"
        )
    if strict and warnings:
        raise WganError("not a plain feed-forward chain: " + "; ".join(warnings))
    return {"bound": float(bound), "layers": layers, "warnings": warnings}


# --------------------------------------------------------------------------------------
# Empirical lower bound
# --------------------------------------------------------------------------------------


def empirical_lipschitz(
    model: Callable[[Tensor], Tensor],
    *sample_sets: Tensor,
    batch_size: int | None = None,
) -> dict[str, Any]:
    r"""Empirical lower bound :math:`\max_x \lVert \nabla_x D(x) \rVert_2` of a critic's constant.

    For a differentiable scalar critic :math:`D`,
    :math:`\operatorname{Lip}(D) = \sup_x \lVert \nabla_x D(x)\rVert_2`, so the maximum over
    any finite set is a lower bound; compare it with :func:`network_lipschitz_bound` (an
    upper bound).  Typical sets are data samples, generated samples and
    :func:`interpolates` between them (where WGAN-GP penalises the norm).

    Per-sample gradients come from one backward pass of ``D(x).sum()`` per batch: the
    samples do not interact in a per-sample network, so the gradient w.r.t. ``x_i`` is
    :math:`\nabla D(x_i)`.  (BatchNorm in training mode breaks this; put the model in eval
    mode.)  Parameter ``.grad`` fields are not touched.

    Args:
        model: the critic; maps ``(B, ...)`` to ``(B,)`` or ``(B, 1)``.
        *sample_sets: one or more batches ``(B_k, ...)``.
        batch_size: optional chunk size to bound memory (default: each set in one pass).

    Returns:
        dict with ``"max_grad_norm"`` and ``"mean_grad_norm"`` (over all samples),
        ``"per_set_max"`` and ``"per_set_mean"`` (lists, one entry per set) and ``"n"``
        (number of samples).

    Raises:
        WganError: no sample sets, an empty set, or a critic output that is not one scalar
            per sample.
    """
    if not sample_sets:
        raise WganError("empirical_lipschitz needs at least one set of samples")
    if batch_size is not None and batch_size < 1:
        raise WganError(f"batch_size must be >= 1, got {batch_size}")
    per_max: list[float] = []
    per_mean: list[float] = []
    all_norms: list[Tensor] = []
    for k, s in enumerate(sample_sets):
        if not isinstance(s, Tensor) or s.ndim == 0 or s.shape[0] == 0:
            raise WganError(f"sample set {k} must be a non-empty tensor batch (B, ...)")
        step = s.shape[0] if batch_size is None else batch_size
        norms = []
        for start in range(0, s.shape[0], step):
            x = s[start : start + step].detach().clone().requires_grad_(True)
            with torch.enable_grad():
                out = model(x)
                if not isinstance(out, Tensor) or out.numel() != x.shape[0]:
                    raise WganError(
                        "the critic must return one scalar per sample, got output of shape "
                        f"{tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__}"
                        f" for a batch of {x.shape[0]}"
                    )
                (grad,) = torch.autograd.grad(out.sum(), x)
            norms.append(grad.reshape(grad.shape[0], -1).norm(dim=1).detach())
        n = torch.cat(norms)
        all_norms.append(n)
        per_max.append(float(n.max()))
        per_mean.append(float(n.mean()))
    cat = torch.cat(all_norms)
    return {
        "max_grad_norm": float(cat.max()),
        "mean_grad_norm": float(cat.mean()),
        "per_set_max": per_max,
        "per_set_mean": per_mean,
        "n": int(cat.numel()),
    }
