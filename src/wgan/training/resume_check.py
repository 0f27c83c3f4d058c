"""Checks a resume makes before it writes anything: ``config.yaml`` against the checkpoint.

``config.yaml`` in a run directory records the config of the run's checkpoint; it is not an
input. :func:`check_config_file` refuses a resume when the file was edited, naming the keys, so
that an edit is neither silently ignored nor silently overwritten.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from wgan.config import RESUME_MAY_CHANGE, Config, apply_mapping, changed_keys, read_yaml_mapping
from wgan.errors import ConfigError, WganError
from wgan.store import rundirs


def _override_text(key: str, value: Any) -> str:
    return f"{key}={json.dumps(list(value) if isinstance(value, tuple) else value)}"


def check_config_file(run_dir: Path, saved: dict[str, Any], overrides: dict[str, Any]) -> None:
    """Refuse to resume a run whose ``config.yaml`` was edited (it differs from the
    checkpoint's config ``saved`` in a key not given in ``overrides``).

    ``config.yaml`` records the config of the run's checkpoint; it is not an input. An edit
    would otherwise be silently ignored and then overwritten, so the error names each differing
    key with both values and says how to apply the change (as an override) or drop it. A
    missing ``config.yaml`` is fine (the checkpoint holds the config); ``train.inception_weights``
    is never compared (it is never read from a run).
    """
    path = Path(run_dir) / rundirs.CONFIG
    if not path.exists():
        return
    hint = "restore it, or delete it to resume from the checkpoint's config"
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise WganError(f"cannot read {path}: {err}; {hint}") from None
    on_disk, in_checkpoint = Config(), Config()
    try:
        apply_mapping(on_disk, read_yaml_mapping(text, str(path)))
    except ConfigError as err:
        raise ConfigError(f"{err} (in {path}); {hint}") from None
    apply_mapping(in_checkpoint, saved)
    diff = {
        key: values
        for key, values in changed_keys(in_checkpoint, on_disk).items()
        if key not in overrides and key != "train.inception_weights"
    }
    if not diff:
        return
    items = "; ".join(
        f"{key}: {new!r} in config.yaml, {old!r} in the checkpoint"
        + ("" if key in RESUME_MAY_CHANGE else " (it cannot change on resume)")
        for key, (old, new) in diff.items()
    )
    may = [_override_text(key, new) for key, (_, new) in diff.items() if key in RESUME_MAY_CHANGE]
    apply = (
        f"; to apply the edit, pass it as an override: wgan train --resume {run_dir} "
        + " ".join(may)
        if may
        else ""
    )
    raise ConfigError(
        f"{path} was edited: {items}. config.yaml records the checkpoint's config and is not "
        f"read on resume: restore the file (or delete it) to resume as the checkpoint says"
        f"{apply}"
    )


def resume_summary(saved: Config, cfg: Config, step: int) -> str:
    """One line saying what resuming the checkpoint of step ``step`` (config ``saved``) with
    config ``cfg`` does: ``train.steps`` from and to, the learning-rate schedule, and any other
    key the resume changes.

    Under ``train.lr_decay=linear`` the rate is ``lr * (1 - step / train.steps)``, a function of
    the step and the current ``train.steps`` (:func:`wgan.gan.optim.lr_factor`): a resume with
    more steps follows the schedule of a run of the new length from its step on, so a rate that
    had decayed to 0 at the old end rises to ``lr * (1 - step / new steps)``. The line shows the
    factor before and after.
    """
    from wgan.gan.optim import lr_factor

    old, new = saved.train.steps, cfg.train.steps
    steps = f"train.steps {old} -> {new}" if old != new else f"train.steps {new}"
    head = f"resuming at step {step}: {steps}"
    before = float(lr_factor(step, old, saved.train.lr_decay))
    after = float(lr_factor(step, new, cfg.train.lr_decay))
    if cfg.train.lr_decay == "none" and saved.train.lr_decay == "none":
        lr = "learning rates constant (train.lr_decay=none)"
    elif cfg.train.lr_decay == "none":
        lr = f"linear lr decay off: the rate goes from lr x {before:.3g} to lr"
    elif before == after:
        lr = f"linear lr decay continues: lr x {after:.3g} now, 0 at step {new}"
    else:
        lr = (
            f"linear lr decay follows a {new}-step run from here: lr x {before:.3g} -> "
            f"lr x {after:.3g} at step {step}, then linearly to 0 at step {new} "
            "(train.lr_decay=none keeps lr constant)"
        )
    others = [
        f"{key} {old_value!r} -> {new_value!r}"
        for key, (old_value, new_value) in changed_keys(saved, cfg).items()
        if key not in ("train.steps", "train.lr_decay")
    ]
    also = f"; also {', '.join(others)}" if others else ""
    return f"{head}; {lr}{also}"
