"""``wgan interpolate RUN``: latent-space grids of a trained run (:mod:`wgan.analysis.latent`).

Interpolation along straight and spherical paths in z (Radford et al. 2016; White 2016), one row
per class with z fixed for a conditional run, one attribute changed along each row with z fixed
for a run conditioned on attribute vectors (``--attrs-walk GROUP``), and ``--arithmetic a,b,c``
(the mean z of samples the digit classifier labels a, minus b's, plus c's). The parser is built
without importing torch; the command imports the libraries when it runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from wgan.cli.format import add_device_argument, make_output_folder, resolve_device, seed_value
from wgan.cli.targets import RUN_HELP, add_member_argument, is_group, member_output, targets
from wgan.errors import WganError
from wgan.store.printable import printable

DEFAULT_PATHS = 4
# wgan.analysis.latent.MAX_PATHS / MAX_STEPS (not imported: that module imports torch)
MAX_PATHS = 64
MAX_STEPS = 64


def _check_range(flag: str, value: int | None, low: int, high: int) -> None:
    if value is not None and not low <= value <= high:
        raise WganError(f"{flag} must be between {low} and {high}, got {value}")


def _class_list(text: str, flag: str) -> list[int]:
    """``"3,5,7"`` -> ``[3, 5, 7]``; anything else is a one-line error naming ``flag``."""
    items = [t.strip() for t in text.split(",")]
    try:
        if not all(items):
            raise ValueError
        return [int(t) for t in items]
    except ValueError:
        raise WganError(
            f"{flag} takes class numbers separated by commas (e.g. 3,5,7), got {text!r}"
        ) from None


def cmd_interpolate(args: argparse.Namespace) -> int:
    from wgan.store import rundirs
    from wgan.training.run import load_run

    out = Path(args.out).expanduser()
    _check_range("--num-paths", args.num_paths, 1, MAX_PATHS)
    _check_range("--steps", args.steps, 2, MAX_STEPS)
    _check_range("--arithmetic-samples", args.arithmetic_samples, 10, 100_000)
    _check_range("--arithmetic-top", args.arithmetic_top, 0, args.arithmetic_samples)
    arithmetic = None if args.arithmetic is None else _class_list(args.arithmetic, "--arithmetic")
    classes = None if args.classes is None else _class_list(args.classes, "--classes")
    if arithmetic is not None and len(arithmetic) != 3:
        raise WganError(
            f"--arithmetic takes three classes a,b,c (a - b + c), got {args.arithmetic}"
        )
    if arithmetic is not None and classes is not None:
        raise WganError(
            "--classes chooses the rows of a conditional grid; drop it with --arithmetic"
        )
    if args.attrs_walk is None and (args.attrs is not None or args.attrs_fixed):
        raise WganError("--attrs and --attrs-fixed choose the rows of --attrs-walk GROUP")
    if args.attrs_walk is not None and (arithmetic is not None or classes is not None):
        raise WganError("--attrs-walk draws its own grid: drop --arithmetic and --classes")
    runs = targets(args)  # a run, its checkpoint, or each run of a sweep or study
    outs = [member_output(out, run) for run in runs] if is_group(args) else [out]
    for path in outs:
        rundirs.check_output_file(path, "--out")  # before any run is loaded
    device = resolve_device(args.device)
    for target, path in zip(runs, outs, strict=True):
        _interpolate_one(args, load_run(target, device=device), path, arithmetic, classes)
    return 0


def _interpolate_one(
    args: argparse.Namespace,
    run: Any,
    out: Path,
    arithmetic: list[int] | None,
    classes: list[int] | None,
) -> None:
    """``wgan interpolate`` of one run into ``out``."""
    from wgan.analysis import latent
    from wgan.store import rundirs

    latent.check_suffix(run, out)
    if args.attrs_walk is not None:
        from wgan.analysis.attribute_walk import attribute_walk_grid

        rows = DEFAULT_PATHS if args.num_paths is None else args.num_paths
        grid = attribute_walk_grid(
            run, args.attrs_walk, rows, args.seed, args.attrs, args.attrs_fixed
        )
    elif arithmetic is not None:
        top = args.arithmetic_top or None  # 0: every sample of the class
        grid = latent.arithmetic_grid(run, arithmetic, args.arithmetic_samples, args.seed, top=top)
    else:
        num_paths = args.num_paths
        if num_paths is None:  # a conditional grid already has one row per class and path
            num_paths = 1 if getattr(run.sampler, "n_classes", 0) else DEFAULT_PATHS
        grid = latent.interpolation_grid(run, num_paths, args.steps, args.path, args.seed, classes)
    make_output_folder(out, "--out")  # says so when it creates folders
    with rundirs.atomic_output(out) as tmp:  # a failed write leaves an existing file as it was
        latent.write_grid(grid, run, tmp)
    rows, cols = grid.samples.shape[:2]
    print(f"wrote {rows} x {cols} grid ({grid.title}) to {out}")
    _report(grid, latent)


def _report(grid: Any, latent: Any) -> None:
    """The numbers behind the grid: class counts and labels (arithmetic), path norms."""
    info = grid.info
    if "walked" in info:
        if "read_right" in info:  # shapes: the walked attribute read off the pixels
            cells = zip(grid.col_names, info["read_right"], strict=True)
            read = ", ".join(f"{name} {right:.2f}" for name, right in cells)
            what = printable(str(info["walked"]), 80)
            print(f"  rows whose {what} the pixels read as asked, per column: {read}")
        return
    if "counts" in info:
        a, b, c = info["classes"]
        triples = zip(info["classes"], info["counts"], info["labelled"], strict=True)
        counts = ", ".join(f"{k}: {n} of {m}" for k, n, m in triples)
        print(f"samples averaged per class (of {info['num_samples']} draws): {counts}")
        pred, conf = info["predicted"], info["confidence"]
        print(
            f"classifier on G(z̄({a}) − z̄({b}) + z̄({c})): {pred[0][3]} (p = {conf[0][3]:.2f}); "
            f"on the means: {pred[0][0]}, {pred[0][1]}, {pred[0][2]}; "
            f"with noise: {', '.join(str(p) for p in pred[1])}"
        )
        return
    share = info["largest_step_share"]
    steps = grid.samples.shape[1] - 1
    print(
        f"  largest single step's share of a path's change: mean {sum(share) / len(share):.3f}, "
        f"worst {max(share):.3f} (1/{steps} = {1 / steps:.3f}: even steps; 1: one jump)"
    )
    for kind in sorted(set(grid.row_paths)):
        rows = [i for i, p in enumerate(grid.row_paths) if p == kind]
        ends = grid.z[rows][:, [0, -1]]  # (rows, 2, D): each path's endpoints
        mid = latent.latent_path(ends[:, 0], ends[:, 1], 3, kind)[:, 1]  # t = 1/2: (rows, D)
        value = float(latent.norm_along(mid).mean())
        print(f"  mean |z| / sqrt(d) at t = 1/2 of the {kind} paths: {value:.3f}")


def add_interpolate_parser(subparsers: Any) -> None:
    """Register ``wgan interpolate`` on the ``wgan`` command's subparsers."""
    p = subparsers.add_parser(
        "interpolate",
        help="samples along paths in z, class rows, latent arithmetic (DCGAN's latent walks)",
        description="Write a grid of a run's samples along straight and spherical paths "
        "between random latent vectors (DCGAN, Radford et al. 2016); for a conditional run one "
        "row per class with the same z down each column; with --arithmetic, G(mean z of class "
        "A - mean z of B + mean z of C) on a digits run. Prints the numbers behind the grid.",
    )
    p.add_argument("run", help=f"{RUN_HELP}; a group writes OUT-RUN.SUFFIX for each run")
    add_member_argument(p)
    p.add_argument(
        "--out",
        required=True,
        help="output: .png (figure) or .npy (the samples, shape (rows, columns, ...)); "
        ".txt or .npy for text runs",
    )
    p.add_argument(
        "--num-paths",
        type=int,
        default=None,
        help=f"number of random endpoint pairs (default {DEFAULT_PATHS}; 1 for conditional runs)",
    )
    p.add_argument("--steps", type=int, default=8, help="points per path, t = 0..1 (default 8)")
    p.add_argument(
        "--path",
        choices=["linear", "slerp", "both"],
        default="both",
        help="straight, spherical or both paths between the same endpoints (default both)",
    )
    p.add_argument(
        "--classes",
        metavar="A,B,...",
        help="conditional runs: the class rows to draw (default all classes)",
    )
    p.add_argument(
        "--arithmetic",
        metavar="A,B,C",
        help="digit runs: draw G(mean z of class A - mean z of B + mean z of C), "
        "classes assigned by the digit classifier",
    )
    p.add_argument(
        "--arithmetic-samples",
        type=int,
        default=2000,
        help="samples classified to average z per class (default 2000)",
    )
    p.add_argument(
        "--arithmetic-top",
        type=int,
        default=3,
        help="average the z of the K samples of each class the classifier is most sure of "
        "(default 3, as DCGAN's three exemplars; 0: all of them)",
    )
    p.add_argument(
        "--attrs-walk",
        metavar="GROUP",
        help="attribute runs: one row per z (--num-paths rows), the attribute GROUP (e.g. "
        "colour, or a flag such as large) changed along the row through its values",
    )
    p.add_argument(
        "--attrs",
        metavar="A,B,...",
        help="with --attrs-walk: attributes every row has (the others drawn per row)",
    )
    p.add_argument(
        "--attrs-fixed",
        action="store_true",
        help="with --attrs-walk: the same other attributes in every row (one draw)",
    )
    p.add_argument(
        "--seed",
        type=seed_value,
        help="seed of the endpoints, 0 to 2**63-1 (default 12345, as wgan sample and eval)",
    )
    add_device_argument(p)
    p.set_defaults(func=cmd_interpolate)
