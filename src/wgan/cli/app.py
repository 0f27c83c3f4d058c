"""The ``wgan`` command line: train, presets, sample, eval, experiment, lipschitz, sweep, bench, ...

Every user mistake (unknown key, wrong type, missing file, bad run directory) is reported as one
line ``wgan: error: ...`` with exit status 2, never a traceback; a failure at run time (training
diverged, the device asked for is missing, the disk filled up, a checkpoint could not be saved:
:class:`wgan.errors.RunFailure`) is one such line with exit status 1. Ctrl-C and SIGTERM stop a
training loop at its next step with a checkpoint (:mod:`wgan.training.interrupt`), print the step
and the command that continues the work, and exit with 130 and 143. What the file system refuses
before the work (an output path that cannot be written, a read-only run) is one line with status
2 too: output paths are checked before the work starts, outputs are written to a temporary file
and moved into place, and a failed checkpoint save keeps the previous checkpoint.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import os
import sys
from pathlib import Path
from typing import Any

from wgan.cli.config_cmd import CONFIG_HINT, add_config_parser
from wgan.cli.format import format_metrics as _format_metrics
from wgan.cli.format import split_source as _split_source
from wgan.cli.format import warn_repeated_keys
from wgan.cli.interpolate import add_interpolate_parser
from wgan.cli.run_commands import add_eval_parser, add_lipschitz_parser, add_sample_parser
from wgan.cli.runs import add_runs_parser
from wgan.cli.scale import add_bench_parser, add_sweep_parser
from wgan.cli.study import add_study_parser
from wgan.errors import Interrupted, StorageFull, WganError
from wgan.store import rundirs
from wgan.store.printable import printable
from wgan.store.tracking import json_safe


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

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        """argparse's check of a choice, naming the close ones (``wgan trian``: train)."""
        if action.choices is not None and value not in action.choices:
            close = difflib.get_close_matches(str(value), [str(c) for c in action.choices], n=3)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            choices = ", ".join(map(repr, action.choices))
            raise argparse.ArgumentError(
                action, f"invalid choice: {value!r}; {hint}(choose from {choices})"
            )

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


VERBOSE_HELP = "say how many CPU threads training uses, and why"


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


# ----------------------------------------------------------------------------------------------
# Commands
# ----------------------------------------------------------------------------------------------


