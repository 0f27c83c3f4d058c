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
from typing import TYPE_CHECKING, Any

from wgan import runs
from wgan.cli_format import add_device_argument, resolve_device
from wgan.cli_format import format_metrics as _format_metrics
from wgan.cli_format import split_source as _split_source
from wgan.cli_latent import add_interpolate_parser
from wgan.cli_scale import add_bench_parser, add_sweep_parser
from wgan.cli_study import add_study_parser
from wgan.errors import WganError
from wgan.tracking import json_safe

if TYPE_CHECKING:  # numpy loads with the command that needs it: --help stays fast
    import numpy as np

MAX_SAMPLE_BYTES = 2**30
"""The most generated data one ``wgan sample``, ``eval`` or ``lipschitz`` holds in memory: 1 GiB
of float32 values (e.g. 134 million 2-D points, or 87,000 3x32x32 images)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit 2 like every other user error, and a
    subcommand's positionals and options may come in any order.

    Every subcommand (its parser is made by ``subparsers.add_parser``, so it is a ``_Parser``
    too, including those added by other modules' ``add_<name>_parser``) parses its arguments
    with :meth:`argparse.ArgumentParser.parse_known_intermixed_args`: in
    ``wgan sweep toy-wgan-gp --seeds 0-3 train.steps=100`` the override after ``--seeds`` joins
    the positionals before it instead of being "unrecognized". An argument left over is a
    usage error that names the subcommand's ``--help``.
    """

    _intermixing = False  # set while parse_known_intermixed_args calls back into this method

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"wgan: error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(2)

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[no-untyped-def,override]
        # The top-level parser holds the subcommands (a PARSER positional), which argparse
        # cannot intermix; it parses as usual and hands the rest to the subcommand's parser.
        nested = any(a.nargs in (argparse.PARSER, argparse.REMAINDER) for a in self._actions)
        if nested or self._intermixing:
            return super().parse_known_args(args, namespace)
        self._intermixing = True
        try:
            namespace, extras = self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False
        if extras:  # here, not in the top-level parser: the message names this subcommand
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return namespace, extras


