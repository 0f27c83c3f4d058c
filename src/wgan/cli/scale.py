"""``wgan sweep`` and ``wgan bench``: many runs at once, and timing the training step.

Their parsers and commands, hooked into :mod:`wgan.cli.app`; the work is done by
:mod:`wgan.scale.sweep` and :mod:`wgan.scale.bench`, imported only when a command runs (``wgan
--help`` stays fast).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from wgan.cli.format import fmt as _fmt
from wgan.cli.format import make_output_folder
from wgan.cli.format import split_source as _split_source
from wgan.errors import Interrupted, WganError
from wgan.store import rundirs
from wgan.store.tracking import json_safe
from wgan.training.interrupt import resume_command

MAX_THREADS = 1024
"""The most threads ``wgan bench --threads`` sets (torch crashes with absurd counts)."""


def cmd_sweep(args: argparse.Namespace) -> int:
    """``wgan sweep``: train the runs, print a table (or JSON) and the run-iterations per second."""
    from wgan.config import resolve
    from wgan.scale.sweep import (
        ENGINES,
        expand_variants,
        parse_seeds,
        parse_vary,
        run_sweep,
    )

    if args.resume:
        return _resume_sweep(args)
    if args.engine is not None and args.engine not in ENGINES:
        raise WganError(f"--engine must be one of {', '.join(ENGINES)}, got '{args.engine}'")
    # The number of runs is bounded (wgan.scale.sweep_plan.MAX_RUNS) before anything is expanded.
    seeds = parse_seeds(args.seeds) if args.seeds else None
    vary = [parse_vary(v) for v in args.vary]
    variants = expand_variants(seeds, vary)
    source, overrides = _split_source(args.items)
    base = resolve(source, overrides)
    if args.out_dir:
        base.out_dir = args.out_dir
    rundirs.check_out_dir(base.out_dir, "--out-dir" if args.out_dir else "out_dir")
    from wgan.cli.study import sweep_with_launcher

    fallback = sweep_with_launcher(base, variants, args)  # runs that cannot be stacked
    if fallback is not None:
        return fallback
    engine = {} if args.engine is None else {"engine": args.engine}
    try:
        results = run_sweep(base, variants, out_dir=args.out_dir, **engine)
    except Interrupted as err:  # the runs' checkpoints are at the step reached
        if err.run_dir is not None:
            err.resume = resume_command("wgan", "sweep", "--resume", err.run_dir)
        raise
    return _report_sweep(results, [k for k, _ in vary], base.train.steps, args.json)


def _resume_sweep(args: argparse.Namespace) -> int:
    """``wgan sweep --resume SWEEP_DIR [key=value ...]``: continue the sweep's runs."""
    from wgan.config import parse_override
    from wgan.scale.sweep_resume import is_sweep_dir, resume_sweep

    source, overrides = _split_source(args.items)
    if source is not None or args.seeds or args.vary or args.engine or args.out_dir:
        raise WganError(
            "--resume takes the sweep's runs and config from its folder; give only key=value "
            "overrides (e.g. train.steps=N)"
        )
    parsed = dict(parse_override(o) for o in overrides)
    if not is_sweep_dir(args.resume) and Path(args.resume, "study.json").is_file():
        return resume_study_sweep(Path(args.resume), parsed, args)
    try:
        results = resume_sweep(args.resume, parsed)
    except Interrupted as err:
        err.resume = resume_command("wgan", "sweep", "--resume", args.resume)
        raise
    keys = sorted({k for r in results for k in r.overrides if k != "train.seed"})
    steps = max((r.step for r in results), default=0)
    return _report_sweep(results, keys, steps, args.json)


def resume_study_sweep(study_dir: Path, overrides: dict[str, Any], args: argparse.Namespace) -> int:
    """``wgan sweep --resume DIR`` of a sweep whose runs could not be stacked (a study of
    separate processes, :func:`wgan.cli.study.sweep_with_launcher`): run that study again, which
    skips its finished runs and resumes the others from their checkpoints."""
    from wgan.cli.study import interrupted, progress_line, report
    from wgan.config import from_dict
    from wgan.scale.study import run_study

    if overrides:
        raise WganError(
            f"{study_dir} is a sweep of separate processes, which continues with its own "
            "settings: give no key=value overrides"
        )
    names = sorted(p.name for p in study_dir.iterdir() if (p / rundirs.CONFIG).is_file())
    if not names:
        raise WganError(f"{study_dir} holds no runs to continue")
    runs = [(n, from_dict(rundirs.read_config(study_dir / n))) for n in names]
    start = time.time()
    try:
        jobs = max(1, min(len(runs), os.cpu_count() or 1))  # as the sweep started them
        records = run_study(runs, study_dir, launcher="local", jobs=jobs, progress=progress_line)
    except Interrupted as err:
        resume = resume_command("wgan", "sweep", "--resume", study_dir)
        interrupted(err, study_dir, resume, args.json)
        raise
    return report(records, study_dir, args.json, time.time() - start)


