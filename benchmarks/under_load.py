"""Speed beside other work: run commands A and B in turn (A B A B ...) beside 0, 1 or 2 busy
processes and print each one's figure per round, then min / median / max.

Each busy process is ``python -c "while True: pass"`` (one core, single-threaded), started a
second before the pair and killed after. The figure is ``iters_per_s`` of ``wgan bench --json``
when the command prints that JSON, else the wall-clock seconds of the whole command.

    python benchmarks/under_load.py --busy 0,1,2 --rounds 3 \\
        --a "PYTHONPATH=/tmp/old/src python -m wgan bench toy-wgan-gp-paper --no-compile --json" \\
        --b "python -m wgan bench toy-wgan-gp-paper --no-compile --json"

A leading ``NAME=value`` word of a command is set in its environment. Results of the issue's
runs are in ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time


def _split(command: str) -> tuple[dict[str, str], list[str]]:
    words = shlex.split(command)
    env = {}
    while words and "=" in words[0] and not words[0].startswith("-"):
        key, value = words.pop(0).split("=", 1)
        env[key] = value
    return env, words


def _run(command: str, cwd: str | None) -> float:
    extra, words = _split(command)
    start = time.perf_counter()
    out = subprocess.run(
        words, env={**os.environ, **extra}, capture_output=True, text=True, cwd=cwd, check=False
    )
    wall = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"{command!r} failed ({out.returncode}): {out.stderr[-500:]}")
    try:
        return float(json.loads(out.stdout)["iters_per_s"])
    except (ValueError, KeyError, TypeError):
        return wall


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--a", required=True, help="command A")
    p.add_argument("--b", required=True, help="command B")
    p.add_argument("--busy", default="0,1", help="busy-process counts, comma-separated")
    p.add_argument("--rounds", type=int, default=3, help="A/B pairs per busy count")
    p.add_argument("--cwd", help="folder to run the commands in")
    args = p.parse_args()
    for busy in [int(b) for b in args.busy.split(",")]:
        procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
        try:
            time.sleep(1.0 if busy else 0.0)
            figures: dict[str, list[float]] = {"A": [], "B": []}
            for r in range(args.rounds):
                for name, command in (("A", args.a), ("B", args.b)):
                    figures[name].append(_run(command, args.cwd))
                    print(f"busy={busy} round={r} {name} {figures[name][-1]:.3f}", flush=True)
            for name, values in figures.items():
                print(
                    f"busy={busy} {name}: min {min(values):.3f} median "
                    f"{statistics.median(values):.3f} max {max(values):.3f}",
                    flush=True,
                )
        finally:
            for proc in procs:
                proc.kill()
                proc.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
