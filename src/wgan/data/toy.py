"""Toy 2-D datasets, generated in code and sampled without end.

Every dataset draws its samples with *only* the ``torch.Generator`` it is given (or torch's
global generator when given ``None``), in a handful of vectorised tensor calls; no numpy or
Python ``random`` state is touched. A run that re-seeds (or restores the state of) its
generator therefore sees exactly the same stream of real samples again, which is what makes
training runs reproducible and resumable.

Protocol
--------
``eight_gaussians``, ``twentyfive_gaussians`` and ``swiss_roll`` follow the toy protocol of the
WGAN-GP authors (Gulrajani et al. 2017, "Improved Training of Wasserstein GANs",
arXiv 1704.00028, file ``gan_toy.py`` of their code release):

* 8 Gaussians: centres ``2 * (±1, 0), 2 * (0, ±1), 2 * (±1/√2, ±1/√2)``; a point is
  ``centre + N(0, 0.02² I)`` and the whole point is then divided by 1.414.
* 25 Gaussians: centres ``(2i, 2j)`` for ``i, j ∈ {-2, ..., 2}``, std 0.05, then divided by 2.828.
* Swiss roll: scikit-learn's ``make_swiss_roll(noise=0.25)``, dimensions 0 and 2, divided by 7.5.

``ring`` and ``grid`` are the usual mode-collapse benchmarks (e.g. VEEGAN, arXiv 1705.07761;
PacGAN, arXiv 1712.04086) with configurable geometry. ``parallel_lines`` is Example 1 of
Arjovsky, Chintala & Bottou 2017 ("Wasserstein GAN", arXiv 1701.07875): the real data is
``(0, Z)`` with ``Z ~ U[0, 1]`` and the model family is ``(θ, Z)``.

For the mixtures, ``modes`` and ``sigma`` are given in the *final* (scaled) coordinates, so
``modes`` are the centres after the division and ``sigma`` is the per-coordinate std after it.

Densities
---------
The Gaussian mixtures (``eight_gaussians``, ``twentyfive_gaussians``, ``ring``, ``grid``) have a
closed-form density (``has_density`` is True): an equal-weight mixture of isotropic Gaussians
with the final modes ``μ_k`` and std ``σ``,

    log p(x) = logsumexp_k( -‖x - μ_k‖² / (2σ²) ) - log M - log(2πσ²),

and the exact probability of any axis-aligned box (:meth:`GaussianMixture.cell_masses`). The
swiss roll (a noisy curve: a convolution integral over the curve parameter with no closed form)
and the parallel lines (a measure on a segment, with no density w.r.t. area in the plane) have
``has_density`` False and their ``log_density`` raises :class:`wgan.errors.WganError`.
"""

from __future__ import annotations

import difflib
import inspect
import math
import numbers
from typing import Any

import torch

from wgan.data.checks import (
    check_edges,
    check_generator,
    check_int,
    check_nonnegative,
    check_points,
    check_positive,
    check_real,
)
from wgan.errors import ConfigError, WganError

__all__ = [
    "ALIASES",
    "DATASETS",
    "MAX_MODES",
    "EightGaussians",
    "GaussianMixture",
    "Grid",
    "ParallelLines",
    "Ring",
    "SwissRoll",
    "ToyDataset",
    "TwentyFiveGaussians",
    "make_dataset",
    "resolve_dataset_name",
]


#: Most modes a ring or grid may have (a grid of 100 x 100): the mode metrics and the exact
#: density hold (samples x modes) tables, so far more would only exhaust memory.
MAX_MODES = 10_000


