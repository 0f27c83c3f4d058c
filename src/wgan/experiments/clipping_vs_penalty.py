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
from wgan.experiments import framework as fw
from wgan.experiments.common import fit_critic, format_table, public, split_list
from wgan.experiments.verdict import Verdict, decide, finite, fmt
from wgan.figures import plotting
from wgan.gan.loss import GANLoss
from wgan.gan.players import NoisyDataGenerator
from wgan.nets import MLP
from wgan.objectives import make_objective


@dataclass
class ClippingVsPenaltySettings(fw.Settings):
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

    #: The training-config keys these settings mirror (``train.steps=`` for ``steps=``).
    TRAIN_KEYS = {
        "hidden": ("critic.hidden",),
        "depth": ("critic.depth",),
        "batch_size": ("data.batch_size",),
        "gp_weight": ("constraint.penalty_weight",),
        "eval_samples": ("train.eval_samples",),
    }
    LIMITS = {
        "noise_std": "> 0",
        "hidden": ">= 1",
        "deep_hidden": ">= 1",
        "depth": ">= 1",
        "deep_depth": ">= 2",
        "steps": ">= 1",
        "deep_steps": ">= 1",
        "batch_size": ">= 1",
        "clip_lr": "> 0",
        "gp_lr": "> 0",
        "gp_weight": ">= 0",
        "eval_samples": ">= 2",
        "resolution": ">= 8",
        "plot_range": "> 0",
    }

    def dataset_list(self) -> list[str]:
        """The canonical dataset names (ConfigError for an unknown one)."""
        return [resolve_dataset_name(d) for d in split_list(self.datasets)]

    def clip_list(self) -> list[float]:
        """The clipping bounds (ConfigError when one is not a number)."""
        try:
            return [float(c) for c in split_list(self.clips)]
        except ValueError:
            raise ConfigError(f"clips must be comma-separated numbers: {self.clips!r}") from None

    def checks(self) -> list[tuple[bool, str]]:
        datasets, clips = self.dataset_list(), self.clip_list()
        lines = "parallel_lines" in [*datasets, resolve_dataset_name(self.focus_dataset)]
        return [
            *super().checks(),
            (bool(datasets), "datasets must name at least one toy dataset"),
            (not lines, "datasets and focus_dataset cannot be parallel_lines"),
            (bool(clips), "clips must list at least one value"),
            (all(c > 0 for c in clips), "every clipping bound in clips must be > 0"),
        ]


def methods_of(s: ClippingVsPenaltySettings) -> list[fw.Method]:
    """One clipped critic per bound of ``clips`` (``"clip c=0.01"``; ``info["clip"]``: c),
    then the penalised one, ``"GP"``."""
    clipped = [fw.Method(f"clip c={c:g}", f"clip c={c:g}", info={"clip": c}) for c in s.clip_list()]
    return [*clipped, fw.Method("GP", "gradient penalty", info={"clip": None})]


def train_critic(
    dataset_name: str,
    clip: float | None,
    size: tuple[int, int, int],
    seed: int = 0,
    settings: ClippingVsPenaltySettings | None = None,
) -> MLP:
    """Train a WGAN critic of ``size`` = (width, hidden layers, steps) against real +
    N(0, noise_std^2) noise: clipped to [-clip, clip] after every step (init U[-c, c],
    RMSProp(clip_lr)) or, with ``clip=None``, penalised (He init, Adam(gp_lr, betas (0.5, 0.9)),
    two-sided penalty of weight ``gp_weight``); biases start at 0. Batch, noise, learning rates
    and ``gp_weight`` come from ``settings`` (default: the defaults)."""
    s, (hidden, depth, steps) = settings or ClippingVsPenaltySettings(), size
    torch.manual_seed(seed)
    critic = MLP(2, 1, hidden, depth, "relu")
    for m in critic.modules():  # nn.init runs without autograd
        if isinstance(m, nn.Linear):
            if clip is None:
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            else:
                nn.init.uniform_(m.weight, -clip, clip)
            nn.init.zeros_(m.bias)
    penalty = "two_sided" if clip is None else "none"
    constraints = make_constraints(clip=clip or 0.0, penalty=penalty, penalty_weight=s.gp_weight)
    loss = GANLoss(make_objective("wasserstein"), constraints)
    adam, rmsprop = OptimConfig("adam", s.gp_lr, (0.5, 0.9)), OptimConfig("rmsprop", s.clip_lr)
    dataset, g = make_dataset(dataset_name), torch.Generator().manual_seed(seed)
    fixed = NoisyDataGenerator(dataset, s.noise_std, "cpu")
    optimiser = adam if clip is None else rmsprop
    return fit_critic(critic, loss, dataset, fixed, steps, s.batch_size, optimiser, g)


