"""A list-of-strings key written as one string: one entry, or several separated by ';'."""

from __future__ import annotations

import pytest

from wgan.config import resolve
from wgan.errors import ConfigError


def test_one_string_is_one_combination_not_two():
    cfg = resolve("digits-cgan", ["data.holdout_combos=green,triangle"])
    assert cfg.data.holdout_combos == ("green,triangle",)


def test_semicolons_separate_entries_and_a_yaml_list_still_works():
    cfg = resolve("digits-cgan", ["data.holdout_combos=green,triangle; red,circle"])
    assert cfg.data.holdout_combos == ("green,triangle", "red,circle")
    cfg = resolve("digits-cgan", ['data.holdout_combos=["green,triangle", blue]'])
    assert cfg.data.holdout_combos == ("green,triangle", "blue")


def test_an_empty_string_is_still_refused():
    with pytest.raises(ConfigError, match="holdout_combos"):
        resolve("digits-cgan", ["data.holdout_combos=' '"])
