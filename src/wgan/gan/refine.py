"""Critic-guided refinement of generated samples: DOT, DDLS and discriminator gradient flow.

A trained critic knows more about the data than the generator absorbed. These three methods spend
that knowledge at sampling time, with no training: each moves a generated sample x = G(z) (or its
noise z) along the critic's gradient for a fixed number of steps.

* ``"dot"``, discriminator optimal transport (Tanaka 2019): y moves to
  argmin_x ||x - y|| - D(x) / K_eff, solved by Adam (:func:`dot`).
* ``"ddls"``, discriminator-driven latent sampling (Che et al. 2020): Langevin dynamics on the
  latent energy E(z) = ||z||^2 / 2 - d(G(z)) (:func:`ddls`).
* ``"flow"``, discriminator gradient flow (Ansari et al. 2021, DGflow): x <- x + eta grad D(x)
  (:func:`gradient_flow`).

Each takes the critic as a function of x alone, ``critic(x) -> (B,)`` or ``(B, 1)`` scores (a
conditional critic bound to the samples' labels: D(c, .) at fixed c), and optionally a generator
``generator(z) -> x`` (bound to the same labels): given one, the method works in latent space (z
moves, x = G(z) follows, a label never changes), else in sample space. :func:`refine` is the one
entry point; :func:`refine_generated` is what :meth:`wgan.training.run.Run.samples` calls (eval
mode, chunks, one K_eff, the players' parameters checked unchanged).

Every gradient is taken with :func:`torch.autograd.grad` with respect to the samples only, so no
``.grad`` of a network parameter is written, and the networks are called in eval mode (batch norm
uses its running statistics, spectral norm takes no power-iteration step).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from wgan.errors import ConfigError, RunFailure, WganError
from wgan.gan import optim

Fn = Callable[[Tensor], Tensor]

METHODS = ("dot", "ddls", "flow")
DEFAULT_STEPS = {"dot": 100, "ddls": 1000, "flow": 50}
"""Steps when none are given. DOT: 100 Adam updates (the default of the author's code's
``make_image``; Adam moves a coordinate by about lr = 0.01 a step, about 1 in all). DDLS: 1000
Langevin steps; at eps = 0.01 the prior part of E contracts z by (1 - eps/2) per step, a time
constant of 2/eps = 200 steps, so 1000 steps are 5 time constants (e^-5 < 1% of the start's
deviation from the target left; about 80 s for 2,500 samples of toy-wgan-gp's 3 x 256 MLPs on 2
CPU cores). Flow: 50 steps of eta = 0.01 (a move of 0.5 x grad D)."""
OPTIONS: dict[str, dict[str, Any]] = {
    "dot": {"k_eff": None, "lr": 0.01, "betas": (0.0, 0.9), "norm_eps": 1e-3, "space": None},
    "ddls": {"eps": 0.01},
    "flow": {"eta": 0.01, "gamma": 0.0, "space": None},
}
"""Each method's options and their defaults (``space``: ``"sample"`` or ``"latent"``; None picks
sample space for vector data and latent space for images and text)."""
REFINE_VALUES = 2**20
"""Input values refined at once (:func:`refine_generated`): e.g. 4096 digits of 16 x 16."""


# -- the critic as a differentiable function ---------------------------------------------------


def scores(critic: Fn, x: Tensor) -> Tensor:
    """``critic(x)`` as one score per sample, (B,)."""
    out = critic(x)
    if out.numel() != x.shape[0]:
        raise WganError(f"the critic must give one score per sample, got shape {tuple(out.shape)}")
    return out.reshape(x.shape[0])


def _value_and_grad(fn: Fn, v: Tensor) -> tuple[Tensor, Tensor]:
    """fn(v) (B,) and the gradient of sum(fn(v)) with respect to v alone (zeros where fn does
    not depend on v)."""
    with torch.enable_grad():
        v = v.detach().requires_grad_(True)
        value = fn(v)
        if not value.requires_grad:  # a constant critic
            return value.detach(), torch.zeros_like(v)
        (grad,) = torch.autograd.grad(value.sum(), v, allow_unused=True)
    return value.detach(), torch.zeros_like(v) if grad is None else grad


def _through(critic: Fn, generator: Fn | None) -> Fn:
    """v -> D(v) (sample space) or v -> D(G(v)) (latent space)."""
    if generator is None:
        return lambda v: scores(critic, v)
    return lambda v: scores(critic, generator(v))


def effective_lipschitz(critic: Fn, start: Tensor, generator: Fn | None = None) -> float:
    """K_eff of Tanaka 2019: the largest |D(x_1) - D(x_2)| / ||x_1 - x_2|| over pairs of
    the samples ``start`` (B, ...), or |D(G(z_1)) - D(G(z_2))| / ||z_1 - z_2|| over pairs of noise
    when a ``generator`` is given (the latent-space constant).

    The pairs are (i, (i + floor(B/2)) mod B): B pairs of independently drawn samples, each scored
    by the critic at the labels of its first member (a conditional critic is bound to the batch's
    labels, so D(c_i, x_i) is compared with D(c_i, x_j)). Pairs at distance 0 are skipped. This is
    a measured lower bound of the Lipschitz constant on the samples' support, not the 1 a WGAN
    critic is meant to have.
    """
    n = start.shape[0]
    if n < 2:
        raise WganError("DOT measures K_eff on pairs of samples: refine at least 2 (or give k_eff)")
    fn = _through(critic, generator)
    with torch.no_grad():
        other = start.roll(n // 2, dims=0)
        rise = (fn(start) - fn(other)).abs()
        dist = (start - other).flatten(1).norm(dim=1)
    keep = dist > 0
    if not bool(keep.any()):
        raise RunFailure("cannot measure K_eff: every sample is the same point")
    k = float((rise[keep] / dist[keep]).max())
    if not math.isfinite(k) or k <= 0:
        raise RunFailure(
            f"the critic's measured K_eff is {k} on these samples (a constant critic?): "
            "DOT's D/K_eff is undefined; give k_eff"
        )
    return k


# -- the three methods ---------------------------------------------------------------------------


def dot(
    critic: Fn,
    start: Tensor,
    steps: int = DEFAULT_STEPS["dot"],
    generator: Fn | None = None,
    k_eff: float | None = None,
    lr: float = 0.01,
    betas: tuple[float, float] = (0.0, 0.9),
    norm_eps: float = 1e-3,
) -> Tensor:
    """Discriminator optimal transport (Tanaka 2019, NeurIPS): each sample y moves to

        T(y) = argmin_x  sqrt(||x - y||^2 + norm_eps^2) - D(x) / K_eff            (sample space)
        T(z0) = argmin_z sqrt(||z - z0||^2 + norm_eps^2) - D(G(z)) / K_eff       (latent space)

    The critic's training pushes D/K towards a Kantorovich potential of the 1-Wasserstein
    transport from the generator's distribution to the data's (the paper's analysis); for that
    potential the minimiser is where optimal transport sends y. ``norm_eps`` (a tiny epsilon
    inside the norm) makes the cost differentiable at x = y, where the search starts.

    The argmin is ``steps`` updates of Adam from x = y with ``lr`` (0.01) and ``betas`` (0,
    0.9), the Adam settings of the author's released code. ``k_eff`` defaults to
    :func:`effective_lipschitz` measured on ``start`` (through ``generator`` in latent space).
    Returns the moved ``start``.

    Closed forms: for D(x) = -K ||x - c|| the objective is ||x - y|| + (K/K_eff) ||x - c||, whose
    minimiser is c when K_eff < K and y when K_eff > K (triangle inequality).
    """
    if k_eff is None:
        k_eff = effective_lipschitz(critic, start, generator)
    y = start.detach()
    fn = _through(critic, generator)

    def objective(v: Tensor) -> Tensor:
        cost = ((v - y).flatten(1).square().sum(1) + norm_eps**2).sqrt()
        return cost - fn(v) / k_eff

    # Adam (Kingma & Ba 2015) on the samples, by the training step's own optimiser maths
    v = y.clone()
    state, h = optim.init_state("adam", [v]), optim.hyper(lr, betas, 0.0)
    for _ in range(steps):
        _, grad = _value_and_grad(objective, v)
        optim.update_("adam", [v], [grad], state, h)
    return v


def ddls(
    critic: Fn,
    start: Tensor,
    steps: int = DEFAULT_STEPS["ddls"],
    generator: Fn | None = None,
    eps: float = 0.01,
    rng: torch.Generator | None = None,
) -> Tensor:
    """Discriminator-driven latent sampling (Che et al. 2020, NeurIPS): ``steps`` of Langevin
    dynamics in latent space,

        z <- z - (eps/2) grad E(z) + sqrt(eps) xi,   xi ~ N(0, I),
        E(z) = ||z||^2 / 2 - d(G(z)),

    from z = ``start`` (draws of the prior N(0, I)). With d the discriminator's logit
    (minimax / non-saturating objectives: D = sigmoid(d), and d* = log p_data/p_g at the optimum)
    the target exp(-E(z)) in z pushes forward through G to p_g e^d = p_data, the data
    distribution; a WGAN critic's value is used as d the same way (an energy, as in the paper's
    WGAN experiments). The scores of other objectives are used as they are. With d = 0 the chain
    leaves N(0, I) invariant up to the step's discretisation (stationary variance 1/(1 - eps/4)).

    ``generator`` is required (the method works in latent space only); ``rng`` draws xi.
    """
    if generator is None:
        raise WganError("ddls works in latent space: give the generator")
    fn = _through(critic, generator)

    def energy(v: Tensor) -> Tensor:
        return 0.5 * v.flatten(1).square().sum(1) - fn(v)

    z, scale = start.detach().clone(), math.sqrt(eps)
    for _ in range(steps):
        _, grad = _value_and_grad(energy, z)
        xi = torch.randn(z.shape, generator=rng, device=z.device, dtype=z.dtype)
        z = z - 0.5 * eps * grad + scale * xi
    return z


def gradient_flow(
    critic: Fn,
    start: Tensor,
    steps: int = DEFAULT_STEPS["flow"],
    generator: Fn | None = None,
    eta: float = 0.01,
    gamma: float = 0.0,
    rng: torch.Generator | None = None,
) -> Tensor:
    """Discriminator gradient flow (Ansari et al. 2021, ICLR, DGflow): ``steps`` Euler steps

        x <- x + eta grad D(x) + sqrt(2 gamma eta) xi,   xi ~ N(0, I)

    (z <- z + eta grad_z D(G(z)) + ... in latent space, given a ``generator``). DGflow follows
    the Wasserstein gradient flow of an f-divergence to the data, whose velocity is
    -grad f'(p_g / p_data); with the density ratio read from the discriminator (log p_data/p_g
    ~ d, the KL case) that velocity is grad d. ``gamma`` > 0 adds the entropy term's noise; the
    default is the deterministic flow (gamma = 0). For a linear D(x) = a . x the flow moves every
    sample by steps x eta x a and raises D by steps x eta x ||a||^2.
    """
    fn = _through(critic, generator)
    v, scale = start.detach().clone(), math.sqrt(2.0 * gamma * eta)
    for _ in range(steps):
        _, grad = _value_and_grad(fn, v)
        v = v + eta * grad
        if gamma > 0:
            v = v + scale * torch.randn(v.shape, generator=rng, device=v.device, dtype=v.dtype)
    return v


# -- one entry point ------------------------------------------------------------------------------


def check_method(method: Any) -> str:
    """``method`` if it names a refinement method (a :class:`ConfigError` otherwise)."""
    if method not in METHODS:
        raise ConfigError(f"refine must be one of {', '.join(METHODS)}, got {method!r}")
    return method


def check_steps(steps: Any, method: str) -> int:
    """``steps`` as an int >= 0, or the method's default when None."""
    if steps is None:
        return DEFAULT_STEPS[method]
    if isinstance(steps, bool) or not isinstance(steps, int):
        raise ConfigError(f"refine steps must be an integer, got {steps!r}")
    if steps < 0:
        raise ConfigError(f"refine steps must be >= 0, got {steps}")
    if steps > 10**6:
        raise ConfigError(f"refine steps must be <= 1000000, got {steps}")
    return steps


