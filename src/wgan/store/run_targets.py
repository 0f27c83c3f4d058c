"""The runs a command that reads runs works on (``wgan eval``, ``sample``, ``interpolate``):
a run directory, a checkpoint file in one, or each run of a sweep's or study's folder (or the
one ``--member NAME`` names). Only the standard library and PyYAML are imported.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from wgan.errors import WganError
from wgan.store.printable import printable
from wgan.store.run_index import find_runs, group_kind, group_members, is_run_dir

__all__ = ["run_targets", "several_runs"]


def several_runs(path: str | Path) -> str | None:
    """Why ``path``, a sweep's or study's folder, is not one run (None when it is not one)."""
    path = Path(path)
    kind, members = group_kind(path), group_members(path)
    if kind is None or not members:
        return None
    return (
        f"{printable(path)} is a {kind}'s folder holding {len(members)} runs, not one run: load "
        f"one of them (e.g. {printable(members[0])}); wgan eval, sample and interpolate take the "
        "folder (each run) or --member NAME"
    )


def _aliases(run_dir: Path) -> set[str]:
    """The names a member of a group answers to: its folder's name and every tail of it after
    a ``-`` (a sweep's ``00001-seed1`` and a study's ``toy-wgan-gp-seed1`` are both ``seed1``)."""
    parts = run_dir.name.split("-")
    return {"-".join(parts[i:]) for i in range(len(parts))} - {""}


def run_targets(path: str | Path, member: str | None = None) -> list[Path]:
    """The runs a command that reads runs (``wgan eval``, ``sample``, ``interpolate``) works on,
    given ``path``: a run directory, a checkpoint file in one (``RUN/checkpoint.pt``), or the
    folder of a sweep or a study (each of its runs, or the one ``member`` names: its folder's
    name, or a tail of it after a ``-`` that names one run, e.g. ``seed1``). Returns run
    directories or checkpoint files, as :func:`wgan.training.run.load_run` takes them.

    Raises :class:`WganError` for a ``member`` that is not in the group (naming the members),
    a ``member`` given for one run, and a folder that holds several runs without being a sweep
    or a study (naming one of them and ``wgan runs``); a path that does not exist is left to
    the loading, which names it.
    """
    path = Path(path).expanduser()
    if not path.exists():
        return [path]  # loading it says "run directory not found"
    kind = None if path.is_file() or is_run_dir(path) else group_kind(path)
    if kind is None:
        if member is not None:
            raise WganError(f"--member is for a sweep's or a study's folder; {path} is one run")
        if path.is_dir() and not is_run_dir(path):
            runs = find_runs(path)
            if runs:
                raise WganError(
                    f"{printable(path)} holds {len(runs)} runs, not one: give one of them (e.g. "
                    f"{printable(runs[0][0])}), or see them all with: wgan runs {printable(path)}"
                )
        return [path]
    members = group_members(path)
    if not members:
        raise WganError(f"{printable(path)} is a {kind}'s folder with no runs in it")
    if member is None:
        return members
    exact = [m for m in members if m.name == member]
    found = exact or [m for m in members if member in _aliases(m)]
    if len(found) == 1:
        return found
    names = [m.name for m in (found or members)]
    shown = ", ".join(names[:10]) + (f", ... ({len(names)} in all)" if len(names) > 10 else "")
    if found:
        raise WganError(
            f"--member {printable(member, 100)} names {len(found)} runs of the {kind} "
            f"{printable(path)} ({printable(shown, 1000)}); give one's full name"
        )
    aliases = sorted({a for m in members for a in _aliases(m)})
    close = difflib.get_close_matches(member, aliases, n=1)
    hint = f"; did you mean {printable(close[0], 100)}?" if close else ""
    raise WganError(
        f"--member {printable(member, 100)}: no such run in the {kind} {printable(path)} "
        f"(its runs: {printable(shown, 1000)}){hint}"
    )
