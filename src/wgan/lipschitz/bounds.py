r"""Whole-network Lipschitz bounds: the layer-product upper bound and the empirical lower bound.

* :func:`network_lipschitz_bound` multiplies the per-layer constants of
  :func:`wgan.lipschitz.layers.layer_lipschitz` along the chain of leaf modules a forward pass
  calls: :math:`\operatorname{Lip}(h_L \circ \dots \circ h_1) \le \prod_l
  \operatorname{Lip}(h_l)`, a guaranteed (often loose) upper bound;
* :func:`empirical_lipschitz` evaluates :math:`\max \lVert \nabla_x D(x) \rVert_2` on finite
  sample sets (data, generated samples, interpolates), a guaranteed lower bound.

Sources: C. Szegedy et al., *Intriguing properties of neural networks*, 2014 (layer-product
bound); T. Miyato et al., *Spectral Normalization for GANs*, ICLR 2018; A. Virmaux and
K. Scaman, *Lipschitz regularity of deep neural networks*, NeurIPS 2018; I. Gulrajani et al.,
*Improved Training of Wasserstein GANs*, NeurIPS 2017 (interpolates).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from wgan.errors import WganError
from wgan.lipschitz.layers import layer_lipschitz

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
        ``"name"``, ``"type"``, ``"lipschitz"``, ``"exact"``, ``"input_shape"``, ``"note"``;
        ``nn.Identity`` layers, factors of exactly 1, are not listed) and
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
        prev_ptr, prev_name = out_ptr, repr(label)
        if isinstance(mod, nn.Identity):
            continue  # a factor of exactly 1: not listed
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
    :func:`wgan.constraints.interpolates` between them (where WGAN-GP penalises the norm).

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
