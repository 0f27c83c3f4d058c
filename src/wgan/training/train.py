"""Training a run from the outside: :func:`train` a new run, :func:`resume` one from its
checkpoint, each recorded as a session in the run's ``provenance.json``; the loop itself is
:class:`wgan.training.trainer.Trainer`."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wgan.config import (
    Config,
    absolute_data_path,
    check_resume,
    from_dict,
    override_items,
    set_value,
    validate,
)
from wgan.config.hints import config_argument, path_argument
from wgan.data.adopt import adopt_data, folder_summary
from wgan.errors import ConfigError, Interrupted, StorageFull
from wgan.store import provenance, rundirs
from wgan.store.checkpoints import CheckpointSaveError
from wgan.store.tracking import Tracker
from wgan.training import interrupt
from wgan.training.distributed import DistContext
from wgan.training.resume_check import check_config_file, resume_summary
from wgan.training.run import read_run
from wgan.training.stats import TrainResult
from wgan.training.trainer import Trainer, check_checkpoint_format

__all__ = ["resume", "train"]


# ----------------------------------------------------------------------------------------------
# Entry points
# ----------------------------------------------------------------------------------------------


def _fit(
    trainer: Trainer, tensorboard: bool, purge_step: int | None = None, kind: str | None = None
) -> TrainResult:
    """Run ``trainer.fit`` with a tracker on rank 0 (none elsewhere); rank 0 records the
    session in the run's ``provenance.json`` (:mod:`wgan.store.provenance`).

    A signal from the start of the session on stops it at a step boundary with a checkpoint
    (:mod:`wgan.training.interrupt`); the :class:`Interrupted` raised then names the command
    that continues the run. A checkpoint or file that cannot be written for lack of space ends
    the session as a run-time failure that says so too."""
    try:
        with interrupt.deferred():
            return _fit_session(trainer, tensorboard, purge_step, kind)
    except Interrupted as err:
        err.resume = interrupt.resume_command("wgan", "train", "--resume", trainer.run_dir)
        raise
    except (CheckpointSaveError, StorageFull) as err:
        err.args = (f"{err}; {_when_there_is_room(trainer)}",)
        raise
    except OSError as err:  # e.g. metrics.jsonl on a full disk
        if err.errno not in rundirs.OUT_OF_SPACE:
            raise
        step = trainer.checkpoint_step
        kept = f"the checkpoint of step {step} is kept" if step is not None else "no checkpoint"
        raise StorageFull(
            f"{rundirs.describe_os_error(err)}; {kept}; {_when_there_is_room(trainer)}"
        ) from None


def _when_there_is_room(trainer: Trainer) -> str:
    command = interrupt.resume_command("wgan", "train", "--resume", trainer.run_dir)
    return f"once there is room, continue with: {command}"


def _fit_session(
    trainer: Trainer, tensorboard: bool, purge_step: int | None, kind: str | None
) -> TrainResult:
    if not trainer.dist.is_main:
        result = trainer.fit(None)
    else:
        kind = kind or ("new" if purge_step is None else "resume")
        tracker = Tracker(trainer.run_dir, tensorboard=tensorboard, purge_step=purge_step)
        if purge_step is not None:
            tracker.jsonl.truncate_after(trainer.step)
        try:
            with provenance.session(
                trainer.run_dir, kind, trainer.device, trainer.step, trainer.dist.world_size
            ) as entry:
                try:
                    result = trainer.fit(tracker)
                finally:
                    entry["end_step"] = trainer.step
                    entry["threads"] = trainer.threads.record()
        finally:
            tracker.close()
    # Data parallel: every process waits for rank 0's final evaluation and checkpoint, then
    # the process group is closed, so no process exits with its communication threads alive.
    trainer.dist.barrier()
    trainer.dist.close()
    return result


def train(
    cfg: Config,
    run_dir: str | Path | None = None,
    tensorboard: bool = True,
    dist: DistContext | None = None,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train a new run of ``cfg`` in a new numbered run directory (or ``run_dir``).

    An image folder's files decide what ``cfg`` leaves unset (:func:`wgan.data.adopt.adopt_data`:
    size, colour, class names, ``conditional.mode=auto``); ``log`` (e.g. ``print``) is then given
    one line on rank 0 saying what was read (:func:`wgan.data.adopt.folder_summary`).

    Under ``torchrun`` (WORLD_SIZE > 1) this process joins a data-parallel job: see
    :mod:`wgan.training.distributed`. Rank 0 chooses the run directory and writes everything in it.
    ``cfg`` is a :class:`wgan.config.Config` (``wgan.resolve(PRESET, [overrides])``); another
    type is a :class:`ConfigError` saying so.
    """
    config_argument(cfg, "train()")
    if run_dir is not None:
        run_dir = path_argument(run_dir, "run_dir")
    return _train(cfg, run_dir, tensorboard, dist or DistContext.from_env(), log=log)


