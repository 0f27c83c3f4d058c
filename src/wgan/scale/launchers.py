"""How the runs of a study are executed: one worker function, and the launchers that call it.

A *task* is a plain dict ``{"name", "run_dir", "config", "threads"}`` (``config`` is
:meth:`wgan.config.Config.to_dict` output), built and checked by :func:`wgan.scale.study.run_study`.
:func:`run_one` carries one task out in the process it is called in and returns its *record*
``{"name", "run_dir", "status", "step", "metrics", "error", "diverged", "seconds"}``:

* a checkpoint at ``train.steps`` or beyond: nothing to do -> ``"skipped"``, with the final
  evaluation read back from ``metrics.jsonl``;
* no run directory yet, or one left before its first checkpoint (only ``config.yaml``, logs):
  train from scratch with :func:`wgan.training.train.train` into ``run_dir`` -> status ``"done"``;
* a checkpoint before ``train.steps`` (the run was interrupted): :func:`wgan.training.train.resume`
  continues it bit-exactly from that checkpoint -> ``"resumed"``;
* a checkpoint that does not load (truncated, corrupt, foreign: nothing can resume from it):
  kept aside as :data:`UNREADABLE_CHECKPOINT`, one line says so, and the run trains again from
  the start -> ``"done"``;
* any error (divergence, a bad data file, the run locked by another process) -> ``"failed"``
  with the one-line message; the run directory keeps its last checkpoint. A divergence also
  sets ``"diverged"``: training is deterministic, so the run is final (a re-run of the study
  does not train it again; delete its directory to do so).

A run that ends well (or diverges) leaves its record in ``run_dir/.study-record.json``
(:data:`RUN_RECORD`), so that :func:`wgan.scale.study.run_study` skips it next time without starting
a worker, once the record is checked against the run's checkpoint (:mod:`wgan.scale.records`); a
diverged run's record names the step of the checkpoint the divergence left (``checkpoint_step``).

:func:`run_task` does the same for a task or a *group task* (runs of a stacked study trained
together, :mod:`wgan.scale.stack`) and returns a list of records. Launchers map it over the
tasks and yield records as runs finish:

* :func:`launch_local`: ``jobs`` worker processes at a time on this machine, each a fresh
  ``python -m wgan.scale.launchers TASK.json RECORD.json`` (nothing is shared between runs, so a
  run equals a plain ``wgan train`` of its config at the same thread count). On a machine with
  GPUs, the job slots are spread over the visible GPUs through ``CUDA_VISIBLE_DEVICES``.
* :func:`launch_ray`: the same tasks as Ray tasks (one fresh worker process per run,
  ``max_calls=1``) on the cluster at ``address``, or on a local Ray started for the study. Ray
  is optional (``pip install 'wgan[ray]'``) and imported only here, only when used.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wgan.errors import TrainingDiverged, WganError
from wgan.scale.records import checkpoint_step
from wgan.store import rundirs
from wgan.store.printable import printable
from wgan.training import interrupt
from wgan.training import threads as wgan_threads

__all__ = [
    "LAUNCHERS",
    "check_launcher",
    "launch",
    "launch_local",
    "launch_ray",
    "run_one",
    "run_task",
]

LAUNCHERS = ("local", "ray")

UNREADABLE_CHECKPOINT = "checkpoint.pt.unreadable"
"""Where a worker keeps a run's checkpoint that does not load (truncated, corrupt, foreign)
before it trains the run again from the start."""

RUN_RECORD = ".study-record.json"
"""The record a finished study run leaves in its run directory: a re-run of the study reads it
and skips the run without starting a process for it."""

# -----------------------------------------------------------------------------------------------
# The worker: one run, in this process
# -----------------------------------------------------------------------------------------------


def _one_line(text: str) -> str:
    return " ".join(str(text).split()) or "unknown error"


def final_metrics(run_dir: Path, step: int) -> dict[str, Any]:
    """The evaluation logged at ``step`` in ``run_dir/metrics.jsonl`` ({} if there is none).

    The loop logs its last evaluation before it writes the last checkpoint, so a run whose
    checkpoint is at its final step has this record.
    """
    from wgan.store.tracking import read_jsonl

    found: dict[str, Any] = {}
    for record in read_jsonl(Path(run_dir) / "metrics.jsonl"):
        if record.get("kind") == "eval" and record.get("step") == step:
            found = {k: v for k, v in record.items() if k not in ("kind", "step")}
    return found


def _train_or_resume(cfg: Any, run_dir: Path) -> tuple[str, int, dict[str, Any]]:
    """(status, step, metrics) of bringing the run in ``run_dir`` to ``cfg.train.steps``."""
    from wgan.scale.study_extend import resume_overrides
    from wgan.training.train import resume, train

    ckpt = run_dir / rundirs.CHECKPOINT
    bad = None
    if ckpt.is_file():
        try:
            step = checkpoint_step(ckpt)
        except WganError as err:
            with ckpt.open("rb") as fh:  # an OSError (permissions, I/O) fails the run instead
                fh.read(1)
            bad = str(err)
        else:
            if step >= cfg.train.steps:
                return "skipped", step, final_metrics(run_dir, step)
            # Its device and progress bar, and what the study extends (train.steps=N, ...).
            result = resume(run_dir, resume_overrides(run_dir, cfg), tensorboard=True)
            return "resumed", result.step, result.metrics
    if run_dir.is_dir():
        with rundirs.lock_run(run_dir):  # re-entrant: train() takes it again
            if bad is not None:  # nothing can resume from it: keep it aside, train again
                os.replace(ckpt, run_dir / UNREADABLE_CHECKPOINT)
                sys.stderr.write(
                    f"wgan: {printable(bad)}; it is kept as {UNREADABLE_CHECKPOINT} and the run "
                    "is trained again from the start\n"
                )
            # killed before its first checkpoint, or its checkpoint set aside
            rundirs.empty_run_dir(run_dir, keep=(UNREADABLE_CHECKPOINT,))
            result = train(cfg, run_dir=run_dir)
    else:
        result = train(cfg, run_dir=run_dir)
    return "done", result.step, result.metrics


def run_one(task: dict[str, Any]) -> dict[str, Any]:
    """Carry out one study task in this process; never raises for a failed run.

    Returns the run's record (see the module docstring). ``task["threads"]``, if set, is the
    number of CPU threads torch uses for this run.
    """
    start = time.time()
    record: dict[str, Any] = {
        "name": task["name"],
        "run_dir": str(task["run_dir"]),
        "status": "failed",
        "step": 0,
        "metrics": {},
        "error": None,
        "diverged": False,
    }
    try:
        import torch

        from wgan.config import from_dict

        if task.get("threads"):
            torch.set_num_threads(int(task["threads"]))
        cfg = from_dict(task["config"])
        status, step, metrics = _train_or_resume(cfg, Path(task["run_dir"]))
        record.update(status=status, step=step, metrics=metrics)
    except TrainingDiverged as err:  # deterministic: training it again would diverge again
        record.update(error=_one_line(str(err)), diverged=True)
    except WganError as err:
        record["error"] = _one_line(str(err))
    except OSError as err:
        record["error"] = rundirs.describe_os_error(err)
    except MemoryError:
        record["error"] = "out of memory"
    except KeyboardInterrupt as err:  # Ctrl-C, SIGTERM: the run's checkpoint is of the step reached
        record["error"] = interrupt.study_run_error(err)
    except Exception as err:  # a bug must not take the other runs of the study down
        record["error"] = _one_line(f"{type(err).__name__}: {err}")
    record["seconds"] = time.time() - start
    from wgan.store.tracking import json_safe

    return json_safe(record)


def run_task(task: dict[str, Any]) -> list[dict[str, Any]]:
    """Carry out a task (one run, :func:`run_one`) or a group task (runs stacked into one
    vectorised step, :func:`wgan.scale.stack.run_stacked`) in this process; the records of its
    runs. Each run that finished or diverged leaves its record in its run directory."""
    if "group" in task:
        from wgan.scale.stack import run_stacked

        records = run_stacked(task)
    else:
        records = [run_one(task)]
    for record in records:
        if record.get("diverged"):  # binds the record to the checkpoint the divergence left
            try:
                record["checkpoint_step"] = _checkpoint_left(Path(record["run_dir"]))
            except WganError:
                continue  # no record: the next run of the study tries the run again
        if record["status"] != "failed" or record.get("diverged"):
            try:
                path = Path(record["run_dir"]) / RUN_RECORD
                rundirs.write_text_atomic(path, json.dumps(record))
            except WganError:
                pass  # only a shortcut for the next run of the study
    return records


def _checkpoint_left(run_dir: Path) -> int | None:
    """The step of the run's checkpoint (None if it has none); WganError if it does not load."""
    ckpt = run_dir / rundirs.CHECKPOINT
    return checkpoint_step(ckpt) if ckpt.exists() else None


