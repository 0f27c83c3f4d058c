"""The ``wgan`` command line: train, presets, sample, eval, experiment, lipschitz, sweep, bench.

Every user mistake (unknown key, wrong type, missing file, bad run directory, diverged training)
is reported as one line ``wgan: error: ...`` with exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from wgan.errors import WganError
from wgan.tracking import json_safe


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


# ----------------------------------------------------------------------------------------------
# Commands
# ----------------------------------------------------------------------------------------------


def cmd_train(args: argparse.Namespace) -> int:
    from wgan.config import dump_yaml, parse_override, resolve
    from wgan.train import resume, train

    source, overrides = _split_source(args.items)
    if args.resume:
        if source is not None:
            raise WganError("--resume takes its config from the run; give only key=value overrides")
        result = resume(args.resume, dict(parse_override(o) for o in overrides))
    else:
        cfg = resolve(source, overrides)
        if args.out_dir:
            cfg.out_dir = args.out_dir
        if args.dry_run:
            sys.stdout.write(dump_yaml(cfg))
            return 0
        result = train(cfg)
    if int(os.environ.get("RANK", "0")) != 0:
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

    if args.num < 1:
        raise WganError("--num must be >= 1")
    out = Path(args.out)
    trainer = load_run(args.run)
    allowed = (".npy", ".png") if trainer.is_image else (".npy", ".csv")
    if out.suffix not in allowed:
        kind = "image" if trainer.is_image else "vector"
        raise WganError(
            f"--out must end in {' or '.join(allowed)} for {kind} data, got '{out.name}'"
        )
    x = trainer.samples(args.num, seed=args.seed, labels=args.label)  # (N, dim) or (N, C, H, W)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".png":
        from wgan.imaging import save_image_grid

        save_image_grid(x, out)
    elif out.suffix == ".npy":
        np.save(out, x.numpy())
    else:
        np.savetxt(out, x.numpy(), delimiter=",")
    what = f"of class {args.label} " if args.label is not None else ""
    print(f"wrote {x.shape[0]} samples {what}of shape {tuple(x.shape[1:])} to {out}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from wgan.train import load_run

    trainer = load_run(args.run)
    if args.inception_weights:
        trainer.cfg.train.inception_weights = args.inception_weights
    metrics: dict[str, Any] = {"run": str(args.run), "step": trainer.step}
    metrics.update(trainer.evaluate(args.num))
    if args.json:
        print(json.dumps(metrics))
    else:
        print(_format_metrics(metrics))
    return 0


def cmd_experiment(args: argparse.Namespace) -> int:
    from wgan.experiments import EXPERIMENTS, run_experiment

    if args.list or args.name is None:
        width = max(len(n) for n in EXPERIMENTS)
        for name, exp in EXPERIMENTS.items():
            print(f"{name:<{width}}  {exp.description}")
        return 0
    result = run_experiment(args.name, args.overrides, out_dir=args.out_dir or "runs")
    print(result.table)
    print(f"run:     {result.run_dir}")
    print(f"results: {result.run_dir / 'results.json'}")
    for fig in result.figures:
        print(f"figure:  {fig}")
    return 0


def cmd_lipschitz(args: argparse.Namespace) -> int:
    from wgan.analysis import format_lipschitz_report, lipschitz_report
    from wgan.train import load_run

    report = lipschitz_report(load_run(args.run), n=args.num)
    if args.json:
        print(json.dumps(json_safe(report)))
    else:
        print(format_lipschitz_report(report))
    return 0


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
        "--out", required=True, help="output file: .npy or .csv (vectors), .npy or .png (images)"
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

    from wgan.sweep import add_sweep_parser

    add_sweep_parser(sub)

    from wgan.bench import add_bench_parser

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
        sys.stderr.write(f"wgan: error: {err}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("wgan: interrupted; the last checkpoint of the run is kept\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