def _train(
    cfg: Config,
    run_dir: str | Path | None,
    tensorboard: bool,
    dist: DistContext,
    kind: str | None = None,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    scan = adopt_data(cfg)  # an image folder's shape and classes, in config.yaml from the start
    if scan is not None and log is not None and dist.is_main:
        log(folder_summary(scan, cfg))
    if not dist.is_main:
        run_dir = Path(dist.broadcast_object(None))
        return _fit(Trainer(cfg, run_dir, dist=dist), tensorboard, kind=kind)
    # A failed start (bad data path, a model that cannot be built, Ctrl-C) removes the new
    # directory again; the run is locked while it trains.
    with rundirs.create_run_dir(cfg.out_dir, cfg.name, run_dir) as path:
        rundirs.write_config(path, cfg.to_dict())
        dist.broadcast_object(str(path))
        return _fit(Trainer(cfg, path, dist=dist), tensorboard, kind=kind)


def resume(
    run_dir: str | Path,
    overrides: dict[str, Any] | list[str] | None = None,
    tensorboard: bool = True,
    dist: DistContext | None = None,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Continue the run in ``run_dir`` from its checkpoint (``overrides``: e.g. more steps, as
    ``{"train.steps": 4000}`` or ``["train.steps=4000"]``).

    ``log`` (e.g. ``print``) is given one line, on rank 0, once the checkpoint is loaded: the
    step, ``train.steps`` from and to, what the learning-rate schedule does and any other key
    that changes (:func:`wgan.training.resume_check.resume_summary`).

    A run that stopped before its first checkpoint (its ``config.yaml`` but no checkpoint: a
    SIGKILL early on, or a disk too full for one checkpoint) is trained again from step 0 in its
    folder (:func:`stopped_before_first_checkpoint`).

    Everything is checked before anything is written (config.yaml, metrics, TensorBoard, the
    checkpoint), so a refused resume leaves the run exactly as it was:

    * the checkpoint's format;
    * ``config.yaml`` against the checkpoint's config (:func:`check_config_file`: an edited
      ``config.yaml`` is refused unless the edited keys are given as overrides);
    * the overrides' keys and types, then the whole config's ranges, as for a new run
      (:func:`wgan.config.validate`);
    * only keys of :data:`wgan.config.RESUME_MAY_CHANGE` may differ from the checkpoint's config
      (:func:`wgan.config.check_resume`: shapes, the optimiser kind, code paths are refused,
      naming the key and both values);
    * ``train.steps`` must be beyond the checkpoint's step;
    * the models and optimiser states must load (shapes, optimiser kind).

    Changed learning rates, betas, weight decay, penalty and clipping settings, EMA decay and
    cadences apply from the first resumed iteration (the loop reads them every iteration).
    ``config.yaml`` is rewritten with the new config at the first checkpoint written, so it
    always describes the checkpoint (a resume that diverges or is killed before it leaves it
    as it was).

    The number of processes may differ from the run's: the models, optimisers and step are
    restored on every process; rank 0 continues the saved random stream, other ranks start
    fresh ones (so a resume is bit-exact only for a single process).
    """
    dist = dist or DistContext.from_env()
    run_dir = path_argument(run_dir, "run_dir")
    overrides = dict(override_items(overrides))
    has_checkpoint = (Path(run_dir) / rundirs.CHECKPOINT).is_file()
    restart = not has_checkpoint and stopped_before_first_checkpoint(run_dir)
    # A second trainer of the same run is refused at once.
    lock = (
        rundirs.lock_run(run_dir)
        if dist.is_main and (has_checkpoint or restart)
        else contextlib.nullcontext()
    )
    with lock:
        if restart:
            return _restart(Path(run_dir), overrides, tensorboard, dist)
        return _resume(run_dir, overrides, tensorboard, dist, log)


def stopped_before_first_checkpoint(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` is a run that stopped before its first checkpoint: it has its
    ``config.yaml`` but no checkpoint (killed by SIGKILL early, or a disk too full for one
    checkpoint). :func:`resume` trains such a run again from step 0."""
    run_dir = Path(run_dir)
    return (run_dir / rundirs.CONFIG).is_file() and not (run_dir / rundirs.CHECKPOINT).exists()


def _restart(
    run_dir: Path, overrides: dict[str, Any] | None, tensorboard: bool, dist: DistContext
) -> TrainResult:
    """Train a run that stopped before its first checkpoint again from step 0, in its folder,
    with its ``config.yaml`` and ``overrides`` (the keys a resume may change, checked alike).
    Everything but the run's ``provenance.json`` (its earlier sessions) is removed first; the new
    session's kind is ``restart``. Bit for bit the run a new ``wgan train`` of the config gives."""
    try:
        saved = from_dict(rundirs.read_config(run_dir))
    except ConfigError as err:
        raise ConfigError(f"{err} (in {run_dir / rundirs.CONFIG})") from None
    cfg = copy.deepcopy(saved)
    for key, value in dict(overrides or {}).items():
        set_value(cfg, key, value)
    validate(cfg)
    check_resume(saved, cfg)
    if dist.is_main:
        rundirs.empty_run_dir(run_dir, keep=(provenance.FILE,))
    return _train(cfg, run_dir, tensorboard, dist, kind="restart")


def _resume(
    run_dir: str | Path,
    overrides: dict[str, Any] | None,
    tensorboard: bool,
    dist: DistContext,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    run_dir, state, cfg = read_run(run_dir)
    check_checkpoint_format(state)
    overrides = dict(overrides or {})
    check_config_file(run_dir, state["config"], overrides)
    saved = copy.deepcopy(cfg)
    for key, value in overrides.items():
        set_value(cfg, key, value)
    validate(absolute_data_path(cfg))  # a data.path given here is relative to this folder
    check_resume(saved, cfg)
    step = int(state["step"])
    if cfg.train.steps <= step:
        raise ConfigError(
            f"train.steps={cfg.train.steps}: the run is already at step {step}, so there is "
            f"nothing to train; pass train.steps=N with N > {step} to continue it"
        )
    trainer = Trainer(cfg, run_dir, state=state, dist=dist)
    if log is not None and dist.is_main:
        log(resume_summary(saved, cfg, step))
    dist.barrier()  # every process has read the checkpoint before rank 0 writes anything
    return _fit(trainer, tensorboard, purge_step=trainer.step + 1)