def cmd_train(args: argparse.Namespace) -> int:
    from wgan.config import parse_override, resolve
    from wgan.training.interrupt import resume_command
    from wgan.training.train import resume, stopped_before_first_checkpoint, train

    source, overrides = _split_source(args.items)
    try:
        if args.resume:
            if source is not None:
                raise WganError(
                    "--resume takes its config from the run; give only key=value overrides"
                )
            parsed = dict(parse_override(o) for o in overrides)
            _refuse_sweep_dir(Path(args.resume))
            # Rank 0 locks the run: a second process resuming it is refused; a read-only run
            # is refused before anything is read or written.
            lock: Any = contextlib.nullcontext()
            restart = stopped_before_first_checkpoint(args.resume)
            if _is_rank0() and ((Path(args.resume) / rundirs.CHECKPOINT).is_file() or restart):
                lock = rundirs.lock_run(args.resume)
            with lock:
                if restart and _is_rank0():
                    sys.stderr.write(
                        f"wgan: {printable(args.resume)} has no checkpoint (it stopped before its "
                        "first one); training it again from step 0\n"
                    )
                result = resume(args.resume, parsed, log=_note)
        else:
            cfg = resolve(source, overrides)
            if args.out_dir:
                cfg.out_dir = args.out_dir
            if args.dry_run:  # the data is built (and so checked) as the run would build it
                from wgan.data.adopt import adopt_data, folder_summary
                from wgan.data.preflight import check_data

                scan = adopt_data(cfg)  # an image folder's size, colour and classes
                if scan is not None:
                    _note(folder_summary(scan, cfg))

                data = printable(check_data(cfg.data), 300)
            if args.dry_run and args.json:
                print(json.dumps(json_safe(cfg.to_dict())))
                return 0
            if args.dry_run:  # as in config.yaml, after a comment saying what the data holds
                sys.stdout.write(f"# data checked: {data}\n{rundirs.config_yaml(cfg.to_dict())}")
                return 0
            rundirs.check_out_dir(cfg.out_dir, "--out-dir" if args.out_dir else "out_dir")
            if _is_rank0():
                # The run directory exists only while the start succeeds: a run that fails to
                # start (bad data path, model that cannot be built) leaves no directory behind.
                with rundirs.create_run_dir(cfg.out_dir, cfg.name) as run_dir:
                    result = train(cfg, run_dir=run_dir, log=_note)
            else:
                result = train(cfg)  # rank 0 chooses the run directory
    except Interrupted as err:
        if err.step is None:  # stopped before the training loop: this session saved nothing
            err.kept = "before training started; nothing of this session was saved"
            if args.resume:
                err.resume = resume_command("wgan", "train", "--resume", args.resume)
        raise
    except OSError as err:
        error = StorageFull if err.errno in rundirs.OUT_OF_SPACE else WganError
        raise error(
            f"{rundirs.describe_os_error(err)}; the run's last checkpoint, if any, is kept"
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


def _note(line: str) -> None:
    """A line about the work, on stderr (stdout keeps the results, e.g. ``--json``)."""
    sys.stderr.write(f"wgan: {printable(line, 2000)}\n")


def _refuse_sweep_dir(path: Path) -> None:
    """``wgan train --resume`` of a sweep's folder: name the command that continues a sweep."""
    if (path / rundirs.CHECKPOINT).exists() or (path / rundirs.CONFIG).exists():
        return
    sweep = f"wgan sweep --resume {printable(path)}"
    if (path / "sweep.json").is_file():
        how = f"continue it with: {sweep}"
    elif (path / "study.json").is_file():
        how = f"continue it with the wgan study command that ran it (a sweep's: {sweep})"
    else:
        return
    raise WganError(f"{printable(path)} holds several runs, not one; {how}")


def cmd_presets(args: argparse.Namespace) -> int:
    from wgan.config import preset_description, preset_names

    names = preset_names()
    width = max(len(n) for n in names)
    for name in names:
        print(f"{name:<{width}}  {preset_description(name)}")
    return 0


def cmd_experiment(args: argparse.Namespace) -> int:
    from wgan.experiments import EXPERIMENTS, get_experiment, run_experiment
    from wgan.experiments.framework import settings_help

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
    if args.out is not None:
        raise WganError("--out belongs to 'wgan experiment all'; use --out-dir DIR")
    if args.fresh:
        raise WganError("--fresh belongs to 'wgan experiment all' (one experiment always runs)")
    warn_repeated_keys(args.overrides)
    if args.quick and not get_experiment(args.name).quick:
        print(f"wgan: note: {args.name} has no quick size; running its defaults", file=sys.stderr)
    out_dir = args.out_dir or "runs"
    rundirs.check_out_dir(out_dir, "--out-dir" if args.out_dir else "out_dir")
    try:
        result = run_experiment(args.name, args.overrides, out_dir=out_dir, quick=args.quick)
    except Interrupted as err:  # stopped in one of its trainings, with that run's checkpoint
        _experiment_interrupted(err)
        raise
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


def _experiment_interrupted(err: Interrupted) -> None:
    """An experiment does not continue from where it stopped: say so, and how to run it again."""
    from wgan.store.provenance import command_line

    err.kept = f"an experiment does not resume; to run it again: {command_line()}"
    err.resume = None


_ALL_HELP = """usage: wgan experiment all [--out DIR] [--quick] [--fresh] [--json]

Run every registered experiment (at its defaults, or at its quick size with --quick) into DIR
(default: runs/report), one run directory each, and write DIR/index.html: one self-contained
page with, for every claim, its source, the figures, the numbers and the verdict. A failing
experiment is shown as failed on the page; the others still run. Run again into the same DIR
(after a stop, or with one experiment's folder deleted), it reuses every experiment that
finished there with the same settings; --fresh runs them all again."""


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr)