def eval_batch(dataset_name: str, n: int, noise_std: float, seed: int) -> tuple[Tensor, Tensor]:
    """``n`` fresh real samples and ``n`` fixed-generator samples, each (n, 2)."""
    dataset, g = make_dataset(dataset_name), torch.Generator().manual_seed(seed)
    real = dataset.sample(n, generator=g)  # (n, 2), drawn before the fakes
    return real, NoisyDataGenerator(dataset, noise_std, "cpu").sample(n, g)


def layer_gradient_norms(critic: MLP, real: Tensor, fake: Tensor) -> dict[str, Any]:
    """Per-layer gradient norms of the Wasserstein critic loss, computed in float64.

    ``L = -(mean f(real) - mean f(fake))`` on ``B`` real (B, 2) and ``B`` fake (B, 2) samples.
    For the activation ``h_l`` (2B, width) of hidden layer ``l = 1..depth`` (the output of its
    ReLU) we return the mean over the 2B samples of ``B * ||dL/dh_l[i]||_2`` =
    ``||df(x_i)/dh_l(x_i)||_2``. ``input`` is the same for the input layer (the input-gradient
    norm the penalty pulls to 1). A float64 copy of the critic is used so that gradients that
    vanish below float32's range (~1e-38) are still measured. Returns
    ``{"layers": [norm of layer 1, ..., norm of layer depth], "input": float}``.
    """
    net, acts = copy.deepcopy(critic).double(), []  # the hooks go with the copy
    for activation in net.body[2::3]:  # each hidden layer is (Linear, norm, activation)
        activation.register_forward_hook(lambda _m, _i, out: acts.append(out))
    x = torch.cat([real, fake]).double().requires_grad_(True)  # (2B, 2)
    out = net(x).reshape(-1)  # (2B,)
    b = real.shape[0]
    loss = -(out[:b].mean() - out[b:].mean())
    grads = torch.autograd.grad(loss, [x, *acts])  # (2B, 2), then (2B, width) per layer
    norms = [float((g.flatten(1).norm(dim=1) * b).mean()) for g in grads]  # per sample, * B
    return {"layers": norms[1:], "input": norms[0]}


def weight_values(critic: nn.Module) -> np.ndarray:
    """All entries of the critic's weight matrices (biases excluded), flattened."""
    linear = [m for m in critic.modules() if isinstance(m, nn.Linear)]
    return np.concatenate([m.weight.detach().reshape(-1).numpy() for m in linear])


def fraction_at_bound(weights: np.ndarray, clip: float, tol: float = 0.01) -> float:
    """Fraction of weights within ``tol * c`` of +-c (i.e. ``|w| >= (1 - tol) c``)."""
    return float(np.mean(np.abs(weights) >= (1.0 - tol) * clip))