def _worker_main(argv: list[str]) -> int:
    """``python -m wgan.scale.launchers TASK.json RECORDS.json``: run one task, write its
    records (atomically; their absence means the process died). SIGTERM (sent when the
    launcher dies) and SIGINT (the launcher stopping it) stop a run at a step boundary with a
    checkpoint, as in ``wgan train``."""
    interrupt.install()
    task = json.loads(Path(argv[0]).read_text())
    records = run_task(task)
    rundirs.write_text_atomic(argv[1], json.dumps(records))
    return 0 if all(r["status"] != "failed" for r in records) else 1


# -----------------------------------------------------------------------------------------------
# Launchers
# -----------------------------------------------------------------------------------------------


def _lost(task: dict[str, Any], why: str, seconds: float = 0.0) -> list[dict[str, Any]]:
    """Failed records of the runs of ``task`` (one run or a group)."""
    return [
        {
            "name": t["name"],
            "run_dir": str(t["run_dir"]),
            "status": "failed",
            "step": 0,
            "metrics": {},
            "error": why,
            "diverged": False,
            "seconds": seconds,
        }
        for t in task.get("group", [task])
    ]


def _wants_cuda(tasks: list[dict[str, Any]]) -> bool:
    """Whether a run of ``tasks`` (or of their groups) computes on CUDA (auto or cuda)."""
    runs_ = [t for task in tasks for t in task.get("group", [task])]
    return any(t["config"]["train"]["device"] in ("auto", "cuda") for t in runs_)