def _interval_masses(edges: torch.Tensor, centres: torch.Tensor, sigma: float) -> torch.Tensor:
    """``P(a_i <= Y < a_{i+1})`` for ``Y ~ N(c_m, σ²)``: edges ``(E,)``, centres ``(M,)`` ->
    ``(M, E-1)``, float64.

    Φ(b) - Φ(a) loses every digit in the upper tail (both ≈ 1), so cells above the centre use
    the mirrored form Φ(-a) - Φ(-b); both are exact identities.
    """
    z = (edges[None, :] - centres[:, None]) / sigma  # (M, E)
    a, b = z[:, :-1], z[:, 1:]  # (M, E-1) lower and upper standardised edges
    lower = torch.special.ndtr(b) - torch.special.ndtr(a)
    upper = torch.special.ndtr(-a) - torch.special.ndtr(-b)
    return torch.where(a > 0, upper, lower).clamp_min(0.0)


# ----------------------------------------------------------------------------- base classes


class ToyDataset:
    """A 2-D distribution generated in code, sampled without end.

    Attributes:
        name: canonical registry name.
        dim: dimension of a sample (always 2 here).
        modes: ``(M, 2)`` float32 tensor of mode centres in the final (scaled) coordinates, or
            ``None`` for datasets without isolated modes.
        sigma: per-coordinate std of each mode in the final coordinates, or ``None``.
        params: the constructor parameters (a plain dict, enough to rebuild the dataset with
            ``make_dataset(name, **params)``).
    """

    name: str = "toy"
    dim: int = 2

    def __init__(self) -> None:
        self.modes: torch.Tensor | None = None
        self.sigma: float | None = None
        self.params: dict[str, Any] = {}

    # Subclasses implement this: draw n points with `generator` on `device` (the generator's).
    def _sample(self, n: int, generator: torch.Generator | None, device: torch.device):
        raise NotImplementedError

    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """Draw ``n`` i.i.d. points, shape ``(n, 2)``, dtype float32.

        Randomness comes only from ``generator`` (torch's global generator when ``None``). The
        points are drawn on the generator's device and then moved to ``device`` if given, so a
        CPU generator gives the same numbers whatever ``device`` is.
        """
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
            raise ConfigError(f"number of samples must be a non-negative integer, got {n!r}")
        n = int(n)  # numpy integers too
        check_generator(generator)
        gen_device = generator.device if generator is not None else torch.device("cpu")
        out = self._sample(n, generator, gen_device).to(torch.float32)  # (n, 2)
        if device is not None:
            out = out.to(device)
        return out

    def bounds(self) -> tuple[float, float, float, float]:
        """A plotting box ``(xmin, xmax, ymin, ymax)`` holding the data with a margin."""
        raise NotImplementedError

    # Why there is no density (subclasses without one override this message).
    _no_density_reason: str = "it has no closed-form density"

    @property
    def has_density(self) -> bool:
        """Whether :meth:`log_density` is available (True for the Gaussian mixtures)."""
        return False

    def log_density(self, points: torch.Tensor) -> torch.Tensor:
        """Log-density ``log p(x)`` w.r.t. area in the plane, ``(N, 2) -> (N,)``.

        Raises WganError for a dataset without a closed-form density (see ``has_density``).
        """
        raise WganError(
            f"dataset {self.name!r} has no log_density: {self._no_density_reason} "
            "(has_density is False; only the Gaussian mixtures eight_gaussians, "
            "twentyfive_gaussians, ring and grid have one)"
        )

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"


