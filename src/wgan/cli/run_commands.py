"""``wgan sample``, ``wgan eval`` and ``wgan lipschitz``: commands that read a finished run.

``sample`` and ``eval`` take a run directory, its checkpoint file (``RUN/checkpoint.pt``) or a
sweep's or study's folder, whose runs are each read in turn (``--member NAME``: one of them;
:mod:`wgan.cli.targets`).

Each loads the run's checkpoint with :func:`wgan.training.run.load_run` on ``--device`` (default:
the best available, :func:`wgan.cli.format.resolve_device`); the work is done by
:class:`wgan.training.run.Run` (samples, evaluation) and :mod:`wgan.analysis.critic_lipschitz` (the
Lipschitz report), imported only when a command runs, so that ``wgan --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wgan.cli import sample_files
from wgan.cli.format import add_device_argument, make_output_folder, resolve_device, seed_value
from wgan.cli.format import format_metrics as _format_metrics
from wgan.cli.targets import RUN_HELP, add_member_argument, is_group, member_output, targets
from wgan.errors import WganError
from wgan.store import rundirs
from wgan.store.printable import printable
from wgan.store.tracking import json_safe

if TYPE_CHECKING:  # numpy loads with the command that needs it
    import numpy as np

MAX_SAMPLE_BYTES = 2**30
"""The most generated data one ``wgan sample`` writes, or ``eval`` or ``lipschitz`` holds in
memory: 1 GiB of float32 values (e.g. 134 million 2-D points, or 87,000 3x32x32 images).
``wgan sample`` writes ``.npy``, ``.csv`` and ``.txt`` files chunk by chunk
(:mod:`wgan.cli.sample_files`), holding 16 MiB of samples at a time."""


REFINE_METHODS = ("dot", "ddls", "flow")
"""``--refine`` choices: :data:`wgan.gan.refine.METHODS` (not imported: it loads torch)."""
REFINE_STEPS = {"dot": 100, "ddls": 1000, "flow": 50}
"""Each method's default steps, :data:`wgan.gan.refine.DEFAULT_STEPS`, for the help text."""
MAX_REFINE_STEPS = 10**6


def _check_refine(args: argparse.Namespace) -> None:
    """``--refine-steps`` only with ``--refine``, and in [0, :data:`MAX_REFINE_STEPS`]."""
    steps = args.refine_steps
    if steps is None:
        return
    if args.refine is None:
        raise WganError(f"--refine-steps needs --refine ({', '.join(REFINE_METHODS)})")
    if not 0 <= steps <= MAX_REFINE_STEPS:
        raise WganError(f"--refine-steps must be in [0, {MAX_REFINE_STEPS:,}], got {steps}")


def _refine_text(args: argparse.Namespace) -> str:
    """``dot, 100 steps``: the refinement asked for, with the steps it will take."""
    steps = REFINE_STEPS[args.refine] if args.refine_steps is None else args.refine_steps
    return f"{args.refine}, {steps} step{'s' if steps != 1 else ''}"


def _check_count(flag: str, value: int | None, run: Any = None, hint: str = "") -> None:
    """``value`` >= 1 and, given the run, at most :data:`MAX_SAMPLE_BYTES` of its samples."""
    if value is None:
        return
    if value < 1:
        raise WganError(f"{flag} must be >= 1, got {value}")
    if run is None:
        return
    shape = _sample_shape(run)
    per = 4 * math.prod(shape)
    if value * per > MAX_SAMPLE_BYTES:
        limit = MAX_SAMPLE_BYTES // per
        raise WganError(
            f"{flag} {value:,} is too large: {value:,} samples of shape {shape} would need "
            f"{_size(value * per)} of memory; the limit is {limit:,} samples of this shape "
            f"({_size(MAX_SAMPLE_BYTES)}){hint}"
        )


