r"""Per-layer Lipschitz constants (w.r.t. the Euclidean norm): :func:`layer_lipschitz`.

Linear layers: the spectral norm of the effective weight (spectral-norm parametrisations
included); convolutions: :func:`wgan.lipschitz.conv.conv2d_lipschitz_bound` on the layer's
input size (transposed convolutions as the adjoint on the output grid); activations:
:func:`wgan.lipschitz.activations.activation_constant`; batch norm in eval mode, pooling,
nearest upsampling, dropout and reshapes: closed forms.  Layers whose constant depends on the
data (LayerNorm, GroupNorm, batch statistics) are reported without one.

Sources: H. Sedghi, V. Gupta and P. Long, *The Singular Values of Convolutional Layers*,
ICLR 2019; T. Miyato et al., *Spectral Normalization for GANs*, ICLR 2018; H. Gouk et al.,
*Regularisation of neural networks by enforcing Lipschitz continuity*, Machine Learning 110
(2021) (pooling, batch norm, dropout constants).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from wgan.errors import WganError
from wgan.lipschitz.activations import activation_constant
from wgan.lipschitz.conv import conv_bound, dilate, expand_groups, parse_pad


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


def _affine_scale(module: nn.Module) -> float:
    """max |gamma| of a normalisation's affine part z -> gamma * z + beta (1 without one)."""
    gamma = getattr(module, "weight", None)
    if not isinstance(gamma, Tensor) or gamma.numel() == 0:
        return 1.0
    return float(gamma.detach().abs().max())


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
            pads = ((0, 0), parse_pad(pad_1d, (1, k_eff))[1])
        else:
            pads = ((0, 0), (pad_1d[0], pad_1d[0]))
    else:
        size = _spatial(input_shape, 2, module)
        stride = tuple(module.stride)
        dilation = tuple(module.dilation)
        kh = dilation[0] * (w.shape[-2] - 1) + 1
        kw = dilation[1] * (w.shape[-1] - 1) + 1
        if isinstance(module.padding, str):
            pads = parse_pad(module.padding, (kh, kw))
        else:
            pads = parse_pad(tuple(module.padding), (kh, kw))
    w = dilate(expand_groups(w, module.groups), dilation)  # type: ignore[arg-type]
    mode = module.padding_mode
    res = conv_bound(w, size, mode, pads, stride)  # type: ignore[arg-type]
    return res["value"], res["exact"], res["note"]


def _conv_transpose_layer(module: nn.ConvTranspose2d, input_shape: Sequence[int] | None):
    H, W = _spatial(input_shape, 2, module)
    k = module.kernel_size
    s, p, d, op = module.stride, module.padding, module.dilation, module.output_padding
    out = [(n - 1) * s[i] - 2 * p[i] + d[i] * (k[i] - 1) + op[i] + 1 for i, n in enumerate((H, W))]
    # conv_transpose2d is the adjoint of conv2d (same weight, stride, padding) acting on the
    # transposed layer's output size; an operator and its adjoint have the same norm.
    w = _effective_weight(module).to(torch.float64)  # (C_in, D_out / g, kh, kw)
    w = dilate(expand_groups(w, module.groups), d)  # type: ignore[arg-type]
    pads = ((p[0], p[0]), (p[1], p[1]))
    res = conv_bound(w, (out[0], out[1]), "zeros", pads, tuple(s))  # type: ignore[arg-type]
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
      Such a layer is the standardisation :math:`x \mapsto (x - \mu(x)) / \sigma(x)` followed by
      the affine map :math:`z \mapsto \gamma z + \beta`; the affine part alone has the exact
      constant :math:`\max|\gamma|` (1 without ``elementwise_affine``/``affine``), returned as
      ``"affine"``.
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
        bound) and ``"note"`` (how it was obtained, or why there is no constant); for a
        normalisation by the input's own statistics also ``"affine"``, the constant of its
        affine part.

    Raises:
        WganError: for a module type this function does not know (the message names it), or
            an ``input_shape`` that is missing or inconsistent with the layer.
    """
    name = type(module).__name__

    def out(value: float | None, exact: bool, note: str) -> dict[str, Any]:
        return {"lipschitz": None if value is None else float(value), "exact": exact, "note": note}

    act = activation_constant(module)
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
        return {
            **out(None, False, f"{name} divides by the per-instance std (see LayerNorm)"),
            "affine": _affine_scale(module),
        }
    if isinstance(module, nn.LayerNorm | nn.GroupNorm | nn.RMSNorm):
        eps = getattr(module, "eps", None)
        return {
            **out(
                None,
                False,
                f"{name} divides by a data-dependent std: x -> (x - mean) / sqrt(var(x) + eps) "
                "has Jacobian norm up to max|gamma| / sqrt(eps) near constant inputs "
                f"(eps = {eps}), a vacuous constant, and no useful closed-form global bound",
            ),
            "affine": _affine_scale(module),
        }
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
