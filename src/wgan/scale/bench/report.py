"""Output of :mod:`wgan.scale.bench`: a two-column table of a result, and a row of a markdown
record.

:func:`format_bench` prints a :func:`~wgan.scale.bench.measure.bench` result (TFLOP/s on a GPU,
GFLOP/s on the CPU); :func:`record_result` appends it as one row of a markdown table (with the
date, machine, git commit and load average), starting a new table when the columns changed.
"""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path
from typing import Any

from wgan.scale.bench.machine import cpu_model, git_commit

__all__ = ["SPREAD_WARNING", "bench_warnings", "format_bench", "record_result"]

SPREAD_WARNING = 1.25
"""Median / best block time above which ``wgan bench`` warns that its repeats spread widely: on a
quiet machine the blocks of one measurement agree within a few per cent."""


def bench_warnings(result: dict[str, Any]) -> list[str]:
    """What a reader of a :func:`~wgan.scale.bench.measure.bench` result must not miss.

    * The repeats spread widely: the median block is more than :data:`SPREAD_WARNING` times the
      best (eager or compiled), so the machine was busy or its clock unsteady, and the median
      overstates the step's cost.
    * A rate above the CPU matmul roofline (the dense ops replayed alone, the eager or the
      compiled iteration): the roofline is the best sustained rate of one ``torch.mm`` shape in
      short windows, not a hard bound; small operands that stay in cache, or a roofline window
      slowed by other load, can beat it, and the number needs that note.
    """
    out = []
    for label, median, best in (
        ("eager", "ms_per_iter", "ms_per_iter_min"),
        ("compiled", "compiled_ms_per_iter", "compiled_ms_per_iter_min"),
    ):
        if result.get(best, 0) > 0 and result[median] / result[best] > SPREAD_WARNING:
            out.append(
                f"{label} repeats spread widely: median {result[median]:.2f} ms against a best of "
                f"{result[best]:.2f} ms per iteration ({result[median] / result[best]:.2f} x); the "
                "machine was busy or its clock unsteady: rerun on a quiet machine or with more "
                "--repeats, and read the best as the step's cost"
            )
    roofline = result.get("roofline_gflops")
    if roofline:
        for label, key in (
            ("dense ops alone", "dense_gflops"),
            ("eager iteration", "achieved_gflops"),
            ("compiled iteration", "compiled_achieved_gflops"),
        ):
            if result.get(key, 0) > roofline:
                out.append(
                    f"{label} at {result[key]:.1f} GFLOP/s is above the measured matmul "
                    f"roofline ({roofline:.1f} GFLOP/s, {result.get('roofline_shape', '')}): "
                    "the roofline is one matmul shape's best sustained rate, not a bound; "
                    "smaller operands that stay in cache, or load during the roofline windows, "
                    "can beat it"
                )
    return out


def format_bench(result: dict[str, Any]) -> str:
    """A two-column table of a :func:`~wgan.scale.bench.measure.bench` result (TFLOP/s on a GPU,
    GFLOP/s on the CPU)."""
    gpu = result["device"] == "cuda"

    def flop_rate(gflops: float) -> str:
        return f"{gflops / 1e3:.3f} TFLOP/s" if gpu else f"{gflops:.1f} GFLOP/s"

    rate = flop_rate(result["achieved_gflops"])
    rows = [
        ("preset", f"{result['preset']}  (data: {result['data']})"),
        (
            "device",
            f"{result['device']}: {result['device_name']}, {result['threads']} threads, "
            f"torch {result['torch']}, {result['precision']}",
        ),
        ("batch / n_critic", f"{result['batch_size']} / {result['n_critic']}"),
        ("params G / D", f"{result['params_g']:,} / {result['params_d']:,}"),
        ("generator iterations/s", f"{result['iters_per_s']:.3f}"),
        (
            "ms / iteration",
            f"{result['ms_per_iter']:.2f} (median of {result['repeats']} blocks of "
            f"{result['steps']}; best {result['ms_per_iter_min']:.2f})",
        ),
        ("ms / critic step", f"{result['ms_per_critic_step']:.2f}"),
        ("ms / generator step", f"{result['ms_per_generator_step']:.2f} (iteration - critic)"),
        ("GFLOP / iteration", f"{result['flops_per_iter'] / 1e9:.3f}"),
        ("achieved", rate),
        ("peak memory", f"{result['peak_mem_mb']:.0f} MB ({result['peak_mem_kind']})"),
    ]
    if "dense_ms_per_iter" in result:
        rows.append(
            (
                "dense ops alone",
                f"{result['dense_ms_per_iter']:.2f} ms/iteration at "
                + flop_rate(result["dense_gflops"])
                + f" ({100 * result['fraction_of_dense_bound']:.1f} % of the iteration)",
            )
        )
    if "roofline_gflops" in result:
        rows += [
            (
                "matmul roofline",
                f"{result['roofline_gflops']:.1f} GFLOP/s (torch.mm {result['roofline_shape']})",
            ),
            ("roofline iterations/s", f"{result['roofline_iters_per_s']:.3f}"),
            ("fraction of roofline", f"{100 * result['fraction_of_roofline']:.1f} %"),
        ]
    if "compiled_ms_per_iter" in result:
        rows += [
            ("compiled iterations/s", f"{result['compiled_iters_per_s']:.3f} (train.compile=true)"),
            (
                "compiled ms / iteration",
                f"{result['compiled_ms_per_iter']:.2f} (median of {result['repeats']} blocks "
                f"of {result['steps']}; best {result['compiled_ms_per_iter_min']:.2f})",
            ),
            ("compile time", f"{result['compile_s']:.1f} s (the first compiled iteration)"),
            ("eager / compiled", f"{result['compile_speedup']:.2f} x"),
            ("compiled achieved", flop_rate(result["compiled_achieved_gflops"])),
        ]
        if "compiled_fraction_of_roofline" in result:
            rows.append(
                (
                    "compiled fraction of roofline",
                    f"{100 * result['compiled_fraction_of_roofline']:.1f} %",
                )
            )
        if "compiled_peak_mem_mb" in result:
            rows.append(("compiled peak memory", f"{result['compiled_peak_mem_mb']:.0f} MB"))
    elif result.get("compile") is False:
        rows.append(("compiled", "not measured (--no-compile)"))
    width = max(len(k) for k, _ in rows)
    lines = [f"  {k:<{width}}  {v}" for k, v in rows]
    return "\n".join(lines + [f"  warning: {w}" for w in bench_warnings(result)])