def _sample_shape(run: Any) -> tuple[int, ...]:
    """The shape of one generated sample: (dim,) or (C, H, W)."""
    n_classes = getattr(run.sampler, "n_classes", 0) if not run.cfg.data.attributes else 0
    return tuple(run.samples(1, labels=0 if n_classes else None).shape[1:])


def _size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if n < 1024 or unit == "EiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} EiB"  # pragma: no cover


def cmd_sample(args: argparse.Namespace) -> int:
    from wgan.training.run import load_run

    _check_count("--num", args.num)
    _check_refine(args)
    out = Path(args.out).expanduser()
    runs = targets(args)  # a run, its checkpoint, or each run of a sweep or study
    outs = [member_output(out, run) for run in runs] if is_group(args) else [out]
    for path in outs:
        rundirs.check_output_file(path, "--out")  # before any run is loaded and sampled
    device = resolve_device(args.device)
    for run, path in zip(runs, outs, strict=True):
        _sample_one(args, load_run(run, device=device), path)
    return 0


def _sample_one(args: argparse.Namespace, trainer: Any, out: Path) -> None:
    """``wgan sample`` of one run into ``out``."""
    allowed = (".npy", ".png") if trainer.is_image else (".npy", ".csv")
    if trainer.is_text:
        allowed = (".txt", ".npy")
    elif not trainer.is_image and trainer.dataset.dim == 2:
        allowed = (".npy", ".csv", ".png")  # .png: a scatter plot over the real data
    if out.suffix not in allowed:
        kind = "image" if trainer.is_image else "text" if trainer.is_text else "vector"
        raise WganError(
            f"--out must end in {' or '.join(allowed)} for {kind} data, got '{out.name}'"
        )
    asking = args.attrs is not None or args.attrs_fixed
    if args.label is not None and asking:
        raise WganError("--label asks for a class, --attrs for attributes: give one of them")
    if args.label is not None and trainer.cfg.data.attributes and trainer.conditional:
        raise WganError(
            "this run is conditioned on attribute vectors: ask with --attrs (e.g. --attrs "
            "red,triangle), not --label"
        )
    if args.label is not None:
        trainer.samples(1, seed=args.seed, labels=args.label)  # checks the label first
    _check_count("--num", args.num, trainer, "; write several files with different --seed")
    labels = _attribute_labels(args, trainer) if asking else args.label  # (num, k) vectors
    shape = _sample_shape(trainer)  # (dim,), (C, H, W) or (V, L)
    make_output_folder(out, "--out")  # says so when it creates folders
    with rundirs.atomic_output(out) as tmp:  # a failed write leaves an existing file as it was
        if args.refine is None and out.suffix in sample_files.STREAMED:
            sample_files.stream_samples(trainer, tmp, args.num, shape, args.seed, labels)
        else:  # a figure, or samples refined together: all of them at once
            _write_at_once(args, trainer, tmp, labels)
    what = f"of class {args.label} " if args.label is not None else ""
    if asking:
        what = _attrs_text(args, trainer) + " "
    how = f" (refined: {_refine_text(args)})" if args.refine is not None else ""
    if out.suffix == ".txt":
        print(f"wrote {args.num} sequences of {shape[1]} characters to {out}{how}")
        return
    print(f"wrote {args.num} samples {what}of shape {shape} to {out}{how}")


def _attribute_labels(args: argparse.Namespace, run: Any) -> Any:
    """The (num, k) vectors of ``--attrs`` / ``--attrs-fixed``, the unnamed attributes drawn
    from the run's data law; a note about the draw (a combination no training image has) goes
    to stderr."""
    from wgan.training.attribute_sampling import attribute_conditions

    seed = run.sample_seed if args.seed is None else args.seed
    c, note = attribute_conditions(run, args.num, seed, args.attrs, args.attrs_fixed)
    if note is not None:
        print(f"note: {printable(note, 400)}", file=sys.stderr)
    return c