def check_request(method: Any, steps: Any) -> tuple[str, int] | None:
    """A refinement request as ``(method, steps)`` (steps defaulted), or None for no refinement;
    ``steps`` without a ``method`` is an error."""
    if method is None:
        if steps is not None:
            raise ConfigError("refine_steps needs refine (dot, ddls or flow)")
        return None
    method = check_method(method)
    return method, check_steps(steps, method)


def _number(value: Any) -> bool:
    """Whether ``value`` is a finite real number (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_options(method: str, options: dict[str, Any]) -> dict[str, Any]:
    """The method's options: its defaults, updated by ``options`` (checked)."""
    allowed = OPTIONS[method]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        known = ", ".join(allowed)
        raise ConfigError(f"{method} takes the options {known}; got {', '.join(unknown)}")
    out = {**allowed, **options}
    positive = {"lr", "norm_eps", "eps", "eta"} | (
        {"k_eff"} if out.get("k_eff") is not None else set()
    )
    for key in sorted(positive & set(out)):
        if not _number(out[key]) or out[key] <= 0:
            raise ConfigError(
                f"{method} option {key} must be a finite number > 0, got {out[key]!r}"
            )
    gamma = out.get("gamma", 0.0)
    if not _number(gamma) or gamma < 0:
        raise ConfigError(f"{method} option gamma must be a finite number >= 0, got {gamma!r}")
    if out.get("space") not in (None, "sample", "latent"):
        raise ConfigError(f"space must be 'sample' or 'latent', got {out['space']!r}")
    betas = out.get("betas", (0.0, 0.0))
    if not (
        isinstance(betas, tuple | list)
        and len(betas) == 2
        and all(_number(b) and 0 <= b < 1 for b in betas)
    ):
        raise ConfigError(f"dot option betas must lie in [0, 1), got {out['betas']!r}")
    return out