_RECORD_COLUMNS = (
    "date",
    "machine",
    "commit",
    "preset",
    "device",
    "threads",
    "precision",
    "it/s",
    "ms/iter",
    "ms/critic step",
    "GFLOP/iter",
    "achieved GFLOP/s",
    "roofline GFLOP/s",
    "fraction",
    "dense ms",
    "peak MB",
    "compiled ms/iter",
    "compile s",
    "eager/compiled",
    "load avg",
)


def _machine() -> str:
    return f"{platform.system()} {platform.machine()}, {cpu_model()}"


def _last_table_header(text: str) -> str | None:
    """The header line of the markdown table that ends ``text`` (None if ``text`` does not end
    in a table)."""
    lines = [line.strip() for line in text.rstrip().splitlines()]
    if not lines or not lines[-1].startswith("|"):
        return None
    i = len(lines) - 1
    while i > 0 and lines[i - 1].startswith("|"):
        i -= 1
    return lines[i]


def record_result(result: dict[str, Any], path: str | Path, commit: str | None = None) -> str:
    """Append ``result`` as one row of a markdown table to ``path``.

    The row goes under the table that ends the file when its header has this version's
    columns; otherwise (no table, or one written with other columns) a new header comes first.
    """
    path = Path(path)
    commit = commit if commit is not None else git_commit()
    try:
        load = f"{os.getloadavg()[0]:.2f}"
    except OSError:
        load = "n/a"
    roof = result.get("roofline_gflops")
    frac = result.get("fraction_of_roofline")
    device = result["device"] if result["device"] == "cpu" else result["device_name"]
    cells = [
        datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        _machine(),
        commit,
        result["preset"],
        device,
        str(result["threads"]),
        result["precision"],
        f"{result['iters_per_s']:.3f}",
        f"{result['ms_per_iter']:.1f}",
        f"{result['ms_per_critic_step']:.2f}",
        f"{result['flops_per_iter'] / 1e9:.3f}",
        f"{result['achieved_gflops']:.1f}",
        f"{roof:.1f}" if roof is not None else "-",
        f"{100 * frac:.1f} %" if frac is not None else "-",
        f"{result['dense_ms_per_iter']:.1f}" if "dense_ms_per_iter" in result else "-",
        f"{result['peak_mem_mb']:.0f}",
        f"{result['compiled_ms_per_iter']:.1f}" if "compiled_ms_per_iter" in result else "-",
        f"{result['compile_s']:.1f}" if "compile_s" in result else "-",
        f"{result['compile_speedup']:.2f}" if "compile_speedup" in result else "-",
        load,
    ]
    row = "| " + " | ".join(cells) + " |"
    header = "| " + " | ".join(_RECORD_COLUMNS) + " |"
    text = path.read_text() if path.exists() else ""
    lines = []
    if _last_table_header(text) != header:  # no table yet, or one with other columns
        if text and not text.endswith("\n"):
            lines.append("")
        lines += ["", header, "|" + "|".join("---" for _ in _RECORD_COLUMNS) + "|"]
    lines.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fh.write("\n".join(lines) + "\n")
    return row