def _attrs_text(args: argparse.Namespace, run: Any) -> str:
    """``asked for triangle, red (other attributes fixed)``: what ``--attrs`` asked."""
    from wgan.training.attribute_sampling import describe_request

    if args.attrs is None:  # --attrs-fixed alone: one drawn vector for every sample
        return "with one attribute vector drawn for all"
    asked = printable(describe_request(run, args.attrs), 200)
    return f"asked for {asked}" + (" (other attributes fixed)" if args.attrs_fixed else "")


def _write_at_once(args: argparse.Namespace, run: Any, tmp: Path, labels: Any = None) -> None:
    """``wgan sample`` of a ``.png`` (an image grid, a scatter plot) or of refined samples."""
    x = run.samples(  # (N, dim), (N, C, H, W) or (N, V, L)
        args.num, seed=args.seed, labels=labels, refine=args.refine, **_steps(args)
    )
    note = f", refined: {_refine_text(args)}" if args.refine is not None else ""
    if args.attrs is not None or args.attrs_fixed:
        note = f", {_attrs_text(args, run)}{note}"
    title = _figure_title(run, len(x), args.seed, args.label, note)
    if tmp.suffix == ".png" and run.is_image:  # as the training grids: upscaled and titled
        from wgan.figures.images import auto_scale, save_image_grid

        save_image_grid(x, tmp, scale=auto_scale(int(x.shape[-1])), title=title)
    elif tmp.suffix == ".png":
        _save_scatter(run, x.numpy(), tmp, title)
    else:
        sample_files.write_samples(run, tmp, [x], len(x), tuple(x.shape[1:]))


def _steps(args: argparse.Namespace) -> dict[str, Any]:
    """``refine_steps`` for :meth:`Run.samples` / :meth:`Run.evaluate`, when refining."""
    return {} if args.refine is None else {"refine_steps": args.refine_steps}


def _figure_title(run: Any, n: int, seed: int | None, label: Any, note: str = "") -> str:
    """The title of a ``wgan sample`` figure: run, step, count, class, seed (printable)."""
    from wgan.store.printable import printable

    what = "" if label is None else f" of class {label}"
    seed_text = "" if seed is None else f", seed {seed}"
    return printable(f"{run.display_name}: step {run.step}, {n} samples{what}{seed_text}{note}")