def _square_box(
    lo: tuple[float, float], hi: tuple[float, float], pad: float
) -> tuple[float, float, float, float]:
    """Square box centred on the centre of ``[lo, hi]`` covering it plus ``pad`` on all sides."""
    cx, cy = (lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2
    half = max(hi[0] - lo[0], hi[1] - lo[1]) / 2 + pad
    return (cx - half, cx + half, cy - half, cy + half)


class GaussianMixture(ToyDataset):
    """Uniform mixture of isotropic Gaussians, generated as ``(c_k + s·ε) / divisor``.

    ``k ~ U{0..M-1}``, ``ε ~ N(0, I)``; ``raw_centres`` ``(M, 2)`` and ``raw_sigma`` are in the
    coordinates *before* the division, exactly as in ``gan_toy.py``. The final modes are
    ``raw_centres / divisor`` and the final std is ``raw_sigma / divisor``.
    """

    def __init__(self, raw_centres: torch.Tensor, raw_sigma: float, divisor: float = 1.0):
        super().__init__()
        self._raw_centres = raw_centres.to(torch.float64)  # (M, 2)
        self._raw_sigma = float(raw_sigma)
        self._divisor = float(divisor)
        self.modes = (self._raw_centres / self._divisor).to(torch.float32)  # (M, 2)
        self.sigma = self._raw_sigma / self._divisor

    def _sample(self, n, generator, device):
        m = self._raw_centres.shape[0]
        idx = torch.randint(0, m, (n,), generator=generator, device=device)  # (n,)
        eps = torch.randn(n, 2, generator=generator, device=device, dtype=torch.float64)
        centres = self._raw_centres.to(device)[idx]  # (n, 2)
        return (centres + self._raw_sigma * eps) / self._divisor  # (n, 2)

    def bounds(self):
        modes = self.modes.to(torch.float64)
        lo = modes.min(dim=0).values.tolist()
        hi = modes.max(dim=0).values.tolist()
        span = max(hi[0] - lo[0], hi[1] - lo[1])
        pad = 5.0 * float(self.sigma) + 0.15 * max(span, 1.0)
        return _square_box((lo[0], lo[1]), (hi[0], hi[1]), pad)

    @property
    def has_density(self) -> bool:
        """True: an equal-weight mixture of isotropic Gaussians has a closed-form density."""
        return True

    def _final_modes(self) -> torch.Tensor:
        """Final-coordinate modes in float64 ``(M, 2)`` (``modes`` is their float32 copy)."""
        return self._raw_centres / self._divisor

    def log_density(self, points: torch.Tensor) -> torch.Tensor:
        r"""Exact log-density of the mixture at ``points`` ``(N, 2)`` -> ``(N,)``.

        With the final modes :math:`\mu_1..\mu_M` and std :math:`\sigma` (``self.modes``,
        ``self.sigma``), every component has weight :math:`1/M` and density
        :math:`\mathcal N(x; \mu_k, \sigma^2 I_2)`, so

        .. math::

            \log p(x) = \operatorname{logsumexp}_k\Bigl(-\frac{\lVert x-\mu_k\rVert^2}
            {2\sigma^2}\Bigr) - \log M - \log(2\pi\sigma^2).

        The log-sum-exp keeps the value finite far from every mode (where the density itself
        underflows). Computed in float64 and returned in the dtype of ``points`` when it is a
        floating dtype (float64 otherwise), on its device.

        Raises:
            WganError: ``points`` is not a real tensor of shape ``(N, 2)``.
        """
        x = check_points(points)
        out_dtype = x.dtype if x.is_floating_point() else torch.float64
        xd = x.to(torch.float64)
        mu = self._final_modes().to(xd.device)  # (M, 2)
        sigma = float(self.sigma)
        sq = (xd[:, None, :] - mu[None, :, :]).square().sum(dim=-1)  # (N, M)
        m = mu.shape[0]
        logp = torch.logsumexp(-sq / (2.0 * sigma**2), dim=1)  # (N,)
        logp = logp - math.log(m) - math.log(2.0 * math.pi * sigma**2)
        return logp.to(out_dtype)

    def cell_masses(self, x_edges: Any, y_edges: Any) -> torch.Tensor:
        r"""Exact probability of every cell of a rectangular grid, ``(nx, ny)`` float64.

        Cell ``(i, j)`` is ``[x_i, x_{i+1}) × [y_j, y_{j+1})`` for increasing ``x_edges``
        ``(nx+1,)`` and ``y_edges`` ``(ny+1,)``. An isotropic Gaussian factorises over the
        axes, so

        .. math::

            P(\text{cell}_{ij}) = \frac1M \sum_k
            \bigl[\Phi(\tfrac{x_{i+1}-\mu_{k,1}}{\sigma})-\Phi(\tfrac{x_i-\mu_{k,1}}
            {\sigma})\bigr]\bigl[\Phi(\tfrac{y_{j+1}-\mu_{k,2}}{\sigma})-
            \Phi(\tfrac{y_j-\mu_{k,2}}{\sigma})\bigr]

        with :math:`\Phi` the standard normal CDF; no quadrature error. The total over the
        grid is the mass inside the box (``1 -`` the mass outside it).

        Raises:
            WganError: edges that are not 1-D, finite, strictly increasing, with >= 2 entries.
        """
        xs = check_edges(x_edges, "x_edges")
        ys = check_edges(y_edges, "y_edges")
        mu = self._final_modes()  # (M, 2)
        sigma = float(self.sigma)
        px = _interval_masses(xs, mu[:, 0], sigma)  # (M, nx)
        py = _interval_masses(ys, mu[:, 1], sigma)  # (M, ny)
        return torch.einsum("mi,mj->ij", px, py) / mu.shape[0]  # (nx, ny)


# ----------------------------------------------------------------------------- datasets


class EightGaussians(GaussianMixture):
    """8 Gaussians on a circle (WGAN-GP ``gan_toy.py`` protocol).

    Centres ``2·(±1, 0), 2·(0, ±1), 2·(±1/√2, ±1/√2)``; point = centre + N(0, 0.02²) per
    coordinate, then the whole point is divided by 1.414. Final modes = centres / 1.414 (radius
    ≈ 1.414), final sigma = 0.02 / 1.414. The mode is chosen uniformly.
    Source: Gulrajani et al. 2017, arXiv 1704.00028, ``gan_toy.py``.
    """

    name = "eight_gaussians"

    def __init__(self) -> None:
        r = 1.0 / math.sqrt(2.0)
        unit = [(1, 0), (-1, 0), (0, 1), (0, -1), (r, r), (r, -r), (-r, r), (-r, -r)]
        centres = 2.0 * torch.tensor(unit, dtype=torch.float64)  # (8, 2)
        super().__init__(centres, raw_sigma=0.02, divisor=1.414)


class TwentyFiveGaussians(GaussianMixture):
    """25 Gaussians on a 5×5 grid (WGAN-GP ``gan_toy.py`` protocol).

    Centres ``(2i, 2j)`` for ``i, j ∈ {-2, ..., 2}``, std 0.05, then everything divided by 2.828.
    Final modes = centres / 2.828, final sigma = 0.05 / 2.828. The mode is chosen uniformly.
    Source: Gulrajani et al. 2017, arXiv 1704.00028, ``gan_toy.py``.
    """

    name = "twentyfive_gaussians"

    def __init__(self) -> None:
        ii, jj = torch.meshgrid(
            torch.arange(-2, 3, dtype=torch.float64),
            torch.arange(-2, 3, dtype=torch.float64),
            indexing="ij",
        )
        centres = 2.0 * torch.stack([ii.reshape(-1), jj.reshape(-1)], dim=1)  # (25, 2)
        super().__init__(centres, raw_sigma=0.05, divisor=2.828)


class Ring(GaussianMixture):
    """``n_modes`` Gaussians evenly spaced on a circle of ``radius``, each with std ``sigma``.

    Mode k sits at ``radius·(cos 2πk/M, sin 2πk/M)``. The ring benchmark of VEEGAN
    (arXiv 1705.07761) and PacGAN (arXiv 1712.04086) uses 8 modes.
    """

    name = "ring"

    def __init__(self, n_modes: int = 8, radius: float = 1.0, sigma: float = 0.02) -> None:
        n_modes = check_int("n_modes", n_modes, 1)
        if n_modes > MAX_MODES:
            raise ConfigError(f"parameter 'n_modes' must be <= {MAX_MODES}, got {n_modes}")
        radius = check_positive("radius", radius)
        sigma = check_positive("sigma", sigma)
        angle = 2.0 * math.pi * torch.arange(n_modes, dtype=torch.float64) / n_modes  # (M,)
        centres = radius * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)  # (M, 2)
        super().__init__(centres, raw_sigma=sigma)
        self.params = {"n_modes": n_modes, "radius": radius, "sigma": sigma}