def _gpu_ids(tasks: list[dict[str, Any]]) -> list[str]:
    """The GPUs to spread local jobs over: the visible ones, if some task wants CUDA
    (``train.device`` auto or cuda without an index); else none."""
    wants = _wants_cuda(tasks)
    if not wants:
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [g.strip() for g in visible.split(",") if g.strip() and g.strip() != "-1"]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def _die_with_parent() -> None:
    """In a new worker (Linux): be sent SIGTERM when the launcher process dies, however it
    dies, so that no orphaned worker goes on training (its last checkpoint is kept)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _stop(procs: list[subprocess.Popen]) -> None:
    """Stop the running workers (SIGTERM, which a background job does not ignore as it may
    SIGINT: each writes a checkpoint at its next step boundary), then make sure."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.time() + 10
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def launch_local(
    tasks: list[dict[str, Any]], jobs: int, work_dir: Path, on_start: Any = None, **_: Any
) -> Iterator[dict[str, Any]]:
    """Run ``tasks`` as worker processes on this machine, ``jobs`` at a time; yield each
    record as its process ends.

    Each worker is ``python -m wgan.scale.launchers`` (this interpreter, this copy of wgan);
    its task, record and output (``NAME.log``) are in ``work_dir``; ``on_start(task)`` is called
    as each starts. If this generator is closed
    early or interrupted (Ctrl-C), the running workers are interrupted and waited for; if this
    process is killed, Linux sends them SIGTERM (``PR_SET_PDEATHSIG``).
    """
    import wgan

    work_dir.mkdir(parents=True, exist_ok=True)
    gpus = _gpu_ids(tasks)
    src = str(Path(wgan.__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    queue = list(tasks)
    free = list(range(jobs))  # job slots; slot s runs on GPU gpus[s % len(gpus)]
    running: dict[int, tuple[subprocess.Popen, dict[str, Any], Path, float]] = {}
    try:
        while queue or running:
            while queue and free:
                task, slot = queue.pop(0), free.pop(0)
                task_path = work_dir / f"{task['name']}.task.json"
                record_path = work_dir / f"{task['name']}.record.json"
                record_path.unlink(missing_ok=True)
                rundirs.write_text_atomic(task_path, json.dumps(task))
                proc_env = dict(env)
                if gpus:
                    proc_env["CUDA_VISIBLE_DEVICES"] = gpus[slot % len(gpus)]
                if task.get("threads"):  # torch reads it as it loads: the run's share of cores
                    proc_env["OMP_NUM_THREADS"] = str(task["threads"])
                # OpenMP's bounded spin (wgan.training.threads)
                proc_env.update(wgan_threads.child_env())
                with (work_dir / f"{task['name']}.log").open("w") as log:
                    proc = subprocess.Popen(
                        [sys.executable, "-m", "wgan.scale.launchers", task_path, record_path],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        env=proc_env,
                        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
                        # Ctrl-C in a terminal reaches the launcher alone, which stops the
                        # workers once (_stop); each then checkpoints at its next step.
                        start_new_session=True,
                    )
                running[slot] = (proc, task, record_path, time.time())
                if on_start is not None:
                    on_start(task)
            finished = [s for s, (proc, *_rest) in running.items() if proc.poll() is not None]
            if not finished:
                time.sleep(0.05)
                continue
            for slot in finished:
                proc, task, record_path, started = running.pop(slot)
                free.append(slot)
                yield from _read_records(task, proc.returncode, record_path, work_dir, started)
    finally:
        _stop([proc for proc, *_rest in running.values()])


def _read_records(
    task: dict[str, Any], code: int, path: Path, work_dir: Path, started: float
) -> list[dict[str, Any]]:
    try:
        records = json.loads(path.read_text())
        if isinstance(records, list):
            return records
    except (OSError, ValueError):
        pass
    log = work_dir / f"{task['name']}.log"
    how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
    return _lost(
        task, f"the worker process {how} before the run ended (see {log})", time.time() - started
    )


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise WganError(
            "the ray launcher needs Ray, which is not installed: install wgan[ray] "
            "(pip install 'wgan[ray]')"
        ) from None
    return ray


def check_launcher(launcher: str, address: str | None = None) -> None:
    """Before a study starts: the launcher exists; for Ray, Ray is installed and ``address``
    (unless a Ray session is already initialised here) is reachable."""
    if launcher not in LAUNCHERS:
        raise WganError(f"unknown launcher '{launcher}' (choose {', '.join(LAUNCHERS)})")
    if launcher == "ray" and not _import_ray().is_initialized():
        _check_reachable(address)


def _check_reachable(address: str | None, timeout: float = 5.0) -> None:
    """Refuse at once an address ``[ray://]HOST:PORT`` where nothing listens (Ray itself
    retries such an address for minutes); "auto" and None are left to Ray."""
    if not address or address == "auto":
        return
    target = address.split("://", 1)[-1]
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise WganError(
            f"--address must be auto or HOST:PORT (or ray://HOST:PORT), got {address!r}"
        )
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as err:
        raise WganError(
            f"cannot reach the Ray cluster at {address}: {rundirs.os_error_reason(err)} "
            "(start it with 'ray start --head', and give the address it prints)"
        ) from None


def launch_ray(
    tasks: list[dict[str, Any]],
    jobs: int,
    address: str | None = None,
    threads: int = 1,
    on_start: Any = None,
    **_: Any,
) -> Iterator[dict[str, Any]]:
    """Run ``tasks`` as Ray tasks; yield each record as its task ends.

    Connects to the cluster at ``address`` (``ray.init(address=...)``; "auto" finds a local
    one), or, without one, starts a local Ray for the study; an already initialised Ray (e.g.
    a test's ``ray.init(num_cpus=2)``) is used as it is. Each task reserves ``threads`` CPUs
    and, on a cluster with GPUs and a config that wants CUDA, one GPU; it runs in a fresh worker
    process (``max_calls=1``), and at most ``jobs`` are in flight. The study directory must be
    on a file system every node sees at the same path, and every node needs this wgan.
    """
    ray = _import_ray()
    started = False
    if not ray.is_initialized():
        _check_reachable(address)
        try:
            ray.init(
                address=address,
                include_dashboard=False,
                log_to_driver=False,  # each run's output stays in Ray's worker logs
                logging_level=logging.WARNING,
            )
        except (ConnectionError, RuntimeError, ValueError) as err:
            where = f"at {address}" if address else "locally"
            raise WganError(f"cannot start or reach Ray {where}: {_one_line(str(err))}") from None
        started = True
    try:
        wants_cuda = _wants_cuda(tasks)
        gpus = 1 if wants_cuda and ray.cluster_resources().get("GPU", 0) >= 1 else 0
        # Each worker loads torch with its share of cores and the bounded OpenMP spin.
        env_vars = {"OMP_NUM_THREADS": str(threads), **wgan_threads.child_env()}
        remote = ray.remote(
            num_cpus=threads,
            num_gpus=gpus,
            max_calls=1,
            max_retries=0,
            runtime_env={"env_vars": env_vars},
        )(run_task)
        queue = list(tasks)
        pending: dict[Any, dict[str, Any]] = {}
        while queue or pending:
            while queue and len(pending) < jobs:
                task = queue.pop(0)
                pending[remote.remote(task)] = task
                if on_start is not None:
                    on_start(task)
            done, _ = ray.wait(list(pending), num_returns=1)
            task = pending.pop(done[0])
            try:
                records = ray.get(done[0])
            except ray.exceptions.RayError as err:  # the worker died (killed, out of memory)
                records = _lost(task, f"the Ray task failed: {_one_line(str(err))[:300]}")
            yield from records
    finally:
        if started:
            ray.shutdown()


def launch(
    launcher: str,
    tasks: list[dict[str, Any]],
    jobs: int,
    work_dir: Path,
    address: str | None = None,
    threads: int = 1,
    on_start: Any = None,
) -> Iterator[dict[str, Any]]:
    """``launcher``'s records of ``tasks``, calling ``on_start(task)`` as each starts."""
    if launcher == "local":
        return launch_local(tasks, jobs, work_dir, on_start=on_start)
    if launcher == "ray":
        return launch_ray(tasks, jobs, address=address, threads=threads, on_start=on_start)
    raise WganError(f"unknown launcher '{launcher}' (choose {', '.join(LAUNCHERS)})")


if __name__ == "__main__":  # a worker process of launch_local
    raise SystemExit(_worker_main(sys.argv[1:]))
