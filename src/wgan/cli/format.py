"""Small pieces the ``wgan`` command line shares: reading positionals, formatting numbers,
the ``--device`` option.

Nothing here imports torch at module level: ``wgan --help`` builds every parser from these
helpers and must stay fast.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from wgan.errors import DeviceUnavailable

DEVICE_NAMES = re.compile(r"auto|cpu|mps|cuda(:[0-9]+)?")
"""The values ``--device`` accepts: ``auto`` (the best available), ``cpu``, ``mps``, ``cuda``
or ``cuda:N``."""


def _device_name(text: str) -> str:
    """argparse ``type`` of ``--device``: a misspelt name is a usage error (exit 2)."""
    if not DEVICE_NAMES.fullmatch(text):
        raise argparse.ArgumentTypeError(f"must be auto, cpu, cuda, cuda:N or mps, got {text!r}")
    return text


def seed_value(text: str) -> int:
    """argparse ``type`` of ``--seed``: an integer in [0, ``MAX_SEED``], the range of
    ``train.seed`` (:func:`wgan.config.check_seed`); anything else is a usage error (exit 2)."""
    from wgan.config.validate import check_seed  # here: building the parsers stays light
    from wgan.errors import ConfigError

    try:
        value = int(text.strip())
    except ValueError:  # not a number, or more digits than int() reads
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise argparse.ArgumentTypeError(f"must be an integer, got {shown!r}") from None
    try:
        return check_seed(value, "the seed")
    except ConfigError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("the seed ")) from None


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--device NAME`` (default ``auto``) to a subcommand's parser.

    Only the spelling is checked while parsing; whether the device exists is checked by
    :func:`resolve_device` when the command runs (a missing GPU is a run-time failure, exit 1).
    """
    parser.add_argument(
        "--device",
        type=_device_name,
        default="auto",
        metavar="NAME",
        help="auto (default: cuda, then mps, then cpu), cpu, cuda, cuda:N or mps",
    )


def resolve_device(name: str) -> str:
    """The torch device string for ``--device NAME``.

    ``auto`` is the best device present: CUDA, then Apple's MPS, then the CPU. A named device
    that this machine lacks raises :class:`wgan.errors.DeviceUnavailable` (exit status 1).
    """
    import torch  # here, not at import time: the parsers must not load torch

    if not DEVICE_NAMES.fullmatch(name):
        raise DeviceUnavailable(f"--device must be auto, cpu, cuda, cuda:N or mps, got {name!r}")
    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps is not None and mps.is_available())
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if has_mps else "cpu"
    if name == "mps" and not has_mps:
        raise DeviceUnavailable("--device mps but this machine has no MPS device (use cpu or auto)")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceUnavailable(
                f"--device {name} but no CUDA device is available (use cpu or auto)"
            )
        index = int(name.partition(":")[2] or 0)
        count = torch.cuda.device_count()
        if index >= count:
            raise DeviceUnavailable(
                f"--device {name} but this machine has {count} CUDA device(s) "
                f"(cuda:0 to cuda:{count - 1})"
            )
    return name


def split_source(items: list[str]) -> tuple[str | None, list[str]]:
    """The first positional without '=' is the preset or config file; the rest are overrides.

    The preset may stand anywhere among the overrides (``train.steps=5 toy-wgan-gp``): options
    and positionals are intermixed, so "first" is only the usual place. A second item without
    '=' stays among the overrides, where it is reported as not of the form key=value.
    """
    for i, item in enumerate(items):
        if "=" not in item:
            overrides = items[:i] + items[i + 1 :]
            warn_repeated_keys(overrides)
            return item, overrides
    warn_repeated_keys(items)
    return None, list(items)


def warn_repeated_keys(overrides: list[str]) -> None:
    """Say on stderr, one line per key, when ``key=value`` overrides give a key two different
    values. Overrides apply in order, so the last value is used, as in Hydra (whose maintainers
    keep that order by design: hydra issue 3283); the line makes a slip visible instead of
    silent. The same value given twice says nothing."""
    import sys

    from wgan.store.printable import printable  # the standard library only

    values: dict[str, list[str]] = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if sep and key.strip():
            values.setdefault(key.strip(), []).append(value.strip())
    for key, given in values.items():
        if len(set(given)) > 1:
            shown = ", then ".join(printable(v, 40) for v in given)
            sys.stderr.write(
                f"wgan: warning: {printable(key, 80)} is given {len(given)} times ({shown}); "
                f"the last, {printable(given[-1], 40)}, is used\n"
            )


def make_output_folder(path: Path, label: str) -> Path | None:
    """Create the missing folders above the output file ``path`` (``mkdir -p``), saying so in
    one line on stderr (``wgan: created the folder new/dir for --out``), so that a typo in a
    folder name shows. Returns the folder when it was created, else None. A folder that cannot
    be created is one line naming ``label`` (:func:`wgan.store.rundirs.make_dirs`)."""
    import sys

    from wgan.store import rundirs
    from wgan.store.printable import printable

    folder = Path(path).parent
    if folder.is_dir():
        return None
    rundirs.make_dirs(folder, label)
    sys.stderr.write(f"wgan: created the folder {printable(str(folder), 300)} for {label}\n")
    return folder


def fmt(value: Any, spec: str = ".3g") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


def format_metrics(metrics: dict[str, Any]) -> str:
    """``  key  value`` lines; a metric recorded with its real-vs-real baseline (``w1`` and
    ``w1_baseline``, :data:`wgan.store.run_index.BASELINE_SUFFIXES`) is one line with the
    baseline beside the value."""
    from wgan.store.run_index import metric_pairs  # the standard library and PyYAML only

    pairs = metric_pairs(metrics)
    width = max((len(k) for k, _, _ in pairs), default=0)

    def text(value: Any) -> str:
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    lines = []
    for key, value, base in pairs:
        extra = "" if base is None else f"  (real-vs-real: {text(base)})"
        lines.append(f"  {key:<{width}}  {text(value)}{extra}")
    return "\n".join(lines)
