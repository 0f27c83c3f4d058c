r"""Weight clipping vs gradient penalty on toy data (Gulrajani et al. 2017, Fig. 1).

The generator is held fixed at the real data plus Gaussian noise, :math:`\tilde x = x + \sigma
\varepsilon` (``FIXED_GENERATOR`` of the authors' ``gan_toy.py``: :math:`\sigma = 1`), and only
WGAN critics are trained, on 8 Gaussians, 25 Gaussians and the Swiss roll:

* with **weight clipping** (Arjovsky et al. 2017, Algorithm 1): every parameter is clipped to
  :math:`[-c, c]` after each step, :math:`c \in \{0.001, 0.01, 0.1\}`, optimiser RMSProp with
  learning rate :math:`5\cdot10^{-5}` (WGAN's and ``gan_toy.py``'s setting);
* with the **gradient penalty** (WGAN-GP): critic loss
  :math:`E f(\tilde x) - E f(x) + \lambda E(\|\nabla f(\hat x)\|_2 - 1)^2` on interpolates
  :math:`\hat x`, with the toy protocol's :math:`\lambda = 0.1` and Adam(:math:`10^{-4}`, betas
  (0.5, 0.9)).

Three views (Gulrajani et al. 2017, Section 3 and Fig. 1; already Arjovsky et al. 2017,
Section 3: "weight clipping is a clearly terrible way to enforce a Lipschitz constraint"):

(a) **Value surfaces** of 3-layer ReLU critics: clipping biases the critic towards very simple
    functions (it is K-Lipschitz with a small K and cannot bend much), the penalised critic
    follows the shape of the data.
(b) **Gradient norms through a deep critic** (12 ReLU layers, no normalisation): for layer
    :math:`l` with activation :math:`h_l` we record, averaged over a batch of real and fake
    samples, :math:`\|\partial f(x) / \partial h_l(x)\|_2`, which is :math:`B\,\|\partial
    L / \partial h_l(x)\|` for the Wasserstein loss :math:`L` (each sample enters :math:`L` with
    weight :math:`\pm 1/B`). Backpropagation multiplies by :math:`W_l^\top` and the ReLU mask at
    every layer; with entries in :math:`[-c, c]` and width :math:`n`,
    :math:`\|W_l\|_2 \le n c`, so with :math:`nc < 1` the gradient vanishes geometrically
    towards the input and with large :math:`c` it can explode. With the penalty it stays of the
    same order through the layers.
(c) **Weight histograms**: clipping pushes the weights to the two extremes :math:`\pm c`; the
    penalised critic's weights are spread out.

Initialisation: penalised critics start from He (Kaiming-normal, fan-in) weights and zero
biases, the ``initialization='he'`` of ``gan_toy.py``'s ReLU layers, which keeps gradient norms
of the same order through a deep unconstrained ReLU net. Clipped critics start *uniformly inside
the box* :math:`U[-c, c]` (biases 0), so that any pile-up at :math:`\pm c` is the work of
training, not of clipping a large initialisation.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from wgan.config import OptimConfig
from wgan.constraints import input_gradient_norm, interpolates, make_constraints
from wgan.data import make_dataset, resolve_dataset_name
from wgan.errors import ConfigError
from wgan.experiments.clipping_vs_penalty_figures import (
    fraction_at_bound,
    gradients_figure,
    histogram_figure,
    surfaces_figure,
)
from wgan.experiments.common import (
    ExperimentResult,
    check_settings,
    experiment_entry,
    fit_critic,
    format_table,
    progress,
    split_list,
    write_results,
)
from wgan.experiments.verdict import (
    LECTURE_WGAN_GP,
    Verdict,
    decide,
    finite,
    fmt,
)
from wgan.figures.plotting import (
    critic_grid,
)
from wgan.gan.loss import GANLoss
from wgan.gan.players import NoisyDataGenerator
from wgan.nets import MLP
from wgan.objectives import make_objective

NAME = "clipping-vs-penalty"
DESCRIPTION = (
    "Gulrajani et al. Fig. 1: critics with weight clipping (c = 0.001, 0.01, 0.1) vs gradient "
    "penalty on toy data: value surfaces, per-layer gradient norms of a 12-layer critic, "
    "weight histograms"
)


@dataclass
class ClippingVsPenaltySettings:
    """Settings of the clipping-vs-penalty experiment (defaults: ~2-3 minutes on 2 CPU cores)."""

    datasets: str = "8gaussians,25gaussians,swissroll"  # comma-separated toy dataset names
    clips: str = "0.001,0.01,0.1"  # comma-separated clipping bounds c
    noise_std: float = 1.0  # fixed generator: real + N(0, noise_std^2) (gan_toy.py: 1.0)
    hidden: int = 256  # value-surface critics: MLP width (gan_toy.py: 512)
    depth: int = 3  # value-surface critics: hidden layers
    steps: int = 1000  # critic steps for each value-surface critic
    batch_size: int = 256  # samples per critic step
    clip_lr: float = 5e-5  # RMSProp learning rate of the clipped critics (WGAN)
    gp_lr: float = 1e-4  # Adam learning rate of the penalised critics, betas (0.5, 0.9)
    gp_weight: float = 0.1  # lambda (toy protocol of gan_toy.py)
    focus_dataset: str = "swissroll"  # deep-critic study; weight histograms (if in datasets)
    deep_depth: int = 12  # hidden layers of the deep critic
    deep_hidden: int = 128  # width of the deep critic
    deep_steps: int = 500  # critic steps for each deep critic
    eval_samples: int = 4096  # fresh samples for gaps and gradient norms
    resolution: int = 96  # contour grid points per axis
    plot_range: float = 3.0  # contour plots cover [-r, r]^2 (gan_toy.py: 3)
    seed: int = 0  # seed of data and initial weights
    threads: int = 1  # torch CPU threads while running (restored after); 0: leave as is

    def dataset_list(self) -> list[str]:
        return [resolve_dataset_name(d) for d in split_list(self.datasets)]

    def clip_list(self) -> list[float]:
        try:
            return [float(c) for c in split_list(self.clips)]
        except ValueError:
            raise ConfigError(
                f"clips must be comma-separated numbers, got {self.clips!r}"
            ) from None

    def validate(self) -> None:
        datasets = self.dataset_list()  # raises ConfigError for unknown names
        if not datasets:
            raise ConfigError("datasets must name at least one toy dataset")
        if "parallel_lines" in datasets or resolve_dataset_name(self.focus_dataset) == (
            "parallel_lines"
        ):
            raise ConfigError("parallel_lines is not a dataset of this experiment")
        clips = self.clip_list()
        checks = [
            (bool(clips), "clips must list at least one value"),
            (all(c > 0 for c in clips), "every clipping bound in clips must be > 0"),
            (self.noise_std > 0, "noise_std must be > 0"),
            (self.hidden >= 1 and self.deep_hidden >= 1, "hidden, deep_hidden must be >= 1"),
            (self.depth >= 1, "depth must be >= 1"),
            (self.deep_depth >= 2, "deep_depth must be >= 2"),
            (self.steps >= 1 and self.deep_steps >= 1, "steps, deep_steps must be >= 1"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.clip_lr > 0 and self.gp_lr > 0, "learning rates must be > 0"),
            (self.gp_weight >= 0, "gp_weight must be >= 0"),
            (self.eval_samples >= 2, "eval_samples must be >= 2"),
            (self.resolution >= 8, "resolution must be >= 8"),
            (self.plot_range > 0, "plot_range must be > 0"),
            (self.threads >= 0, "threads must be >= 0"),
        ]
        check_settings(checks)


SETTINGS = ClippingVsPenaltySettings

#: ``wgan experiment all --quick``: two datasets, smaller critics, coarser plots.
QUICK: dict[str, Any] = {
    "datasets": "8gaussians,swissroll",
    "hidden": 128,
    "steps": 400,
    "deep_steps": 200,
    "deep_hidden": 64,
    "eval_samples": 2048,
    "resolution": 48,
}


def method_name(clip: float | None) -> str:
    """``"clip c=0.01"`` for a clipped critic, ``"GP"`` for the penalised one."""
    return "GP" if clip is None else f"clip c={clip:g}"


# ------------------------------------------------------------------------------------------
# Training a critic against the fixed generator
# ------------------------------------------------------------------------------------------


def init_critic(critic: MLP, clip: float | None) -> None:
    """He init (zero biases) for a penalised critic; U[-c, c] (zero biases) for a clipped one."""
    with torch.no_grad():
        for m in critic.modules():
            if isinstance(m, nn.Linear):
                if clip is None:
                    nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                else:
                    nn.init.uniform_(m.weight, -clip, clip)
                nn.init.zeros_(m.bias)


def train_critic(
    dataset_name: str,
    clip: float | None,
    *,
    hidden: int,
    depth: int,
    steps: int,
    batch_size: int = 256,
    noise_std: float = 1.0,
    clip_lr: float = 5e-5,
    gp_lr: float = 1e-4,
    gp_weight: float = 0.1,
    seed: int = 0,
) -> MLP:
    """Train a WGAN critic against real + N(0, noise_std^2) noise; ``clip=None`` means GP.

    Clipped: RMSProp(clip_lr), parameters clipped to [-clip, clip] after every step.
    Penalised: Adam(gp_lr, betas (0.5, 0.9)), two-sided penalty with weight ``gp_weight``.
    """
    torch.manual_seed(seed)
    critic = MLP(2, 1, hidden, depth, "relu")
    init_critic(critic, clip)
    constraints = make_constraints(
        clip=0.0 if clip is None else clip,
        penalty="two_sided" if clip is None else "none",
        penalty_weight=gp_weight,
    )
    if clip is None:
        optimiser = OptimConfig("adam", gp_lr, (0.5, 0.9))
    else:
        optimiser = OptimConfig("rmsprop", clip_lr)
    objective = make_objective("wasserstein")
    dataset = make_dataset(dataset_name)
    gen = NoisyDataGenerator(dataset, noise_std, "cpu")
    g = torch.Generator().manual_seed(seed)
    loss = GANLoss(objective, constraints)
    return fit_critic(critic, loss, dataset, gen, steps, batch_size, optimiser, g)


def eval_batch(dataset_name: str, n: int, noise_std: float, seed: int) -> tuple[Tensor, Tensor]:
    """``n`` fresh real samples and ``n`` fixed-generator samples, each (n, 2)."""
    dataset = make_dataset(dataset_name)
    g = torch.Generator().manual_seed(seed)
    real = dataset.sample(n, generator=g)  # (n, 2)
    fake = NoisyDataGenerator(dataset, noise_std, "cpu").sample(n, g)  # (n, 2)
    return real, fake


# ------------------------------------------------------------------------------------------
# Measurements
# ------------------------------------------------------------------------------------------


def layer_gradient_norms(critic: MLP, real: Tensor, fake: Tensor) -> dict[str, Any]:
    """Per-layer gradient norms of the Wasserstein critic loss, computed in float64.

    ``L = -(mean f(real) - mean f(fake))`` on ``B`` real (B, 2) and ``B`` fake (B, 2) samples.
    For the activation ``h_l`` (2B, width) of hidden layer ``l = 1..depth`` (the output of its
    ReLU) we return the mean over the 2B samples of ``B * ||dL/dh_l[i]||_2`` =
    ``||df(x_i)/dh_l(x_i)||_2``. ``input`` is the same for the input layer (the input-gradient
    norm the penalty pulls to 1). A float64 copy of the critic is used so that gradients that
    vanish below float32's range (~1e-38) are still measured.

    Returns ``{"layers": [norm of layer 1, ..., norm of layer depth], "input": float}``.
    """
    net = copy.deepcopy(critic).double()
    acts: list[Tensor] = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: acts.append(out))
        for m in net.body
        if not isinstance(m, (nn.Linear, nn.Identity, nn.LayerNorm, nn.BatchNorm1d))
    ]
    try:
        x = torch.cat([real, fake]).double().requires_grad_(True)  # (2B, 2)
        out = net(x).reshape(-1)  # (2B,)
    finally:
        for h in hooks:
            h.remove()
    b = real.shape[0]
    loss = -(out[:b].mean() - out[b:].mean())
    grads = torch.autograd.grad(loss, [x, *acts])  # (2B, 2), then (2B, width) per layer
    norms = [float((g.flatten(1).norm(dim=1) * b).mean()) for g in grads]  # per sample, * B
    return {"input": norms[0], "layers": norms[1:]}


def weight_values(critic: nn.Module) -> np.ndarray:
    """All entries of the critic's weight matrices (biases excluded), flattened."""
    return np.concatenate(
        [
            m.weight.detach().reshape(-1).numpy()
            for m in critic.modules()
            if isinstance(m, nn.Linear)
        ]
    )


