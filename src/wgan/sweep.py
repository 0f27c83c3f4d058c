"""Many small GANs at once: K independent runs trained in one process, vectorised over runs.

A sweep trains K copies of one configuration that differ only in numbers that change neither
shapes nor code paths (seeds, learning rates, Adam betas, weight decay, the penalty's weight and
target, the clipping value, the learning-rate decay). Their parameters are stacked along a
leading run dimension (:func:`torch.func.stack_module_state`) into one flat ``(K, P)`` buffer per
network, so every operation of a training step runs once for all K runs:

* forward passes are batched over runs, either with :func:`torch.vmap` over
  :func:`torch.func.functional_call` of the run's own module (``engine="func"``), or with a fused
  batched MLP that calls ``baddbmm`` directly (``engine="fused"``, the default, faster on CPU
  because it skips the per-op cost of the vmap transform);
* the gradient penalty needs ``grad_x D(x_hat)`` and then the gradient of its norm w.r.t. the
  weights (a double derivative). ``engine="func"`` takes an inner :func:`torch.func.grad` w.r.t.
  the critic's input inside an outer :func:`torch.func.grad` w.r.t. the parameters, vmapped over
  runs; ``engine="fused"`` uses autograd on the stacked parameters: since run k's loss depends only
  on run k's slice, the gradient of ``sum_k L_k`` w.r.t. the stack is the stack of the per-run
  gradients, exactly;
* the optimiser (Adam, RMSProp or SGD with momentum) is written out on the flat ``(K, P)``
  tensors with per-run hyperparameters as ``(K, 1)`` tensors (plain floats when all runs share
  them), one operation per line of ``torch.optim``'s own update, in the same floating-point
  order, so that a sweep reproduces separate runs of :class:`wgan.train.Trainer`.

Random numbers are *not* batched: every run owns the ``torch.Generator`` a Trainer of its config
would own, and draws from it, in the Trainer's order (per critic step: the real batch, the noise
of the fakes, the interpolation weights; then the generator's noise), in a short Python loop over
runs; only the arithmetic is vectorised. Model initialisation is the Trainer's own (each run
builds a :class:`~wgan.train.Trainer`, which seeds torch and builds the models). A sweep run
therefore equals the separate run of its config up to float rounding (on CPU, bit for bit in
``tests/test_sweep.py`` for MLPs without layer norm, with either engine; ~1e-7 with layer norm),
and its run directory (``config.yaml``, ``metrics.jsonl``, ``checkpoint.pt`` in the Trainer's
format) works with ``wgan eval``, ``wgan sample`` and ``wgan train --resume``.

Divergence: a run whose logged statistics are not finite gets the Trainer's error record in its
``metrics.jsonl``, keeps its last checkpoint, and is frozen (learning rate 0, weights replaced by
a healthy run's so that the batched arithmetic stays finite); the other runs go on. Its result
has ``diverged`` set.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import math
import re
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wgan import runs
from wgan.config import Config, OptimConfig, parse_override, set_value, validate
from wgan.data.images import IMAGE_DATASETS
from wgan.errors import ConfigError, WganError
from wgan.game import LatentGenerator
from wgan.nets import MLP
from wgan.tracking import Tracker, json_safe
from wgan.train import RunningStats, Trainer, TrainResult

__all__ = [
    "ENGINES",
    "MAY_DIFFER",
    "SweepRunResult",
    "SweepTrainer",
    "add_sweep_parser",
    "benchmark_sweep",
    "cmd_sweep",
    "expand_variants",
    "parse_seeds",
    "parse_vary",
    "run_sweep",
    "sweep_configs",
]

ENGINES = ("fused", "func")

MAY_DIFFER = (
    "name",
    "train.seed",
    "train.lr_decay",
    "d_optim.lr",
    "g_optim.lr",
    "d_optim.betas",
    "g_optim.betas",
    "d_optim.weight_decay",
    "g_optim.weight_decay",
    "constraint.penalty_weight",
    "constraint.penalty_target",
    "constraint.clip",
)
"""The config keys whose values may differ between the runs of one sweep (dotted names).