class Grid(GaussianMixture):
    """``n_per_side²`` Gaussians on a square grid with ``spacing``, centred at 0, std ``sigma``.

    Mode (i, j) sits at ``((i - (k-1)/2)·spacing, (j - (k-1)/2)·spacing)`` with
    ``k = n_per_side``. The grid benchmark of VEEGAN (arXiv 1705.07761) and PacGAN
    (arXiv 1712.04086) uses a 5×5 grid.
    """

    name = "grid"

    def __init__(self, n_per_side: int = 5, spacing: float = 1.0, sigma: float = 0.02) -> None:
        n_per_side = check_int("n_per_side", n_per_side, 1)
        if n_per_side**2 > MAX_MODES:
            side = int(MAX_MODES**0.5)
            raise ConfigError(f"parameter 'n_per_side' must be <= {side}, got {n_per_side}")
        spacing = check_positive("spacing", spacing)
        sigma = check_positive("sigma", sigma)
        coord = (torch.arange(n_per_side, dtype=torch.float64) - (n_per_side - 1) / 2) * spacing
        ii, jj = torch.meshgrid(coord, coord, indexing="ij")
        centres = torch.stack([ii.reshape(-1), jj.reshape(-1)], dim=1)  # (k², 2)
        super().__init__(centres, raw_sigma=sigma)
        self.params = {"n_per_side": n_per_side, "spacing": spacing, "sigma": sigma}


