"""Experiment settings under the names of the training-config keys they mirror.

A setting of an experiment that stands for a key of a training run's config may be given under
that key's dotted name as well as its own: ``wgan experiment mode-collapse train.steps=500`` is
``steps=500``, ``data.batch_size=64`` is ``batch_size=64``. Each settings class declares what its
fields mirror in ``TRAIN_KEYS`` (field -> dotted keys, merged along the class hierarchy like
``LIMITS``; :meth:`wgan.experiments.framework.Settings.train_keys`), and only where the meaning is
the same: the critic-only steps of ``parallel-lines`` are not ``train.steps``.

A setting that stands for several keys at once (``hidden``: the width of both the generator and
the critic) is set by its dotted names only all together and with one value, since setting one
of them would change the other too; where an experiment has a setting of its own for one of the
keys (``critic_hidden``), that key names it.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from wgan.config import parse_override
from wgan.errors import ConfigError

__all__ = ["dotted_names", "translate", "train_key_rows"]


def _mirrors(settings: Any) -> dict[str, tuple[str, ...]]:
    """Field -> the dotted keys it mirrors, for the fields ``settings`` has."""
    train_keys = getattr(settings, "train_keys", None)
    if train_keys is None:
        return {}
    own = {f.name for f in fields(settings)}
    return {name: keys for name, keys in train_keys().items() if name in own}


def dotted_names(settings: Any) -> dict[str, str]:
    """Dotted key -> the setting it names. A field that mirrors one key alone wins over a
    field that mirrors it together with others (``critic.hidden`` -> ``critic_hidden`` where an
    experiment has both ``critic_hidden`` and ``hidden``)."""
    mirrors = _mirrors(settings)
    out = {key: name for name, keys in mirrors.items() if len(keys) > 1 for key in keys}
    out.update({keys[0]: name for name, keys in mirrors.items() if len(keys) == 1})
    return out


def train_key_rows(settings_cls: type) -> list[tuple[str, str]]:
    """``(dotted names, setting)`` rows for ``wgan experiment NAME --help``, in field order."""
    settings = settings_cls()
    names = dotted_names(settings)
    rows = []
    for name, keys in _mirrors(settings).items():
        mine = [k for k in keys if names[k] == name]
        if mine:
            together = " (given together, one value)" if len(mine) > 1 else ""
            rows.append((" + ".join(mine), name + together))
    return rows


def translate(settings: Any, overrides: Sequence[str], experiment: str = "") -> list[str]:
    """``overrides`` with every dotted training-config name replaced by the setting it names.

    Names the settings have are kept as they are; a text without ``=`` is left for
    :func:`wgan.experiments.common.apply_overrides` to refuse. A dotted name that no setting
    mirrors, or a setting of several keys given only some of them (or different values), is a
    :class:`ConfigError` that says what to write instead. ``experiment`` names the experiment in
    the messages.
    """
    if isinstance(overrides, str) or not all(isinstance(o, str) for o in overrides):
        raise ConfigError(
            f"overrides must be a list of 'key=value' strings, got {type(overrides).__name__} "
            f"{overrides!r:.80}"
        )
    own = {f.name for f in fields(settings)}
    names = dotted_names(settings)
    mirrors = _mirrors(settings)
    out: list[str | None] = []
    given: dict[str, dict[str, tuple[int, Any, str]]] = {}  # field -> key -> (position, value)
    for text in overrides:
        key = text.split("=", 1)[0].strip()
        if "=" not in text or key in own:
            out.append(text)
        elif key in names:
            value = parse_override(text)[1]
            given.setdefault(names[key], {})[key] = (len(out), value, text.split("=", 1)[1])
            out.append(None)  # filled below
        elif "." in key:
            raise ConfigError(_unknown(key, own, names, experiment))
        else:
            out.append(text)  # an unknown plain name: apply_overrides names close matches
    for name, keys in given.items():
        wanted = [k for k in mirrors[name] if names[k] == name]
        values = {repr(v) for _, v, _ in keys.values()}
        raw = next(iter(keys.values()))[2].strip()
        if set(keys) != set(wanted) or len(values) > 1:
            raise ConfigError(
                f"{_prefix(experiment)}setting '{name}' is {' and '.join(wanted)} together, with "
                f"one value (given: {', '.join(sorted(keys))}); write {name}={raw}"
            )
        last = max(position for position, _, _ in keys.values())
        out[last] = f"{name}={raw}"
    return [text for text in out if text is not None]


def _prefix(experiment: str) -> str:
    return f"experiment {experiment}: " if experiment else ""


def _unknown(key: str, own: set[str], names: dict[str, str], experiment: str) -> str:
    """The message for a dotted name that no setting mirrors: close matches among the settings
    and the dotted names, the setting named like the key's last part first."""
    last = key.rsplit(".", 1)[1]
    close = [last] if last in own else []
    if not close:
        close = difflib.get_close_matches(key, sorted(names), n=1, cutoff=0.75)
        close += difflib.get_close_matches(last, sorted(own), n=1, cutoff=0.75)
    close = list(dict.fromkeys(close))[:3]
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    accepted = ", ".join(sorted(names)) or "none"
    see = f" (see 'wgan experiment {experiment} --help')" if experiment else ""
    return (
        f"{_prefix(experiment)}no setting '{key}'{hint} (training-config names accepted here: "
        f"{accepted}){see}"
    )
