r"""Exact operator norms of 2-D convolutions (and upper bounds for any padding mode).

:func:`conv2d_lipschitz_fft` computes the exact spectral norm of a stride-1, circularly padded
convolution by FFT block diagonalisation: the singular values of the layer are the union over
DFT frequencies of those of the per-frequency ``(D, C)`` kernel matrices.
:func:`conv2d_lipschitz_bound` extends this to zero, reflect and replicate padding, stride,
dilation and groups (exact where it can be, otherwise a guaranteed upper bound).  The helpers
:func:`expand_groups`, :func:`dilate`, :func:`parse_pad` and :func:`conv_bound` are shared
with :mod:`wgan.lipschitz.layers`, which reads these arguments off ``nn.Conv1d``,
``nn.Conv2d`` and ``nn.ConvTranspose2d`` modules.

Sources: H. Sedghi, V. Gupta and P. Long, *The Singular Values of Convolutional Layers*,
ICLR 2019 (FFT block diagonalisation); H. Gouk et al., *Regularisation of neural networks by
enforcing Lipschitz continuity*, Machine Learning 110 (2021) (convolutional layers).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from wgan.errors import WganError

PaddingMode = str  # "zeros" | "circular" | "reflect" | "replicate"

_SVD_CHUNK_ELEMENTS = 1 << 22  # complex entries per batched SVD call


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


def expand_groups(w: Tensor, groups: int) -> Tensor:
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


def dilate(w: Tensor, dilation: tuple[int, int]) -> Tensor:
    dh, dw = dilation
    if dh == 1 and dw == 1:
        return w
    D, C, kh, kw = w.shape
    out = w.new_zeros(D, C, dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    out[:, :, ::dh, ::dw] = w
    return out


def parse_pad(
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


def conv_bound(
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
    w = dilate(expand_groups(w, groups), d)
    pads = parse_pad(pad, (w.shape[-2], w.shape[-1]))
    return conv_bound(w, (H, W), padding, pads, s)