Everything else (architecture, data, objective, which constraints, optimiser kind, n_critic,
steps, batch size, logging cadence, device) changes shapes or code paths and must be shared.
"""

# ----------------------------------------------------------------------------------------------
# Variants and their validation
# ----------------------------------------------------------------------------------------------


def _flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def sweep_configs(base: Config, variants: list[dict[str, Any]]) -> list[Config]:
    """One validated config per variant: a deep copy of ``base`` with the variant's overrides.

    Raises :class:`ConfigError` for an empty sweep, an unknown key or bad value (as
    :func:`wgan.config.set_value`), a key outside :data:`MAY_DIFFER` whose value differs between
    variants (naming it), and features the vectorised step does not implement (batch norm, which
    couples samples; spectral norm, whose power iteration keeps per-module state).
    """
    if not variants:
        raise ConfigError("a sweep needs at least one run (give --seeds or --vary)")
    cfgs = []
    for variant in variants:
        cfg = copy.deepcopy(base)
        for key, value in variant.items():
            set_value(cfg, key, value)
        cfgs.append(validate(cfg))
    flat = [_flatten(c.to_dict()) for c in cfgs]
    for key in flat[0]:
        if key in MAY_DIFFER:
            continue
        values = {json.dumps(f[key]) for f in flat}
        if len(values) > 1:
            raise ConfigError(
                f"sweep runs must share '{key}' (it changes shapes or code paths), got "
                f"{', '.join(sorted(values))}; only {', '.join(MAY_DIFFER)} may differ"
            )
    cfg = cfgs[0]
    for section in ("generator", "critic"):
        net = getattr(cfg, section)
        if net.norm == "batch" and not (section == "generator" and cfg.generator.kind == "fixed"):
            raise ConfigError(
                f"sweep does not support batch norm ({section}.norm=batch): it couples the "
                "samples of a batch; use norm none or layer"
            )
        if net.arch != "mlp":
            raise ConfigError(f"sweep supports only MLPs, got {section}.arch={net.arch}")
    if cfg.constraint.spectral_norm:
        raise ConfigError(
            "sweep does not support spectral norm (constraint.spectral_norm=true); use the "
            "gradient penalty or clipping, or train the runs separately"
        )
    unsupported = [
        (cfg.data.name in IMAGE_DATASETS, f"data.name={cfg.data.name} (sweep trains toy data)"),
        (cfg.conditional.mode != "none", f"conditional.mode={cfg.conditional.mode}"),
        (cfg.train.ema > 0, f"train.ema={cfg.train.ema}"),
        (cfg.train.precision != "fp32", f"train.precision={cfg.train.precision}"),
        (cfg.train.channels_last, "train.channels_last=true"),
    ]
    for bad, what in unsupported:
        if bad:
            raise ConfigError(f"sweep does not support {what}; train such runs separately")
    return cfgs


def expand_variants(
    seeds: list[int] | None = None, vary: list[tuple[str, list[Any]]] | None = None
) -> list[dict[str, Any]]:
    """The cross product of ``vary`` (key, values) pairs and ``seeds`` as override dicts.

    Seeds vary fastest: ``expand_variants([0, 1], [('d_optim.lr', [1e-4, 2e-4])])`` gives
    lr 1e-4 with seeds 0, 1, then lr 2e-4 with seeds 0, 1. No seeds and no ``vary`` is one run.
    """
    axes: list[tuple[str, list[Any]]] = list(vary or [])
    if seeds:
        axes.append(("train.seed", list(seeds)))
    keys = [k for k, _ in axes]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"a key is varied twice: {', '.join(keys)}")
    for key, values in axes:
        if not values:
            raise ConfigError(f"no values given for {key}")
    return [
        dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(v for _, v in axes))
    ]


# ----------------------------------------------------------------------------------------------
# Stacked parameters and the batched networks
# ----------------------------------------------------------------------------------------------


class _Stack:
    """The parameters of K copies of one network as one flat ``(K, P)`` buffer with views.

    ``leaves`` are leaf tensors (K, *shape) that require grad and share the buffer's storage, so
    autograd returns per-layer gradients while the optimiser updates the whole buffer in a few
    operations; ``plain`` are the same views without grad (frozen critic, no-grad fakes).
    """

    def __init__(self, modules: list[nn.Module]) -> None:
        params, buffers = torch.func.stack_module_state(modules)  # name -> (K, *shape)
        if buffers:
            raise ConfigError(
                f"sweep does not support networks with buffers ({', '.join(buffers)})"
            )
        self.k = len(modules)
        self.names = list(params)
        self.shapes = [tuple(v.shape[1:]) for v in params.values()]
        self.flat = torch.cat([v.detach().reshape(self.k, -1) for v in params.values()], 1)
        self.flat = self.flat.contiguous()  # (K, P)
        self.slices: list[tuple[int, int]] = []
        offset = 0
        for shape in self.shapes:
            n = math.prod(shape)
            self.slices.append((offset, offset + n))
            offset += n
        self.leaves = self._views(requires_grad=True)
        self.plain = self._views(requires_grad=False)

    def _views(self, requires_grad: bool) -> dict[str, Tensor]:
        out = {}
        for name, shape, (a, b) in zip(self.names, self.shapes, self.slices, strict=True):
            view = self.flat[:, a:b].view(self.k, *shape)  # (K, *shape), shares storage
            out[name] = view.requires_grad_(requires_grad)
        return out

    def cat(self, grads) -> Tensor:
        """Per-parameter gradients (K, *shape), in ``names`` order, as one (K, P) tensor."""
        return torch.cat([g.reshape(self.k, -1) for g in grads], 1)

    def slice(self, buffer: Tensor, k: int, i: int) -> Tensor:
        """Run ``k``'s part of parameter ``i`` in a (K, P) buffer, as a fresh (*shape) tensor."""
        a, b = self.slices[i]
        return buffer[k, a:b].view(self.shapes[i]).clone()

    @torch.no_grad()
    def load_into(self, module: nn.Module, k: int) -> None:
        """Copy run ``k``'s parameters into ``module`` (same architecture)."""
        own = dict(module.named_parameters())
        for i, name in enumerate(self.names):
            a, b = self.slices[i]
            own[name].copy_(self.flat[k, a:b].view(self.shapes[i]))


class _BatchedMLP:
    """:class:`wgan.nets.MLP` (bare or inside a LatentGenerator) on run-stacked parameters.

    ``self(params, x)`` maps x (K, B, in) with params name -> (K, *shape) to (K, B, out), one
    ``baddbmm`` per linear layer: y_k = b_k + x_k W_k^T for every run k at once.
    """

    def __init__(self, module: nn.Module) -> None:
        prefix = ""
        if isinstance(module, LatentGenerator):
            module, prefix = module.net, "net."
        if not isinstance(module, MLP):
            raise ConfigError(f"sweep supports only MLPs, got {type(module).__name__}")
        self.ops: list[tuple[str, Any]] = []
        for i, layer in enumerate(module.body):
            name = f"{prefix}body.{i}"
            if isinstance(layer, nn.Linear):
                self.ops.append(("linear", name))
            elif isinstance(layer, nn.LayerNorm):
                self.ops.append(("layer_norm", (name, tuple(layer.normalized_shape), layer.eps)))
            elif isinstance(layer, nn.Identity):
                continue
            elif isinstance(layer, nn.modules.batchnorm._BatchNorm):
                raise ConfigError("sweep does not support batch norm")
            else:
                self.ops.append(("act", layer))  # elementwise: works on (K, B, H) as is
        self.ops.append(("linear", f"{prefix}head"))

    def __call__(self, p: dict[str, Tensor], x: Tensor) -> Tensor:
        for kind, arg in self.ops:
            if kind == "linear":
                w, b = p[f"{arg}.weight"], p[f"{arg}.bias"]  # (K, out, in), (K, out)
                x = torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))  # (K, B, out)
            elif kind == "layer_norm":
                name, shape, eps = arg
                w, b = p[f"{name}.weight"], p[f"{name}.bias"]  # (K, H)
                # b + y * w as one addcmul: rounds like LayerNorm's fused affine step
                x = torch.addcmul(b.unsqueeze(1), F.layer_norm(x, shape, eps=eps), w.unsqueeze(1))
            else:
                x = arg(x)
        return x