def _save_scatter(run: Any, fake: np.ndarray, path: Path, title: str) -> None:
    """``wgan sample --out FILE.png`` of 2-D data: the samples with the real data over them, in
    the training figures' colours, the legend beside the axes."""
    import torch

    from wgan.figures.plotting import legend_beside, save_figure, scatter_panel, subplots

    real = run.dataset.sample(min(len(fake), 2000), generator=torch.Generator().manual_seed(1))
    fig, ax = subplots(figsize=(5, 5))
    scatter_panel(ax, real.numpy(), fake, None, run.dataset.bounds(), title)
    legend_beside(ax, markerscale=4, fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def cmd_eval(args: argparse.Namespace) -> int:
    from wgan.training.run import load_run

    _check_count("--num", args.num)
    _check_refine(args)
    runs = targets(args)  # a run, its checkpoint, or each run of a sweep or study
    many = is_group(args)
    device = resolve_device(args.device)
    records = []
    for i, run in enumerate(runs):
        record, text = _eval_one(args, load_run(run, device=device), run)
        records.append(record)
        if not args.json:  # each run's numbers as soon as they are measured
            print(("\n" if i else "") + text, flush=True)
    if args.json:
        group = {"group": str(args.run), "runs": records}
        print(json.dumps(json_safe(group if many else records[0])))
    return 0


def _eval_one(args: argparse.Namespace, trainer: Any, run: Path) -> tuple[dict[str, Any], str]:
    """``wgan eval`` of one run: its JSON record and its text."""
    _check_count("--num", args.num, trainer)
    metrics: dict[str, Any] = {"run": str(run), "step": trainer.step}
    trainer.notify = lambda message: print(message, file=sys.stderr, flush=True)
    if trainer.cfg.data.classes:  # label -> name, as the run recorded it (data.classes)
        names = enumerate(trainer.cfg.data.classes)
        metrics["classes"] = printable(", ".join(f"{i} {name}" for i, name in names), 2000)
    metrics.update(
        trainer.evaluate(args.num, inception_weights=args.inception_weights, seed=args.seed)
    )
    if args.refine is not None:
        return _eval_refined(args, trainer, metrics)
    if trainer.is_image and not any(k in metrics for k in ("fid", "inception_score")):
        own = "fd_features" in metrics  # the own-feature FD stands in, but is not FID
        print(
            f"  ({'fd_features is in features of a network trained on this data; ' if own else ''}"
            "no IS/FID/KID: give a local Inception file with --inception-weights FILE or "
            "WGAN_INCEPTION_WEIGHTS=FILE; nothing is downloaded)",
            file=sys.stderr,
        )
    if trainer.is_text:
        return metrics, _format_text_metrics(metrics, trainer.text(5))
    return metrics, _format_metrics(metrics)


def _eval_refined(
    args: argparse.Namespace, run: Any, before: dict[str, Any]
) -> tuple[dict[str, Any], str]:
    """``wgan eval --refine``: the metrics of the raw samples and of the same samples refined."""
    run.notify = lambda message: print(
        f"{message} (refined: {_refine_text(args)})", file=sys.stderr, flush=True
    )
    after = run.evaluate(
        args.num,
        inception_weights=args.inception_weights,
        seed=args.seed,
        refine=args.refine,
        **_steps(args),
    )
    head = {k: before.pop(k) for k in ("run", "step")}
    steps = REFINE_STEPS[args.refine] if args.refine_steps is None else args.refine_steps
    record = {**head, "refine": args.refine, "refine_steps": steps}
    text = f"{_format_metrics(record)}\n{_format_before_after(before, after)}"
    return {**record, "before": before, "after": after}, text


def _format_before_after(before: dict[str, Any], after: dict[str, Any]) -> str:
    """Two columns of metrics: ``before`` (the raw samples) and ``after`` (refined)."""
    keys = list(before) + [k for k in after if k not in before]
    width = max(len(k) for k in keys)

    def cell(metrics: dict[str, Any], key: str) -> str:
        value = metrics.get(key, "")
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    cells = [(k, cell(before, k), cell(after, k)) for k in keys]
    col = max(len("before refinement"), *(len(b) for _, b, _ in cells))
    lines = [f"  {'':<{width}}  {'before refinement':<{col}}  after refinement"]
    lines += [f"  {k:<{width}}  {b:<{col}}  {a}" for k, b, a in cells]
    return "\n".join(lines)


def _format_text_metrics(metrics: dict[str, Any], samples: list[str]) -> str:
    """``wgan eval`` of a text run: a JS-n table (bits) and a few argmax-decoded samples."""
    from wgan.figures.text import printable_line

    head = {k: v for k, v in metrics.items() if not k.startswith("js")}
    lines = [_format_metrics(head), "", "  JS divergence of character n-grams (bits, log base 2)"]
    exact = "js1_exact" in metrics
    cols = "  n  generated  real-vs-real" + ("  exact  exact(real)" if exact else "")
    lines.append(cols)
    n = 1
    while f"js{n}" in metrics:
        row = f"  {n}  {metrics[f'js{n}']:9.4f}  {metrics[f'js{n}_baseline']:12.4f}"
        if exact:
            row += f"  {metrics[f'js{n}_exact']:5.4f}  {metrics[f'js{n}_exact_baseline']:11.4f}"
        lines.append(row)
        n += 1
    lines += ["", "  samples:"] + [f"    {printable_line(t)}" for t in samples]
    return "\n".join(lines)


def cmd_lipschitz(args: argparse.Namespace) -> int:
    from wgan.analysis.critic_lipschitz import format_lipschitz_report, lipschitz_report
    from wgan.training.run import load_run

    _check_count("--num", args.num)
    run = load_run(args.run, device=resolve_device(args.device))
    _check_count("--num", args.num, run)
    report = lipschitz_report(run, n=args.num)
    if args.json:
        print(json.dumps(json_safe(report)))
    else:
        print(format_lipschitz_report(report))
    return 0


def add_sample_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``wgan sample`` to the ``wgan`` command's subparsers; returns its parser."""
    p = subparsers.add_parser("sample", help="write generated samples of a run to a file")
    p.add_argument("run", help=f"{RUN_HELP}; a group writes OUT-RUN.SUFFIX for each run")
    add_member_argument(p)
    p.add_argument("--num", type=int, default=1000, help="number of samples (default 1000)")
    p.add_argument(
        "--out",
        required=True,
        help="output file: .npy or .csv (vectors), .npy or .png (images), .txt or .npy (text)",
    )
    p.add_argument(
        "--seed",
        type=seed_value,
        help="noise seed, 0 to 2**63-1 (default 12345, as Run.samples and wgan eval)",
    )
    p.add_argument(
        "--label",
        metavar="CLASS",
        help="class to generate (conditional GANs): a class name (an image folder's "
        "sub-folder, e.g. squares) or its index",
    )
    p.add_argument(
        "--attrs",
        metavar="A,B,...",
        help="attributes to generate (runs conditioned on attribute vectors), e.g. "
        "red,triangle,large or colour=red,small; the unnamed ones are drawn from the data's "
        "conditional law",
    )
    p.add_argument(
        "--attrs-fixed",
        action="store_true",
        help="with --attrs: draw the unnamed attributes once and use them for every sample",
    )
    _add_refine_arguments(p, "move the samples with the critic before writing them")
    add_device_argument(p)
    p.set_defaults(func=cmd_sample)
    return p


def add_eval_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``wgan eval`` to the ``wgan`` command's subparsers; returns its parser."""
    p = subparsers.add_parser(
        "eval", help="measure a run's generator (modes, W1; classes, FD, FID)"
    )
    p.add_argument("run", help=RUN_HELP)
    add_member_argument(p)
    p.add_argument(
        "--num", type=int, default=None, help="number of samples (default: the run's eval_samples)"
    )
    p.add_argument(
        "--inception-weights",
        metavar="PATH",
        help="TorchScript Inception file for IS/FID/KID (or set WGAN_INCEPTION_WEIGHTS)",
    )
    p.add_argument(
        "--seed",
        type=seed_value,
        help="noise seed of the generated samples, 0 to 2**63-1 (default 12345): "
        "wgan sample --seed S writes the samples that eval --seed S measures",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    _add_refine_arguments(
        p, "also measure the same samples moved with the critic: metrics before and after"
    )
    add_device_argument(p)
    p.set_defaults(func=cmd_eval)
    return p


def _add_refine_arguments(p: argparse.ArgumentParser, what: str) -> None:
    """``--refine METHOD`` and ``--refine-steps N`` (``wgan sample`` and ``wgan eval``)."""
    p.add_argument(
        "--refine",
        choices=REFINE_METHODS,
        help=f"{what}: dot (discriminator optimal transport, Tanaka 2019), ddls (latent "
        "Langevin sampling, Che et al. 2020) or flow (discriminator gradient flow, Ansari et "
        "al. 2021)",
    )
    defaults = ", ".join(f"{k} {v}" for k, v in REFINE_STEPS.items())
    p.add_argument(
        "--refine-steps",
        type=int,
        metavar="N",
        help=f"refinement steps (default: {defaults}; 0: none)",
    )


def add_lipschitz_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``wgan lipschitz`` to the ``wgan`` command's subparsers; returns its parser."""
    p = subparsers.add_parser(
        "lipschitz", help="Lipschitz bounds of a run's critic (layer product, data)"
    )
    p.add_argument("run", help="run directory (or its checkpoint file, RUN/checkpoint.pt)")
    p.add_argument("--num", type=int, default=2048, help="samples per set (default 2048)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_device_argument(p)
    p.set_defaults(func=cmd_lipschitz)
    return p
