"""Reading configs: typed values from YAML files, presets and dotted overrides."""

from __future__ import annotations

import dataclasses
import difflib
import functools
import types
import typing
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml

from wgan.config.sections import Config
from wgan.config.validate import LABEL_SMOOTHING_OBJECTIVES, validate
from wgan.errors import ConfigError

# --------------------------------------------------------------------------------------------
# Setting values by dotted key, with type checks
# --------------------------------------------------------------------------------------------


def _field_types(obj: Any) -> dict[str, Any]:
    return _type_hints(type(obj))


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    """The settable fields' types: class-level constants (``ClassVar``, e.g. an experiment's
    ``LIMITS``) are no keys, so they are neither accepted nor offered as "valid here"."""
    hints = typing.get_type_hints(cls)
    return {
        k: v
        for k, v in hints.items()
        if v is not typing.ClassVar and get_origin(v) is not typing.ClassVar
    }


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
    folder = resources.files("wgan.config") / "presets"
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
    text = (resources.files("wgan.config") / "presets" / f"{name}.yaml").read_text()
    return _read_yaml(text, f"preset '{name}'")


def preset_description(name: str) -> str:
    """The first comment line of a preset file (its one-line description)."""
    text = (resources.files("wgan.config") / "presets" / f"{name}.yaml").read_text()
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
    return validate(absolute_data_path(cfg))


def absolute_data_path(cfg: Config, base: str | Path | None = None) -> Config:
    """Make ``cfg.data.path`` absolute, in place: ``~`` expanded, a relative path joined to
    ``base`` (default: the working directory). A run stores its config this way, so that it
    names its data file wherever it is evaluated or resumed from. Returns ``cfg``."""
    path = cfg.data.path
    if isinstance(path, str) and path.strip():
        full = Path(path).expanduser()
        cfg.data.path = str(full if full.is_absolute() else Path(base or Path.cwd()) / full)
    return cfg


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
    # Runs saved by older versions could say objective fgan with tricks.label_smoothing > 0, which
    # training silently dropped; read them with the 0 they were trained with.
    objective, tricks = mapping.get("objective"), mapping.get("tricks")
    if (
        isinstance(objective, dict)
        and isinstance(tricks, dict)
        and tricks.get("label_smoothing")
        and objective.get("name") not in LABEL_SMOOTHING_OBJECTIVES
    ):
        mapping["tricks"] = {**tricks, "label_smoothing": 0.0}
    cfg = Config()
    apply_mapping(cfg, mapping)
    return validate(cfg)


def dump_yaml(cfg: Config) -> str:
    """The resolved config as YAML text."""
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False, default_flow_style=None)
