"""Run directories, the run lock, and the checks of output paths.

A run lives in ``<out_dir>/<NNNNN>-<name>/`` and holds ``config.yaml`` (the resolved config),
``metrics.jsonl``, ``tb/`` (TensorBoard), ``figures/`` and ``checkpoint.pt`` (written and read by
:mod:`wgan.store.checkpoints`). Temporary files left by a process killed during an atomic write
(``.NAME.tmp-PID``) are removed by the next save or run lock in that folder once their process is
gone (:func:`remove_stale_temporaries`).

A process that trains a run holds :func:`lock_run` on it (``RUN/.lock``, ``fcntl.flock``): a
second process that tries to train the same run is refused, naming the first one's pid.
:func:`create_run_dir` makes a new numbered run directory for a block of code and removes it
again if the block fails before writing anything but ``config.yaml``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from wgan.errors import StorageFull, WganError

try:  # POSIX; elsewhere runs are not locked
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

CHECKPOINT = "checkpoint.pt"
CONFIG = "config.yaml"
LOCK = ".lock"
_RUN_RE = re.compile(r"^(\d{5})-")
_TMP_RE = re.compile(r"^\..+\.tmp-(\d+)$")  # what save_checkpoint / atomic writes leave behind


class RunLockedError(WganError):
    """Another process holds the run's lock (it is training the run)."""


# ----------------------------------------------------------------------------------------------
# Operating-system errors as one line
# ----------------------------------------------------------------------------------------------

_REASONS = {
    errno.ENOSPC: "no space left on device (the disk is full)",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOENT: "no such file or directory",
    errno.ENOTDIR: "a part of the path is not a directory",
    errno.EISDIR: "it is a directory",
    errno.EEXIST: "a file of that name exists",
    errno.ENAMETOOLONG: "the name is too long",
    errno.ELOOP: "too many symbolic links",
    errno.EIO: "input/output error",
}


OUT_OF_SPACE = (errno.ENOSPC, errno.EDQUOT)
"""The errors of a full disk or quota: a run-time failure (:class:`StorageFull`, exit 1), not a
mistake in the input."""


def write_error(message: str, err: BaseException | None) -> WganError:
    """The error to raise for a write that failed with ``err``: :class:`StorageFull` when the
    disk or quota is full, else :class:`WganError` (a path that cannot be written)."""
    full = getattr(err, "errno", None) in OUT_OF_SPACE
    return StorageFull(message) if full else WganError(message)


def os_error_reason(err: BaseException) -> str:
    """Why an :class:`OSError` happened, in a few plain words (no path, no errno number)."""
    code = getattr(err, "errno", None)
    if code in _REASONS:
        return _REASONS[code]
    text = getattr(err, "strerror", None) or str(err) or type(err).__name__
    return text.strip().splitlines()[0].lower()


def describe_os_error(err: OSError, verb: str = "write") -> str:
    """One line for an :class:`OSError`: ``cannot write PATH: reason``."""
    target = err.filename if err.filename is not None else "a file"
    return f"cannot {verb} {target}: {os_error_reason(err)}"


def os_error_in(err: BaseException | None) -> OSError | None:
    """The :class:`OSError` that caused ``err`` (torch wraps a failed write in a RuntimeError)."""
    seen = 0
    while err is not None and seen < 10:
        if isinstance(err, OSError):
            return err
        err = err.__cause__ or err.__context__
        seen += 1
    return None


def unlink_quietly(path: Path) -> None:
    """Remove ``path``; a file already gone or not removable is left as it is."""
    with contextlib.suppress(OSError):
        path.unlink()


# ----------------------------------------------------------------------------------------------
# Output paths given by the user: checked before the work, written atomically after it
# ----------------------------------------------------------------------------------------------


