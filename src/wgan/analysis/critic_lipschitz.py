r"""Post-hoc analysis of trained runs: how Lipschitz is the critic, really?

A WGAN critic is meant to be 1-Lipschitz (Kantorovich-Rubinstein duality; Arjovsky et al. 2017).
:func:`lipschitz_report` brackets the Lipschitz constant :math:`L` of a trained critic
:math:`D` from both sides:

* **upper bound** (layer product; Szegedy et al. 2014, Miyato et al. 2018): for
  :math:`D = h_L \circ \dots \circ h_1`,
  :math:`L \le \prod_l \operatorname{Lip}(h_l)`, with the spectral norm for linear layers and
  :math:`\sup |f'|` for activations (:func:`wgan.lipschitz.network_lipschitz_bound`). It is
  guaranteed but often loose, since it ignores how consecutive layers align (Virmaux & Scaman
  2018).
* **lower bound** (empirical): :math:`L = \sup_x \lVert\nabla_x D(x)\rVert_2` for a
  differentiable critic, so :math:`\max_{x \in S}\lVert\nabla_x D(x)\rVert_2 \le L` for any
  finite set :math:`S` (:func:`wgan.lipschitz.empirical_lipschitz`). The sets are real data,
  generated samples and random interpolates between them (where WGAN-GP penalises the norm;
  Gulrajani et al. 2017).

So ``empirical max <= L <= bound`` always; ``bound_holds`` checks the left-to-right half of that
sandwich (it can only fail through a bug or float rounding, hence a relative tolerance of
``1e-5``).

Layer normalisation has no useful global constant (it divides by a data-dependent standard
deviation; near constant inputs its Jacobian reaches :math:`\max|\gamma|/\sqrt{\epsilon}`), so for
such critics the report gives ``bound = None`` with the reason, and still the empirical bound.

The critic is analysed in **eval mode** (BatchNorm with its running statistics; spectral
normalisation with its stored power-iteration vectors, which eval mode does not update), i.e.
the function used for plots and evaluation. The modes are restored afterwards and the critic's
parameters and buffers are left unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from wgan.constraints import interpolates
from wgan.errors import WganError
from wgan.lipschitz import empirical_lipschitz, layer_lipschitz, network_lipschitz_bound

__all__ = [
    "BOUND_TOLERANCE",
    "critic_lipschitz_bound",
    "format_lipschitz_report",
    "lipschitz_report",
]

BOUND_TOLERANCE = 1e-5
"""Relative slack of ``bound_holds``: float32 gradients vs a float64 product of norms."""


def _layer_sequence(critic: nn.Module) -> list[tuple[str, nn.Module]] | None:
    """The leaf layers of an MLP-like critic in call order: ``body`` (recursively), then ``head``.

    Returns ``None`` for critics without that structure. A spectral-norm parametrised layer is
    one leaf (its ``parametrizations`` container is not descended into).
    """
    body, head = getattr(critic, "body", None), getattr(critic, "head", None)
    if not isinstance(body, nn.Module) or not isinstance(head, nn.Module):
        return None

    def leaves(prefix: str, mod: nn.Module) -> list[tuple[str, nn.Module]]:
        kids = [(n, m) for n, m in mod.named_children() if n != "parametrizations"]
        if not kids:
            return [(prefix, mod)]
        out: list[tuple[str, nn.Module]] = []
        for n, m in kids:
            out += leaves(f"{prefix}.{n}", m)
        return out

    return leaves("body", body) + leaves("head", head)


def _layer_walk(critic: nn.Module, input_shape: Sequence[int]) -> dict[str, Any]:
    """Per-layer constants of an MLP-like critic (body then head), tolerating unbounded layers.

    Used when :func:`network_lipschitz_bound` refuses the network (a layer without a usable
    constant, or a layer type it does not know). The input shape of every layer is found by
    pushing zeros through the sequence, each layer temporarily in eval mode, without gradients
    (the constants themselves use each layer's own mode).
    """
    seq = _layer_sequence(critic)
    if seq is None:
        raise WganError("not an MLP-like critic with .body and .head")
    param = next(critic.parameters(), None)
    x = torch.zeros(
        tuple(int(s) for s in input_shape),
        dtype=param.dtype if param is not None else None,
        device=param.device if param is not None else None,
    )
    layers: list[dict[str, Any]] = []
    missing: dict[tuple[str, str], list[str]] = {}  # (type, note) -> layer names
    bound: float | None = 1.0
    # The product with each normalisation's affine part (max|gamma|) in place of the whole
    # layer: what is bounded once the standardisation (x - mean) / std is left out.
    affine_bound: float | None = 1.0
    with torch.no_grad():
        for name, mod in seq:
            if isinstance(mod, nn.Linear) and x.ndim > 2:
                x = x.flatten(1)  # a conv critic's features() flattens (B, C, H, W) for its head
            shape = tuple(x.shape)
            try:
                res = layer_lipschitz(mod, shape)
            except WganError as exc:
                res = {"lipschitz": None, "exact": False, "note": str(exc)}
            factor = res["lipschitz"] if res["lipschitz"] is not None else res.get("affine")
            affine_bound = None if affine_bound is None or factor is None else affine_bound * factor
            if not isinstance(mod, nn.Identity):  # a factor of exactly 1: not listed
                layers.append(
                    {
                        "name": name,
                        "type": type(mod).__name__,
                        "lipschitz": res["lipschitz"],
                        "exact": bool(res["exact"]),
                        "input_shape": list(shape),
                        "note": res["note"],
                        **({"affine": res["affine"]} if "affine" in res else {}),
                    }
                )
            if res["lipschitz"] is None:
                missing.setdefault((type(mod).__name__, res["note"]), []).append(name)
                bound = None
            elif bound is not None:
                bound *= float(res["lipschitz"])
            flags = [(m, m.training) for m in mod.modules()]
            mod.eval()  # shapes only: no batch statistics, no running-stat or power updates
            try:
                x = mod(x)
            finally:
                for m, t in flags:
                    m.training = t
    reason = None
    if missing:
        parts = [f"{', '.join(names)} ({kind}): {note}" for (kind, note), names in missing.items()]
        reason = "no finite layer-product bound: " + "; ".join(parts)
    if bound is not None:
        affine_bound = None  # nothing to add to a full bound
    return {"bound": bound, "reason": reason, "layers": layers, "affine_bound": affine_bound}


def critic_lipschitz_bound(critic: nn.Module, input_dim: int | tuple[int, ...]) -> dict[str, Any]:
    """Layer-product upper bound on the critic's Lipschitz constant, never raising for a layer.

    First :func:`wgan.lipschitz.network_lipschitz_bound` on input shape ``(1, input_dim)``
    (a forward-hook walk of the leaf layers in call order; for :class:`wgan.nets.MLP` that is
    ``body`` then ``head``). If it refuses the network and the critic is MLP-like (``.body``,
    ``.head``), the layers are walked explicitly, body then head, with
    :func:`wgan.lipschitz.layer_lipschitz`; a layer without a usable constant (LayerNorm,
    BatchNorm in training mode) makes the bound ``None`` and the reason names it.

    Returns:
        ``{"bound": float | None, "bound_reason": str | None, "method": str,
        "layers": [{"name", "type", "lipschitz" (float | None), "exact", "input_shape",
        "note"}], "warnings": [str]}``.
    """
    dims = (input_dim,) if isinstance(input_dim, int) else tuple(input_dim)
    shape = (1, *(int(d) for d in dims))  # (1, dim) or (1, C, H, W)
    try:
        res = network_lipschitz_bound(critic, shape)
    except WganError as exc:
        if _layer_sequence(critic) is None:
            return {
                "bound": None,
                "bound_reason": str(exc),
                "method": "network_lipschitz_bound",
                "layers": [],
                "warnings": [],
            }
        walk = _layer_walk(critic, shape)
        return {
            "bound": walk["bound"],
            "bound_reason": walk["reason"],
            "affine_bound": walk["affine_bound"],
            "method": "layer walk (body, then head)",
            "layers": walk["layers"],
            "warnings": [],
        }
    layers = [dict(layer, input_shape=list(layer["input_shape"])) for layer in res["layers"]]
    return {
        "bound": float(res["bound"]),
        "bound_reason": None,
        "method": "network_lipschitz_bound",
        "layers": layers,
        "warnings": list(res["warnings"]),
    }


def lipschitz_report(trainer: Any, n: int = 2048, seed: int = 0) -> dict[str, Any]:
    """Bracket the Lipschitz constant of a trained run's critic (see the module docstring).

    Args:
        trainer: a :class:`wgan.training.trainer.Trainer` (e.g. from
        :func:`wgan.training.run.load_run`). n: samples per set (real, generated, interpolates).
        seed: seed of the ``torch.Generator`` (on the trainer's device) that draws the real
            samples, the generated samples and the interpolation weights; the training RNG is
            untouched.

    Returns:
        A JSON-serialisable dict:

        * ``step``, ``n``, ``seed``, ``input_dim``, ``input_shape`` ([dim] or [C, H, W]);
        * ``bound`` (float, or ``None`` when no finite layer-product bound exists),
          ``bound_reason`` (``None`` or why there is no bound), ``bound_method``,
          ``layers`` (per-layer ``name``, ``type``, ``lipschitz``, ``exact``, ``input_shape``,
          ``note``), ``warnings``;
        * ``empirical``: ``{"real", "fake", "interpolates"}`` each
          ``{"max_grad_norm", "mean_grad_norm"}``; ``empirical_max`` (over all three sets);
        * ``bound_holds``: ``bound >= empirical_max`` (within a relative ``1e-5``) -- always
          True when there is a bound; ``None`` when ``bound`` is ``None``;
        * ``ratio``: ``empirical_max / bound`` (how tight the bound is; ``None`` without one).

    Raises:
        WganError: ``n < 1``, or a critic whose output is not one scalar per sample.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise WganError(f"n must be a positive integer, got {n!r}")
    critic: nn.Module = trainer.critic
    device = getattr(trainer, "device", None) or torch.device("cpu")
    dim = int(trainer.dataset.dim)
    in_shape = tuple(trainer.dataset.shape) if getattr(trainer, "is_image", False) else dim
    mode = getattr(trainer.cfg.conditional, "mode", "none")
    if mode in ("concat", "projection"):
        raise WganError(
            "the Lipschitz report needs a critic of x alone; this run's critic D(c, x) also "
            f"takes a label (conditional.mode={mode})"
        )
    flags = [(m, m.training) for m in critic.modules()]
    critic.eval()
    try:
        bound_info = critic_lipschitz_bound(critic, in_shape)
        g = torch.Generator(device=device).manual_seed(int(seed))
        real = trainer.dataset.sample(n, generator=g, device=device)  # (n, dim)
        with torch.no_grad():
            fake = torch.cat(
                [trainer.gen.sample(min(4096, n - i), g) for i in range(0, n, 4096)]
            ).to(real.dtype)  # (n, dim)
        interp = interpolates(real, fake, g).detach()  # (n, dim)
        emp = empirical_lipschitz(critic, real, fake, interp, batch_size=4096)
    finally:
        for m, t in flags:
            m.training = t
    names = ("real", "fake", "interpolates")
    empirical = {
        k: {"max_grad_norm": emp["per_set_max"][i], "mean_grad_norm": emp["per_set_mean"][i]}
        for i, k in enumerate(names)
    }
    bound = bound_info["bound"]
    emp_max = float(emp["max_grad_norm"])
    holds = None if bound is None else bool(emp_max <= bound * (1.0 + BOUND_TOLERANCE))
    ratio = None if bound is None or bound == 0 else emp_max / bound
    return {
        "step": int(getattr(trainer, "step", 0)),
        "n": n,
        "seed": int(seed),
        "input_dim": dim,
        "input_shape": list(in_shape) if isinstance(in_shape, tuple) else [in_shape],
        "bound": bound,
        "bound_reason": bound_info["bound_reason"],
        "bound_without_standardisation": bound_info.get("affine_bound"),
        "bound_method": bound_info["method"],
        "layers": bound_info["layers"],
        "warnings": bound_info["warnings"],
        "empirical": empirical,
        "empirical_max": emp_max,
        "bound_holds": holds,
        "ratio": ratio,
    }


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.4g}"


def format_lipschitz_report(report: dict[str, Any]) -> str:
    """A short human-readable table of :func:`lipschitz_report`'s output."""
    lines = [f"Lipschitz report (step {report.get('step', '?')}, n={report.get('n', '?')})"]
    layers = report.get("layers", [])
    width = max([len("layer")] + [len(str(layer["name"])) for layer in layers])
    twidth = max([len("type")] + [len(str(layer["type"])) for layer in layers])
    lines.append(f"  {'layer':<{width}}  {'type':<{twidth}}  {'constant':>10}")
    for layer in layers:
        c = layer["lipschitz"]
        tag = "" if c is None else ("" if layer.get("exact") else "  (upper bound)")
        if c is None and layer.get("affine") is not None:
            tag = f"  (standardisation unbounded; affine part max|gamma| = {layer['affine']:.4g})"
        shown = "none" if c is None else f"{c:.4g}"
        lines.append(f"  {layer['name']:<{width}}  {layer['type']:<{twidth}}  {shown:>10}{tag}")
    bound = report.get("bound")
    if bound is None:
        lines.append(f"upper bound (layer product): none -- {report.get('bound_reason')}")
        rest = report.get("bound_without_standardisation")
        if rest is not None:
            lines.append(
                f"  the other layers times the normalisations' affine parts (max|gamma|): "
                f"{rest:.4g}; a bound once the standardisation (x - mean) / std is left out"
            )
    else:
        lines.append(f"upper bound (layer product): {bound:.4g}")
    for w in report.get("warnings", []):
        lines.append(f"  warning: {w}")
    lines.append("empirical lower bound, max ||grad_x D|| (mean):")
    for name, vals in report.get("empirical", {}).items():
        lines.append(
            f"  {name:<13} {_fmt(vals['max_grad_norm']):>10}  ({_fmt(vals['mean_grad_norm'])})"
        )
    lines.append(f"  {'overall max':<13} {_fmt(report.get('empirical_max')):>10}")
    holds = report.get("bound_holds")
    if holds is None:
        lines.append("bound >= empirical: n/a (no bound)")
    else:
        ratio = report.get("ratio")
        lines.append(
            f"bound >= empirical: {'yes' if holds else 'NO (bug?)'}"
            + ("" if ratio is None else f"  (empirical / bound = {ratio:.3g})")
        )
    return "\n".join(lines)