class _VersionAction(argparse.Action):
    """``wgan --version``: the version is looked up only when asked (importlib.metadata is slow
    to import, and every other command would pay for it)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        import wgan

        print(f"wgan {wgan.__version__} (Python {sys.version.split()[0]})")
        parser.exit()


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
    from wgan.config import parse_override, resolve
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
            if args.dry_run and args.json:
                print(json.dumps(json_safe(cfg.to_dict())))
                return 0
            if args.dry_run:
                sys.stdout.write(runs.config_yaml(cfg.to_dict()))  # as in config.yaml
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
    if args.json:
        record = {"run": str(result.run_dir), "step": result.step, "seconds": result.seconds}
        record["figure"] = None if result.figure is None else str(result.figure)
        record["metrics"] = result.metrics
        print(json.dumps(json_safe(record)))
        return 0
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
    trainer = load_run(args.run, device=resolve_device(args.device))
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
    if args.label is not None:
        trainer.samples(1, seed=args.seed, labels=args.label)  # checks the label first
    _check_count("--num", args.num, trainer, "; write several files with different --seed")
    x = trainer.samples(args.num, seed=args.seed, labels=args.label)  # (N, dim) or (N, C, H, W)
    import numpy as np

    runs.make_dirs(out.parent, "--out")
    with runs.atomic_output(out) as tmp:  # a failed write leaves an existing file as it was
        if out.suffix == ".txt":  # text: (N, V, L) softmax -> one argmax-decoded line each
            from wgan.evaluation import printable_line

            lines = [printable_line(t) for t in trainer.dataset.decode(x)]
            tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        elif out.suffix == ".png" and trainer.is_image:
            from wgan.imaging import save_image_grid

            save_image_grid(x, tmp)
        elif out.suffix == ".png":
            _save_scatter(trainer, x.numpy(), tmp, args.seed)
        elif out.suffix == ".npy":
            with tmp.open("wb") as fh:
                np.save(fh, x.numpy())
        else:  # a header row naming the coordinates; 7 significant digits (float32's)
            header = ",".join(f"x{i + 1}" for i in range(x.shape[1]))
            np.savetxt(tmp, x.numpy(), delimiter=",", header=header, comments="", fmt="%.7g")
    what = f"of class {args.label} " if args.label is not None else ""
    if out.suffix == ".txt":
        print(f"wrote {x.shape[0]} sequences of {x.shape[2]} characters to {out}")
        return 0
    print(f"wrote {x.shape[0]} samples {what}of shape {tuple(x.shape[1:])} to {out}")
    return 0


def _save_scatter(run: Any, fake: np.ndarray, path: Path, seed: int | None) -> None:
    """``wgan sample --out FILE.png`` of 2-D data: the samples over real data, in grey."""
    import torch

    from wgan.plotting import save_figure, scatter_panel, subplots

    real = run.dataset.sample(min(len(fake), 2000), generator=torch.Generator().manual_seed(1))
    fig, ax = subplots(figsize=(5, 5))
    seed_text = "" if seed is None else f", seed {seed}"
    title = f"{run.display_name}: step {run.step}, {len(fake)} samples{seed_text}"
    scatter_panel(ax, real.numpy(), fake, None, run.dataset.bounds(), title)
    ax.legend(loc="upper right", markerscale=4, fontsize=8)
    save_figure(fig, path)


def cmd_eval(args: argparse.Namespace) -> int:
    from wgan.train import load_run

    _check_count("--num", args.num)
    trainer = load_run(args.run, device=resolve_device(args.device))
    _check_count("--num", args.num, trainer)
    metrics: dict[str, Any] = {"run": str(args.run), "step": trainer.step}
    trainer.notify = lambda message: print(message, file=sys.stderr, flush=True)
    metrics.update(
        trainer.evaluate(args.num, inception_weights=args.inception_weights, seed=args.seed)
    )
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
    from wgan.experiments import EXPERIMENTS, get_experiment, run_experiment
    from wgan.experiments.common import settings_help

    if args.help:
        if args.name is None:
            args.help_parser.print_help()
        elif args.name == "all":
            print(_ALL_HELP)
        else:
            print(settings_help(get_experiment(args.name)))
        return 0
    if args.list or args.name is None:
        width = max(len(n) for n in EXPERIMENTS)
        for name, exp in EXPERIMENTS.items():
            print(f"{name:<{width}}  {exp.description}")
        return 0
    if args.name == "all":
        return _experiment_all(args)
    if args.out is not None or args.quick:
        raise WganError("--out and --quick belong to 'wgan experiment all'; use --out-dir DIR")
    out_dir = args.out_dir or "runs"
    runs.check_out_dir(out_dir, "--out-dir" if args.out_dir else "out_dir")
    result = run_experiment(args.name, args.overrides, out_dir=out_dir)
    for verdict in result.verdicts:  # a run too small to test a claim says so, on stderr too
        if verdict.holds is None:
            print(f"wgan: warning: {verdict.claim}: {verdict.note}", file=sys.stderr)
    if args.json:
        record = {
            "experiment": result.name,
            "run_dir": str(result.run_dir),
            "results": str(result.run_dir / "results.json"),
            "figures": [str(f) for f in result.figures],
            "verdicts": [v.to_dict() for v in result.verdicts],
            "numbers": result.numbers,
        }
        print(json.dumps(json_safe(record)))
        return 0
    print(result.table)
    print(f"run:     {result.run_dir}")
    print(f"results: {result.run_dir / 'results.json'}")
    for fig in result.figures:
        print(f"figure:  {fig}")
    if result.verdicts:
        print("verdicts:")
        for verdict in result.verdicts:
            print(f"  {verdict.line()}")
    return 0


_ALL_HELP = """usage: wgan experiment all [--out DIR] [--quick] [--json]