def _make_dirs(path: Path, label: str) -> None:
    """``mkdir -p path`` with one-line errors that name ``label`` and the path."""
    if path.exists() and not path.is_dir():
        raise WganError(f"{label} {path} is not a directory (a file of that name exists)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # a part of the path is a file
        raise WganError(f"{label} {path}: a part of the path is not a directory") from None
    except OSError as err:
        where = f" ({err.filename})" if err.filename and str(err.filename) != str(path) else ""
        raise WganError(
            f"{label} {path}: cannot create the folder{where}: {os_error_reason(err)}"
        ) from None


def _probe_writable(folder: Path, label: str, path: Path) -> None:
    """Create and remove a temporary file in ``folder`` (root ignores permission bits)."""
    try:
        fd, name = tempfile.mkstemp(prefix=".wgan-write-test-", dir=folder)
    except OSError as err:
        raise WganError(
            f"{label} {path}: cannot create a file in {folder}: {os_error_reason(err)}"
        ) from None
    os.close(fd)
    unlink_quietly(Path(name))


def check_out_dir(path: str | Path, label: str = "out_dir") -> Path:
    """Create the folder ``path`` if needed and check that files can be written in it.

    Raises :class:`WganError` naming ``label`` (e.g. ``--out-dir``), the path and the reason.
    """
    if str(path).strip() == "":
        raise WganError(f"{label} is empty; give a folder")
    path = Path(path).expanduser()
    _make_dirs(path, label)
    _probe_writable(path, label, path)
    return path


def check_output_file(path: str | Path, label: str = "--out") -> Path:
    """Check, before any work, that the file ``path`` can be written.

    Refuses a directory, something that is not a regular file, a path through a file, and a
    folder that cannot be written, each as one line naming ``label``, the path and why.
    Nothing is created or changed: missing parent folders are checked at their nearest existing
    ancestor (create them with :func:`make_dirs` when writing).
    """
    if str(path).strip() == "":
        raise WganError(f"{label} is empty; give a file name")
    path = Path(path).expanduser()
    if path.is_dir():
        raise WganError(f"{label} {path} is a directory; give a file name")
    if path.exists() and not path.is_file():
        raise WganError(f"{label} {path} is not a regular file")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise WganError(f"{label} {path}: {folder} is not a directory")
    _probe_writable(folder, label, path)
    return path


def make_dirs(path: str | Path, label: str) -> Path:
    """``mkdir -p path``; a failure is one line naming ``label``, the path and why."""
    path = Path(path)
    _make_dirs(path, label)
    return path


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """A temporary path next to ``path`` (same suffix) for the block; moved onto ``path`` at
    the end. If the block fails (a full disk) the temporary file is removed and an existing
    ``path`` is left as it was; an :class:`OSError` becomes a one-line :class:`WganError`."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as err:
        kept = f"; the existing {path} is unchanged" if path.exists() else ""
        raise write_error(f"cannot write {path}: {os_error_reason(err)}{kept}", err) from None
    finally:
        if tmp.exists():
            unlink_quietly(tmp)


# ----------------------------------------------------------------------------------------------
# Run directories
# ----------------------------------------------------------------------------------------------


def new_run_dir(out_dir: str | Path, name: str) -> Path:
    """Create and return the next numbered run directory ``out_dir/NNNNN-name``."""
    root = Path(out_dir).expanduser()
    _make_dirs(root, "out_dir")
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "run"
    for _ in range(100):  # another process may take the same number: retry with the next
        numbers = [int(m.group(1)) for p in root.iterdir() if (m := _RUN_RE.match(p.name))]
        path = root / f"{max(numbers, default=-1) + 1:05d}-{safe}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
        except OSError as err:
            raise WganError(
                f"out_dir {root}: cannot create a run directory in it: {os_error_reason(err)}"
            ) from None
    raise WganError(f"could not create a new run directory in {root}")


def _remove_if_unused(run_dir: Path) -> bool:
    """Remove ``run_dir`` if it holds nothing but ``config.yaml`` (and the lock file)."""
    try:
        names = {p.name for p in run_dir.iterdir()}
    except OSError:
        return False
    if not names <= {CONFIG, LOCK}:
        return False
    for name in names:
        unlink_quietly(run_dir / name)
    try:
        run_dir.rmdir()
    except OSError:
        return False
    return True


@contextlib.contextmanager
def create_run_dir(
    out_dir: str | Path, name: str, run_dir: str | Path | None = None, lock: bool = True
) -> Iterator[Path]:
    """A new run directory for the block: ``out_dir/NNNNN-name`` (or ``run_dir``, created if
    missing), locked with :func:`lock_run` while the block runs.

    If the block raises (a bad data path, a model that cannot be built, Ctrl-C) before anything
    but ``config.yaml`` was written, the directory is removed again, so a failed start leaves
    no empty run behind. A ``run_dir`` that existed before is never removed.
    """
    if run_dir is None:
        path, created = new_run_dir(out_dir, name), True
    else:
        path = Path(run_dir).expanduser()
        created = not path.exists()
        _make_dirs(path, "run directory")
    try:
        with lock_run(path) if lock else contextlib.nullcontext(path):
            try:
                yield path
            except BaseException:
                if created:
                    _remove_if_unused(path)  # still under the lock: nobody else uses it
                raise
    except RunLockedError:
        raise
    except BaseException:
        if created:
            _remove_if_unused(path)  # the lock could not be taken (e.g. a full disk)
        raise


def config_yaml(config: dict[str, Any]) -> str:
    """The text of ``config.yaml`` (block style, keys in the config's order); ``wgan train
    --dry-run`` prints the same text."""
    return yaml.safe_dump(config, sort_keys=False)


def write_config(run_dir: Path, config: dict[str, Any]) -> None:
    """Write ``config.yaml`` atomically: a full disk or a kill leaves the previous file whole."""
    write_text_atomic(Path(run_dir) / CONFIG, config_yaml(config))


def write_text_atomic(path: str | Path, text: str) -> None:
    """Replace ``path`` by ``text`` via a temporary file, fsync and ``os.replace``.

    On a failure (a full disk, a read-only folder) the temporary file is removed, ``path`` is
    left as it was and :class:`WganError` names the file and the reason.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with tmp.open("w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as err:
        kept = f"; the previous {path.name} is kept" if path.exists() else ""
        raise write_error(f"cannot write {path}: {os_error_reason(err)}{kept}", err) from None
    finally:
        if tmp.exists():
            unlink_quietly(tmp)


def read_config(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise WganError(f"{run_dir} is not a run directory (no {CONFIG})")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise WganError(f"{path} is not valid YAML: {err}".splitlines()[0]) from None
    if not isinstance(data, dict):
        raise WganError(f"{path} does not hold a config mapping")
    return data


# ----------------------------------------------------------------------------------------------
# The run lock and stale temporary files
# ----------------------------------------------------------------------------------------------


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine (another user's counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return pid < 2**31  # exists, owned by another user
    return True


def remove_stale_temporaries(folder: str | Path, locked: bool = False) -> list[Path]:
    """Remove the temporary files (``.NAME.tmp-PID``) that a process killed during a save left
    in ``folder``: those whose process is gone, or, when the caller holds the run's lock (no
    other process may be writing there), all of them. Returns the removed paths."""
    removed = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _TMP_RE.match(entry.name)
        if match is None or not entry.is_file():
            continue
        pid = int(match.group(1))
        if locked or not pid_alive(pid):
            try:
                entry.unlink()
                removed.append(entry)
            except OSError:
                continue
    return removed


def empty_run_dir(run_dir: str | Path, keep: tuple[str, ...] = ()) -> None:
    """Delete everything in ``run_dir`` but its lock file (and the names in ``keep``), so that
    a run killed before its first checkpoint trains again from scratch (the caller holds the
    lock, :func:`lock_run`)."""
    import shutil

    for entry in Path(run_dir).iterdir():
        if entry.name == LOCK or entry.name in keep:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


_HELD: dict[str, list[int]] = {}  # real path of a locked run -> [fd, depth]


def _lock_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        text = ""
    return f"pid {text}" if text.isdigit() else "pid unknown"


def holds_lock(run_dir: str | Path) -> bool:
    """Whether this process holds :func:`lock_run` on ``run_dir`` (then no other process is
    training the run, and a "running" state another process left there is stale)."""
    return os.path.realpath(run_dir) in _HELD


@contextlib.contextmanager
def lock_run(run_dir: str | Path) -> Iterator[Path]:
    """Hold an exclusive lock on the run in ``run_dir`` for the block (``RUN/.lock``).

    Raises :class:`RunLockedError` at once ("run X is being trained by another process (pid
    N)") if another process holds it, and :class:`WganError` if the directory cannot be written
    (a read-only run). Re-entrant within a process. On taking the lock, the temporary files of
    interrupted saves are removed (:func:`remove_stale_temporaries`).
    """
    path = Path(run_dir)
    if not path.is_dir():
        raise WganError(f"run directory not found: {path}")
    key = os.path.realpath(path)
    if key in _HELD:
        _HELD[key][1] += 1
        try:
            yield path
        finally:
            _HELD[key][1] -= 1
        return
    try:
        fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise WganError(f"cannot write to run directory {path}: {os_error_reason(err)}") from None
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunLockedError(
                    f"run {path} is being trained by another process ({_lock_holder(fd)}); "
                    "wait for it to finish or stop it first"
                ) from None
            except OSError:  # a file system without locks (some network mounts): go on unlocked
                pass
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as err:
            raise WganError(
                f"cannot write to run directory {path}: {os_error_reason(err)}"
            ) from None
        _probe_writable(path, "run directory", path)
        remove_stale_temporaries(path, locked=True)
        _HELD[key] = [fd, 1]
        try:
            yield path
        finally:
            del _HELD[key]
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the flock