def _batched(
    fn: Callable[..., dict[str, Tensor]], n_args: int, k: int
) -> Callable[..., dict[str, Tensor]]:
    """``fn`` (an objective's loss: tensors -> dict of 0-d tensors) over a leading run dim.

    :func:`torch.vmap` when ``fn`` supports it; otherwise (an autograd.Function without a vmap
    rule, e.g. the Lambert-W of the Jeffrey f-GAN) a Python loop over runs, then a stack.
    """
    mapped = torch.vmap(fn)
    probe = [torch.zeros(k, 2, 1)] * n_args  # (K, B, 1) critic outputs
    try:
        mapped(*probe)
        return mapped
    except Exception:  # noqa: BLE001 - any failure of the transform means: loop instead

        def looped(*outs: Tensor) -> dict[str, Tensor]:
            per = [fn(*(o[i] for o in outs)) for i in range(outs[0].shape[0])]
            return {key: torch.stack([d[key] for d in per]) for key in per[0]}

        return looped


# ----------------------------------------------------------------------------------------------
# The optimisers, on stacked tensors
# ----------------------------------------------------------------------------------------------

Hyper = float | Tensor  # shared by all runs (a float) or per run ((K, 1) float64 tensor)


def _per_run(values: list[float], device: torch.device) -> Hyper:
    if all(v == values[0] for v in values):
        return float(values[0])
    return torch.tensor(values, dtype=torch.float64, device=device).view(-1, 1)  # (K, 1)


def _f32(x: Hyper) -> Hyper:
    return x.float() if isinstance(x, Tensor) else x


class _Optim:
    """Adam, RMSProp or SGD (momentum = betas[0]) on (K, P) tensors, as :mod:`torch.optim`.

    Each line mirrors ``torch.optim``'s single-tensor update (its CPU default; on CUDA torch
    uses the foreach variant, same maths, rounding may differ) in the same floating-point order.
    Adam (Kingma & Ba 2015) with torch's L2 weight decay:
    g += wd p; m = lerp(m, g, 1 - b1); v = b2 v + (1 - b2) g^2;
    p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
    RMSProp (alpha 0.99, eps 1e-8): v = a v + (1 - a) g^2; p -= lr g / (sqrt(v) + eps).
    SGD: buf = g at the first step, then buf = mu buf + g; p -= lr buf.
    A float hyperparameter takes torch's own scalar path; a per-run (K, 1) tensor takes the
    tensor form of the same operation (``addcmul(p, a * v, b)`` for ``p.addcmul_(a, b, value=v)``,
    ``addcmul(p, a, v)`` for ``p.add(a, alpha=v)``), which rounds identically.
    """

    def __init__(self, cfgs: list[OptimConfig], like: Tensor) -> None:
        device = like.device
        self.name = cfgs[0].name
        self.lr = _per_run([c.lr for c in cfgs], device)
        self.beta1 = _per_run([c.betas[0] for c in cfgs], device)
        self.beta2 = _per_run([c.betas[1] for c in cfgs], device)
        self.wd = _per_run([c.weight_decay for c in cfgs], device)
        self.eps, self.alpha = 1e-8, 0.99
        self.device, self.k = device, len(cfgs)
        self.t = 0  # optimiser steps taken (the same for every run)
        self.state: dict[str, Tensor] = {}
        if self.name == "adam":
            self.state = {"exp_avg": torch.zeros_like(like), "exp_avg_sq": torch.zeros_like(like)}
        elif self.name == "rmsprop":
            self.state = {"square_avg": torch.zeros_like(like)}
        # SGD's momentum buffer is created at the first step (a copy of the gradient).
        self.momentum_active = [c.betas[0] != 0 for c in cfgs]

    def freeze(self, k: int) -> None:
        """Learning rate 0 for run ``k`` (a diverged run), its state reset."""
        if isinstance(self.lr, Tensor):
            lr = self.lr.clone()
        else:
            lr = torch.full((self.k, 1), self.lr, dtype=torch.float64, device=self.device)
        lr[k] = 0.0
        self.lr = lr
        for buf in self.state.values():
            buf[k].zero_()

    @torch.no_grad()
    def step(self, p: Tensor, g: Tensor, factor: Hyper) -> None:
        """One update of the (K, P) parameters ``p`` with gradients ``g``; lr = lr * factor."""
        self.t += 1
        lr = self.lr * factor  # float, or (K, 1) float64: base_lr * lambda(step) as LambdaLR
        if isinstance(self.wd, Tensor):
            g = torch.addcmul(g, p, self.wd.float())
        elif self.wd != 0:
            g = g.add(p, alpha=self.wd)
        if self.name == "adam":
            self._adam(p, g, lr)
        elif self.name == "rmsprop":
            self._rmsprop(p, g, lr)
        else:
            self._sgd(p, g, lr)

    def _adam(self, p: Tensor, g: Tensor, lr: Hyper) -> None:
        m, v = self.state["exp_avg"], self.state["exp_avg_sq"]
        m.lerp_(g, _f32(1 - self.beta1))
        if isinstance(self.beta2, Tensor):
            v.mul_(self.beta2.float())
            v.addcmul_(g * (1 - self.beta2).float(), g)
        else:
            v.mul_(self.beta2).addcmul_(g, g, value=1 - self.beta2)
        bias1 = 1 - self.beta1**self.t
        bias2_sqrt = (1 - self.beta2**self.t) ** 0.5
        step_size = lr / bias1
        denom = (v.sqrt() / _f32(bias2_sqrt)).add_(self.eps)
        if isinstance(step_size, Tensor):
            p.add_(m.mul(-step_size.float()).div_(denom))  # = addcdiv_(m, denom, value=-s)
        else:
            p.addcdiv_(m, denom, value=-step_size)

    def _rmsprop(self, p: Tensor, g: Tensor, lr: Hyper) -> None:
        v = self.state["square_avg"]
        v.mul_(self.alpha).addcmul_(g, g, value=1 - self.alpha)
        avg = v.sqrt().add_(self.eps)
        if isinstance(lr, Tensor):
            p.add_(g.mul(-lr.float()).div_(avg))  # = addcdiv_(g, avg, value=-lr)
        else:
            p.addcdiv_(g, avg, value=-lr)

    def _sgd(self, p: Tensor, g: Tensor, lr: Hyper) -> None:
        if "momentum_buffer" not in self.state:
            buf = self.state["momentum_buffer"] = g.detach().clone()
        else:
            buf = self.state["momentum_buffer"]
            buf.mul_(_f32(self.beta1)).add_(g)  # dampening 0
        if isinstance(lr, Tensor):
            p.addcmul_(buf, -lr.float())  # = add_(buf, alpha=-lr)
        else:
            p.add_(buf, alpha=-lr)

    def torch_state(self, stack: _Stack, k: int) -> list[dict[str, Tensor]]:
        """Run ``k``'s state per parameter, as ``torch.optim``'s ``state[p]`` would hold it."""
        out = []
        for i in range(len(stack.names)):
            if self.name == "sgd":
                if self.momentum_active[k] and "momentum_buffer" in self.state:
                    out.append(
                        {"momentum_buffer": stack.slice(self.state["momentum_buffer"], k, i)}
                    )
                else:
                    out.append({})  # torch's SGD keeps no state without momentum
                continue
            entry = {"step": torch.tensor(float(self.t), dtype=torch.float32)}
            for key, buf in self.state.items():
                entry[key] = stack.slice(buf, k, i)
            out.append(entry)
        return out