class SwissRoll(ToyDataset):
    """2-D Swiss roll (WGAN-GP ``gan_toy.py`` protocol), implemented in torch.

    Same distribution as ``sklearn.datasets.make_swiss_roll(noise=0.25)[0][:, [0, 2]] / 7.5``:
    ``t = 1.5π(1 + 2U)`` with ``U ~ U[0, 1]``, ``x = t cos t + noise·ε₁``,
    ``z = t sin t + noise·ε₂`` with ``ε ~ N(0, I)``, and the point ``(x, z)`` divided by 7.5
    (formula of scikit-learn 1.x, ``hole=False``). Has no isolated modes (``modes is None``).
    Source: Gulrajani et al. 2017, arXiv 1704.00028, ``gan_toy.py``.
    """

    name = "swiss_roll"
    _divisor = 7.5
    _no_density_reason = (
        "the swiss roll is a curve blurred by Gaussian noise; its density is an integral over "
        "the curve parameter with no closed form"
    )

    def __init__(self, noise: float = 0.25) -> None:
        super().__init__()
        self.noise = check_nonnegative("noise", noise)
        self.params = {"noise": self.noise}

    def _sample(self, n, generator, device):
        u = torch.rand(n, generator=generator, device=device, dtype=torch.float64)  # (n,)
        t = 1.5 * math.pi * (1.0 + 2.0 * u)  # (n,)
        eps = torch.randn(n, 2, generator=generator, device=device, dtype=torch.float64)
        roll = torch.stack([t * torch.cos(t), t * torch.sin(t)], dim=1)  # (n, 2)
        return (roll + self.noise * eps) / self._divisor

    def bounds(self):
        # Extent of the noiseless curve on a dense deterministic grid of t, then noise margin.
        t = torch.linspace(1.5 * math.pi, 4.5 * math.pi, 4001, dtype=torch.float64)
        x, z = t * torch.cos(t), t * torch.sin(t)
        lo = (float(x.min()) / self._divisor, float(z.min()) / self._divisor)
        hi = (float(x.max()) / self._divisor, float(z.max()) / self._divisor)
        return _square_box(lo, hi, 4.0 * self.noise / self._divisor + 0.15)