def refine(
    method: str,
    critic: Fn,
    start: Tensor,
    generator: Fn | None = None,
    steps: int | None = None,
    rng: torch.Generator | None = None,
    **options: Any,
) -> Tensor:
    """Refine ``start`` with the critic by ``method`` (``"dot"``, ``"ddls"`` or ``"flow"``).

    ``start`` is noise z (B, latent) when a ``generator`` (z -> x) is given (latent space: the
    result is the moved z; x = G(z) follows), else samples x (B, ...) (sample space: the moved
    x). ``steps`` defaults to :data:`DEFAULT_STEPS`; 0 returns ``start`` unchanged. ``options``
    are the method's keywords (:data:`OPTIONS`; ``space`` belongs to
    :func:`refine_generated`); ``rng`` draws the noise of DDLS and of a noisy flow.
    """
    method = check_method(method)
    steps = check_steps(steps, method)
    opts = check_options(method, options)
    opts.pop("space", None)
    if steps == 0:
        return start.detach().clone()
    if method == "dot":
        return dot(critic, start, steps, generator, **opts)
    if method == "ddls":
        return ddls(critic, start, steps, generator, rng=rng, **opts)
    return gradient_flow(critic, start, steps, generator, rng=rng, **opts)


def draw_noise(
    gen: nn.Module, n: int, rng: torch.Generator, labels: Tensor | None, device: Any
) -> tuple[Tensor, Tensor | None]:
    """The noise (n, latent) and labels that ``gen.sample(n, rng, labels)`` draws, in its order
    (:class:`wgan.gan.players.LatentGenerator`): ``gen(z, labels)`` is then its sample."""
    z = gen.noise(n, rng, device)
    draw = getattr(gen, "draw_conditions", None)  # uniform classes or attribute vectors
    if labels is None and draw is not None:
        labels = draw(n, rng, device)
    return z, labels


