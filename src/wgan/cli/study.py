"""``wgan study``: many ordinary runs, one directory each, through a launcher (local or Ray).

Two ways to name the runs:

* a study file, ``wgan study STUDY.yaml [key=value ...]``::

      config: toy-wgan-gp            # every run's preset or config file (default toy-wgan-gp)
      overrides: [train.steps=500]   # for every run: "key=value" strings or a mapping
      runs:                          # optional (default: one run named after the file)
        - name: gp
        - name: clip
          config: toy-wgan-clip      # a config file's path is relative to STUDY.yaml
          overrides: {constraint.clip: 0.01}
      seeds: 0-2                     # optional: every run x every seed (NAME-seed0, ...)
      vary: {d_optim.lr: [1e-4, 2e-4]}   # optional: every run x these values

* a preset or config file with seeds and values, like ``wgan sweep``:
  ``wgan study toy-wgan-gp train.steps=500 --seeds 0-3 --vary d_optim.lr=1e-4,2e-4``.

``key=value`` items on the command line apply to every run, after the file's. The study lives
in ``--study-dir`` (default ``<--out-dir>/<STUDY file stem>``, or ``<--out-dir>/<config
name>-study``); running the same command again skips finished runs and resumes interrupted
ones (:func:`wgan.scale.study.run_study`), and with ``train.steps=N`` (or another key a resume
may change) it extends every run, each resumed to N steps as ``wgan train --resume`` would.
While it runs, a line on stderr says when each run starts and ends, with its step and metrics;
Ctrl-C or SIGTERM prints the table of its runs (as ``wgan runs STUDY_DIR``) before it stops.

``wgan sweep`` hands its runs to :func:`sweep_with_launcher` when they cannot be stacked into
one vectorised step (they differ in a shape or a code path).

Nothing here imports torch: ``wgan --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from wgan.cli.format import fmt as _fmt
from wgan.cli.format import split_source as _split_source
from wgan.errors import ConfigError, Interrupted, WganError
from wgan.store.printable import printable

STUDY_KEYS = ("config", "overrides", "runs", "seeds", "vary", "study_dir")
RUN_KEYS = ("name", "config", "overrides")

# ----------------------------------------------------------------------------------------------
# Reading a study
# ----------------------------------------------------------------------------------------------


def _override_list(value: Any, where: str) -> list[str]:
    """``overrides`` as ``key=value`` strings: a list of them, or a mapping (values as YAML)."""
    if value is None:
        return []
    if isinstance(value, dict):
        return [
            f"{k}={json.dumps(list(v) if isinstance(v, tuple) else v)}" for k, v in value.items()
        ]
    if isinstance(value, list) and all(isinstance(v, str) and "=" in v for v in value):
        return list(value)
    raise ConfigError(f"{where}: overrides must be a mapping or a list of key=value strings")


def _check_keys(mapping: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
    unknown = [k for k in mapping if k not in allowed]
    if unknown:
        raise ConfigError(
            f"{where}: unknown key '{unknown[0]}' (a study takes {', '.join(allowed)})"
        )


def _source(value: Any, base: Path | None, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: config must be a preset name or a config file path")
    if base is not None and (value.endswith((".yaml", ".yml")) or "/" in value):
        path = Path(value).expanduser()
        return str(path if path.is_absolute() else base / path)
    return value


def _variants(seeds: Any, vary: Any, where: str) -> list[dict[str, Any]]:
    from wgan.scale.sweep_plan import expand_variants, parse_seeds, parse_vary

    seed_list = None
    if seeds is not None:
        seed_list = parse_seeds(
            ",".join(map(str, seeds)) if isinstance(seeds, list) else str(seeds)
        )
    if vary is None:
        pairs: list[tuple[str, list[Any]]] = []
    elif isinstance(vary, dict) and all(isinstance(v, list) for v in vary.values()):
        pairs = [(str(k), list(v)) for k, v in vary.items()]
    elif isinstance(vary, list) and all(isinstance(v, str) for v in vary):
        pairs = [parse_vary(v) for v in vary]
    else:
        raise ConfigError(
            f"{where}: vary must map keys to lists of values (or be KEY=V1,V2 strings)"
        )
    return expand_variants(seed_list, pairs)


def expand_runs(
    entries: list[tuple[str, str | None, list[str]]],
    common: list[str],
    variants: list[dict[str, Any]],
) -> list[tuple[str, Any]]:
    """``(name, Config)`` for each entry ``(name, source, overrides)`` x each variant.

    A run's config is its source (default toy-wgan-gp), then ``common`` overrides, then its
    own, then the variant's values; its name is ``name`` or ``name-<variant label>``.
    """
    from wgan.config import resolve, set_value, validate
    from wgan.scale.sweep_plan import run_label

    out = []
    for name, source, overrides in entries:
        for variant in variants or [{}]:
            cfg = resolve(source, [*common, *overrides])
            for key, value in variant.items():
                set_value(cfg, key, value)
            validate(cfg)
            out.append((f"{name}-{run_label(variant)}" if variant else name, cfg))
    return out


def read_study_file(
    path: str | Path, extra: list[str] | None = None
) -> tuple[list[tuple[str, Any]], Path | None]:
    """The runs of a study file (see the module docstring) and its ``study_dir`` (or None).

    ``extra`` overrides apply to every run after the file's own. Unknown keys, bad overrides
    and configs are refused with the file's name.
    """
    from wgan.config import read_yaml_mapping

    path = Path(path).expanduser()
    where = f"study file {path}"
    try:
        mapping = read_yaml_mapping(path.read_text(), where)
    except (OSError, UnicodeDecodeError) as err:
        raise WganError(f"cannot read {where}: {err}") from None
    if not mapping:  # an empty file must not start a default run
        raise ConfigError(
            f"{where} is empty: give runs (a list of {{name, config, overrides}}), or a config "
            "and overrides for one run named after the file"
        )
    _check_keys(mapping, STUDY_KEYS, where)
    base = path.parent
    default = _source(mapping.get("config", "toy-wgan-gp"), base, where)
    common = _override_list(mapping.get("overrides"), where) + list(extra or [])
    raw = mapping.get("runs")
    if raw is None:
        raw = [{"name": path.stem}]
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{where}: runs must be a non-empty list of {{name, config, overrides}}")
    entries = []
    for i, run in enumerate(raw):
        here = f"{where}, run {i + 1}"
        if not isinstance(run, dict) or "name" not in run:
            raise ConfigError(f"{here}: a run is a mapping with a name (and config, overrides)")
        _check_keys(run, RUN_KEYS, here)
        source = _source(run["config"], base, here) if "config" in run else default
        entries.append((str(run["name"]), source, _override_list(run.get("overrides"), here)))
    variants = _variants(mapping.get("seeds"), mapping.get("vary"), where)
    study_dir = mapping.get("study_dir")
    if study_dir is not None and not isinstance(study_dir, str):
        raise ConfigError(f"{where}: study_dir must be a path")
    return expand_runs(entries, common, variants), (
        None if study_dir is None else base / Path(study_dir).expanduser()
    )


def _is_study_file(source: str | None) -> bool:
    """A YAML file whose top level names a key of a study (:data:`STUDY_KEYS`: ``config``,
    ``overrides``, ``runs``, ``seeds``, ``vary``, ``study_dir``; a run config has none of
    them), or an empty one, which :func:`read_study_file` refuses (it must not start a default
    run)."""
    if source is None or not source.endswith((".yaml", ".yml")) or not Path(source).is_file():
        return False
    import yaml

    try:
        data = yaml.safe_load(Path(source).read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False  # the config reader reports it
    if data is None or data == {}:
        return True
    return isinstance(data, dict) and any(k in data for k in STUDY_KEYS)


# ----------------------------------------------------------------------------------------------
# Printing records
# ----------------------------------------------------------------------------------------------

_SKIP = {"n_samples", "n_real", "n_modes", "modes_captured", "w1_method"}
_SHORT = {"high_quality_fraction": "hq", "inception_score": "IS", "kl_to_uniform": "kl"}


def _metrics(record: dict[str, Any]) -> dict[str, Any]:
    metrics = record.get("metrics")
    return metrics if isinstance(metrics, dict) else {}


def format_records(records: list[dict[str, Any]]) -> str:
    """A table of study records: name, status, step, headline metrics (a metric's real-vs-real
    baseline in brackets beside it), seconds."""
    from wgan.store.run_index import metric_pairs

    numeric: list[str] = []
    based: set[str] = set()
    for r in records:
        for key, value, base in metric_pairs(_metrics(r)):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if ok and key not in _SKIP and key not in numeric:
                numeric.append(key)
            if base is not None:
                based.add(key)
    numeric = numeric[:4]
    modes = any("modes_captured" in _metrics(r) for r in records)
    header = [
        "run",
        "status",
        "step",
        *(["modes"] if modes else []),
        *(printable(_SHORT.get(k, k), 40) + (" (real)" if k in based else "") for k in numeric),
        "seconds",
    ]
    rows = []
    for r in records:  # every string shown may come from a record file: escaped
        m = _metrics(r)
        status = "diverged" if r.get("diverged") else printable(r.get("status"), 40)
        row = [printable(r.get("name"), 200), status, printable(r.get("step", "-"), 40)]
        if modes:
            pair = f"{m.get('modes_captured')}/{m.get('n_modes', '?')}"
            row.append(printable(pair, 40) if "modes_captured" in m else "-")
        bases = {k: b for k, _, b in metric_pairs(m) if b is not None}
        row += [
            printable(_fmt(m.get(k)) + (f" ({_fmt(bases[k])})" if k in bases else ""), 60)
            for k in numeric
        ]
        seconds = r.get("seconds", 0.0)
        number = isinstance(seconds, (int, float)) and not isinstance(seconds, bool)
        row.append(f"{seconds:.1f}" if number else "-")
        rows.append(row)
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    lines = [header, *rows]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def report(records: list[dict[str, Any]], study_dir: Path, as_json: bool, seconds: float) -> int:
    """Print the records (table or JSON); one error line and status 1 if a run failed."""
    from wgan.store.tracking import json_safe

    if as_json:
        print(json.dumps(json_safe({"study_dir": str(study_dir), "runs": records})))
    else:
        print(format_records(records))
        counts = {s: sum(r.get("status") == s for r in records) for s in ("done", "resumed")}
        skipped = sum(r.get("status") == "skipped" for r in records)
        print(
            f"{len(records)} runs in {printable(study_dir, 300)} ({counts['done']} trained, "
            f"{counts['resumed']} resumed, {skipped} already finished) in {seconds:.1f} s"
        )
    failed = [r for r in records if r.get("status") == "failed"]
    if failed:
        retry = [r for r in failed if not r.get("diverged")]
        what = (
            "run the study again to retry the others, delete a diverged run's folder to "
            "train it again"
            if retry and len(retry) < len(failed)
            else "run the study again to retry them"
            if retry
            else "they diverged: delete a run's folder to train it again"
        )
        sys.stderr.write(
            f"wgan: error: {len(failed)} of {len(records)} study runs failed "
            f"(first: {printable(failed[0].get('name'), 200)}: "
            f"{printable(failed[0].get('error'), 500)}); {what}\n"
        )
        return 1  # a run-time failure, not a usage error (as wgan sweep)
    return 0


# ----------------------------------------------------------------------------------------------
# Commands
# ----------------------------------------------------------------------------------------------


def cmd_study(args: argparse.Namespace) -> int:
    """``wgan study``: read the runs, run them through the launcher, print the records."""
    from wgan.scale.study import MAX_JOBS, run_study

    if args.jobs is not None and not 1 <= args.jobs <= MAX_JOBS:  # 0 is not "the default"
        raise WganError(f"--jobs must be in [1, {MAX_JOBS:,}], got {args.jobs}")
    source, overrides = _split_source(args.items)
    if _is_study_file(source):
        if args.seeds or args.vary:
            raise WganError("--seeds/--vary go with a preset or config; put them in the study file")
        study_runs, file_dir = read_study_file(source, overrides)
        default_dir = Path(args.out_dir or "runs") / Path(source).stem
    else:
        from wgan.config import resolve

        variants = _variants(args.seeds, args.vary, "wgan study")
        name = resolve(source, overrides).name
        study_runs = expand_runs([(name, source, overrides)], [], variants)
        file_dir, default_dir = None, Path(args.out_dir or "runs") / f"{name}-study"
    study_dir = Path(args.study_dir) if args.study_dir else file_dir or default_dir
    start = time.time()
    try:
        records = run_study(
            study_runs,
            study_dir,
            launcher=args.launcher,
            # Ray schedules the tasks by the CPUs (and GPUs) they need: all in flight by default.
            jobs=args.jobs
            if args.jobs is not None
            else (1 if args.launcher == "local" else min(len(study_runs), MAX_JOBS)),
            address=args.address,
            threads=args.threads,
            stack=args.stack,
            progress=progress_line,
        )
    except Interrupted as err:  # the same command continues the study
        from wgan.store.provenance import command_line

        interrupted(err, study_dir, command_line(), args.json)
        raise
    return report(records, study_dir, args.json, time.time() - start)


def progress_line(line: str) -> None:
    """A study's progress line (already escaped), on stderr: stdout keeps the table or JSON."""
    sys.stderr.write(f"{line}\n")
    sys.stderr.flush()