@torch.no_grad()
def critic_gap(critic: nn.Module, real: Tensor, fake: Tensor) -> float:
    """The critic's estimate ``mean f(real) - mean f(fake)`` (K * W1 for a K-Lipschitz f)."""
    return float(critic(real).mean() - critic(fake).mean())


def interpolate_grad_norm(critic: nn.Module, real: Tensor, fake: Tensor, seed: int) -> float:
    """Mean ||grad_x f(x_hat)|| on interpolates: the critic's effective Lipschitz scale."""
    g = torch.Generator().manual_seed(seed)
    return float(input_gradient_norm(critic, interpolates(real, fake, g)).mean())


# ------------------------------------------------------------------------------------------
# Run
# ------------------------------------------------------------------------------------------


@experiment_entry
def run(settings: ClippingVsPenaltySettings, run_dir: Path) -> ExperimentResult:
    """Train every (dataset, method) surface critic and the deep critics; plot; write results."""
    start = time.time()
    datasets = settings.dataset_list()
    clip_values: list[float | None] = [*settings.clip_list(), None]
    methods = [method_name(c) for c in clip_values]
    clips_by_method = {method_name(c): c for c in clip_values if c is not None}
    common = {
        "batch_size": settings.batch_size,
        "noise_std": settings.noise_std,
        "clip_lr": settings.clip_lr,
        "gp_lr": settings.gp_lr,
        "gp_weight": settings.gp_weight,
    }
    r = settings.plot_range
    bounds = (-r, r, -r, r)

    # (a) value surfaces: rows = datasets, columns = methods.
    surfaces: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    samples: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    surface_rows: list[dict[str, Any]] = []
    focus = resolve_dataset_name(settings.focus_dataset)
    hist_ds = focus if focus in datasets else datasets[0]
    hist_weights: dict[str, np.ndarray] = {}
    with progress((len(datasets) + 1) * len(methods), NAME) as bar:
        for i, ds in enumerate(datasets):
            real, fake = eval_batch(ds, settings.eval_samples, settings.noise_std, 10_000 + i)
            samples[ds] = (real[:500].numpy(), fake[:300].numpy())
            for j, (clip, method) in enumerate(zip(clip_values, methods, strict=True)):
                bar.set_postfix_str(f"{ds} {method}")
                critic = train_critic(
                    ds,
                    clip,
                    hidden=settings.hidden,
                    depth=settings.depth,
                    steps=settings.steps,
                    seed=settings.seed + 100 * i + j,
                    **common,
                )
                bar.update(1)
                surfaces[(ds, method)] = critic_grid(critic, bounds, settings.resolution)
                w = weight_values(critic)
                if ds == hist_ds:
                    hist_weights[method] = w
                surface_rows.append(
                    {
                        "dataset": ds,
                        "method": method,
                        "gap": critic_gap(critic, real, fake),
                        "interp_grad_norm": interpolate_grad_norm(critic, real, fake, 20_000 + i),
                        "frac_at_clip": fraction_at_bound(w, clip) if clip is not None else None,
                    }
                )

        # (b) deep critics on the focus dataset: per-layer gradient norms.
        deep_ds = focus
        real, fake = eval_batch(deep_ds, settings.eval_samples, settings.noise_std, 30_000)
        n_grad = min(settings.eval_samples, 1024)
        deep: dict[str, dict[str, Any]] = {}
        for j, (clip, method) in enumerate(zip(clip_values, methods, strict=True)):
            bar.set_postfix_str(f"deep critic, {method}")
            critic = train_critic(
                deep_ds,
                clip,
                hidden=settings.deep_hidden,
                depth=settings.deep_depth,
                steps=settings.deep_steps,
                seed=settings.seed + 5000 + j,
                **common,
            )
            bar.update(1)
            norms = layer_gradient_norms(critic, real[:n_grad], fake[:n_grad])
            w = weight_values(critic)
            layers = norms["layers"]
            deep[method] = {
                "layers": layers,
                "input": norms["input"],
                "last_over_first": layers[-1] / layers[0] if layers[0] > 0 else math.inf,
                "max_over_min": max(layers) / min(layers) if min(layers) > 0 else math.inf,
                "gap": critic_gap(critic, real, fake),
                "frac_at_clip": fraction_at_bound(w, clip) if clip is not None else None,
            }

    figures = [
        surfaces_figure(
            surfaces, samples, datasets, methods, settings, run_dir / "value_surfaces.png"
        ),
        gradients_figure(deep, settings, run_dir / "gradient_norms.png"),
        # (c) weights of the value-surface critics of one dataset.
        histogram_figure(
            hist_weights,
            clips_by_method,
            f"{settings.depth}x{settings.hidden} critics on {hist_ds}, {settings.steps} steps",
            run_dir / "weight_histograms.png",
        ),
    ]

    numbers = {
        "surfaces": surface_rows,
        "histogram_dataset": hist_ds,
        "deep": {
            "dataset": deep_ds,
            "depth": settings.deep_depth,
            "width": settings.deep_hidden,
            "methods": deep,
            "definition": "layers[l-1] = mean over 2B samples of ||d f(x)/d h_l(x)||_2 "
            "(= B ||dL/dh_l|| for the Wasserstein loss), h_l = output of ReLU l",
        },
        "protocol": "clip: RMSProp lr clip_lr, init U[-c, c]; GP: Adam lr gp_lr betas "
        "(0.5, 0.9), He init; fixed generator real + N(0, noise_std^2)",
        "seconds": time.time() - start,
    }
    write_results(run_dir, NAME, settings, numbers)
    verdicts = clipping_vs_penalty_verdicts(numbers, settings)

    def frac(v: float | None) -> Any:
        return "-" if v is None else v

    table_a = format_table(
        ["dataset", "method", "gap E f(real)-E f(fake)", "mean |grad f| interp", "frac at +-c"],
        [
            [
                row["dataset"],
                row["method"],
                row["gap"],
                row["interp_grad_norm"],
                frac(row["frac_at_clip"]),
            ]
            for row in surface_rows
        ],
    )
    table_b = format_table(
        [
            "method",
            "|df/dh_1|",
            "|df/dh_last|",
            "last/first",
            "max/min",
            "|df/dx|",
            "gap",
            "frac at +-c",
        ],
        [
            [
                m,
                rec["layers"][0],
                rec["layers"][-1],
                rec["last_over_first"],
                rec["max_over_min"],
                rec["input"],
                rec["gap"],
                frac(rec["frac_at_clip"]),
            ]
            for m, rec in deep.items()
        ],
    )
    table = "\n".join(
        [
            f"(a) {settings.depth}x{settings.hidden} critics vs fixed generator "
            f"(real + N(0, {settings.noise_std:g}^2)), {settings.steps} steps",
            table_a,
            "",
            f"(b) {settings.deep_depth}-layer critics (width {settings.deep_hidden}) on "
            f"{deep_ds}, {settings.deep_steps} steps: gradient norm per layer",
            table_b,
        ]
    )
    return ExperimentResult(NAME, run_dir, numbers, table, figures, verdicts)


