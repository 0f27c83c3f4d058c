"""Reading configs: typed values from YAML files, presets and dotted overrides."""

from __future__ import annotations

import dataclasses
import difflib
import functools
import os
import types
import typing
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml

from wgan.config.hints import check_source, several_values_hint, type_and_value, unknown_key
from wgan.config.own_data import data_before, follow_data
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
        args = [a for a in get_args(tp) if a is not Ellipsis]  # tuple[str, ...]: "a list of str"
        return "a list of " + ", ".join(_type_name(a) for a in args)
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
        if len(args) == 2 and args[1] is Ellipsis and isinstance(value, (list, tuple)):
            return tuple(_coerce(v, args[0], key) for v in value)  # tuple[str, ...]: any length
        if args == (str, Ellipsis) and isinstance(value, str) and value.strip():
            # a list of strings written as one string: entries separated by ';', so that
            # data.holdout_combos=green,triangle is one combination (the YAML list [a, b] is two)
            return tuple(v.strip() for v in value.split(";") if v.strip())
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


def _fits(tp: Any, key: str) -> Any:
    """Whether one value has type ``tp`` (for :func:`several_values_hint`)."""

    def fits(value: Any) -> bool:
        try:
            _coerce(value, tp, key)
        except ConfigError:
            return False
        return True

    return fits


def set_value(cfg: Config, key: str, value: Any) -> None:
    """Set the dotted ``key`` of ``cfg`` to ``value`` after checking the key and its type.

    An unknown key names close matches in every section (:func:`wgan.config.hints.close_keys`);
    several values for a key that takes one (``train.seed=0,1``) name the command that trains
    one run per value."""
    parts = key.split(".")
    obj: Any = cfg
    for i, part in enumerate(parts):
        hints = _field_types(obj)
        if part not in hints:
            raise unknown_key(cfg, ".".join(parts[: i + 1]), sorted(hints))
        if i == len(parts) - 1:
            if dataclasses.is_dataclass(getattr(obj, part)):
                raise ConfigError(f"{key} is a section; set one of its keys, e.g. {key}.<name>")
            try:
                setattr(obj, part, _coerce(value, hints[part], key))
            except ConfigError as err:
                hint = several_values_hint(cfg, key, value, _fits(hints[part], key))
                raise ConfigError(f"{err}{hint}") from None
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
            raise unknown_key(cfg, ".".join(parts[: i + 1]), sorted(hints))
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
        try:
            if _section_at(cfg, dotted) is not None:
                _apply_mapping(cfg, value if value is not None else {}, f"{dotted}.", seen)
                continue
            if dotted in seen:
                raise ConfigError(
                    f"config key '{dotted}' is given twice (once dotted, once nested)"
                )
            seen.add(dotted)
            set_value(cfg, dotted, value)
        except ConfigError as err:
            if not hasattr(err, "key"):
                err.key = dotted  # type: ignore[attr-defined]  # the key, for its line
            raise


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``key=value``; the value is read as YAML (``5`` -> int, ``[0, 0.9]`` -> list)."""
    if "=" not in text:
        raise ConfigError(
            f"override '{text}' is not of the form key=value (e.g. train.steps=500; "
            "'wgan config' lists every key)"
        )
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def override_items(overrides: Any, what: str = "overrides") -> list[tuple[str, Any]]:
    """``overrides`` as ``(dotted key, value)`` pairs: a list or tuple of ``"key=value"``
    strings (values read as YAML, as on the command line) or a mapping ``{key: value}``.

    A single string (``"train.steps=5"`` instead of ``["train.steps=5"]``), an item that is not
    a ``key=value`` string and any other type are a :class:`ConfigError` saying what was
    expected.
    """
    if overrides is None:
        return []
    expected = f"{what} must be a list of 'key=value' strings or a dict {{key: value}}"
    if isinstance(overrides, str):
        raise ConfigError(f"{expected}, got the str {overrides!r}; write [{overrides!r}]")
    if isinstance(overrides, Mapping):
        for key in overrides:
            if not isinstance(key, str):
                raise ConfigError(f"{expected}; a key must be a str, got {type_and_value(key)}")
        return [(key.strip(), value) for key, value in overrides.items()]
    if not isinstance(overrides, (list, tuple)):
        raise ConfigError(f"{expected}, got {type_and_value(overrides)}")
    for item in overrides:
        if not isinstance(item, str):
            raise ConfigError(f"{expected}; an item must be a str, got {type_and_value(item)}")
    return [parse_override(item) for item in overrides]


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


def _yaml_problem(err: yaml.YAMLError, text: str) -> str:
    """PyYAML's error as one line: where (line and column, 1-based), what, and the line."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None)
    if mark is None or not problem:
        return str(err).splitlines()[0]
    out = f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    context, start = getattr(err, "context", None), getattr(err, "context_mark", None)
    if context and start is not None and (start.line, start.column) != (mark.line, mark.column):
        out += f" ({context} from line {start.line + 1}, column {start.column + 1})"
    elif context:
        out += f" ({context})"
    lines = text.splitlines()
    if mark.line < len(lines) and lines[mark.line].strip():
        shown = lines[mark.line] if len(lines[mark.line]) <= 60 else lines[mark.line][:57] + "..."
        out += f"; the line reads {shown!r}"
    return out


