"""Walking a trained generator's latent space: interpolation paths and vector arithmetic.

Radford et al. 2016 (DCGAN, arXiv 1511.06434, Sec. 6) read a generator's latent space in two
ways, both reproduced here for any run with a learned generator ``x = G(z)``, ``z ~ N(0, I_d)``:

* **Smooth interpolation.** Samples along a path from ``z0`` to ``z1`` change gradually; sharp
  jumps would suggest the generator memorised training images rather than learned a map.
  Two paths are drawn, for ``t`` in ``[0, 1]``:

  - straight: ``lerp(z0, z1; t) = (1 - t) z0 + t z1``;
  - spherical (Shoemake 1985; advocated for GANs by White 2016, "Sampling Generative
    Networks", arXiv 1609.04468): with ``cos W = <z0, z1> / (|z0| |z1|)``,
    ``slerp(z0, z1; t) = sin((1 - t) W) / sin W * z0 + sin(t W) / sin W * z1``.
    In high dimension ``|z|`` concentrates near ``sqrt(d)`` and two draws are nearly
    orthogonal, so the straight midpoint has norm near ``sqrt(d / 2)``: off the shell the
    generator was trained on. The spherical path keeps ``|z|`` for endpoints of equal norm.

* **Class rows.** For a conditional generator ``G(c, z)`` (Mirza & Osindero 2014), one row per
  class with the same ``z`` in every row of a column: what changes down a column is the class,
  what changes along a row is the "style" that ``z`` carries.

* **Vector arithmetic.** ``z̄_k`` is the mean latent vector of generated samples that the
  digit classifier (:mod:`wgan.metrics.classifier`) assigns to class ``k`` (by default the three
  it is most confident about: DCGAN averaged three exemplars); the grid shows
  ``G(z̄_a)``, ``G(z̄_b)``, ``G(z̄_c)`` and ``G(z̄_a - z̄_b + z̄_c)``, and below it the result with
  uniform noise of +-0.25 added to ``z``, as DCGAN's Fig. 7 does (there with three hand-picked
  exemplars per concept).

Every function takes a run handle (:func:`wgan.training.run.load_run`) and returns a
:class:`LatentGrid` whose ``samples`` are ``(rows, columns, *sample_shape)`` on the CPU;
:func:`write_grid` writes it as ``.npy``, ``.png`` (an image grid, or paths drawn over a scatter for
2-D data) or ``.txt`` (decoded strings of a text run). Endpoints are drawn on the CPU from ``seed``,
so a grid does not depend on the device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from wgan.config import check_seed
from wgan.errors import WganError
from wgan.figures.latent_files import check_suffix, output_suffixes, write_grid

__all__ = [
    "PATHS",
    "LatentGrid",
    "arithmetic_grid",
    "check_suffix",
    "class_grid",
    "class_latent_means",
    "generate",
    "interpolation_grid",
    "latent_path",
    "lerp",
    "norm_along",
    "output_suffixes",
    "largest_step_share",
    "slerp",
    "write_grid",
]

PATHS = ("linear", "slerp")
MAX_PATHS = 64
MAX_STEPS = 64
MAX_CELLS = 16_384  # samples in one grid (e.g. 64 paths x 2 kinds x 8 classes x 16 steps)
MAX_ARITHMETIC_SAMPLES = 100_000
CHUNK = 1024  # latent vectors per generator call
_PARALLEL = 1e-6  # sin W below this: endpoints (anti)parallel, the great circle is undefined


@dataclass
class LatentGrid:
    """Generated samples on a grid of latent vectors.

    Attributes:
        samples: ``(R, S, *sample_shape)`` float32 on the CPU.
        z: ``(R, S, latent_dim)``: the latent vector of each cell.
        labels: ``(R, S)`` class of each cell for a conditional generator, else None.
        row_names, col_names: what each row and column shows (figure ticks).
        row_paths: the path of each row (``linear`` / ``slerp``), or None for arithmetic.
        title: one line naming the run, the step and what the grid shows.
        info: numbers worth printing (class counts and predictions for arithmetic).
    """

    samples: Tensor
    z: Tensor
    labels: Tensor | None
    row_names: list[str]
    col_names: list[str]
    row_paths: list[str | None]
    title: str
    info: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------------- paths


def _weights(t: Tensor | Sequence[float], like: Tensor) -> Tensor:
    t = torch.as_tensor(t, dtype=like.dtype, device=like.device)
    if t.ndim != 1:
        raise WganError(f"t must be a 1-D sequence of positions, got shape {tuple(t.shape)}")
    return t


def _check_endpoints(z0: Tensor, z1: Tensor) -> None:
    if not (isinstance(z0, Tensor) and isinstance(z1, Tensor)) or z0.shape != z1.shape:
        raise WganError("z0 and z1 must be tensors of the same shape (..., latent_dim)")
    if z0.ndim < 1 or not z0.is_floating_point():
        raise WganError("z0 and z1 must be floating-point tensors of shape (..., latent_dim)")


def lerp(z0: Tensor, z1: Tensor, t: Tensor | Sequence[float]) -> Tensor:
    """Straight path ``(1 - t) z0 + t z1``: endpoints ``(..., D)``, ``t (S,)``: ``(..., S, D)``."""
    _check_endpoints(z0, z1)
    t = _weights(t, z0)[:, None]  # (S, 1)
    return (1 - t) * z0.unsqueeze(-2) + t * z1.unsqueeze(-2)


def slerp(z0: Tensor, z1: Tensor, t: Tensor | Sequence[float]) -> Tensor:
    """Spherical path (Shoemake 1985; White 2016): ``(..., D)`` endpoints -> ``(..., S, D)``.

    ``sin((1 - t) W) / sin W * z0 + sin(t W) / sin W * z1`` with ``W`` the angle between
    ``z0`` and ``z1``. For unit endpoints every point has unit norm; for endpoints of norm r,
    norm r. Where the endpoints are parallel or antiparallel (``sin W`` < 1e-6) the great circle
    is not defined and the straight path is returned.
    """
    _check_endpoints(z0, z1)
    t = _weights(t, z0)[:, None]  # (S, 1)
    a, b = z0.double(), z1.double()
    cos = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(1e-300)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))[..., None, None]  # (..., 1, 1)
    sin = torch.sin(omega)
    safe = sin.clamp_min(_PARALLEL)
    td = t.double()
    curved = (torch.sin((1 - td) * omega) / safe) * a.unsqueeze(-2) + (
        torch.sin(td * omega) / safe
    ) * b.unsqueeze(-2)
    straight = (1 - td) * a.unsqueeze(-2) + td * b.unsqueeze(-2)
    return torch.where(sin < _PARALLEL, straight, curved).to(z0.dtype)


def latent_path(z0: Tensor, z1: Tensor, steps: int, kind: str = "slerp") -> Tensor:
    """``steps`` points ``t = 0, 1/(S-1), ..., 1`` of a linear or slerp path: ``(..., S, D)``."""
    steps = _check_int("steps", steps, 2, MAX_STEPS)
    if kind not in PATHS:
        raise WganError(f"path must be one of {', '.join(PATHS)}, got {kind!r}")
    t = torch.linspace(0.0, 1.0, steps)
    return (lerp if kind == "linear" else slerp)(z0, z1, t)


# ------------------------------------------------------------------------- the generator


def _check_int(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise WganError(f"{name} must be an integer, got {value!r}")
    if not low <= int(value) <= high:
        raise WganError(f"{name} must be between {low} and {high}, got {value}")
    return int(value)


def _latent_generator(run: Any) -> nn.Module:
    gen = run.sampler
    if not hasattr(gen, "latent_dim") or not getattr(run, "learned_generator", True):
        raise WganError(
            "this run's generator has no latent space (generator.kind=fixed: real data plus "
            "noise); interpolate a run with a learned generator"
        )
    return gen


def _n_classes(run: Any) -> int:
    return int(getattr(run.sampler, "n_classes", 0) or 0)


@torch.no_grad()
def generate(run: Any, z: Tensor, labels: Tensor | None = None) -> Tensor:
    """``G(z)`` (or ``G(c, z)``) of latent vectors ``(..., D)``: ``(..., *sample_shape)``, CPU.

    The run's sampling generator (its EMA when it has one) in eval mode, so batch norm uses its
    running statistics and a cell does not depend on the others. ``labels`` ``(...)`` is needed
    exactly when the generator is conditional.
    """
    gen = _latent_generator(run)
    dim = int(gen.latent_dim)
    if not isinstance(z, Tensor) or z.ndim < 1 or z.shape[-1] != dim:
        shape = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
        raise WganError(f"z must have shape (..., {dim}) for this run, got {shape}")
    n_classes = _n_classes(run)
    if n_classes and labels is None:
        raise WganError("this run's generator is conditional: give a class per latent vector")
    if not n_classes and labels is not None:
        raise WganError("this run's generator is not conditional: it takes no class")
    lead = z.shape[:-1]
    flat = z.reshape(-1, dim).to(run.device, torch.float32)  # (N, D)
    lab = None
    if labels is not None:
        lab = torch.as_tensor(labels, dtype=torch.long).expand(lead).reshape(-1).to(run.device)
        bad = lab[(lab < 0) | (lab >= n_classes)]
        if bad.numel():
            raise WganError(f"class {int(bad[0])} is out of range [0, {n_classes})")
    was_training = gen.training
    gen.eval()
    try:
        out = [
            gen(flat[i : i + CHUNK], None if lab is None else lab[i : i + CHUNK])
            for i in range(0, flat.shape[0], CHUNK)
        ]
    finally:
        gen.train(was_training)
    x = torch.cat(out).float().cpu()  # (N, *sample_shape)
    if not bool(torch.isfinite(x).all()):
        from wgan.training.run import NonFiniteSamples

        raise NonFiniteSamples(
            f"the generator of {run.run_dir} at step {run.step} produces non-finite samples"
        )
    return x.reshape(*lead, *x.shape[1:])


def _seed(run: Any, seed: int | None) -> int:
    """``seed``, or the run's sample seed (:data:`wgan.training.run.SAMPLE_SEED`) for None: one
    default for latent walks, ``Run.samples``, ``wgan sample`` and ``wgan eval``."""
    return check_seed(run.sample_seed if seed is None else seed)


def _endpoints(dim: int, num_paths: int, seed: int) -> tuple[Tensor, Tensor]:
    """``num_paths`` pairs of N(0, I) endpoints, ``(P, D)`` each, drawn on the CPU from ``seed``."""
    g = torch.Generator().manual_seed(check_seed(seed))
    z = torch.randn(2, num_paths, dim, generator=g)
    return z[0], z[1]


def _check_classes(run: Any, classes: Sequence[int] | None) -> list[int]:
    n_classes = _n_classes(run)
    if not n_classes:
        raise WganError(
            "this run is not conditional (conditional.mode=none): class rows need G(c, z)"
        )
    if classes is None:
        return list(range(n_classes))
    out = [_check_int("class", c, 0, n_classes - 1) for c in classes]
    if not out:
        raise WganError("give at least one class")
    return out


def _describe(run: Any) -> str:
    return f"{run.cfg.name} at step {run.step}"


# ----------------------------------------------------------------------------------- grids


def class_grid(run: Any, z: Tensor, classes: Sequence[int] | None = None) -> tuple[Tensor, Tensor]:
    """One row per class, the same latent vector down each column.

    ``z`` ``(S, D)``; returns ``(samples (K, S, *shape), labels (K, S))`` with row ``k`` equal to
    ``G(classes[k], z_j)`` for every column ``j`` (all classes by default).
    """
    classes = _check_classes(run, classes)
    if not isinstance(z, Tensor) or z.ndim != 2:
        raise WganError("z must be a (columns, latent_dim) tensor")
    zz = z.unsqueeze(0).expand(len(classes), *z.shape)  # (K, S, D): one z per column
    labels = torch.tensor(classes).unsqueeze(1).expand(len(classes), z.shape[0])  # (K, S)
    return generate(run, zz, labels), labels.clone()


def interpolation_grid(
    run: Any,
    num_paths: int = 4,
    steps: int = 8,
    path: str = "both",
    seed: int | None = None,
    classes: Sequence[int] | None = None,
) -> LatentGrid:
    """Samples along ``num_paths`` latent paths between random N(0, I) endpoints.

    The endpoints are drawn from ``seed`` (default: the run's sample seed, 12345, the default of
    ``Run.samples``, ``wgan sample`` and ``wgan eval`` too).

    Unconditional run: one row per path and kind (``path="both"`` puts the straight and the
    spherical path between the same endpoints in consecutive rows), ``steps`` columns from
    ``t = 0`` to ``t = 1``. Conditional run: for each path and kind, one row per class (``classes``,
    default all) with the column's ``z`` shared by every row (:func:`class_grid`).
    """
    gen = _latent_generator(run)
    num_paths = _check_int("num_paths", num_paths, 1, MAX_PATHS)
    steps = _check_int("steps", steps, 2, MAX_STEPS)
    if path not in (*PATHS, "both"):
        raise WganError(f"path must be linear, slerp or both, got {path!r}")
    kinds = list(PATHS) if path == "both" else [path]
    conditional = _n_classes(run) > 0
    if classes is not None and not conditional:
        _check_classes(run, classes)  # the error for a class option on an unconditional run
    cls = _check_classes(run, classes) if conditional else []
    cells = num_paths * len(kinds) * max(1, len(cls)) * steps
    if cells > MAX_CELLS:
        raise WganError(
            f"a grid of {cells:,} samples is too large (at most {MAX_CELLS:,}): use fewer paths, "
            "steps or classes"
        )
    z0, z1 = _endpoints(int(gen.latent_dim), num_paths, _seed(run, seed))
    zs, samples, labels, names, row_paths = [], [], [], [], []
    for p in range(num_paths):
        for kind in kinds:
            zp = latent_path(z0[p], z1[p], steps, kind)  # (S, D)
            if conditional:
                x, lab = class_grid(run, zp, cls)  # (K, S, ...), (K, S)
                samples.append(x)
                labels.append(lab)
                zs.append(zp.expand(len(cls), *zp.shape))
                names += [f"{kind} {p + 1}, class {c}" for c in cls]
                row_paths += [kind] * len(cls)
            else:
                samples.append(generate(run, zp).unsqueeze(0))
                zs.append(zp.unsqueeze(0))
                names.append(f"{kind} {p + 1}")
                row_paths.append(kind)
    what = "class rows along " if conditional else ""
    samples = torch.cat(samples)
    return LatentGrid(
        samples=samples,
        z=torch.cat(zs),
        labels=torch.cat(labels) if conditional else None,
        row_names=names,
        col_names=[f"{t:.2f}" for t in torch.linspace(0, 1, steps).tolist()],
        row_paths=row_paths,
        title=f"{_describe(run)}: {what}{' and '.join(kinds)} paths in z",
        info={"largest_step_share": largest_step_share(samples).tolist()},
    )


def _check_digit_run(run: Any) -> int:
    if getattr(run.cfg.data, "name", None) != "digits":
        raise WganError(
            "--arithmetic needs a run on the digits data (data.name=digits): the digit "
            f"classifier assigns the classes; this run's data is {run.cfg.data.name!r}"
        )
    if _n_classes(run):
        raise WganError(
            "--arithmetic is for unconditional runs: a conditional generator takes its class as "
            "a label, not from z (its class rows are what `wgan interpolate` writes)"
        )
    return int(run.dataset.resolution)


@torch.no_grad()
def class_latent_means(
    run: Any,
    classes: Sequence[int],
    num_samples: int = 2000,
    seed: int | None = None,
    classifier: Any = None,
    top: int | None = 3,
) -> tuple[Tensor, list[int], Tensor]:
    """Mean latent vector of the generated digits the classifier assigns to each class.

    ``num_samples`` vectors ``z ~ N(0, I)`` (CPU, ``seed``) are decoded and classified (argmax of
    the digit classifier, or of ``classifier``). ``means[k]`` averages the ``z`` of the ``top``
    samples labelled ``classes[k]`` with the highest probability of that class (all of them for
    ``top=None``). DCGAN averaged three exemplars per concept; a mean over hundreds of ``z``
    shrinks towards the origin (``|z̄|`` near ``sqrt(D / n)``), where the generator draws its
    average image rather than the class. Returns ``(means (K, D), counts averaged, labels (N,))``.
    A class no sample was assigned to is an error naming the counts of all classes.
    """
    from wgan.metrics.classifier import get_digit_classifier
    from wgan.metrics.images import classify

    resolution = _check_digit_run(run)
    classes = [_check_int("class", c, 0, 9) for c in classes]
    num_samples = _check_int("num_samples", num_samples, 10, MAX_ARITHMETIC_SAMPLES)
    gen = _latent_generator(run)
    g = torch.Generator().manual_seed(_seed(run, seed))
    z = torch.randn(num_samples, int(gen.latent_dim), generator=g)  # (N, D)
    clf = classifier if classifier is not None else get_digit_classifier(resolution)
    _, probs = classify(clf, generate(run, z))  # (N, 10)
    pred = probs.argmax(1)  # (N,)
    counts = torch.bincount(pred, minlength=10)
    if top is not None:
        top = _check_int("top", top, 1, num_samples)
    missing = [c for c in classes if int(counts[c]) == 0]
    if missing:
        seen = ", ".join(f"{k}: {int(n)}" for k, n in enumerate(counts.tolist()))
        raise WganError(
            f"no generated sample out of {num_samples} was classified as {missing[0]} "
            f"(class counts {seen}); draw more with --arithmetic-samples or train longer"
        )
    chosen = []
    for c in classes:
        idx = (pred == c).nonzero().squeeze(1)  # samples labelled c
        if top is not None:  # the most confident first
            idx = idx[probs[idx, c].argsort(descending=True, stable=True)[:top]]
        chosen.append(idx)
    means = torch.stack([z[idx].mean(0) for idx in chosen])  # (K, D)
    return means, [int(idx.numel()) for idx in chosen], pred


def arithmetic_grid(
    run: Any,
    classes: Sequence[int],
    num_samples: int = 2000,
    seed: int | None = None,
    noise: float = 0.25,
    classifier: Any = None,
    top: int | None = 3,
) -> LatentGrid:
    """``G(z̄_a - z̄_b + z̄_c)`` next to ``G(z̄_a)``, ``G(z̄_b)``, ``G(z̄_c)`` (DCGAN, Fig. 7).

    Row 1: the three class means (of the ``top`` most confident samples per class,
    :func:`class_latent_means`) and the result; row 2: the result plus four draws of uniform
    noise in ``[-noise, noise]`` per coordinate. ``info`` holds the number of samples averaged
    per class and the classifier's label (and probability) of every cell.
    """
    from wgan.metrics.classifier import get_digit_classifier
    from wgan.metrics.images import classify

    if len(classes) != 3:
        raise WganError(f"arithmetic takes three classes a,b,c (a - b + c), got {len(classes)}")
    seed = _seed(run, seed)  # default: the run's sample seed
    means, counts, pred = class_latent_means(run, classes, num_samples, seed, classifier, top)
    labelled = torch.bincount(pred, minlength=10)  # (10,) samples per class label
    result = means[0] - means[1] + means[2]  # (D,)
    g = torch.Generator().manual_seed(int(seed) + 1)
    jitter = (torch.rand(4, result.shape[0], generator=g) * 2 - 1) * float(noise)  # U(-n, n)
    z = torch.cat([means, result[None], result[None] + jitter]).reshape(2, 4, -1)  # (2, 4, D)
    samples = generate(run, z)  # (2, 4, C, H, W)
    clf = classifier if classifier is not None else get_digit_classifier(_check_digit_run(run))
    _, probs = classify(clf, samples.flatten(0, 1))  # (8, 10)
    a, b, c = classes
    return LatentGrid(
        samples=samples,
        z=z,
        labels=None,
        row_names=["means, result", f"result + U(±{noise:g})"],
        col_names=[f"z̄({a})", f"z̄({b})", f"z̄({c})", f"z̄({a}) − z̄({b}) + z̄({c})"],
        row_paths=[None, None],
        title=f"{_describe(run)}: latent arithmetic {a} − {b} + {c}",
        info={
            "classes": [a, b, c],
            "counts": counts,
            "labelled": [int(labelled[k]) for k in classes],
            "num_samples": int(num_samples),
            "predicted": probs.argmax(1).reshape(2, 4).tolist(),
            "confidence": probs.max(1).values.reshape(2, 4).tolist(),
        },
    )


# ------------------------------------------------------------------------------- measures


def largest_step_share(samples: Tensor) -> Tensor:
    """How evenly each row of a grid ``(R, S, ...)`` changes: ``max_j d_j / sum_j d_j`` with
    ``d_j = ||x_{j+1} - x_j||`` the Euclidean change between neighbouring cells, ``(R,)``.

    ``1 / (S - 1)`` when every step changes the sample by the same amount (a generator that is
    linear along the path), ``1`` when the whole change happens in one step (a jump, as from a
    generator that snaps to memorised examples; Radford et al. 2016 read smooth walks as the
    opposite of memorisation). A row that does not change at all gives 0.
    """
    x = samples.flatten(2).double()  # (R, S, values)
    d = (x[:, 1:] - x[:, :-1]).norm(dim=-1)  # (R, S - 1)
    total = d.sum(-1)
    return torch.where(total > 0, d.max(-1).values / total.clamp_min(1e-300), 0.0).float()


def norm_along(z: Tensor) -> Tensor:
    """``|z| / sqrt(D)`` of every point of paths ``(..., S, D)`` -> ``(..., S)``.

    N(0, I_D) puts its mass near ``|z| = sqrt(D)``, so this is near 1 on the shell the generator
    was trained on; a straight path between two independent draws dips to about
    ``1 / sqrt(2)`` at its midpoint (White 2016), a spherical one stays near 1.
    """
    return z.norm(dim=-1) / math.sqrt(z.shape[-1])