def surfaces_figure(records: list[dict[str, Any]], s: Any, path: Path) -> Path:
    """(a) Value surfaces over the real and fixed-generator samples, a row per dataset and a
    column per method (``records``: the surface cells', with ``_surface`` and ``_samples``)."""
    rows, cols = ([*dict.fromkeys(r[key] for r in records)] for key in ("dataset", "method"))
    size = (3.3 * len(cols), 3.3 * len(rows))
    fig, axes = plotting.subplots(len(rows), len(cols), figsize=size, squeeze=False)
    noise = f"fixed generator (real + N(0, {s.noise_std:g}^2))"
    for r in records:
        ax = axes[rows.index(r["dataset"])][cols.index(r["method"])]
        (X, Y, Z), (real, fake) = r["_surface"], r["_samples"]
        ax.contourf(X, Y, Z, levels=20, cmap="viridis")
        ax.contour(X, Y, Z, levels=10, colors="k", linewidths=0.3)
        ax.scatter(fake[:, 0], fake[:, 1], s=2, c="tab:green", alpha=0.4, label=noise)
        ax.scatter(real[:, 0], real[:, 1], s=2, c="tab:orange", label="real")
        lim = (-s.plot_range, s.plot_range)
        ax.set(xlim=lim, ylim=lim, aspect="equal")
        ax.set_title(f"{r['dataset']}: {r['method']}", fontsize=9)
        ax.set_xlabel("x1", fontsize=8)
        ax.set_ylabel("x2", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle(
        "Critic value surfaces (filled contours of f): weight clipping (RMSProp 5e-5) vs "
        f"gradient penalty (lambda={s.gp_weight:g}, Adam 1e-4)"
    )
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    # beyond the right edge: the contour maps fill every panel
    handles, labels = axes[0][0].get_legend_handles_labels()
    plotting.legend_right_of_figure(fig, handles, labels, markerscale=5, fontsize=9)
    return plotting.save_figure(fig, path)


def gradients_figure(deep: dict[str, dict[str, Any]], s: Any, path: Path) -> Path:
    """(b) Each deep critic's gradient norm per layer (``deep``: method -> ``layers``)."""
    fig, ax = plotting.subplots(figsize=(6.5, 4.5))
    for k, (method, rec) in enumerate(deep.items()):
        norms = np.array(rec["layers"], dtype=float)
        norms = np.where(norms > 0, norms, np.nan)  # a dead layer has no point on a log scale
        style = "-o" if method == "GP" else "--s"
        ax.plot(np.arange(1, len(norms) + 1), norms, style, color=f"C{k}", ms=4, label=method)
    ax.set(yscale="log", xlabel="critic layer l (1 = next to the input)")
    ax.set_ylabel("mean ||df/dh_l|| over a batch (log scale)")
    title = f"(width {s.deep_hidden}, {s.focus_dataset})"
    ax.set_title(f"Gradient norms through a {s.deep_depth}-layer ReLU critic {title}", fontsize=10)
    plotting.legend_beside(ax, fontsize=8)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    return plotting.save_figure(fig, path)


def histogram_figure(records: list[dict[str, Any]], where: str, path: Path) -> Path:
    """(c) The critics' weights, a panel per record (``method``, ``_weights``, ``_clip``)."""
    n = len(records)
    fig, axes = plotting.subplots(1, n, figsize=(3.6 * n, 3.4), squeeze=False)
    for ax, r in zip(axes[0], records, strict=True):
        w, c = r["_weights"], r["_clip"]
        if c is not None:
            label = f"weights / c ({fraction_at_bound(w, c):.0%} at +-c)"
            ax.hist(w / c, bins=60, range=(-1.05, 1.05), color="tab:red", label=label)
        else:
            q = float(np.percentile(np.abs(w), 99.5))
            label = "weights (unconstrained; central 99.5%)"
            ax.hist(w, bins=60, range=(-q, q), color="tab:blue", label=label)
        ax.set(xlabel="weight" if c is None else "weight / c", ylabel="count")
        ax.set_title(r["method"], fontsize=10)
        plotting.legend_beside(ax)
    fig.suptitle(f"Critic weight histograms ({where}): clipping piles weights at +-c")
    fig.tight_layout()
    return plotting.save_figure(fig, path)


CVP_MIN_DEPTH = 6  # a geometric gain per layer needs several layers to show
CVP_MIN_DEEP_STEPS = 100  # the penalised deep critic must have been trained to be judged
CVP_CLIP_RATIO = 100.0  # clipped: the layer norms span at least two orders of magnitude ...
CVP_GP_RATIO = 10.0  # ... while the penalised critic's stay within one
#: At least this fraction of the clipped weights at ±c (uniform U[-c, c] starts put 1% there).
CVP_FRAC_AT_CLIP = 0.25


def bound_of(method: str) -> float:
    """The clipping bound c of a clipped critic's name, ``"clip c=0.01"`` -> 0.01."""
    return float(method.split("=", 1)[1])


@fw.register
class ClippingVsPenalty(fw.Experiment):
    """WGAN critics with weight clipping or the gradient penalty against a fixed generator."""

    name = "clipping-vs-penalty"
    description = (
        "Gulrajani et al. Fig. 1: critics with weight clipping (c = 0.001, 0.01, 0.1) vs gradient "
        "penalty on toy data: value surfaces, per-layer gradient norms of a 12-layer critic, "
        "weight histograms"
    )
    Settings = ClippingVsPenaltySettings
    #: ``wgan experiment all --quick``: two datasets, smaller critics, coarser plots.
    quick = {
        "datasets": "8gaussians,swissroll",
        "hidden": 128,
        "steps": 400,
        "deep_steps": 200,
        "deep_hidden": 64,
        "eval_samples": 2048,
        "resolution": 48,
    }

    def cells(self, s: ClippingVsPenaltySettings) -> list[fw.Cell]:
        """(a) Every dataset i x method j (seed ``seed + 100 i + j``, ``value`` i), then (b)
        every method's deep critic on the focus dataset (seed ``seed + 5000 + j``, ``"deep"``)."""
        methods, focus = list(enumerate(methods_of(s))), resolve_dataset_name(s.focus_dataset)
        grid = [
            fw.Cell(m, d, s.seed + 100 * i + j, i)
            for i, d in enumerate(s.dataset_list())
            for j, m in methods
        ]
        return grid + [fw.Cell(m, focus, s.seed + 5000 + j, "deep") for j, m in methods]

    def measure(self, s: ClippingVsPenaltySettings, cell: fw.Cell, ctx: fw.Context) -> dict:
        """Train the cell's critic; its gap E f(real) - E f(fake) (K * W1 for a K-Lipschitz f),
        the fraction of its weights at ±c, and (a) its mean input-gradient norm on
        interpolates, value surface and weights, or (b) its gradient norm per layer."""
        deep, clip, i = cell.value == "deep", cell.method.info["clip"], cell.value
        size = (s.deep_hidden, s.deep_depth, s.deep_steps) if deep else (s.hidden, s.depth, s.steps)
        critic = train_critic(cell.dataset, clip, size, cell.seed, s)
        seed = 30_000 if deep else 10_000 + i
        real, fake = eval_batch(cell.dataset, s.eval_samples, s.noise_std, seed)  # (n, 2) each
        w = weight_values(critic)
        frac = None if clip is None else fraction_at_bound(w, clip)
        with torch.no_grad():
            gap = float(critic(real).mean() - critic(fake).mean())
        out = {"dataset": cell.dataset, "method": cell.method.name}
        if deep:
            n = min(s.eval_samples, 1024)
            norms = layer_gradient_norms(critic, real[:n], fake[:n])  # {"layers", "input"}
            layers, low = norms["layers"], min(norms["layers"])
            last_over_first = layers[-1] / layers[0] if layers[0] > 0 else math.inf
            max_over_min = max(layers) / low if low > 0 else math.inf
            ratios = {"last_over_first": last_over_first, "max_over_min": max_over_min}
            return {**out, "deep": {**norms, **ratios, "gap": gap, "frac_at_clip": frac}}
        x_hat = interpolates(real, fake, torch.Generator().manual_seed(20_000 + i))
        grad = float(input_gradient_norm(critic, x_hat).mean())
        box = (-s.plot_range, s.plot_range) * 2  # [-r, r]^2 as (xmin, xmax, ymin, ymax)
        surface = plotting.critic_grid(critic, box, s.resolution)  # X, Y, Z
        samples = (real[:500].numpy(), fake[:300].numpy())
        return {
            **out,
            "gap": gap,
            "interp_grad_norm": grad,
            "frac_at_clip": frac,
            "_surface": surface,
            "_samples": samples,
            "_weights": w,
            "_clip": clip,
        }

    def summarise(self, s: ClippingVsPenaltySettings, records: list[dict]) -> dict[str, Any]:
        datasets, focus = s.dataset_list(), resolve_dataset_name(s.focus_dataset)
        methods = {r["method"]: r["deep"] for r in records if "deep" in r}
        deep = {"dataset": focus, "depth": s.deep_depth, "width": s.deep_hidden, "methods": methods}
        deep["definition"] = (
            "layers[l-1] = mean over 2B samples of ||d f(x)/d h_l(x)||_2 "
            "(= B ||dL/dh_l|| for the Wasserstein loss), h_l = output of ReLU l"
        )
        return {
            "surfaces": [public(r) for r in records if "deep" not in r],
            "histogram_dataset": focus if focus in datasets else datasets[0],
            "deep": deep,
            "protocol": "clip: RMSProp lr clip_lr, init U[-c, c]; GP: Adam lr gp_lr betas "
            "(0.5, 0.9), He init; fixed generator real + N(0, noise_std^2)",
        }

    def figures(self, s, numbers, records, run_dir: Path) -> list[Path]:
        surfaces, where = [r for r in records if "_surface" in r], numbers["histogram_dataset"]
        weights = [r for r in surfaces if r["dataset"] == where]
        what = f"{s.depth}x{s.hidden} critics on {where}, {s.steps} steps"
        return [
            surfaces_figure(surfaces, s, run_dir / "value_surfaces.png"),
            gradients_figure(numbers["deep"]["methods"], s, run_dir / "gradient_norms.png"),
            histogram_figure(weights, what, run_dir / "weight_histograms.png"),
        ]

    def table(self, s: ClippingVsPenaltySettings, numbers: dict[str, Any]) -> str:
        def frac(v: float | None) -> Any:
            return "-" if v is None else v

        rows_a = [
            [r["dataset"], r["method"], r["gap"], r["interp_grad_norm"], frac(r["frac_at_clip"])]
            for r in numbers["surfaces"]
        ]
        rows_b = [
            [
                m,
                r["layers"][0],
                r["layers"][-1],
                r["last_over_first"],
                r["max_over_min"],
                r["input"],
                r["gap"],
                frac(r["frac_at_clip"]),
            ]
            for m, r in numbers["deep"]["methods"].items()
        ]
        head_a = ["dataset", "method", "gap E f(real)-E f(fake)", "mean |grad f| interp"]
        head_b = ["method", "|df/dh_1|", "|df/dh_last|", "last/first", "max/min", "|df/dx|", "gap"]
        return (
            f"(a) {s.depth}x{s.hidden} critics vs fixed generator "
            f"(real + N(0, {s.noise_std:g}^2)), {s.steps} steps\n"
            + format_table([*head_a, "frac at +-c"], rows_a)
            + f"\n\n(b) {s.deep_depth}-layer critics (width {s.deep_hidden}) on "
            f"{numbers['deep']['dataset']}, {s.deep_steps} steps: gradient norm per layer\n"
            + format_table([*head_b, "frac at +-c"], rows_b)
        )

    def verdicts(self, numbers: dict[str, Any], s: ClippingVsPenaltySettings) -> list[Verdict]:
        """Clipping makes gradients vanish or explode through a deep critic while the penalty
        keeps them of one order, and pushes the weights to ±c (Gulrajani et al. 2017, Sec. 3,
        Fig. 1)."""
        deep = numbers["deep"]["methods"]
        source = "Gulrajani et al. 2017, Improved Training of WGANs, Sec. 3 and Fig. 1"
        # A clipped critic is judged only when its bound constrains it: either every layer's norm
        # is below 1 whatever the weights (||W||_2 <= width * c < 1: gradients must vanish), or the
        # weights can reach ±c in the run (about lr per RMSProp step, so steps * lr >= c). A bound
        # that is never reached leaves the critic effectively unconstrained: not a clipped critic.
        bounds = {m: bound_of(m) for m in deep if m != "GP"}
        reach = s.deep_steps * s.clip_lr
        constrained = [m for m, c in bounds.items() if s.deep_hidden * c < 1 or c <= reach]
        clipped = {m: deep[m]["max_over_min"] for m in constrained}
        skipped = [m for m in bounds if m not in clipped]
        gp = deep["GP"]["max_over_min"] if "GP" in deep else math.nan
        small = s.deep_depth < CVP_MIN_DEPTH or s.deep_steps < CVP_MIN_DEEP_STEPS
        worst_clip = min(clipped.values(), default=math.nan)
        ratios = ", ".join(f"{m} {fmt(v)}" for m, v in clipped.items())
        measured = f"max/min layer gradient norm: {ratios}; GP {fmt(gp)}"
        if skipped:
            measured += f" ({', '.join(skipped)}: bound not reached in deep_steps, not judged)"
        vanish = decide(
            "Through a deep critic, weight clipping makes gradients vanish or explode; the "
            "gradient penalty keeps them of the same order",
            source,
            measured,
            finite(gp) and gp <= CVP_GP_RATIO and worst_clip >= CVP_CLIP_RATIO,
            not (small or not clipped or "GP" not in deep),
            f"needs deep_depth >= {CVP_MIN_DEPTH}, deep_steps >= {CVP_MIN_DEEP_STEPS} and both a "
            "penalised critic and a clipped one whose bound constrains it",
        )
        # As above, from U[-c, c] a weight reaches ±c only when steps * lr >= c: others not judged.
        fractions: dict[float, list[float]] = {}
        for row in numbers["surfaces"]:
            if row["frac_at_clip"] is not None:
                fractions.setdefault(bound_of(row["method"]), []).append(row["frac_at_clip"])
        mean = {c: sum(v) / len(v) for c, v in fractions.items()}
        reach = s.steps * s.clip_lr
        judged = [f for c, f in mean.items() if c <= reach]
        extremes = decide(
            "Weight clipping pushes the critic's weights to the two extremes ±c",
            source,
            "mean fraction of weights at ±c: "
            + ", ".join(f"c={c:g} {f:.2f}" for c, f in mean.items()),
            bool(judged) and min(judged) >= CVP_FRAC_AT_CLIP,
            bool(judged),
            f"steps x clip_lr = {reach:.3g} is below every c: no weight can reach ±c",
        )
        return [vanish, extremes]