# ----------------------------------------------------------------------------------------------
# Verdicts
# ----------------------------------------------------------------------------------------------

CVP_MIN_DEPTH = 6  # a geometric gain per layer needs several layers to show
CVP_MIN_DEEP_STEPS = 100  # the penalised deep critic must have been trained to be judged
CVP_CLIP_RATIO = 100.0  # clipped: the layer norms span at least two orders of magnitude ...
CVP_GP_RATIO = 10.0  # ... while the penalised critic's stay within one
#: At least this fraction of the clipped weights at ±c (uniform U[-c, c] starts put 1% there).
CVP_FRAC_AT_CLIP = 0.25


def clipping_vs_penalty_verdicts(numbers: dict[str, Any], settings: Any) -> list[Verdict]:
    """Clipping makes gradients vanish or explode through a deep critic while the penalty keeps
    them of one order, and pushes the weights to ±c (Gulrajani et al. 2017, Sec. 3, Fig. 1)."""
    source = "Gulrajani et al. 2017, Improved Training of WGANs, Sec. 3 and Fig. 1"
    deep = numbers["deep"]["methods"]
    # A clipped critic is judged only when its bound constrains it: either every layer's norm
    # is below 1 whatever the weights (||W||_2 <= width * c < 1: gradients must vanish), or the
    # weights can reach ±c in the run (about lr per RMSProp step, so steps * lr >= c). A bound
    # that is never reached leaves the critic effectively unconstrained: not a clipped critic.
    deep_reach = settings.deep_steps * settings.clip_lr
    clipped, skipped = {}, []
    for m, r in deep.items():
        if r["frac_at_clip"] is None:
            continue
        c = float(m.split("=", 1)[1])
        if settings.deep_hidden * c < 1 or c <= deep_reach:
            clipped[m] = r["max_over_min"]
        else:
            skipped.append(m)
    penalised = [r["max_over_min"] for r in deep.values() if r["frac_at_clip"] is None]
    gp = penalised[0] if penalised else math.nan
    small = (
        settings.deep_depth < CVP_MIN_DEPTH
        or settings.deep_steps < CVP_MIN_DEEP_STEPS
        or not clipped
        or not penalised
    )
    why = (
        f"needs deep_depth >= {CVP_MIN_DEPTH}, deep_steps >= {CVP_MIN_DEEP_STEPS} and both a "
        "penalised critic and a clipped one whose bound constrains it"
    )
    worst_clip = min(clipped.values(), default=math.nan)
    measured = (
        "max/min layer gradient norm: "
        + ", ".join(f"{m} {fmt(v)}" for m, v in clipped.items())
        + f"; GP {fmt(gp)}"
    )
    if skipped:
        measured += f" ({', '.join(skipped)}: bound not reached in deep_steps, not judged)"
    out = [
        decide(
            "Through a deep critic, weight clipping makes gradients vanish or explode; the "
            "gradient penalty keeps them of the same order",
            f"{source}; {LECTURE_WGAN_GP}",
            measured,
            finite(gp) and gp <= CVP_GP_RATIO and worst_clip >= CVP_CLIP_RATIO,
            not small,
            why,
        )
    ]
    # A weight moves by about lr per RMSProp step, so from U[-c, c] it can reach ±c only when
    # steps * lr >= c: larger bounds are not reachable in the run and not judged.
    fractions: dict[float, list[float]] = {}
    for row in numbers["surfaces"]:
        if row["frac_at_clip"] is not None:
            c = float(row["method"].split("=", 1)[1])
            fractions.setdefault(c, []).append(row["frac_at_clip"])
    reach = settings.steps * settings.clip_lr
    judged = {c: sum(v) / len(v) for c, v in fractions.items() if c <= reach}
    out.append(
        decide(
            "Weight clipping pushes the critic's weights to the two extremes ±c",
            f"{source}; {LECTURE_WGAN_GP}",
            "mean fraction of weights at ±c: "
            + ", ".join(f"c={c:g} {sum(v) / len(v):.2f}" for c, v in fractions.items()),
            bool(judged) and min(judged.values()) >= CVP_FRAC_AT_CLIP,
            bool(judged),
            f"steps x clip_lr = {reach:.3g} is below every c: no weight can reach ±c",
        )
    )
    return out
