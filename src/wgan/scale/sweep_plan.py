"""What a sweep trains: the K variants of one config, validated, and their command-line values.

A sweep (:mod:`wgan.scale.sweep`) trains K copies of one configuration that differ only in numbers
that change neither shapes nor code paths. This module expands ``--seeds`` / ``--vary`` values
into override dicts (seeds vary fastest), applies them to a base config and checks that the
runs may be stacked: only the keys of :data:`MAY_DIFFER` may differ.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
from collections.abc import Mapping
from typing import Any

from wgan.config import Config, parse_override, set_value, validate
from wgan.config.hints import type_and_value
from wgan.config.sections import MAX_SEED
from wgan.errors import ConfigError
from wgan.store.printable import printable

MAY_DIFFER = (
    "name",
    "train.seed",
    "train.lr_decay",
    "d_optim.lr",
    "g_optim.lr",
    "d_optim.betas",
    "g_optim.betas",
    "d_optim.weight_decay",
    "g_optim.weight_decay",
    "constraint.penalty_weight",
    "constraint.penalty_target",
    "constraint.clip",
)
"""The config keys whose values may differ between the runs of one sweep (dotted names).

Everything else (architecture, data, objective, which constraints, optimiser kind, n_critic,
steps, batch size, logging cadence, device) changes shapes or code paths and must be shared.
"""

MAX_RUNS = 4096
"""The most runs one sweep takes. ``--seeds`` and ``--vary`` are counted against it before
anything is expanded, so ``--seeds 0-200000`` is refused at once instead of filling memory."""


def _too_many(count: int, what: str) -> ConfigError:
    return ConfigError(
        f"{what} gives {count:,} runs; a sweep takes at most {MAX_RUNS:,} runs "
        "(split it into several sweeps)"
    )


# ----------------------------------------------------------------------------------------------
# Variants and their validation
# ----------------------------------------------------------------------------------------------


def _flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def sweep_configs(base: Config, variants: list[dict[str, Any]]) -> list[Config]:
    """One validated config per variant: a deep copy of ``base`` with the variant's overrides.

    Raises :class:`ConfigError` for an empty sweep, an unknown key or bad value (as
    :func:`wgan.config.set_value`), a key outside :data:`MAY_DIFFER` whose value differs between
    variants (naming it), and the two options the vectorised step does not take (fp16 loss
    scaling and the channels-last layout).
    """
    if not isinstance(base, Config):
        raise ConfigError(
            f"a sweep's base must be a Config (wgan.resolve(PRESET)), got {type_and_value(base)}"
        )
    if not isinstance(variants, (list, tuple)) or not all(isinstance(v, Mapping) for v in variants):
        raise ConfigError(
            "variants must be a list of dicts of overrides, one per run (e.g. "
            f"[{{'train.seed': 0}}, {{'train.seed': 1}}]), got {type_and_value(variants)}"
        )
    if not variants:
        raise ConfigError("a sweep needs at least one run (give --seeds or --vary)")
    if len(variants) > MAX_RUNS:
        raise _too_many(len(variants), "the sweep")
    cfgs = []
    for variant in variants:
        cfg = copy.deepcopy(base)
        for key, value in variant.items():
            set_value(cfg, key, value)
        cfgs.append(validate(cfg))
    flat = [_flatten(c.to_dict()) for c in cfgs]
    for key in flat[0]:
        if key in MAY_DIFFER:
            continue
        values = {json.dumps(f[key]) for f in flat}
        if len(values) > 1:
            raise ConfigError(
                f"sweep runs must share '{key}' (it changes shapes or code paths), got "
                f"{', '.join(sorted(values))}; only {', '.join(MAY_DIFFER)} may differ"
            )
    cfg = cfgs[0]
    if cfg.train.precision == "fp16":
        raise ConfigError(
            "sweep does not support train.precision=fp16 (loss scaling per run); use bf16 or "
            "fp32, or train such runs separately"
        )
    if cfg.train.channels_last:
        raise ConfigError(
            "sweep does not support train.channels_last (a memory layout of single runs); "
            "leave it off for a sweep"
        )
    return cfgs


def expand_variants(
    seeds: list[int] | None = None, vary: list[tuple[str, list[Any]]] | None = None
) -> list[dict[str, Any]]:
    """The cross product of ``vary`` (key, values) pairs and ``seeds`` as override dicts.

    Seeds vary fastest: ``expand_variants([0, 1], [('d_optim.lr', [1e-4, 2e-4])])`` gives
    lr 1e-4 with seeds 0, 1, then lr 2e-4 with seeds 0, 1. No seeds and no ``vary`` is one run.
    More than :data:`MAX_RUNS` runs is refused before the product is formed.
    """
    axes: list[tuple[str, list[Any]]] = list(vary or [])
    if seeds:
        axes.append(("train.seed", list(seeds)))
    keys = [k for k, _ in axes]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"a key is varied twice: {', '.join(keys)}")
    count = 1
    for key, values in axes:
        if not values:
            raise ConfigError(f"no values given for {key}")
        count *= len(values)
    if count > MAX_RUNS:
        sizes = " x ".join(f"{len(v)} {k}" for k, v in axes)
        raise _too_many(count, sizes)
    return [
        dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(v for _, v in axes))
    ]


def run_label(variant: dict[str, Any]) -> str:
    if not variant:
        return "run"
    parts = []
    for key, value in variant.items():
        short = "seed" if key == "train.seed" else key.replace("_optim", "").replace(".", "_")
        text = ",".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)
        parts.append(f"{short}{text}")
    return "-".join(parts)


# ----------------------------------------------------------------------------------------------
# Parsing the command line's sweep values (the parser itself is in wgan.cli.app)
# ----------------------------------------------------------------------------------------------


def _split_values(text: str, what: str) -> list[str]:
    """Split ``a,b,[c,d]`` on the commas outside brackets. An empty item (``0,,1``, a trailing
    comma) is refused, naming ``what``: a typo must not silently drop a run."""
    if not text.strip():
        return []
    out, depth, current = [], 0, ""
    for ch in text:
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(current)
            current = ""
        else:
            current += ch
    out.append(current)
    if any(not v.strip() for v in out):
        raise ConfigError(
            f"{what} has an empty item (two commas in a row?): '{printable(text, 80)}'"
        )
    return [v.strip() for v in out]


def parse_seeds(text: str) -> list[int]:
    """``0,1,2`` or ``0-7`` (inclusive) or a mix such as ``0-3,10``, as a list of seeds.

    Seeds are in [0, 2**63 - 1]; more than :data:`MAX_RUNS` seeds is refused before any range
    is expanded.
    """
    parts: list[tuple[int, int]] = []  # inclusive ranges
    count = 0
    for part in _split_values(text, "--seeds"):
        match = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part)
        try:
            lo, hi = (int(match.group(1)), int(match.group(2))) if match else (int(part),) * 2
        except ValueError:
            raise ConfigError(f"--seeds must be integers like 0,1,2 or 0-7, got '{part}'") from None
        if lo < 0 or hi > MAX_SEED:
            raise ConfigError(f"--seeds must be in [0, {MAX_SEED}], got '{part}'")
        if hi < lo:
            raise ConfigError(f"--seeds range '{part}' is empty (its start is after its end)")
        count += hi - lo + 1
        if count > MAX_RUNS:
            raise _too_many(count, f"--seeds '{text}'" if len(text) <= 40 else "--seeds")
        parts.append((lo, hi))
    seeds = [seed for lo, hi in parts for seed in range(lo, hi + 1)]
    if not seeds:
        raise ConfigError(f"--seeds gives no seeds: '{text}'")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds repeats a seed: '{text}'")
    return seeds


_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _number(value: Any) -> Any:
    """YAML 1.1 reads ``1e-4`` (no dot) as a string; a sweep value means the number."""
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return float(value)
    return value


def parse_vary(text: str) -> tuple[str, list[Any]]:
    """``key=v1,v2,...`` (each value read as YAML, like an override) as (key, values)."""
    if "=" not in text:
        raise ConfigError(f"--vary '{text}' is not of the form key=v1,v2,...")
    key, raw = text.split("=", 1)
    values = [
        _number(parse_override(f"{key}={v}")[1])
        for v in _split_values(raw, f"--vary {key.strip()}")
    ]
    if not values:
        raise ConfigError(f"--vary {key.strip()} has no values")
    return key.strip(), values