def interrupted(err: Interrupted, study_dir: Path, resume: str, as_json: bool = False) -> None:
    """What an interrupted study says (Ctrl-C, SIGTERM): the table of its runs as they stand
    (``wgan runs STUDY_DIR``; ``--json``: its object), what is kept, and the command that
    continues it."""
    _print_runs(study_dir, as_json)
    err.kept = (
        f"{study_dir / 'study.json'} marks the runs not finished as interrupted; each keeps its "
        "last checkpoint"
    )
    err.resume = resume


def _print_runs(study_dir: Path, as_json: bool) -> None:
    """The runs of the study, each with its status, step and last metrics (as ``wgan runs``);
    nothing if the study's folder was not made yet."""
    from wgan.cli.runs import format_runs
    from wgan.store.run_index import list_runs
    from wgan.store.tracking import json_safe

    try:
        rows = list_runs(study_dir)
    except WganError:
        return
    if as_json:
        print(json.dumps(json_safe({"study_dir": str(study_dir), "runs": rows})), flush=True)
    else:
        print(format_runs(rows, study_dir), flush=True)


def sweep_with_launcher(
    base: Any, variants: list[dict[str, Any]], args: argparse.Namespace
) -> int | None:
    """``wgan sweep`` of runs that cannot be stacked: a study in a new ``<name>-sweep`` folder,
    run by the local launcher (one process per run, up to one per CPU core). Returns the exit
    status, or None when the runs can be stacked (the vectorised sweep then trains them)."""
    from wgan.config import changed_keys
    from wgan.scale.study import run_study
    from wgan.scale.sweep_plan import MAY_DIFFER, run_label, sweep_configs
    from wgan.store import rundirs

    try:
        sweep_configs(base, variants)
        return None
    except ConfigError as stack_error:
        reason = str(stack_error)
    # A bad key or value is raised here, as the sweep would raise it.
    study_runs = [(run_label(v), _variant_config(base, v)) for v in variants]
    differ = sorted(
        {k for _, c in study_runs[1:] for k in changed_keys(study_runs[0][1], c)} - set(MAY_DIFFER)
    )
    if differ:  # else: an option the vectorised step does not take (fp16, channels-last)
        reason = f"they differ in {', '.join(differ)}"
    root = Path(args.out_dir) if args.out_dir else Path(base.out_dir)
    study_dir = rundirs.new_run_dir(root, f"{base.name}-sweep")
    jobs = max(1, min(len(study_runs), os.cpu_count() or 1))
    print(
        f"the runs cannot be stacked ({reason}); training them as separate processes, "
        f"{jobs} at a time, in {study_dir}",
        file=sys.stderr,
    )
    start = time.time()
    try:
        records = run_study(
            study_runs, study_dir, launcher="local", jobs=jobs, progress=progress_line
        )
    except Interrupted as err:
        from wgan.training.interrupt import resume_command

        resume = resume_command("wgan", "sweep", "--resume", study_dir)
        interrupted(err, study_dir, resume, args.json)
        raise
    return report(records, study_dir, args.json, time.time() - start)


