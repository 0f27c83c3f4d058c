"""Typed run configuration: dataclasses with defaults, YAML presets and dotted overrides.

A run is described by one :class:`Config`, composed of small sections that sit next to the
components they configure. Values come from, in order: the dataclass defaults, a preset or a
YAML file (which may ``extends:`` another preset), and ``key=value`` overrides on the command line
(dotted keys such as ``critic.hidden=256``). Every key is checked: an unknown key is rejected with
the closest valid names, and a value of the wrong type or out of range is rejected with the
expected type or range.

In a YAML file a key may be dotted too (``train.steps: 500`` is ``train: {steps: 500}``); a key
given twice, in one spelling or both, is an error naming it (PyYAML would keep the last one
silently). Every float must be finite, and every count has an upper bound declared next to its
field (``_at_most``). :data:`RESUME_MAY_CHANGE` lists the keys a resumed run may change.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import re
import types
import typing
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml

from wgan.config_sections import (  # noqa: F401 - the sections are part of this module's API
    MAX_SEED,
    MAX_STEPS,
    ConditionalConfig,
    Config,
    ConstraintConfig,
    DataConfig,
    GeneratorConfig,
    NetConfig,
    ObjectiveConfig,
    OptimConfig,
    TrainConfig,
    TricksConfig,
)
from wgan.errors import ConfigError

# --------------------------------------------------------------------------------------------
# Validation of values (ranges); types are checked while setting
# --------------------------------------------------------------------------------------------


def leaf_items(obj: Any, prefix: str = "") -> list[tuple[str, Any, dataclasses.Field]]:
    """Every leaf of a config (or section) as ``(dotted key, value, dataclass field)``."""
    out = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            out.extend(leaf_items(value, f"{prefix}{f.name}."))
        else:
            out.append((f"{prefix}{f.name}", value, f))
    return out


def _check_numbers(cfg: Config) -> None:
    """Every float is finite (no nan, no inf anywhere) and every bounded number within bounds."""
    for key, value, f in leaf_items(cfg):
        values = value if isinstance(value, tuple) else (value,)
        for v in values:
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"{key} must be a finite number, got {v}")
        bound = f.metadata.get("max")
        if bound is not None and value is not None and value > bound:
            raise ConfigError(f"{key} must be <= {bound:,}, got {value:,}")


def _distinct(chars: str) -> bool:
    return len(set(chars)) == len(chars)


_DEVICE_RE = re.compile(r"auto|cpu(:[0-9]+)?|cuda(:[0-9]+)?")


def validate(cfg: Config) -> Config:
    """Check ranges and cross-field rules; raise :class:`ConfigError` naming the key.

    Every float must be finite (``nan`` and ``inf`` are refused for every key) and every count
    stays below the upper bound declared next to its field (e.g. ``critic.hidden <= 65,536``,
    ``data.batch_size <= 2**20``), so an absurd or overflowing value is one clear error.
    """
    _check_numbers(cfg)
    checks: list[tuple[bool, str]] = [
        (cfg.data.batch_size >= 1, "data.batch_size must be >= 1"),
        (cfg.generator.latent_dim >= 1, "generator.latent_dim must be >= 1"),
        (cfg.generator.fixed_noise_std >= 0, "generator.fixed_noise_std must be >= 0"),
        (cfg.constraint.clip >= 0, "constraint.clip must be >= 0 (0 turns clipping off)"),
        (cfg.constraint.penalty_weight >= 0, "constraint.penalty_weight (lambda) must be >= 0"),
        (cfg.constraint.penalty_target > 0, "constraint.penalty_target must be > 0"),
        (cfg.constraint.penalty_every >= 1, "constraint.penalty_every must be >= 1"),
        (0.0 < cfg.objective.pi < 1.0, "objective.pi must be in (0, 1)"),
        (cfg.train.steps >= 1, "train.steps must be >= 1"),
        (cfg.train.n_critic >= 1, "train.n_critic must be >= 1"),
        (cfg.train.seed >= 0, "train.seed must be >= 0"),
        (cfg.train.log_every >= 1, "train.log_every must be >= 1"),
        (cfg.train.eval_every >= 0, "train.eval_every must be >= 0"),
        (cfg.train.eval_samples >= 1, "train.eval_samples must be >= 1"),
        (cfg.train.figure_every >= 0, "train.figure_every must be >= 0"),
        (cfg.train.checkpoint_every >= 0, "train.checkpoint_every must be >= 0"),
        (cfg.data.n_train is None or cfg.data.n_train >= 1, "data.n_train must be >= 1"),
        (cfg.data.n_modes is None or cfg.data.n_modes >= 1, "data.n_modes must be >= 1"),
        (cfg.data.n_per_side is None or cfg.data.n_per_side >= 1, "data.n_per_side must be >= 1"),
        (cfg.conditional.embed_dim >= 1, "conditional.embed_dim must be >= 1"),
        (cfg.conditional.ac_weight >= 0, "conditional.ac_weight must be >= 0"),
        (cfg.conditional.ac_weight_g >= 0, "conditional.ac_weight_g must be >= 0"),
        (0.0 <= cfg.train.ema < 1.0, "train.ema (the EMA decay) must be in [0, 1)"),
        (cfg.tricks.feature_matching >= 0, "tricks.feature_matching must be >= 0"),
        (
            cfg.tricks.feature_matching_mode == "add" or cfg.tricks.feature_matching > 0,
            "tricks.feature_matching_mode=replace needs a weight tricks.feature_matching > 0",
        ),
        (cfg.tricks.minibatch_kernels >= 1, "tricks.minibatch_kernels must be >= 1"),
        (cfg.tricks.minibatch_kernel_dim >= 1, "tricks.minibatch_kernel_dim must be >= 1"),
        (cfg.tricks.historical_averaging >= 0, "tricks.historical_averaging must be >= 0"),
        (0.0 <= cfg.tricks.label_smoothing < 1.0, "tricks.label_smoothing must be in [0, 1)"),
        (cfg.tricks.virtual_batch_size >= 1, "tricks.virtual_batch_size must be >= 1"),
        (cfg.tricks.instance_noise >= 0, "tricks.instance_noise must be >= 0"),
        (cfg.tricks.instance_noise_steps >= 0, "tricks.instance_noise_steps must be >= 0"),
        (
            cfg.critic.norm != "virtual",
            "critic.norm=virtual: virtual batch norm is for the "
            "generator (its reference batch is fixed noise); use batch, layer or none",
        ),
        (
            cfg.data.channels is None or cfg.data.channels in (1, 3),
            "data.channels must be 1 or 3",
        ),
        (
            cfg.data.resolution is None or cfg.data.resolution in (8, 16, 32, 64),
            "data.resolution must be 8, 16, 32 or 64",
        ),
    ]
    checks += [
        (cfg.data.seq_len >= 1, "data.seq_len must be >= 1"),
        (cfg.data.vocab_size >= 2, "data.vocab_size must be >= 2 (one symbol + unknown)"),
        (
            cfg.data.vocab is None
            or (0 < len(cfg.data.vocab) < 1024 and _distinct(cfg.data.vocab)),
            "data.vocab must be a string of 1 to 1023 distinct characters",
        ),
    ]
    for net_key in ("generator", "critic"):
        net = getattr(cfg, net_key)
        checks.append((net.kernel >= 1 and net.kernel % 2 == 1, f"{net_key}.kernel must be odd"))
        checks.append((net.hidden >= 1, f"{net_key}.hidden must be >= 1"))
        checks.append((net.depth >= 0, f"{net_key}.depth must be >= 0"))
        checks.append((net.width >= 1, f"{net_key}.width must be >= 1"))
    for opt_key in ("g_optim", "d_optim"):
        opt = getattr(cfg, opt_key)
        checks.append((opt.lr > 0, f"{opt_key}.lr must be > 0"))
        checks.append((all(0 <= b < 1 for b in opt.betas), f"{opt_key}.betas must be in [0, 1)"))
        checks.append((opt.weight_decay >= 0, f"{opt_key}.weight_decay must be >= 0"))
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    if not _DEVICE_RE.fullmatch(cfg.train.device):
        raise ConfigError(
            f"train.device must be auto, cpu, cuda or cuda:N, got {cfg.train.device!r}"
        )
    return cfg


# --------------------------------------------------------------------------------------------
# Resuming a run: which keys may change
# --------------------------------------------------------------------------------------------

RESUME_MAY_CHANGE = (
    "train.steps",
    "train.threads",
    "train.n_critic",
    "train.lr_decay",
    "train.log_every",
    "train.eval_every",
    "train.eval_samples",
    "train.figure_every",
    "train.checkpoint_every",
    "train.progress",
    "train.device",
    "train.ema",
    "train.inception_weights",
    "d_optim.lr",
    "d_optim.betas",
    "d_optim.weight_decay",
    "g_optim.lr",
    "g_optim.betas",
    "g_optim.weight_decay",
    "constraint.penalty_weight",
    "constraint.penalty_target",
    "constraint.penalty_every",
    "constraint.clip",
    "data.path",
)
"""The config keys whose values may change when a run is resumed (dotted names).