def _report_sweep(results: list[Any], keys: list[str], steps: int, as_json: bool) -> int:
    """Print a sweep's results (a table, or JSON); status 1 if a run diverged."""
    from wgan.scale.sweep import result_record

    seconds = results[0].seconds if results else 0.0
    train_seconds = results[0].train_seconds if results else 0.0
    done = sum(r.step for r in results)
    rate = done / train_seconds if train_seconds > 0 else float("nan")
    if as_json:
        record = {"runs": [result_record(r) for r in results], "seconds": seconds}
        record.update(train_seconds=train_seconds, run_iters_per_s=rate)
        print(json.dumps(json_safe(record)))
    else:
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
            f"{len(results)} runs x {steps} iterations in {seconds:.1f} s "
            f"({train_seconds:.1f} s training: {rate:.1f} run-iterations/s)"
        )
    failed = [r for r in results if r.diverged]
    if failed:
        sys.stderr.write(
            f"wgan: error: {len(failed)} of {len(results)} sweep runs diverged "
            f"(first: {failed[0].run_dir}: {failed[0].diverged})\n"
        )
        return 1  # a run-time failure, not a usage error
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """``wgan bench``: run :func:`wgan.scale.bench.bench` and print a table (or JSON); optionally
    record it."""
    import torch

    from wgan.config import resolve
    from wgan.scale.bench import bench, format_bench, record_result
    from wgan.scale.bench.report import bench_warnings

    source, overrides = _split_source(args.items)
    if not (math.isfinite(args.roofline_seconds) and args.roofline_seconds > 0):
        raise WganError(
            f"--roofline-seconds must be a finite number > 0, got {args.roofline_seconds}"
        )
    if args.record:
        rundirs.check_output_file(args.record, "--record")  # before the benchmark, not after
    if args.threads is not None:
        if not 1 <= args.threads <= MAX_THREADS:
            raise WganError(f"--threads must be in [1, {MAX_THREADS}], got {args.threads}")
        torch.set_num_threads(args.threads)  # for --sweep, which times its runs as they are
    cfg = resolve(source, overrides)
    if args.threads is not None:
        cfg.train.threads = args.threads  # fixed; without it, as many as are free
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
        print(json.dumps(json_safe({**result, "warnings": bench_warnings(result)})))
    else:
        print(format_bench(result))  # warnings (wide spread, above the roofline) at the end
    if args.record:
        make_output_folder(Path(args.record).expanduser(), "--record")
        record_result(result, Path(args.record).expanduser())
        if not args.json:
            print(f"  recorded in {args.record}")
    return 0


def _cmd_bench_sweep(cfg: Any, args: argparse.Namespace) -> int:
    """``wgan bench --sweep K``: K runs in one process vs one plain run (wgan.scale.sweep)."""
    from wgan.scale.bench.sweep import benchmark_sweep
    from wgan.scale.sweep_plan import MAX_RUNS

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
        "constraint.{penalty_weight,penalty_target,clip}",
    )
    p.add_argument("--out-dir", help="parent folder of the sweep's folder (default: runs)")
    p.add_argument(
        "--resume",
        metavar="SWEEP_DIR",
        help="continue the interrupted sweep in this folder (key=value overrides: e.g. "
        "train.steps=N)",
    )
    p.add_argument(
        "--engine",
        metavar="NAME",
        help="how the runs' steps are batched: vmap (one vectorised step for all runs, with "
        "torch.func.vmap; the default) or compile (that step compiled with torch.compile; "
        "always with train.compile=true)",
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
    p.add_argument(
        "--threads",
        type=int,
        help="CPU threads, fixed (default: as many as other processes leave free)",
    )
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