# ----------------------------------------------------------------------------------------------
# The sweep trainer
# ----------------------------------------------------------------------------------------------


class _SweepStats(RunningStats):
    """:class:`wgan.train.RunningStats` over (K,) tensors; ``flush_runs`` gives one dict a run."""

    def flush_runs(self, k: int) -> list[dict[str, float]]:
        if not self.sums:
            return [{} for _ in range(k)]
        names = list(self.sums)
        values = torch.stack([self.sums[n] for n in names]).tolist()  # (N, K): the one sync
        out = [
            {n: row[i] / self.counts[n] for n, row in zip(names, values, strict=True)}
            for i in range(k)
        ]
        self.sums, self.counts = {}, {}
        return out


@dataclass
class SweepRunResult(TrainResult):
    """A finished sweep run: the Trainer's result plus its overrides and divergence.

    ``seconds`` is the wall-clock time of the whole sweep (the runs trained together);
    ``train_seconds`` the part of it spent training and logging (without evaluation, figures and
    checkpoints).
    """

    overrides: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    diverged: str | None = None
    train_seconds: float = 0.0


class SweepTrainer:
    """Trains the K runs of ``cfgs`` (see :func:`sweep_configs`) together, one dir each.

    Every run gets a :class:`wgan.train.Trainer` "shell" built exactly as a separate run would
    be (seeded initialisation, its torch.Generator, its batches, its optimiser objects); the
    shells provide the initial weights and the random draws, and hold the unstacked weights for
    evaluation, figures and checkpoints. Training itself runs on the stacked parameters.
    """

    def __init__(self, cfgs: list[Config], run_dirs: list[Path], engine: str = "fused") -> None:
        if engine not in ENGINES:
            raise ConfigError(f"unknown sweep engine '{engine}' (choose {', '.join(ENGINES)})")
        if len(cfgs) != len(run_dirs):
            raise WganError("sweep: one run directory per config is needed")
        self.cfgs, self.engine, self.k = cfgs, engine, len(cfgs)
        self.cfg = cfgs[0]
        self.shells: list[Trainer] = []
        self.torch_rng: list[Tensor] = []
        for cfg, run_dir in zip(cfgs, run_dirs, strict=True):
            self.shells.append(Trainer(cfg, Path(run_dir)))  # seeds torch, builds the models
            self.torch_rng.append(torch.get_rng_state())  # what this run's Trainer would save
        first = self.shells[0]
        self.device = first.device
        self.learned = first.learned_generator
        self.d = _Stack([s.critic for s in self.shells])
        self.g = _Stack([s.gen for s in self.shells]) if self.learned else None
        self.opt_d = _Optim([c.d_optim for c in cfgs], self.d.flat)
        self.opt_g = _Optim([c.g_optim for c in cfgs], self.g.flat) if self.g is not None else None
        self.objective = first.loss.objective
        # The constraint's numbers, per run.
        c = self.cfg.constraint
        self.penalty = c.penalty
        self.every = first.constraints.penalty_every
        # weight (K,) or float, multiplies the per-run mean; target (K, 1) or float, the norms.
        weight = _f32(_per_run([x.constraint.penalty_weight for x in cfgs], self.device))
        self.pen_weight = weight.reshape(-1) if isinstance(weight, Tensor) else weight
        self.pen_target = _f32(_per_run([x.constraint.penalty_target for x in cfgs], self.device))
        # Clipping to [-c, c] per run; c = inf for a run without clipping.
        self.clip: Hyper | None = None
        if any(x.constraint.clip > 0 for x in cfgs):
            clips = [x.constraint.clip if x.constraint.clip > 0 else math.inf for x in cfgs]
            self.clip = _f32(_per_run(clips, self.device))
        self.linear_decay = [x.train.lr_decay == "linear" for x in cfgs]
        self._decay_mask = torch.tensor(self.linear_decay, device=self.device).view(-1, 1)
        self._ones64 = torch.ones(self.k, 1, dtype=torch.float64, device=self.device)
        # The batched computation.
        self.D: _BatchedMLP | None = None
        self.G: _BatchedMLP | None = None
        if engine == "fused":
            self.D = _BatchedMLP(first.critic)
            self.G = _BatchedMLP(first.gen) if self.learned else None
            self.critic_loss = _batched(self.objective.critic_loss, 2, self.k)
            self.generator_loss = _batched(self.objective.generator_loss, 1, self.k)
        else:
            self._build_func(first)
        self.step = 0  # generator iterations done (fit's counter, as Trainer.step)
        self.lr_step = 0  # learning-rate schedule steps done (LambdaLR.last_epoch)
        self.stats = _SweepStats()
        self.active = [True] * self.k
        self.diverged: list[str | None] = [None] * self.k
        self.stopped_at: list[int | None] = [None] * self.k  # step at which a run diverged
        self.outside_seconds = 0.0  # time fit spent evaluating, plotting, checkpointing

    # -- the batched maths -------------------------------------------------------------------

    def _penalty(self, norms: Tensor, weight: Hyper, target: Hyper) -> Tensor:
        """lambda E[phi(||grad|| - t)] * every over the last dim (GradientPenalty.value)."""
        excess = norms - target
        if self.penalty == "two_sided":
            per_sample = excess.square()
        elif self.penalty == "one_sided":
            per_sample = excess.clamp_min(0.0)
        else:
            per_sample = excess.clamp_min(0.0).square()
        return weight * per_sample.mean(-1) * self.every

    def _build_func(self, first: Trainer) -> None:
        """The torch.func engine: vmap over runs of functional_call, grad of grad."""
        from torch.func import functional_call, grad, vmap

        critic, gen, objective = first.critic, first.gen, self.objective

        def D(p: dict[str, Tensor], x: Tensor) -> Tensor:
            return functional_call(critic, p, (x,))

        def critic_loss(p, real, fake, eps, weight, target, with_penalty):
            terms = dict(objective.critic_loss(D(p, real), D(p, fake)))
            if with_penalty:
                x_hat = eps * real + (1.0 - eps) * fake  # (B, dim)
                g_x = grad(lambda x: D(p, x).sum())(x_hat)  # inner derivative: w.r.t. the input
                norms = g_x.flatten(1).norm(2, dim=1)  # (B,)
                pen = self._penalty(norms, weight, target)
                terms["loss"] = terms["loss"] + pen
                terms["penalty"] = pen
                terms["grad_norm"] = norms.mean()
            return terms["loss"], terms

        def make(with_penalty: bool):
            def fn(p, real, fake, eps, weight, target):
                return critic_loss(p, real, fake, eps, weight, target, with_penalty)

            return vmap(grad(fn, has_aux=True))

        self._func_critic = {True: make(True), False: make(False)}

        def generator_loss(pg, pd, z):
            terms = dict(objective.generator_loss(D(pd, functional_call(gen, pg, (z,)))))
            return terms["loss"], terms

        self._func_gen = vmap(grad(generator_loss, has_aux=True))
        self._func_sample = vmap(lambda p, z: functional_call(gen, p, (z,)))
        self._func_weight = self._per_run_tensor(self.pen_weight)  # (K,)
        self._func_target = self._per_run_tensor(self.pen_target)  # (K,)
        # A probe, so that an objective without vmap/grad support fails here, clearly.
        try:
            probe = torch.zeros(self.k, 2, first.dataset.dim, device=self.device)
            weights = torch.ones(self.k, device=self.device)
            self._func_critic[False](self.d.plain, probe, probe, probe[..., :1], weights, weights)
        except ConfigError:
            raise
        except Exception as err:  # noqa: BLE001 - the transform's own error is not user-facing
            first_line = str(err).strip().splitlines()[0] if str(err).strip() else ""
            raise ConfigError(
                f"sweep engine 'func' cannot transform objective {self.cfg.objective.name} "
                f"({first_line[:120]}); use engine fused"
            ) from None

    def _per_run_tensor(self, value: Hyper) -> Tensor:
        """A hyperparameter as a (K,) tensor (the func engine maps over its runs)."""
        if isinstance(value, Tensor):
            return value.reshape(self.k)
        return torch.full((self.k,), value, device=self.device)

    def _critic_update(self, real: Tensor, fake: Tensor, eps: Tensor | None) -> dict[str, Tensor]:
        """One critic step of every run: real, fake (K, B, dim), eps (K, B, 1) or None."""
        due = eps is not None and self.penalty != "none"
        if self.engine == "func":
            e = eps if eps is not None else real[..., :1]  # unused without the penalty
            w, t = self._func_weight, self._func_target
            grads, terms = self._func_critic[due](self.d.plain, real, fake, e, w, t)
            flat_grad = self.d.cat(grads[n] for n in self.d.names)
        else:
            assert self.D is not None
            p = self.d.leaves
            terms = dict(self.critic_loss(self.D(p, real), self.D(p, fake)))  # each (K,)
            if due:
                x_hat = (eps * real + (1.0 - eps) * fake).requires_grad_(True)  # (K, B, dim)
                # Run k's outputs depend only on run k's inputs, sample i's only on sample i:
                # the gradient of the total is every sample's own input gradient.
                (g_x,) = torch.autograd.grad(self.D(p, x_hat).sum(), x_hat, create_graph=True)
                norms = g_x.flatten(2).norm(2, dim=2)  # (K, B)
                pen = self._penalty(norms, self.pen_weight, self.pen_target)  # (K,)
                terms["loss"] = terms["loss"] + pen
                terms["penalty"] = pen
                terms["grad_norm"] = norms.detach().mean(1)
            grads = torch.autograd.grad(terms["loss"].sum(), list(p.values()))
            flat_grad = self.d.cat(grads)
        self.opt_d.step(self.d.flat, flat_grad, self._lr_factor())
        if self.clip is not None:
            with torch.no_grad():
                c = self.clip
                self.d.flat.clamp_(-c, c)  # WeightClipping.project on every run at once
        return {k: v.detach() for k, v in terms.items()}

    def _generator_update(self, z: Tensor) -> dict[str, Tensor]:
        """One generator step of every run on noise z (K, B, latent)."""
        assert self.g is not None and self.opt_g is not None
        if self.engine == "func":
            grads, terms = self._func_gen(self.g.plain, self.d.plain, z)
            flat_grad = self.g.cat(grads[n] for n in self.g.names)
        else:
            assert self.D is not None and self.G is not None
            terms = dict(self.generator_loss(self.D(self.d.plain, self.G(self.g.leaves, z))))
            grads = torch.autograd.grad(terms["loss"].sum(), list(self.g.leaves.values()))
            flat_grad = self.g.cat(grads)
        self.opt_g.step(self.g.flat, flat_grad, self._lr_factor())
        return {k: v.detach() for k, v in terms.items()}

    def _lr_factor(self) -> Hyper:
        """Trainer._lr_factor of every run after ``self.lr_step`` schedule steps."""
        linear = max(0.0, 1.0 - self.lr_step / max(1, self.cfg.train.steps))
        if all(self.linear_decay):
            return linear
        if not any(self.linear_decay):
            return 1.0
        # A fill and a select on the device: no host-to-device copy, no sync.
        return torch.where(self._decay_mask, torch.full_like(self._ones64, linear), self._ones64)

    # -- one generator iteration -------------------------------------------------------------

    def _draw(self) -> tuple[list[Tensor], list[Tensor], list[Tensor | None], Tensor | None]:
        """All random draws of one iteration, each run from its own generator, Trainer order."""
        n_critic, batch = self.cfg.train.n_critic, self.cfg.data.batch_size
        reals: list[list[Tensor]] = [[] for _ in range(n_critic)]
        fakes: list[list[Tensor]] = [[] for _ in range(n_critic)]  # noise, or fixed-G samples
        epss: list[list[Tensor]] = [[] for _ in range(n_critic)]
        g_noise: list[Tensor] = []
        for shell in self.shells:
            rng = shell.rng
            for i in range(n_critic):
                real = shell.batches.next_batch()  # (B, dim)
                reals[i].append(real)
                if self.learned:
                    fakes[i].append(shell.gen.noise(batch, rng, self.device))  # (B, latent)
                else:
                    fakes[i].append(shell.gen.sample(batch, rng))  # (B, dim)
                if self.penalty != "none" and i % self.every == 0:
                    shape = (real.shape[0],) + (1,) * (real.ndim - 1)
                    epss[i].append(
                        torch.rand(shape, generator=rng, dtype=real.dtype, device=real.device)
                    )
            if self.learned:
                g_noise.append(shell.gen.noise(batch, rng, self.device))
        real_k = [torch.stack(r) for r in reals]  # each (K, B, dim)
        fake_k = [torch.stack(f) for f in fakes]
        eps_k = [torch.stack(e) if e else None for e in epss]
        return real_k, fake_k, eps_k, (torch.stack(g_noise) if g_noise else None)

    def train_step(self) -> None:
        """One generator iteration of every run: n_critic critic steps, one generator step."""
        real, noise, eps, g_noise = self._draw()
        for i in range(self.cfg.train.n_critic):
            if self.learned:
                assert self.g is not None
                with torch.no_grad():
                    if self.engine == "func":
                        fake = self._func_sample(self.g.plain, noise[i])
                    else:
                        assert self.G is not None
                        fake = self.G(self.g.plain, noise[i])  # (K, B, dim), no graph into G
            else:
                fake = noise[i]
            self.stats.add("d", self._critic_update(real[i], fake, eps[i]))
        if g_noise is not None:
            self.stats.add("g", self._generator_update(g_noise))
        self.lr_step += 1  # the Trainer's scheduler.step()

    # -- the loop ----------------------------------------------------------------------------

    def fit(self, trackers: list[Tracker | None] | None = None) -> list[SweepRunResult]:
        """Train up to ``train.steps`` iterations; log, evaluate, plot and checkpoint per run."""
        cfg = self.cfg.train
        trackers = trackers or [None] * self.k
        start = time.time()
        bar = None
        if cfg.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=cfg.steps, initial=self.step, desc=f"sweep of {self.k}", leave=True)

        def due(every: int) -> bool:
            return every > 0 and self.step % every == 0

        metrics: list[dict[str, Any]] = [{} for _ in range(self.k)]
        figures: list[Path | None] = [None] * self.k
        while self.step < cfg.steps and any(self.active):
            self.train_step()
            self.step += 1
            if bar is not None:
                bar.update(1)
            last = self.step == cfg.steps
            if due(cfg.log_every) or due(cfg.checkpoint_every) or last:
                self._log(trackers)
            live = [k for k in range(self.k) if self.active[k]]
            outside = time.perf_counter()  # evaluation, figures and checkpoints: not training
            if due(cfg.eval_every) or last:
                for k in live:
                    self.sync(k)
                    metrics[k] = self.shells[k].evaluate()
                    if trackers[k] is not None:
                        trackers[k].log(self.step, metrics[k], kind="eval")
            if due(cfg.figure_every) or last:
                for k in live:
                    self.sync(k)
                    figures[k] = self.shells[k].figure(trackers[k])
            if due(cfg.checkpoint_every) or last:
                for k in live:
                    self.save(k)
            self.outside_seconds += time.perf_counter() - outside
        if bar is not None:
            bar.close()
        seconds = time.time() - start
        train_seconds = max(0.0, seconds - self.outside_seconds)
        return [
            SweepRunResult(
                self.shells[k].run_dir,
                self.stopped_at[k] if self.stopped_at[k] is not None else self.step,
                metrics[k],
                figures[k],
                seconds,
                seed=self.cfgs[k].train.seed,
                diverged=self.diverged[k],
                train_seconds=train_seconds,
            )
            for k in range(self.k)
        ]

    def _log(self, trackers: list[Tracker | None]) -> None:
        per_run = self.stats.flush_runs(self.k)
        for k, values in enumerate(per_run):
            if not self.active[k] or not values:
                continue
            if "d/grad_norm" not in values:
                self.sync(k)
                values["d/grad_norm_interp"] = self.shells[k].interpolate_grad_norm()
            bad = [key for key, v in values.items() if not math.isfinite(v)]
            if bad:
                if trackers[k] is not None:
                    trackers[k].log(
                        self.step, {"event": "diverged", "non_finite": bad}, kind="error"
                    )
                self._freeze(k, bad)
            elif trackers[k] is not None:
                trackers[k].log(self.step, values)

    def _freeze(self, k: int, bad: list[str]) -> None:
        """Stop run ``k``: message, no more saves, lr 0, weights of a healthy run (finite)."""
        ckpt = self.shells[k].run_dir / runs.CHECKPOINT
        kept = (
            f"the last checkpoint {ckpt} is kept" if ckpt.exists() else "no checkpoint was written"
        )
        self.diverged[k] = (
            f"training diverged: non-finite {', '.join(sorted(bad))} by step {self.step}; {kept}"
        )
        self.active[k] = False
        self.stopped_at[k] = self.step
        healthy = next((i for i in range(self.k) if self.active[i]), None)
        with torch.no_grad():
            for stack, opt in ((self.d, self.opt_d), (self.g, self.opt_g)):
                if stack is None or opt is None:
                    continue
                opt.freeze(k)
                if healthy is not None:
                    stack.flat[k].copy_(stack.flat[healthy])

    # -- unstacking: evaluation and checkpoints ---------------------------------------------

    def sync(self, k: int, optimisers: bool = False) -> Trainer:
        """Run ``k``'s Trainer shell with the current weights (and optimiser/scheduler state)."""
        shell = self.shells[k]
        self.d.load_into(shell.critic, k)
        if self.g is not None:
            self.g.load_into(shell.gen, k)
        shell.step = self.step
        if optimisers:
            pairs = [(shell.opt_d, self.opt_d, self.d), (shell.opt_g, self.opt_g, self.g)]
            for torch_opt, opt, stack in pairs:
                if torch_opt is None or opt is None or stack is None:
                    continue
                params = torch_opt.param_groups[0]["params"]
                torch_opt.state.clear()
                for param, entry in zip(params, opt.torch_state(stack, k), strict=True):
                    if entry:
                        torch_opt.state[param] = entry
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "lr_scheduler.step() before optimizer.step()"
                for scheduler in shell.schedulers:
                    while scheduler.last_epoch < self.lr_step:
                        scheduler.step()  # the exact LambdaLR state of a Trainer at this step
        return shell

    def state(self, k: int) -> dict[str, Any]:
        """Run ``k``'s checkpoint, in exactly the format of :meth:`wgan.train.Trainer.state`."""
        state = self.sync(k, optimisers=True).state()
        state["torch_rng"] = self.torch_rng[k]
        return state

    def save(self, k: int) -> Path:
        path = self.shells[k].run_dir / runs.CHECKPOINT
        runs.save_checkpoint(path, self.state(k))
        return path