def _variant_config(base: Any, variant: dict[str, Any]) -> Any:
    import copy

    from wgan.config import set_value, validate

    cfg = copy.deepcopy(base)
    for key, value in variant.items():
        set_value(cfg, key, value)
    return validate(cfg)


def add_study_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``wgan study`` to the ``wgan`` command's subparsers; returns its parser."""
    p = subparsers.add_parser(
        "study",
        help="many ordinary runs, one directory each, through a launcher (local processes or "
        "Ray); a re-run skips finished runs and resumes interrupted ones",
    )
    p.add_argument(
        "items",
        nargs="*",
        metavar="[STUDY.yaml|PRESET|CONFIG.yaml] [key=value ...]",
        help="a study file (runs:, seeds:, vary:), or a preset or config file with --seeds / "
        "--vary; then dotted overrides for every run",
    )
    p.add_argument("--seeds", help="seeds of the runs, e.g. 0,1,2 or 0-7 (with a preset)")
    p.add_argument(
        "--vary",
        action="append",
        default=[],
        metavar="KEY=V1,V2,...",
        help="values of any config key (repeatable; cross product with the seeds)",
    )
    p.add_argument(
        "--launcher", choices=("local", "ray"), default="local", help="local processes or Ray"
    )
    p.add_argument("--jobs", type=int, help="runs at once (default: 1 locally, all of them on Ray)")
    p.add_argument("--address", help="Ray cluster address (launcher ray; default: a local Ray)")
    p.add_argument(
        "--threads",
        type=int,
        help="CPU threads per run (default: as many as are free for one job, CPUs / jobs for "
        "several, 1 per Ray task)",
    )
    p.add_argument(
        "--stack",
        action="store_true",
        help="train fresh runs that share shapes together, one vectorised step per group (as "
        "wgan sweep; equal to separate runs up to float rounding)",
    )
    p.add_argument("--study-dir", help="the study's folder (default: OUT_DIR/<study name>)")
    p.add_argument("--out-dir", help="parent folder of the study's folder (default: runs)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_study)
    return p
