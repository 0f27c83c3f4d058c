"""The experiment framework: inherited settings and their bounds, the registry, the driver
(one results.json with the verdicts, the grid in order, the progress units) and the help."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any

import pytest

from wgan.errors import ConfigError
from wgan.experiments import EXPERIMENTS
from wgan.experiments.framework import (
    Cell,
    Experiment,
    GridSettings,
    Method,
    Settings,
    method_table,
    quick_settings,
    register,
    settings_fields,
    settings_help,
)
from wgan.experiments.verdict import Verdict

METHODS = method_table(Method("a", "method A", "toy-gan"), Method("b", "method B", "toy-gan-ns"))


@dataclass
class ToySettings(GridSettings):
    datasets: str = "d1,d2"
    methods: str = "a,b"
    n_seeds: int = 2
    scale: float = 2.0  # how much each cell's value is scaled

    LIMITS = {"scale": "> 0", "n_seeds": "[1, 3]"}
    METHODS = METHODS  # what @register sets; Toy stays out of the registry

    def checks(self) -> list[tuple[bool, str]]:
        return [*super().checks(), ("bad" not in self.datasets, "no dataset may be bad")]


class Toy(Experiment):
    name = "toy-framework-test"
    description = "a test experiment"
    Settings = ToySettings
    methods = METHODS
    quick = {"n_seeds": 1}

    def units(self, settings, cell) -> int:
        return 3

    def measure(self, settings, cell, ctx) -> dict[str, Any]:
        ctx.bar.update(1)  # one of its three units itself: the driver adds the other two
        return {"dataset": cell.dataset, "method": cell.method.name, "seed": cell.seed}

    def summarise(self, settings, records) -> dict[str, Any]:
        return {"cells": records, "n": len(records) * settings.scale}

    def verdicts(self, numbers, settings) -> list[Verdict]:
        return [Verdict("cells counted", "a test", str(numbers["n"]), numbers["n"] == 16.0)]

    def table(self, settings, numbers) -> str:
        return f"n = {numbers['n']}"


def test_settings_inherit_the_common_fields_and_their_checks():
    names = [f.name for f in fields(ToySettings)]
    assert names[:2] == ["seed", "threads"]
    assert {"steps", "hidden", "depth", "batch_size", "eval_samples", "device"} <= set(names)
    assert names[-1] == "scale"
    for bad, message in [
        (dict(threads=-1), "threads must be >= 0"),
        (dict(steps=0), "steps must be >= 1"),
        (dict(eval_samples=1), "eval_samples must be >= 2"),
        (dict(n_seeds=4), r"n_seeds must be in \[1, 3\]"),  # the subclass's bound wins
        (dict(scale=0.0), "scale must be > 0"),
        (dict(methods="a,c"), "unknown methods"),
        (dict(methods=""), "at least one method"),
        (dict(datasets=""), "at least one dataset"),
        (dict(datasets="bad"), "no dataset may be bad"),
    ]:
        with pytest.raises(ConfigError, match=message):
            ToySettings(**bad).validate()
    ToySettings(n_seeds=3).validate()


def test_register_refuses_a_second_experiment_of_the_same_name():
    with pytest.raises(ValueError, match="registered twice"):
        register(type("Again", (Toy,), {"name": "parallel-lines"}))


def test_driver_runs_the_grid_and_writes_results_once_with_verdicts(tmp_path, monkeypatch):
    updates = []

    class Bar:
        n = 0

        def update(self, k):
            updates.append(k)
            self.n += k

        def set_postfix_str(self, text):
            pass

    import contextlib

    from wgan.experiments import framework

    monkeypatch.setattr(framework, "progress", lambda total, desc: contextlib.nullcontext(Bar()))
    result = Toy().run(ToySettings(seed=7), tmp_path / "run")
    cells = result.numbers["cells"]
    assert [(c["dataset"], c["method"], c["seed"]) for c in cells][:5] == [
        ("d1", "a", 7),
        ("d1", "a", 8),
        ("d1", "b", 7),
        ("d1", "b", 8),
        ("d2", "a", 7),
    ]
    assert updates == [1, 2] * 8  # three units a cell, one counted by the experiment itself
    record = json.loads((tmp_path / "run" / "results.json").read_text())
    assert record["experiment"] == "toy-framework-test"
    assert record["settings"]["seed"] == 7 and record["results"]["n"] == 16.0
    assert record["verdicts"] == [v.to_dict() for v in result.verdicts]
    assert record["verdicts"][0]["status"] == "holds"
    assert result.table == "n = 16.0"
    with pytest.raises(ConfigError):  # validated before anything runs
        Toy().run(ToySettings(scale=-1.0), tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_cell_tag_and_folder(tmp_path):
    cell = Cell(METHODS["a"], "8gaussians", 3)
    assert cell.tag == "8gaussians a seed 3"
    assert cell.folder(tmp_path) == tmp_path / "8gaussians" / "a" / "seed3"
    assert Cell(METHODS["b"], seed=1, value=0.5).tag == "0.5 b seed 1"


def test_help_reads_comments_along_the_hierarchy_and_quick_applies():
    meanings = {h.name: h.meaning for h in settings_fields(ToySettings)}
    assert meanings["scale"] == "how much each cell's value is scaled"
    assert meanings["seed"].startswith("first seed")  # from Settings
    assert meanings["device"] == "cpu | cuda | auto"  # from TrainingSettings
    text = settings_help(Toy())
    assert "usage: wgan experiment toy-framework-test" in text
    assert "quick size (--quick; key=value overrides apply on top): n_seeds=1" in text
    assert quick_settings(Toy()).n_seeds == 1


def test_every_registered_experiment_declares_what_the_driver_needs():
    assert len(EXPERIMENTS) == 16
    for name, experiment in EXPERIMENTS.items():
        assert experiment.name == name and experiment.description
        assert issubclass(experiment.Settings, Settings)
        settings = quick_settings(experiment)  # the quick size is valid
        assert all(
            meaning for meaning in (h.meaning for h in settings_fields(experiment.Settings))
        ), f"{name}: a setting without a meaning"
        assert settings.seed == experiment.Settings().seed
