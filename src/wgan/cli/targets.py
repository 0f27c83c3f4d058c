"""What ``wgan eval``, ``wgan sample`` and ``wgan interpolate`` read: a run directory, a
checkpoint file in one (``RUN/checkpoint.pt``), or the folder of a sweep or a study, whose runs
are each read in turn (or the one ``--member NAME`` names).

The runs are found by :func:`wgan.store.run_targets.run_targets`; a command given a group
writes one output per run, named after it (``--out samples.npy`` -> ``samples-00000-seed0.npy``).
Nothing here imports torch, and building the parsers imports nothing but argparse.
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["RUN_HELP", "add_member_argument", "is_group", "member_output", "targets"]

RUN_HELP = (
    "a run directory, its checkpoint file (RUN/checkpoint.pt), or a sweep's or study's folder "
    "(each of its runs, or --member NAME)"
)


def add_member_argument(parser: argparse.ArgumentParser) -> None:
    """``--member NAME``: one run of a sweep's or study's folder."""
    parser.add_argument(
        "--member",
        metavar="NAME",
        help="with a sweep's or study's folder: only this run (its folder's name, e.g. "
        "00001-seed1 or seed1)",
    )


def is_group(args: argparse.Namespace) -> bool:
    """Whether the command reads every run of a sweep's or study's folder (no ``--member``)."""
    from wgan.store.run_index import group_kind, is_run_dir

    path = Path(args.run).expanduser()
    if args.member is not None or not path.is_dir() or is_run_dir(path):
        return False
    return group_kind(path) is not None


def targets(args: argparse.Namespace) -> list[Path]:
    """The runs (directories or checkpoint files) of ``args.run`` and ``args.member``."""
    from wgan.store.run_targets import run_targets

    return run_targets(args.run, args.member)


def member_output(out: Path, target: Path) -> Path:
    """The output of one run of a group: ``OUT-RUN.SUFFIX`` beside ``out``."""
    return out.with_name(f"{out.stem}-{target.name}{out.suffix}")