class ParallelLines(ToyDataset):
    """The parallel-lines example (Arjovsky, Chintala & Bottou 2017, arXiv 1701.07875, Ex. 1).

    Samples are ``(θ, Z)`` with ``Z ~ U[0, 1]``. With the default ``theta = 0`` this is the
    real distribution P₀; with ``theta = θ`` it is the model distribution P_θ, whose distances
    to P₀ are W1 = |θ|, JS = log 2 and KL = ∞ for θ ≠ 0. Has no modes (``modes is None``).
    """

    name = "parallel_lines"
    _no_density_reason = (
        "the parallel-lines distribution lives on a line segment, so it has no density "
        "w.r.t. area in the plane"
    )

    def __init__(self, theta: float = 0.0) -> None:
        super().__init__()
        self.theta = check_real("theta", theta)
        self.params = {"theta": self.theta}

    def _sample(self, n, generator, device):
        z = torch.rand(n, generator=generator, device=device, dtype=torch.float64)  # (n,)
        return torch.stack([torch.full_like(z, self.theta), z], dim=1)  # (n, 2)

    def bounds(self):
        return (self.theta - 0.75, self.theta + 0.75, -0.25, 1.25)


# ----------------------------------------------------------------------------- registry

DATASETS: dict[str, type[ToyDataset]] = {
    "eight_gaussians": EightGaussians,
    "twentyfive_gaussians": TwentyFiveGaussians,
    "swiss_roll": SwissRoll,
    "ring": Ring,
    "grid": Grid,
    "parallel_lines": ParallelLines,
}
"""Canonical dataset name -> class. Aliases live in :data:`ALIASES`."""

ALIASES: dict[str, str] = {
    "8gaussians": "eight_gaussians",
    "25gaussians": "twentyfive_gaussians",
    "swissroll": "swiss_roll",
}
"""Accepted alternative names -> canonical name."""


def resolve_dataset_name(name: str) -> str:
    """Map a dataset name or alias (case-insensitive, ``-`` same as ``_``) to its canonical name.

    Raises ConfigError, with close matches and the list of valid names, for an unknown name.
    """
    if not isinstance(name, str):
        raise ConfigError(f"dataset name must be a string, got {name!r}")
    key = name.strip().lower().replace("-", "_")
    if key in DATASETS:
        return key
    if key in ALIASES:
        return ALIASES[key]
    known = sorted(DATASETS) + sorted(ALIASES)
    close = difflib.get_close_matches(key, known, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    aliases = ", ".join(f"{a} -> {c}" for a, c in sorted(ALIASES.items()))
    raise ConfigError(
        f"unknown dataset {name!r}.{hint} Valid choices: {', '.join(sorted(DATASETS))} "
        f"(aliases: {aliases})."
    )


def make_dataset(name: str, **params: Any) -> ToyDataset:
    """Build a toy dataset by name (or alias) with its keyword parameters.

    Raises ConfigError for an unknown name, an unknown parameter (with close matches and the
    accepted parameters) or an invalid value (e.g. ``sigma <= 0``, ``n_modes < 1``).
    """
    canonical = resolve_dataset_name(name)
    cls = DATASETS[canonical]
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = [k for k in params if k not in accepted]
    if unknown:
        parts = []
        for key in unknown:
            close = difflib.get_close_matches(str(key), accepted, n=1, cutoff=0.5)
            parts.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        valid = ", ".join(accepted) if accepted else "none"
        raise ConfigError(
            f"unknown parameter(s) for dataset {canonical!r}: {', '.join(parts)}. "
            f"Accepted parameters: {valid}."
        )
    return cls(**params)