def _experiment_all(args: argparse.Namespace) -> int:
    """``wgan experiment all``: every experiment, then one ``index.html``."""
    from wgan.experiments.report import run_all

    if args.overrides:
        raise WganError("'wgan experiment all' takes no key=value overrides (see --quick)")
    out = args.out or args.out_dir or str(Path("runs") / "report")
    rundirs.check_out_dir(out, "--out")
    try:
        report = run_all(out, quick=args.quick, log=_to_stderr, fresh=args.fresh)
    except Interrupted as err:
        _experiment_interrupted(err)
        raise
    if args.json:
        print(json.dumps(json_safe(report.to_dict())))
        return 0
    for entry in report.entries:
        print(entry.summary_line())
    print(f"page:    {report.index}")
    reused = sum(e.seconds for e in report.entries if e.reused)
    again = f" ({reused:.0f} s of it reused from earlier runs)" if reused else ""
    print(f"time:    {report.seconds:.0f} s{again}")
    return 0


# ----------------------------------------------------------------------------------------------
# Parser
# ----------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="wgan", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action=_VersionAction, help="print the version and exit")
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    p = sub.add_parser(
        "train",
        help="train a GAN from a preset or YAML config",
        description=f"Train a GAN from a preset or YAML config. List {CONFIG_HINT} [--section S].",
    )
    p.add_argument(
        "items",
        nargs="*",
        metavar="[PRESET|CONFIG.yaml] [key=value ...]",
        help=f"a preset name or config file (default: toy-wgan-gp), then dotted overrides; "
        f"{CONFIG_HINT}",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="build the data (checking it), print the resolved config and exit",
    )
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

    add_sample_parser(sub)
    add_eval_parser(sub)

    p = sub.add_parser(
        "experiment",
        help="reproduce a published claim (figures + numbers + verdicts)",
        add_help=False,  # `wgan experiment NAME --help` lists NAME's settings
    )
    p.add_argument(
        "name", nargs="?", help="experiment name, or 'all' (omit, or --list, to list them)"
    )
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="settings (steps=500), or the training-config keys they mirror (train.steps=500)",
    )
    p.add_argument(
        "-h", "--help", action="store_true", help="this help; with NAME, NAME's settings"
    )
    p.add_argument("--list", action="store_true", help="list the experiments")
    p.add_argument("--out-dir", help="parent folder of run directories (default: runs)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--out", metavar="DIR", help="all: folder of the runs and index.html")
    p.add_argument(
        "--quick", action="store_true", help="run at the quick size (all: every experiment)"
    )
    p.add_argument(
        "--fresh",
        action="store_true",
        help="all: run every experiment again (default: reuse those finished in --out)",
    )
    p.set_defaults(func=cmd_experiment, help_parser=p)

    add_lipschitz_parser(sub)
    add_sweep_parser(sub)
    add_study_parser(sub)
    add_runs_parser(sub)
    add_bench_parser(sub)
    add_interpolate_parser(sub)
    add_config_parser(sub)
    for command in sub.choices.values():  # `wgan train -v ...` as well as `wgan -v train ...`
        command.add_argument(
            "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``wgan`` command."""
    from wgan.training import interrupt, threads

    # SIGTERM (kill, docker stop, systemd, Slurm) stops the work as Ctrl-C does: a training loop
    # writes a checkpoint at its next step boundary; the exit status is 143 (130 for Ctrl-C).
    interrupt.install()
    # Before anything loads torch: OpenMP reads its wait policy once (see wgan.training.threads).
    threads.configure_openmp()
    from wgan.store import provenance

    parser = build_parser()
    args = parser.parse_args(argv)
    threads.set_verbose(bool(getattr(args, "verbose", False)))
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
        sys.stderr.write(f"wgan: error: {rundirs.describe_os_error(err)}\n")
        return 1 if err.errno in rundirs.OUT_OF_SPACE else 2  # a full disk: not the input's fault
    except MemoryError:
        sys.stderr.write("wgan: error: out of memory (ask for fewer samples or a smaller model)\n")
        return 2
    except KeyboardInterrupt as err:  # Ctrl-C or SIGTERM (wgan.errors.Interrupted)
        _close_progress_bars()
        if _is_rank0():
            sys.stderr.write("".join(f"{line}\n" for line in interrupt.message(err)))
        return int(getattr(err, "exit_code", 130))


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
    """A message as one line (a path or a value may hold a newline), with any other control
    character from a file (an ANSI escape in a YAML key, a torch message) shown escaped."""
    return printable(" ".join(text.split("\n")).strip(), limit=4000) or "unknown error"


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