Run every registered experiment (at its defaults, or at its quick size with --quick) into DIR
(default: runs/report), one run directory each, and write DIR/index.html: one self-contained
page with, for every claim, its source, the figures, the numbers and the verdict. A failing
experiment is shown as failed on the page; the others still run."""


def _experiment_all(args: argparse.Namespace) -> int:
    """``wgan experiment all``: every experiment, then one ``index.html``."""
    from wgan.experiments.report import run_all

    if args.overrides:
        raise WganError("'wgan experiment all' takes no key=value overrides (see --quick)")
    out = args.out or args.out_dir or str(Path("runs") / "report")
    runs.check_out_dir(out, "--out")
    report = run_all(out, quick=args.quick, log=lambda line: print(line, file=sys.stderr))
    if args.json:
        print(json.dumps(json_safe(report.to_dict())))
        return 0
    for entry in report.entries:
        print(entry.summary_line())
    print(f"page:    {report.index}")
    print(f"time:    {report.seconds:.0f} s")
    return 0


def cmd_lipschitz(args: argparse.Namespace) -> int:
    from wgan.analysis import format_lipschitz_report, lipschitz_report
    from wgan.train import load_run

    _check_count("--num", args.num)
    run = load_run(args.run, device=resolve_device(args.device))
    _check_count("--num", args.num, run)
    report = lipschitz_report(run, n=args.num)
    if args.json:
        print(json.dumps(json_safe(report)))
    else:
        print(format_lipschitz_report(report))
    return 0


# ----------------------------------------------------------------------------------------------
# Parser
# ----------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="wgan", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action=_VersionAction, help="print the version and exit")
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
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object: run, step, seconds, figure and the final metrics "
        "(with --dry-run: the config)",
    )
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
    p.add_argument(
        "--seed", type=int, help="noise seed (default 12345, as Run.samples and wgan eval)"
    )
    p.add_argument("--label", type=int, help="class to generate (conditional GANs)")
    add_device_argument(p)
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
    p.add_argument(
        "--seed",
        type=int,
        help="noise seed of the generated samples (default 12345): wgan sample --seed S "
        "writes the samples that eval --seed S measures",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_device_argument(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser(
        "experiment",
        help="reproduce a claim of the seeds (figures + numbers + verdicts)",
        add_help=False,  # `wgan experiment NAME --help` lists NAME's settings
    )
    p.add_argument(
        "name", nargs="?", help="experiment name, or 'all' (omit, or --list, to list them)"
    )
    p.add_argument("overrides", nargs="*", metavar="key=value", help="settings overrides")
    p.add_argument(
        "-h", "--help", action="store_true", help="this help; with NAME, NAME's settings"
    )
    p.add_argument("--list", action="store_true", help="list the experiments")
    p.add_argument("--out-dir", help="parent folder of run directories (default: runs)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--out", metavar="DIR", help="all: folder of the runs and index.html")
    p.add_argument("--quick", action="store_true", help="all: every experiment at its quick size")
    p.set_defaults(func=cmd_experiment, help_parser=p)

    p = sub.add_parser("lipschitz", help="Lipschitz bounds of a run's critic (layer product, data)")
    p.add_argument("run", help="run directory")
    p.add_argument("--num", type=int, default=2048, help="samples per set (default 2048)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_device_argument(p)
    p.set_defaults(func=cmd_lipschitz)

    add_sweep_parser(sub)
    add_study_parser(sub)
    add_bench_parser(sub)
    add_interpolate_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``wgan`` command."""
    from wgan import provenance

    parser = build_parser()
    args = parser.parse_args(argv)
    provenance.set_command(sys.argv[1:] if argv is None else argv)  # for the run's record
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except WganError as err:  # 2: the input was wrong; 1 (RunFailure): the work failed
        _close_progress_bars()
        sys.stderr.write(f"wgan: error: {_one_line(str(err))}\n")
        return err.exit_code
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
