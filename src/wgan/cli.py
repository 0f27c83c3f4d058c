"""The ``wgan`` command line: train, presets, sample, eval, experiment, lipschitz, sweep, bench.

Every user mistake (unknown key, wrong type, missing file, bad run directory, diverged training)
is reported as one line ``wgan: error: ...`` with exit status 2, never a traceback. So is what
the file system refuses (an output path that cannot be written, a read-only run, a full disk):
output paths are checked before the work starts, outputs are written to a temporary file and
moved into place, and a failed checkpoint save keeps the previous checkpoint.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from wgan import runs
from wgan.errors import WganError
from wgan.tracking import json_safe

MAX_SAMPLE_BYTES = 2**30
"""The most generated data one ``wgan sample``, ``eval`` or ``lipschitz`` holds in memory: 1 GiB
of float32 values (e.g. 134 million 2-D points, or 87,000 3x32x32 images)."""

MAX_THREADS = 1024
"""The most threads ``wgan bench --threads`` sets (torch crashes with absurd counts)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit 2 like every other user error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"wgan: error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(2)


def _split_source(items: list[str]) -> tuple[str | None, list[str]]:
    """The first positional without '=' is the preset or config file; the rest are overrides."""
    if items and "=" not in items[0]:
        return items[0], items[1:]
    return None, items


def _is_rank0() -> bool:
    """Whether this process reports and writes (always, unless a non-zero torchrun rank)."""
    return int(os.environ.get("RANK", "0") or 0) == 0


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
    n_classes = getattr(run.sampler, "n_classes", 0)
    return tuple(run.samples(1, labels=0 if n_classes else None).shape[1:])


def _size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if n < 1024 or unit == "EiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} EiB"  # pragma: no cover


# ----------------------------------------------------------------------------------------------
# Commands
# ----------------------------------------------------------------------------------------------