def _versions(*modules: nn.Module) -> list[int]:
    """The in-place version counters of the modules' parameters and buffers."""
    return [t._version for m in modules for t in (*m.parameters(), *m.buffers())]


def refine_generated(
    method: str,
    gen: nn.Module,
    critic: nn.Module,
    score_for: Callable[[Tensor | None], Fn],
    x: Tensor,
    z: Tensor,
    labels: Tensor | None = None,
    steps: int | None = None,
    rng: torch.Generator | None = None,
    **options: Any,
) -> Tensor:
    """Generated samples ``x`` = gen(z, labels) (n, ...) refined by ``method``: the moved x
    (sample space) or gen(z', labels) at the moved noise z' (latent space; the labels are kept).

    ``critic`` is the critic module (put in eval mode, as is ``gen``, and restored after);
    ``score_for(labels)`` gives it as a function of x at those labels (D(c, .) for a conditional
    critic). The option ``space`` (default: sample space for vectors (n, dim), latent space for
    images and text) picks where to move; DDLS is latent only. Samples are refined in chunks of
    :data:`REFINE_VALUES` values; DOT's K_eff is measured once, on the first chunk. A change to
    a parameter or buffer of either network is a bug and raises :class:`RuntimeError`.
    """
    method = check_method(method)
    steps = check_steps(steps, method)
    opts = check_options(method, options)
    space = opts.pop("space", None) or ("sample" if x.dim() == 2 else "latent")
    if method == "ddls":
        space = "latent"
    if steps == 0:
        return x
    per = max(1, x[0].numel(), z[0].numel())
    chunk = max(2, REFINE_VALUES // per)
    before, modes = _versions(gen, critic), (gen.training, critic.training)
    gen.eval()
    critic.eval()
    out = []
    try:
        for i in range(0, x.shape[0], chunk):
            lab = None if labels is None else labels[i : i + chunk]
            score = score_for(lab)
            g = None if space == "sample" else (lambda v, lab=lab: gen(v, lab))
            start = x[i : i + chunk] if space == "sample" else z[i : i + chunk]
            if method == "dot" and opts["k_eff"] is None:
                opts["k_eff"] = effective_lipschitz(score, start, g)
            moved = refine(method, score, start, g, steps, rng, **opts)
            with torch.no_grad():
                out.append(moved if g is None else g(moved))
    finally:
        gen.train(modes[0])
        critic.train(modes[1])
    if _versions(gen, critic) != before:
        raise RuntimeError("refinement changed a parameter or buffer of the generator or critic")
    refined = torch.cat(out)
    if not bool(torch.isfinite(refined).all()):
        raise RunFailure(
            f"refinement by {method} ({steps} steps) produced non-finite samples: "
            "try fewer steps or a smaller step size"
        )
    return refined