def key_lines(text: str) -> dict[str, int]:
    """The line (1-based) of every key of a YAML mapping, by dotted name (``train.steps``):
    for errors about a key of a file. ``{}`` when the text does not compose."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    out: dict[str, int] = {}

    def walk(node: Any, prefix: str) -> None:
        if not isinstance(node, yaml.MappingNode):
            return
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                dotted = f"{prefix}{key_node.value}"
                out.setdefault(dotted, key_node.start_mark.line + 1)
                walk(value_node, f"{dotted}.")

    walk(root, "")
    return out


def read_yaml_mapping(text: str, where: str) -> dict[str, Any]:
    """Parse YAML ``text`` holding a mapping; ``where`` names it in errors (ConfigError).

    A repeated key is an error naming the key and its line; a syntax error names its line and
    column (1-based) and shows the line.
    """
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except _DuplicateKey as err:
        raise ConfigError(
            f"{where}: key '{err.key}' is given twice (line {err.line}); each key may appear "
            "once in a mapping"
        ) from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{where} is not valid YAML: {_yaml_problem(err, text)}") from None
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


def resolve(
    source: str | os.PathLike[str] | None = None,
    overrides: list[str] | tuple[str, ...] | Mapping[str, Any] = (),
) -> Config:
    """Build a validated Config from a preset name or YAML path, then ``key=value`` overrides.

    ``source`` is a preset name (see :func:`preset_names`), a path to a ``.yaml``/``.yml`` file
    (a ``str`` or :class:`pathlib.Path`), or None for the default preset ``toy-wgan-gp``.
    ``overrides`` is a list of ``"key=value"`` strings, as on the command line, or a mapping
    ``{"train.steps": 500}``; any other type is a :class:`ConfigError` saying what is expected.

    A ``data.path`` given to a config whose data is the embedded text corpus (``markov_text``,
    e.g. the preset ``text-wgan-gp``) reads that file instead: ``data.name`` becomes ``text``,
    unless ``data.name`` was given too (then the contradiction is refused when the data is
    built). An error about a key of a YAML file names the key's line.
    """
    source = check_source(source)
    items = override_items(overrides)
    cfg = Config()
    source = source or "toy-wgan-gp"
    named_data = any(key == "data.name" for key, _ in items)
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
        lines = key_lines(text)
        named_data = named_data or "data.name" in lines
        try:
            _resolve_mapping(mapping, cfg, (source,))
        except ConfigError as err:
            line = lines.get(getattr(err, "key", ""))
            if line is None:
                raise
            raise ConfigError(f"config file {path}, line {line}: {err}") from None
    else:
        mapping = load_preset_mapping(source)
        mapping.setdefault("name", source)
        _resolve_mapping(mapping, cfg, (source,))
    before = data_before(cfg)
    for key, value in items:
        set_value(cfg, key, value)
    if cfg.data.name == "markov_text" and cfg.data.path is not None and not named_data:
        cfg.data.name = "text"  # the user's text file instead of the embedded corpus
    given = {key for key, _ in items}  # the preset's image shape stays with the preset's data
    return validate(follow_data(absolute_data_path(cfg), before, source, given))


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