def cmd_train(args: argparse.Namespace) -> int:
    from wgan.config import dump_yaml, parse_override, resolve
    from wgan.train import resume, train

    source, overrides = _split_source(args.items)
    try:
        if args.resume:
            if source is not None:
                raise WganError(
                    "--resume takes its config from the run; give only key=value overrides"
                )
            parsed = dict(parse_override(o) for o in overrides)
            # Rank 0 locks the run: a second process resuming it is refused; a read-only run
            # is refused before anything is read or written.
            lock: Any = contextlib.nullcontext()
            if _is_rank0() and (Path(args.resume) / runs.CHECKPOINT).is_file():
                lock = runs.lock_run(args.resume)
            with lock:
                result = resume(args.resume, parsed)
        else:
            cfg = resolve(source, overrides)
            if args.out_dir:
                cfg.out_dir = args.out_dir
            if args.dry_run:
                sys.stdout.write(dump_yaml(cfg))
                return 0
            runs.check_out_dir(cfg.out_dir, "--out-dir" if args.out_dir else "out_dir")
            if _is_rank0():
                # The run directory exists only while the start succeeds: a run that fails to
                # start (bad data path, model that cannot be built) leaves no directory behind.
                with runs.create_run_dir(cfg.out_dir, cfg.name) as run_dir:
                    result = train(cfg, run_dir=run_dir)
            else:
                result = train(cfg)  # rank 0 chooses the run directory
    except OSError as err:
        raise WganError(
            f"{runs.describe_os_error(err)}; the run's last checkpoint, if any, is kept"
        ) from None
    if not _is_rank0():
        return 0  # under torchrun only rank 0 reports
    print(f"run:     {result.run_dir}")
    if result.figure is not None:
        print(f"figures: {result.figure.parent}  (latest: {result.figure})")
    print(f"metrics: {result.run_dir / 'metrics.jsonl'}")
    print(f"time:    {result.seconds:.1f} s for steps up to {result.step}")
    if result.metrics:
        print(_format_metrics(result.metrics))
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    from wgan.config import preset_description, preset_names

    names = preset_names()
    width = max(len(n) for n in names)
    for name in names:
        print(f"{name:<{width}}  {preset_description(name)}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from wgan.train import load_run

    _check_count("--num", args.num)
    out = Path(args.out).expanduser()
    runs.check_output_file(out, "--out")  # before the run is loaded and sampled
    trainer = load_run(args.run)
    allowed = (".npy", ".png") if trainer.is_image else (".npy", ".csv")
    if trainer.is_text:
        allowed = (".txt", ".npy")
    if out.suffix not in allowed:
        kind = "image" if trainer.is_image else "text" if trainer.is_text else "vector"
        raise WganError(
            f"--out must end in {' or '.join(allowed)} for {kind} data, got '{out.name}'"
        )
    if args.label is not None:
        trainer.samples(1, seed=args.seed, labels=args.label)  # checks the label first
    _check_count("--num", args.num, trainer, "; write several files with different --seed")
    x = trainer.samples(args.num, seed=args.seed, labels=args.label)  # (N, dim) or (N, C, H, W)
    runs.make_dirs(out.parent, "--out")
    with runs.atomic_output(out) as tmp:  # a failed write leaves an existing file as it was
        if out.suffix == ".txt":  # text: (N, V, L) softmax -> one argmax-decoded line each
            from wgan.evaluation import printable_line

            lines = [printable_line(t) for t in trainer.dataset.decode(x)]
            tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        elif out.suffix == ".png":
            from wgan.imaging import save_image_grid

            save_image_grid(x, tmp)
        elif out.suffix == ".npy":
            with tmp.open("wb") as fh:
                np.save(fh, x.numpy())
        else:
            np.savetxt(tmp, x.numpy(), delimiter=",")
    what = f"of class {args.label} " if args.label is not None else ""
    if out.suffix == ".txt":
        print(f"wrote {x.shape[0]} sequences of {x.shape[2]} characters to {out}")
        return 0
    print(f"wrote {x.shape[0]} samples {what}of shape {tuple(x.shape[1:])} to {out}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from wgan.train import load_run

    _check_count("--num", args.num)
    trainer = load_run(args.run)
    _check_count("--num", args.num, trainer)
    metrics: dict[str, Any] = {"run": str(args.run), "step": trainer.step}
    metrics.update(trainer.evaluate(args.num, inception_weights=args.inception_weights))
    if trainer.is_image and not any(k in metrics for k in ("fid", "inception_score")):
        print(
            "  (no IS/FID/KID: give a local Inception file with --inception-weights FILE or "
            "WGAN_INCEPTION_WEIGHTS=FILE; nothing is downloaded)",
            file=sys.stderr,
        )
    if args.json:
        print(json.dumps(metrics))
    elif trainer.is_text:
        print(_format_text_metrics(metrics, trainer.text(5)))
    else:
        print(_format_metrics(metrics))
    return 0


def _format_text_metrics(metrics: dict[str, Any], samples: list[str]) -> str:
    """``wgan eval`` of a text run: a JS-n table (bits) and a few argmax-decoded samples."""
    from wgan.evaluation import printable_line

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


def cmd_experiment(args: argparse.Namespace) -> int:
    from wgan.experiments import EXPERIMENTS, run_experiment

    if args.list or args.name is None:
        width = max(len(n) for n in EXPERIMENTS)
        for name, exp in EXPERIMENTS.items():
            print(f"{name:<{width}}  {exp.description}")
        return 0
    out_dir = args.out_dir or "runs"
    runs.check_out_dir(out_dir, "--out-dir" if args.out_dir else "out_dir")
    result = run_experiment(args.name, args.overrides, out_dir=out_dir)
    print(result.table)
    print(f"run:     {result.run_dir}")
    print(f"results: {result.run_dir / 'results.json'}")
    for fig in result.figures:
        print(f"figure:  {fig}")
    return 0


def cmd_lipschitz(args: argparse.Namespace) -> int:
    from wgan.analysis import format_lipschitz_report, lipschitz_report
    from wgan.train import load_run

    _check_count("--num", args.num)
    run = load_run(args.run)
    _check_count("--num", args.num, run)
    report = lipschitz_report(run, n=args.num)
    if args.json:
        print(json.dumps(json_safe(report)))
    else:
        print(format_lipschitz_report(report))
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    """``wgan sweep``: train the runs, print a table (or JSON) and the run-iterations per second."""
    from wgan.config import resolve
    from wgan.sweep import (
        ENGINES,
        expand_variants,
        parse_seeds,
        parse_vary,
        result_record,
        run_sweep,
    )

    if args.engine is not None and args.engine not in ENGINES:
        raise WganError(f"--engine must be one of {', '.join(ENGINES)}, got '{args.engine}'")
    # The number of runs is bounded (wgan.sweep_plan.MAX_RUNS) before anything is expanded.
    seeds = parse_seeds(args.seeds) if args.seeds else None
    vary = [parse_vary(v) for v in args.vary]
    variants = expand_variants(seeds, vary)
    source, overrides = _split_source(args.items)
    base = resolve(source, overrides)
    if args.out_dir:
        base.out_dir = args.out_dir
    runs.check_out_dir(base.out_dir, "--out-dir" if args.out_dir else "out_dir")
    engine = {} if args.engine is None else {"engine": args.engine}
    results = run_sweep(base, variants, out_dir=args.out_dir, **engine)
    seconds = results[0].seconds if results else 0.0
    train_seconds = results[0].train_seconds if results else 0.0
    done = sum(r.step for r in results)
    rate = done / train_seconds if train_seconds > 0 else float("nan")
    if args.json:
        record = {"runs": [result_record(r) for r in results], "seconds": seconds}
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


def cmd_bench(args: argparse.Namespace) -> int:
    """``wgan bench``: run :func:`wgan.bench.bench` and print a table (or JSON); optionally
    record it."""
    import torch

    from wgan.bench import bench, format_bench, record_result
    from wgan.config import resolve

    source, overrides = _split_source(args.items)
    if not (math.isfinite(args.roofline_seconds) and args.roofline_seconds > 0):
        raise WganError(
            f"--roofline-seconds must be a finite number > 0, got {args.roofline_seconds}"
        )
    if args.record:
        runs.check_output_file(args.record, "--record")  # before the benchmark, not after
    if args.threads is not None:
        if not 1 <= args.threads <= MAX_THREADS:
            raise WganError(f"--threads must be in [1, {MAX_THREADS}], got {args.threads}")
        torch.set_num_threads(args.threads)
    cfg = resolve(source, overrides)
    if args.sweep is not None:
        return _cmd_bench_sweep(cfg, args)
    result = bench(
        cfg,
        steps=args.steps,
        warmup=args.warmup,
        repeats=args.repeats,
        random_data=args.random_data,
        roofline_seconds=args.roofline_seconds,
        dense_replay=args.dense_replay,
        compile=args.compile,
    )
    if args.json:
        print(json.dumps(json_safe(result)))
    else:
        print(format_bench(result))
    if args.record:
        runs.make_dirs(Path(args.record).expanduser().parent, "--record")
        record_result(result, Path(args.record).expanduser())
        if not args.json:
            print(f"  recorded in {args.record}")
    return 0


def _cmd_bench_sweep(cfg: Any, args: argparse.Namespace) -> int:
    """``wgan bench --sweep K``: K runs in one process vs one plain run (wgan.sweep)."""
    from wgan.sweep import benchmark_sweep
    from wgan.sweep_plan import MAX_RUNS

    if not 1 <= args.sweep <= MAX_RUNS:
        raise WganError(f"--sweep must be in [1, {MAX_RUNS}], got {args.sweep}")
    result = benchmark_sweep(cfg, args.sweep, args.steps, repeats=args.repeats)
    if args.json:
        print(json.dumps(json_safe(result)))
        return 0
    print(f"  sweep of {result['k']} runs ({cfg.name}, {result['engine']} engine)")
    print(f"  one run               {1000 * result['single_s_per_iter']:.2f} ms / iteration")
    print(
        f"  {result['k']} runs together      {1000 * result['sweep_s_per_iter']:.2f} ms / iteration"
    )
    print(f"  cost ratio            {result['ratio']:.2f} x one run")
    print(f"  run-iterations / s    {result['run_iters_per_s']:.1f}")
    return 0


def _fmt(value: Any, spec: str = ".3g") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


def _format_metrics(metrics: dict[str, Any]) -> str:
    width = max(len(k) for k in metrics)
    lines = []
    for key, value in metrics.items():
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        lines.append(f"  {key:<{width}}  {text}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Parser
# ----------------------------------------------------------------------------------------------


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
        help="values of one key (repeatable; cross product with the seeds); keys that may "
        "differ: train.seed, train.lr_decay, {d,g}_optim.{lr,betas,weight_decay}, "
        "constraint.{penalty_weight,penalty_target,clip} (wgan.sweep.MAY_DIFFER)",
    )
    p.add_argument("--out-dir", help="parent folder of the sweep's folder (default: runs)")
    p.add_argument(
        "--engine",
        metavar="NAME",
        help="how the runs are batched: a name in wgan.sweep.ENGINES (default: run_sweep's)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_sweep)
    return p


def add_bench_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``wgan bench`` to the ``wgan`` command's subparsers; returns its parser."""
    p = subparsers.add_parser(
        "bench",
        help="measure training throughput, eager and compiled: it/s, FLOPs, memory, "
        "CPU matmul roofline",
    )
    p.add_argument(
        "items",
        nargs="*",
        metavar="[PRESET|CONFIG.yaml] [key=value ...]",
        help="a preset or config file (default: toy-wgan-gp), then dotted overrides",
    )
    p.add_argument(
        "--sweep",
        type=int,
        metavar="K",
        help="instead: time K runs trained together by wgan sweep against one plain run",
    )
    p.add_argument("--steps", type=int, default=20, help="iterations per timed block (20)")
    p.add_argument("--warmup", type=int, default=3, help="untimed iterations first (3)")
    p.add_argument("--repeats", type=int, default=5, help="timed blocks; median reported (5)")
    p.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="after the eager measurement, also time the iteration with train.compile=true "
        "(compile time separately; default: on)",
    )
    p.add_argument(
        "--random-data",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="random images of the dataset's shape (default: only for file-based datasets "
        "without data.path)",
    )
    p.add_argument("--threads", type=int, help="torch.set_num_threads first (default: torch's)")
    p.add_argument(
        "--roofline-seconds", type=float, default=1.0, help="CPU matmul roofline budget (1.0)"
    )
    p.add_argument(
        "--no-dense-replay",
        dest="dense_replay",
        action="store_false",
        help="skip timing the matmuls/convolutions of an iteration alone",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--record", metavar="FILE.md", help="append a row to this markdown table")
    p.set_defaults(func=cmd_bench)
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="wgan", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    p = sub.add_parser("train", help="train a GAN from a preset or YAML config")
    p.add_argument(
        "items",
        nargs="*",
        metavar="[PRESET|CONFIG.yaml] [key=value ...]",
        help="a preset name or config file (default: toy-wgan-gp), then dotted overrides",
    )
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    p.add_argument("--resume", metavar="RUN", help="continue the run in this directory")
    p.add_argument("--out-dir", help="parent folder of run directories (default: runs)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("presets", help="list the presets, one line each")
    p.set_defaults(func=cmd_presets)

    p = sub.add_parser("sample", help="write generated samples of a run to a file")
    p.add_argument("run", help="run directory")
    p.add_argument("--num", type=int, default=1000, help="number of samples (default 1000)")
    p.add_argument(
        "--out",
        required=True,
        help="output file: .npy or .csv (vectors), .npy or .png (images), .txt or .npy (text)",
    )
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    p.add_argument("--label", type=int, help="class to generate (conditional GANs)")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("eval", help="measure a run's generator (modes, W1; classes, FD, FID)")
    p.add_argument("run", help="run directory")
    p.add_argument(
        "--num", type=int, default=None, help="number of samples (default: the run's eval_samples)"
    )
    p.add_argument(
        "--inception-weights",
        metavar="PATH",
        help="TorchScript Inception file for IS/FID/KID (or set WGAN_INCEPTION_WEIGHTS)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("experiment", help="reproduce a claim of the seeds (figures + numbers)")
    p.add_argument("name", nargs="?", help="experiment name (omit, or --list, to list them)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="settings overrides")
    p.add_argument("--list", action="store_true", help="list the experiments")
    p.add_argument("--out-dir", help="parent folder of run directories (default: runs)")
    p.set_defaults(func=cmd_experiment)

    p = sub.add_parser("lipschitz", help="Lipschitz bounds of a run's critic (layer product, data)")
    p.add_argument("run", help="run directory")
    p.add_argument("--num", type=int, default=2048, help="samples per set (default 2048)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_lipschitz)

    add_sweep_parser(sub)
    add_bench_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``wgan`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except WganError as err:
        _close_progress_bars()
        sys.stderr.write(f"wgan: error: {_one_line(str(err))}\n")
        return 2
    except OSError as err:  # what the file system refused, e.g. a folder made read-only mid-run
        _close_progress_bars()
        sys.stderr.write(f"wgan: error: {runs.describe_os_error(err)}\n")
        return 2
    except MemoryError:
        sys.stderr.write("wgan: error: out of memory (ask for fewer samples or a smaller model)\n")
        return 2
    except KeyboardInterrupt:
        _close_progress_bars()
        sys.stderr.write("wgan: interrupted; the last checkpoint of the run is kept\n")
        return 130


def _close_progress_bars() -> None:
    """Close open tqdm bars (a run that stopped with an error), so that the error message
    starts on a line of its own instead of after the bar."""
    tqdm_std = sys.modules.get("tqdm.std")
    if tqdm_std is None:
        return
    for bar in list(getattr(tqdm_std.tqdm, "_instances", ())):
        try:
            bar.close()
        except Exception:  # pragma: no cover - a bar that cannot close must not hide the error
            pass


def _one_line(text: str) -> str:
    """A message as one line (a path or a value may hold a newline)."""
    return " ".join(text.split("\n")).strip() or "unknown error"


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