They are read afresh by the loop (learning rates, betas and weight decay go into every update
through :meth:`wgan.train.Trainer.hyper`; the penalty's weight, target and period, the clipping
bound and the EMA decay likewise), set how long and how often things happen (steps, critic
steps per iteration, schedule, log / eval / figure / checkpoint cadence, the progress bar), or
where the run computes or reads (device, the user's data files, the user's Inception weights).
Turning the EMA on starts the average at the current generator; turning it off drops it.

Every other key fixes the shapes of the saved weights and optimiser states (architecture, data,
latent and label sizes, conditioning), the optimiser kind (its saved state holds other moments),
the code path (objective, which constraints, precision, compilation, memory layout) or the
run's identity (name, seed, out_dir), and is refused on resume, naming it and both values.
"""


def changed_keys(old: Config, new: Config) -> dict[str, tuple[Any, Any]]:
    """The dotted keys whose values differ between two configs: ``{key: (old, new)}``."""
    a = {k: v for k, v, _ in leaf_items(old)}
    return {k: (a[k], v) for k, v, _ in leaf_items(new) if a[k] != v}


def check_resume(saved: Config, cfg: Config) -> None:
    """Refuse a resumed config that changes a key outside :data:`RESUME_MAY_CHANGE`.

    ``saved`` is the checkpoint's config, ``cfg`` the one to continue with (after overrides).
    The error names every such key with the run's value and the new one.
    """
    bad = {k: v for k, v in changed_keys(saved, cfg).items() if k not in RESUME_MAY_CHANGE}
    if not bad:
        return
    items = []
    for key, (old, new) in bad.items():
        item = f"{key} from {old!r} to {new!r}"
        if key in ("d_optim.name", "g_optim.name"):
            item += f" (the saved optimiser state is not a {new} state)"
        items.append(item)
    what = "this key" if len(bad) == 1 else "these keys"
    raise ConfigError(
        f"cannot resume with {'; '.join(items)}: {what} cannot change on resume (shapes, the "
        f"optimiser kind, code paths or the run's identity); keys that may change: "
        f"{', '.join(RESUME_MAY_CHANGE)}"
    )


# --------------------------------------------------------------------------------------------
# Setting values by dotted key, with type checks
# --------------------------------------------------------------------------------------------


def _field_types(obj: Any) -> dict[str, Any]:
    return _type_hints(type(obj))


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin is tuple:
        return "a list of " + ", ".join(_type_name(a) for a in get_args(tp))
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Return ``value`` as type ``tp`` or raise ConfigError (ints are accepted for floats)."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        for arg in get_args(tp):
            try:
                return _coerce(value, arg, key)
            except ConfigError:
                continue
    elif origin is Literal:
        if value in get_args(tp):
            return value
    elif origin is tuple:
        args = get_args(tp)
        if isinstance(value, (list, tuple)) and len(value) == len(args):
            return tuple(_coerce(v, a, key) for v, a in zip(value, args, strict=True))
    elif tp is type(None):
        if value is None:
            return None
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
    raise ConfigError(f"{key} must be {_type_name(tp)}, got {value!r}")


def _unknown_key(key: str, valid: list[str]) -> ConfigError:
    close = difflib.get_close_matches(key.rsplit(".", 1)[-1], valid, n=3, cutoff=0.5)
    prefix = key.rsplit(".", 1)[0] + "." if "." in key else ""
    hint = f"; did you mean {', '.join(prefix + c for c in close)}?" if close else ""
    return ConfigError(f"unknown config key '{key}'{hint} (valid here: {', '.join(valid)})")


def set_value(cfg: Config, key: str, value: Any) -> None:
    """Set the dotted ``key`` of ``cfg`` to ``value`` after checking the key and its type."""
    parts = key.split(".")
    obj: Any = cfg
    for i, part in enumerate(parts):
        hints = _field_types(obj)
        if part not in hints:
            raise _unknown_key(".".join(parts[: i + 1]), sorted(hints))
        if i == len(parts) - 1:
            if dataclasses.is_dataclass(getattr(obj, part)):
                raise ConfigError(f"{key} is a section; set one of its keys, e.g. {key}.<name>")
            setattr(obj, part, _coerce(value, hints[part], key))
        else:
            obj = getattr(obj, part)
            if not dataclasses.is_dataclass(obj):
                raise ConfigError(f"{'.'.join(parts[: i + 1])} is not a section")


def _section_at(cfg: Config, dotted: str) -> Any:
    """The section a dotted key names, or None for a value key; unknown keys are errors."""
    parts = dotted.split(".")
    obj: Any = cfg
    for i, part in enumerate(parts):
        hints = _field_types(obj)
        if part not in hints:
            raise _unknown_key(".".join(parts[: i + 1]), sorted(hints))
        obj = getattr(obj, part)
        if not dataclasses.is_dataclass(obj):
            if i < len(parts) - 1:
                raise ConfigError(f"{'.'.join(parts[: i + 1])} is not a section")
            return None
    return obj


def apply_mapping(cfg: Config, mapping: dict[str, Any], prefix: str = "") -> None:
    """Apply a nested mapping (from YAML) onto ``cfg``, checking every key.

    A key may be dotted like an override: ``train.steps: 5`` is ``train: {steps: 5}``. A key
    given twice in one mapping, in any spelling (``train: {steps: 5}`` and ``train.steps: 6``),
    is an error naming it.
    """
    _apply_mapping(cfg, mapping, prefix, set())


def _apply_mapping(cfg: Config, mapping: Any, prefix: str, seen: set[str]) -> None:
    if not isinstance(mapping, dict):
        where = prefix.rstrip(".") or "the config file"
        raise ConfigError(f"{where} must be a mapping of keys to values, got {mapping!r}")
    for key, value in mapping.items():
        dotted = f"{prefix}{key}"
        if _section_at(cfg, dotted) is not None:
            _apply_mapping(cfg, value if value is not None else {}, f"{dotted}.", seen)
            continue
        if dotted in seen:
            raise ConfigError(f"config key '{dotted}' is given twice (once dotted, once nested)")
        seen.add(dotted)
        set_value(cfg, dotted, value)


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``key=value``; the value is read as YAML (``5`` -> int, ``[0, 0.9]`` -> list)."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' is not of the form key=value")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


# --------------------------------------------------------------------------------------------
# Presets and files
# --------------------------------------------------------------------------------------------


def preset_names() -> list[str]:
    """All presets shipped with the package, sorted."""
    folder = resources.files("wgan") / "presets"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: Any, line: int) -> None:
        super().__init__(f"duplicate key {key!r} on line {line}")
        self.key, self.line = key, line


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, but a mapping that repeats a key is an error (PyYAML keeps the
    last value silently, which drops a whole block when a section is repeated). Keys merged in
    with ``<<`` may be overridden, as YAML intends."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: PyYAML's own error follows
                continue
            if duplicate:
                raise _DuplicateKey(key, key_node.start_mark.line + 1)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml_mapping(text: str, where: str) -> dict[str, Any]:
    """Parse YAML ``text`` holding a mapping; ``where`` names it in errors (ConfigError).

    A repeated key is an error naming the key and its line.
    """
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except _DuplicateKey as err:
        raise ConfigError(
            f"{where}: key '{err.key}' is given twice (line {err.line}); each key may appear "
            "once in a mapping"
        ) from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{where} is not valid YAML: {err}".splitlines()[0]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must hold a mapping of keys to values")
    return data


_read_yaml = read_yaml_mapping


def load_preset_mapping(name: str) -> dict[str, Any]:
    """The raw mapping of preset ``name``; raises ConfigError naming close matches."""
    names = preset_names()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.4)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown preset '{name}'{hint} (run 'wgan presets' to list them)")
    text = (resources.files("wgan") / "presets" / f"{name}.yaml").read_text()
    return _read_yaml(text, f"preset '{name}'")


def preset_description(name: str) -> str:
    """The first comment line of a preset file (its one-line description)."""
    text = (resources.files("wgan") / "presets" / f"{name}.yaml").read_text()
    for line in text.splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def _resolve_mapping(mapping: dict[str, Any], cfg: Config, seen: tuple[str, ...]) -> None:
    """Apply ``mapping`` after the presets it ``extends`` (recursively, cycles rejected)."""
    mapping = dict(mapping)
    parent = mapping.pop("extends", None)
    if parent is not None:
        if not isinstance(parent, str):
            raise ConfigError(f"'extends' must name a preset, got {parent!r}")
        if parent in seen:
            raise ConfigError(f"presets extend each other in a cycle: {' -> '.join(seen)}")
        _resolve_mapping(load_preset_mapping(parent), cfg, (*seen, parent))
    apply_mapping(cfg, mapping)


def resolve(source: str | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Build a validated Config from a preset name or YAML path, then ``key=value`` overrides.

    ``source`` is a preset name (see :func:`preset_names`), a path to a ``.yaml``/``.yml`` file,
    or None for the default preset ``toy-wgan-gp``.
    """
    cfg = Config()
    source = source or "toy-wgan-gp"
    if source.endswith((".yaml", ".yml")) or "/" in source:
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(f"cannot read config file {path}: {err}") from None
        mapping = _read_yaml(text, f"config file {path}")
        mapping.setdefault("name", path.stem)
    else:
        mapping = load_preset_mapping(source)
        mapping.setdefault("name", source)
    _resolve_mapping(mapping, cfg, (source,))
    for text in overrides:
        key, value = parse_override(text)
        set_value(cfg, key, value)
    return validate(cfg)


def from_dict(mapping: dict[str, Any]) -> Config:
    """Rebuild a Config from :meth:`Config.to_dict` output (e.g. a run's saved config).

    Configs saved before the network options ``layers``/``blocks``/``init`` existed said
    ``activation: relu`` for every net, a key the image nets then ignored (DCGAN's critic used
    LeakyReLU(0.2)); such a config is read with ``activation: auto``, which builds the same
    nets, so old runs load and resume unchanged.
    """
    mapping = dict(mapping)
    for player in ("generator", "critic"):
        section = mapping.get(player)
        if isinstance(section, dict) and "layers" not in section:
            if section.get("activation") == "relu":
                mapping[player] = {**section, "activation": "auto"}
    cfg = Config()
    apply_mapping(cfg, mapping)
    return validate(cfg)


def dump_yaml(cfg: Config) -> str:
    """The resolved config as YAML text."""
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False, default_flow_style=None)
