"""CPU threading that keeps most of its speed when other processes share the machine.

Two things make a multi-threaded PyTorch run on the CPU collapse beside other work:

* **Spin-waiting.** Between two parallel regions, GNU OpenMP's worker threads (the runtime of
  the PyTorch CPU wheels on Linux) spin for up to ``GOMP_SPINCOUNT`` iterations (300,000 by
  default) before they sleep. A spinning thread holds a core another process wants, and when a
  core is taken, a thread with work waits a whole time slice for it: on a 2-core machine one
  busy process elsewhere cut a WGAN-GP toy step to 0.3x its quiet speed.
* **More threads than free cores.** Every small kernel ends in a barrier that waits for the
  slowest thread, and a thread that shares its core with another process is slow.

So the ``wgan`` command, before torch loads and only where the user set neither
``OMP_WAIT_POLICY`` nor ``GOMP_SPINCOUNT``, bounds the spin to :data:`SPINCOUNT` iterations
(:func:`configure_openmp`; measured as fast as the default on a quiet machine, see
``benchmarks/RESULTS.md``), and :class:`ThreadGovernor` gives training as many threads as there
are cores that other processes leave free, measured from ``/proc/stat`` at the start and again
every few seconds, never more than torch's thread count when the run began (the user's
``OMP_NUM_THREADS`` or ``torch.set_num_threads``, or a study's share of the cores). An explicit
``train.threads`` fixes the count.

OpenMP reads its environment once, when torch loads: a program that imports ``wgan`` as a
library and wants the bounded spin sets ``GOMP_SPINCOUNT`` itself, before ``import torch``
(or calls :func:`configure_openmp` first). The thread count adapts either way.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

#: The spin bound set for GNU OpenMP (iterations before a waiting thread sleeps; libgomp's own
#: default is 300,000, and 0 is ``OMP_WAIT_POLICY=PASSIVE``). On a quiet 2-core machine 10,000
#: ran the main job's step as fast as the default, where 1,000 lost about 5 % and PASSIVE about
#: 12 %; beside a busy process the governor's single thread does not spin at all, and for load
#: that arrives between two measurements a shorter spin still wastes less of the shared core.
SPINCOUNT = "10000"

#: The variables with which a user chooses the wait policy; if any is set, wgan sets none.
USER_KEYS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")

#: Seconds between two measurements of the other processes' load while training.
INTERVAL = 2.0

# What configure_openmp did in this process (None: it was not called), and the load snapshot
# it took, so the first measurement spans the seconds torch takes to load.
_openmp: dict[str, Any] | None = None
_start_snapshot: tuple[float, float, float] | None = None
_verbose = False
_told = False


def configure_openmp(environ: MutableMapping[str, str] | None = None) -> dict[str, Any]:
    """Bound OpenMP's spin-waiting before torch loads, unless the user chose a policy.

    Sets ``GOMP_SPINCOUNT`` to :data:`SPINCOUNT` in ``environ`` (default ``os.environ``, which
    child processes inherit) when none of :data:`USER_KEYS` is set and torch is not imported
    yet, and takes the first snapshot of the machine's load. Returns the record that
    ``provenance.json`` keeps: ``{"GOMP_SPINCOUNT": ..., "OMP_WAIT_POLICY": ..., "set_by":
    "wgan" | "user" | "unset (torch was already loaded)"}``.
    """
    global _openmp, _start_snapshot
    env = os.environ if environ is None else environ
    _start_snapshot = _snapshot()
    if any(key in env for key in USER_KEYS):
        set_by = "user"
    elif "torch" in sys.modules:
        set_by = "unset (torch was already loaded)"
    else:
        env["GOMP_SPINCOUNT"] = SPINCOUNT
        set_by = "wgan"
    _openmp = {key: env.get(key) for key in USER_KEYS} | {"set_by": set_by}
    return dict(_openmp)


def openmp_record() -> dict[str, Any]:
    """The wait policy of this process, as :func:`configure_openmp` left it (or found it)."""
    if _openmp is not None:
        return dict(_openmp)
    found = {key: os.environ.get(key) for key in USER_KEYS}
    return found | {"set_by": "user" if any(found.values()) else "unset (OpenMP's default)"}


def child_env() -> dict[str, str]:
    """The wait-policy variables a child process that loads torch should get: this process's
    choice, or the bounded spin when the user made none."""
    found = {key: os.environ[key] for key in USER_KEYS if key in os.environ}
    return found or {"GOMP_SPINCOUNT": SPINCOUNT}


def set_verbose(on: bool) -> None:
    """Print the thread choice once (to stderr) when the first governor starts."""
    global _verbose
    _verbose = on


def cpu_cores() -> int:
    """The CPUs this process may run on (its affinity mask, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _cpu_ids() -> set[int] | None:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


STAT = "/proc/stat"  # the kernel's CPU time counters (Linux)


def _snapshot() -> tuple[float, float, float] | None:
    """(wall seconds, busy CPU-seconds of this process's CPUs, this process's CPU-seconds), or
    None where :data:`STAT` cannot be read (not Linux)."""
    ids = _cpu_ids()
    try:
        with open(STAT) as f:
            lines = [line.split() for line in f if line.startswith("cpu")]
    except OSError:
        return None
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    busy = 0
    for parts in lines:
        name = parts[0]
        if name == "cpu" or (ids is not None and int(name[3:]) not in ids):
            continue
        # user nice system idle iowait irq softirq steal ...: idle and iowait are free time;
        # steal (another virtual machine's) is not.
        values = [int(v) for v in parts[1:9]]
        busy += sum(values) - values[3] - values[4]
    own = os.times()
    return time.monotonic(), busy / tick, own.user + own.system


def other_load(since: tuple[float, float, float] | None) -> float | None:
    """The cores other processes kept busy on average since the snapshot ``since``, or None
    (no snapshot, or under 0.2 s: too few clock ticks to tell)."""
    now = _snapshot()
    if since is None or now is None or now[0] - since[0] < 0.2:
        return None
    wall = now[0] - since[0]
    others = (now[1] - since[1]) - (now[2] - since[2])
    return max(0.0, others / wall)


class ThreadGovernor:
    """Give torch as many CPU threads as there are free cores, for the length of a run.

    ``threads > 0`` fixes the count (``train.threads``). ``threads = 0`` is automatic: at most
    the count torch had when the governor started (its cap), and fewer while other processes
    keep cores busy; :meth:`tick`, called once per iteration, measures again every
    :data:`INTERVAL` seconds. The count moves only when the free cores differ from it by at
    least 0.65, so a half-busy core does not make it flip back and forth. On leaving the
    ``with`` block torch's count is restored.
    """

    def __init__(self, threads: int = 0, interval: float = INTERVAL) -> None:
        self.requested = int(threads)
        self.interval = interval
        self.cap = 0
        self.threads = 0
        self.used: list[int] = []
        self.first_load: float | None = None
        self._before = 0
        self._snap: tuple[float, float, float] | None = None

    # -- the choice ---------------------------------------------------------------------------

    @property
    def policy(self) -> str:
        return "train.threads" if self.requested > 0 else "auto"

    def _target(self, load: float | None) -> int:
        if load is None:
            return self.threads or self.cap
        free = min(self.cap, cpu_cores()) - load
        current = self.threads or self.cap
        if abs(free - current) < 0.65:
            return current
        return max(1, min(self.cap, math.floor(free + 0.5)))

    def _set(self, n: int) -> None:
        import torch

        if n != torch.get_num_threads():
            torch.set_num_threads(n)
        self.threads = n
        if n not in self.used:
            self.used.append(n)

    def start(self) -> ThreadGovernor:
        import torch

        self._before = torch.get_num_threads()
        if self.requested > 0:
            self.cap = self.requested
            self._set(self.requested)
        else:
            self.cap = self._before
            self.first_load = other_load(_start_snapshot)
            self._set(self._target(self.first_load))
            self._snap = _snapshot()
        _tell(self)
        return self

    def tick(self) -> None:
        """Measure the other processes' load again if :data:`INTERVAL` seconds have passed
        (a clock read otherwise) and follow it."""
        if self.requested > 0 or self._snap is None:
            return
        if time.monotonic() - self._snap[0] < self.interval:
            return
        load = other_load(self._snap)
        self._snap = _snapshot()
        self._set(self._target(load))

    def stop(self) -> None:
        import torch

        if self._before and torch.get_num_threads() != self._before:
            torch.set_num_threads(self._before)

    def __enter__(self) -> ThreadGovernor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def record(self) -> dict[str, Any]:
        """What ``provenance.json`` keeps of the choice (``threads`` at the start, every count
        used, the cap, the other processes' load at the start and the OpenMP wait policy)."""
        return {
            "policy": self.policy,
            "threads": self.used[0] if self.used else None,
            "used": list(self.used),
            "cap": self.cap,
            "cores": cpu_cores(),
            "other_load_at_start": None if self.first_load is None else round(self.first_load, 2),
            "openmp": openmp_record(),
        }

    def describe(self) -> str:
        """One line: the count, why, and the wait policy."""
        omp = openmp_record()
        spin = ", ".join(f"{k}={v}" for k, v in omp.items() if k in USER_KEYS and v) or "default"
        if self.policy == "auto":
            load = "unknown" if self.first_load is None else f"{self.first_load:.1f}"
            why = f"auto: at most {self.cap}, other processes busy on {load} cores"
        else:
            why = "train.threads"
        return (
            f"threads: {self.threads} of {cpu_cores()} cores ({why}); "
            f"OpenMP wait: {spin} (set by {omp['set_by']})"
        )


def _tell(governor: ThreadGovernor) -> None:
    global _told
    if _verbose and not _told:
        _told = True
        sys.stderr.write(f"wgan: {governor.describe()}\n")


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run with ``n`` torch CPU threads (0: unchanged), restoring the setting afterwards.

    Small networks (toy MLPs, the small text model) gain little from a second thread, and on a
    loaded machine a second thread mostly waits for a core (``benchmarks/RESULTS.md``: the
    ``text-wgan-gp`` run, in its width-32 version, is 17 % faster on 2 threads than on 1 on an
    idle 2-core machine, and 8x slower while one other process runs).
    """
    import torch

    before = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


__all__ = [
    "SPINCOUNT",
    "ThreadGovernor",
    "child_env",
    "configure_openmp",
    "cpu_cores",
    "openmp_record",
    "other_load",
    "set_verbose",
    "torch_threads",
]