# ----------------------------------------------------------------------------------------------
# Entry points
# ----------------------------------------------------------------------------------------------


def _label(variant: dict[str, Any]) -> str:
    if not variant:
        return "run"
    parts = []
    for key, value in variant.items():
        short = "seed" if key == "train.seed" else key.replace("_optim", "").replace(".", "_")
        text = ",".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)
        parts.append(f"{short}{text}")
    return "-".join(parts)


def run_sweep(
    base: Config,
    variants: list[dict[str, Any]],
    out_dir: str | Path | None = None,
    tensorboard: bool = False,
    engine: str = "fused",
) -> list[SweepRunResult]:
    """Train one run per variant of ``base``, together, each in its own run directory.

    The runs live in ``<out_dir>/<NNNNN>-<name>-sweep/<NNNNN>-<label>/`` (``out_dir`` defaults to
    ``base.out_dir``), next to ``sweep.json`` (the variants and the final metrics). Each run
    directory is a regular run (config.yaml, metrics.jsonl, checkpoint.pt in the Trainer's
    format, figures/). Returns one :class:`SweepRunResult` per variant, in order; a run that
    diverged has ``diverged`` set (see the module docstring) and is not raised as an error.
    """
    cfgs = sweep_configs(base, variants)
    root = Path(out_dir) if out_dir is not None else Path(base.out_dir)
    sweep_dir = runs.new_run_dir(root, f"{base.name}-sweep")
    run_dirs = [runs.new_run_dir(sweep_dir, _label(v)) for v in variants]
    for cfg, run_dir in zip(cfgs, run_dirs, strict=True):
        cfg.out_dir = str(root)
        runs.write_config(run_dir, cfg.to_dict())
    summary: dict[str, Any] = {
        "engine": engine,
        "runs": [
            {"run_dir": str(d), "overrides": v} for d, v in zip(run_dirs, variants, strict=True)
        ],
    }
    (sweep_dir / "sweep.json").write_text(json.dumps(json_safe(summary), indent=1))
    trainer = SweepTrainer(cfgs, run_dirs, engine)
    trackers: list[Tracker | None] = [Tracker(d, tensorboard=tensorboard) for d in run_dirs]
    try:
        results = trainer.fit(trackers)
    finally:
        for tracker in trackers:
            if tracker is not None:
                tracker.close()
    for result, variant in zip(results, variants, strict=True):
        result.overrides = dict(variant)
    summary["seconds"] = results[0].seconds if results else 0.0
    summary["train_seconds"] = results[0].train_seconds if results else 0.0
    summary["steps"] = trainer.step
    summary["runs"] = [_result_record(r) for r in results]
    (sweep_dir / "sweep.json").write_text(json.dumps(json_safe(summary), indent=1))
    return results


