"""``wgan config [PRESET] [--section S]``: every config key with its type, default, range and
meaning (:func:`wgan.config.describe.config_keys`).

The parser is built without importing the config package's YAML reader; the command imports it
when it runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from typing import Any

CONFIG_HINT = "every key with its type, default, range and meaning: wgan config [PRESET]"
"""The line ``wgan train --help`` (and other commands that take overrides) point to."""


def cmd_config(args: argparse.Namespace) -> int:
    from wgan.cli.format import split_source
    from wgan.config import preset_description, preset_names
    from wgan.config.describe import config_keys, format_config_keys
    from wgan.store.tracking import json_safe

    source, overrides = split_source(args.items)
    rows = config_keys(source, overrides, section=args.section)
    if args.json:
        print(json.dumps(json_safe([row.to_dict() for row in rows])))
        return 0
    name = source or "toy-wgan-gp"
    about = preset_description(name) if name in preset_names() else f"config file {name}"
    width = min(120, max(80, shutil.get_terminal_size((100, 24)).columns))
    example = next((r for r in rows if r.key == "train.steps"), rows[0])
    text = (
        f"{name}: {about}\n"
        f"Override any key with key=value, e.g. wgan train {name} {example.key}="
        f"{_example(example.default)}; 'default' is the value {name} gives it.\n\n"
        f"{format_config_keys(rows, width=width)}\n"
    )
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:  # `wgan config | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
    return 0


def _example(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


def add_config_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``wgan config`` to the ``wgan`` command's subparsers; returns its parser."""
    p = subparsers.add_parser(
        "config",
        help="list every config key: type, default, range and meaning",
        description="List every key of a run's config with its type, its default (the value "
        "the preset gives it, after any key=value overrides), the values it may take and its "
        "meaning. Override a key with key=value on wgan train, sweep or study.",
    )
    p.add_argument(
        "items",
        nargs="*",
        metavar="[PRESET|CONFIG.yaml] [key=value ...]",
        help="a preset name or config file (default: toy-wgan-gp), then dotted overrides",
    )
    p.add_argument(
        "--section",
        metavar="S",
        help="only this section (e.g. data, generator, g_optim, train) or key (train.steps)",
    )
    p.add_argument("--json", action="store_true", help="print the keys as one JSON list")
    p.set_defaults(func=cmd_config)
    return p