def _result_record(r: SweepRunResult) -> dict[str, Any]:
    return {
        "run_dir": str(r.run_dir),
        "seed": r.seed,
        "overrides": r.overrides,
        "step": r.step,
        "seconds": r.seconds,
        "train_seconds": r.train_seconds,
        "diverged": r.diverged,
        "metrics": r.metrics,
    }


def _sync_device(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def benchmark_sweep(
    cfg: Config, k: int, steps: int, repeats: int = 3, engine: str = "fused"
) -> dict[str, Any]:
    """Seconds per generator iteration of K vmapped runs vs one plain Trainer run of ``cfg``.

    Both are built in this process (run i has seed ``cfg.train.seed + i``), warmed up with two
    iterations, then timed in alternating blocks of ``steps`` iterations, ``repeats`` blocks each
    (``time.perf_counter``; ``torch.cuda.synchronize`` around each block on CUDA). Returns the
    medians ``sweep_s_per_iter`` and ``single_s_per_iter``; ``ratio`` is the median over repeats
    of (sweep block / the single block timed just before it), which is robust to a machine whose
    load drifts during the measurement (K runs cost ``ratio`` single runs: the sweep is K/ratio
    times faster than training them one after another); ``run_iters_per_s`` = K / sweep seconds
    per iteration. Nothing is written outside a temporary directory.
    """
    if k < 1 or steps < 1 or repeats < 1:
        raise ConfigError("benchmark_sweep needs k, steps and repeats >= 1")
    base = copy.deepcopy(cfg)
    base.train.progress = False
    variants = [{"train.seed": cfg.train.seed + i} for i in range(k)]
    cfgs = sweep_configs(base, variants)
    with tempfile.TemporaryDirectory(prefix="wgan-bench-") as tmp:
        sweep = SweepTrainer(cfgs, [Path(tmp) / f"run{i}" for i in range(k)], engine)
        single = Trainer(copy.deepcopy(cfgs[0]), Path(tmp) / "single")
        device = sweep.device

        def timed(step: Callable[[], None]) -> float:
            _sync_device(device)
            start = time.perf_counter()
            for _ in range(steps):
                step()
            _sync_device(device)
            return (time.perf_counter() - start) / steps

        for _ in range(2):
            sweep.train_step()
            single.train_step()
        sweep_times, single_times = [], []
        for _ in range(repeats):
            single_times.append(timed(single.train_step))
            sweep_times.append(timed(sweep.train_step))
    sweep_s = statistics.median(sweep_times)
    return {
        "k": k,
        "steps": steps,
        "repeats": repeats,
        "engine": engine,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "sweep_s_per_iter": sweep_s,
        "single_s_per_iter": statistics.median(single_times),
        "ratio": statistics.median(a / b for a, b in zip(sweep_times, single_times, strict=True)),
        "run_iters_per_s": k / sweep_s,
    }


# ----------------------------------------------------------------------------------------------
# Command line (hooked into wgan.cli by add_sweep_parser)
# ----------------------------------------------------------------------------------------------


def _split_values(text: str) -> list[str]:
    """Split ``a,b,[c,d]`` on the commas outside brackets."""
    out, depth, current = [], 0, ""
    for ch in text:
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(current)
            current = ""
        else:
            current += ch
    out.append(current)
    return [v.strip() for v in out if v.strip()]


def parse_seeds(text: str) -> list[int]:
    """``0,1,2`` or ``0-7`` (inclusive) or a mix such as ``0-3,10``, as a list of seeds."""
    seeds: list[int] = []
    for part in _split_values(text):
        match = re.fullmatch(r"(\d+)-(\d+)", part)
        try:
            if match:
                seeds.extend(range(int(match.group(1)), int(match.group(2)) + 1))
            else:
                seeds.append(int(part))
        except ValueError:
            raise ConfigError(f"--seeds must be integers like 0,1,2 or 0-7, got '{part}'") from None
    if not seeds:
        raise ConfigError(f"--seeds gives no seeds: '{text}'")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds repeats a seed: '{text}'")
    return seeds


_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _number(value: Any) -> Any:
    """YAML 1.1 reads ``1e-4`` (no dot) as a string; a sweep value means the number."""
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return float(value)
    return value


def parse_vary(text: str) -> tuple[str, list[Any]]:
    """``key=v1,v2,...`` (each value read as YAML, like an override) as (key, values)."""
    if "=" not in text:
        raise ConfigError(f"--vary '{text}' is not of the form key=v1,v2,...")
    key, raw = text.split("=", 1)
    values = [_number(parse_override(f"{key}={v}")[1]) for v in _split_values(raw)]
    if not values:
        raise ConfigError(f"--vary {key.strip()} has no values")
    return key.strip(), values


def add_sweep_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``wgan sweep`` to the ``wgan`` command's subparsers; returns its parser."""
    p = subparsers.add_parser(
        "sweep", help="train many small GANs at once (seeds / settings), vectorised over runs"
    )
    p.add_argument(
        "items",
        nargs="*",
        metavar="[PRESET|CONFIG.yaml] [key=value ...]",
        help="a preset name or config file (default: toy-wgan-gp), then dotted overrides",
    )
    p.add_argument("--seeds", help="seeds of the runs, e.g. 0,1,2,3 or 0-7")
    p.add_argument(
        "--vary",
        action="append",
        default=[],
        metavar="KEY=V1,V2,...",
        help=f"values of one key (repeatable; cross product with the seeds); keys: "
        f"{', '.join(MAY_DIFFER[1:])}",
    )
    p.add_argument("--out-dir", help="parent folder of the sweep's folder (default: runs)")
    p.add_argument(
        "--engine", choices=ENGINES, default="fused", help="batched maths (default fused)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_sweep)
    return p


def _fmt(value: Any, spec: str = ".3g") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


def cmd_sweep(args: argparse.Namespace) -> int:
    """``wgan sweep``: train the runs, print a table (or JSON) and the run-iterations per second."""
    from wgan.cli import _split_source
    from wgan.config import resolve

    source, overrides = _split_source(args.items)
    base = resolve(source, overrides)
    if args.out_dir:
        base.out_dir = args.out_dir
    seeds = parse_seeds(args.seeds) if args.seeds else None
    vary = [parse_vary(v) for v in args.vary]
    variants = expand_variants(seeds, vary)
    results = run_sweep(base, variants, out_dir=args.out_dir, engine=args.engine)
    seconds = results[0].seconds if results else 0.0
    train_seconds = results[0].train_seconds if results else 0.0
    done = sum(r.step for r in results)
    rate = done / train_seconds if train_seconds > 0 else float("nan")
    if args.json:
        record = {"runs": [_result_record(r) for r in results], "seconds": seconds}
        record.update(train_seconds=train_seconds, run_iters_per_s=rate)
        print(json.dumps(json_safe(record)))
    else:
        keys = [k for k, _ in vary]
        header = ["run", "seed", *keys, "modes", "hq", "w1", "seconds"]
        rows = []
        for r in results:
            m = r.metrics
            modes = f"{m['modes_captured']}/{m['n_modes']}" if "modes_captured" in m else "-"
            row = [str(r.run_dir), str(r.seed)]
            row += [_fmt(r.overrides.get(k)) for k in keys]
            if r.diverged:
                row += ["diverged", "-", "-", f"{r.seconds:.1f}"]
            else:
                row += [
                    modes,
                    _fmt(m.get("high_quality_fraction")),
                    _fmt(m.get("w1")),
                    f"{r.seconds:.1f}",
                ]
            rows.append(row)
        widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
        for line in [header, *rows]:
            print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
        print(
            f"{len(results)} runs x {base.train.steps} iterations in {seconds:.1f} s "
            f"({train_seconds:.1f} s training: {rate:.1f} run-iterations/s)"
        )
    failed = [r for r in results if r.diverged]
    if failed:
        sys.stderr.write(
            f"wgan: error: {len(failed)} of {len(results)} sweep runs diverged "
            f"(first: {failed[0].run_dir}: {failed[0].diverged})\n"
        )
        return 2
    return 0
