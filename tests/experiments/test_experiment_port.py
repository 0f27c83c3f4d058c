"""The experiment framework changed how experiments run, not what they measure: three of them
give the ``results.json`` numbers and verdicts recorded before the port (``golden/``).

Two checks per experiment:

* end to end, at a small size and the golden run's seed, the numbers equal the recorded ones
  (to 1e-4 relative: the runs are a few dozen optimiser steps, so float rounding that differs
  between CPUs stays far below that, while any change of data order, seed use, loss or
  measurement moves them by much more) and so do the verdicts;
* at a size where the claims are decided (recorded once, minutes of training), the verdict
  function judges the recorded numbers as the old code did.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from wgan.experiments import get_experiment, run_experiment
from wgan.experiments.common import apply_overrides

GOLDEN = Path(__file__).parent / "golden"
NAMES = ["parallel-lines", "mode-collapse", "improved-techniques"]
#: Keys that are not measurements: wall time and paths of the run that recorded them.
NOT_NUMBERS = {"seconds", "run_dir", "figure"}
#: improved-techniques stored its verdict lines twice before the port (also as ``verdicts``
#: under ``results``); the framework stores verdicts once, at the top level.
DROPPED = {("improved-techniques", "verdicts")}


def same(old: Any, new: Any, where: str) -> None:
    """Every number of ``old`` is in ``new`` at the same place, equal to 1e-4 relative."""
    if isinstance(old, dict):
        for key, value in old.items():
            if key not in NOT_NUMBERS:
                assert key in new, f"{where}.{key} is gone"
                same(value, new[key], f"{where}.{key}")
    elif isinstance(old, list):
        assert len(old) == len(new), f"{where}: {len(old)} items became {len(new)}"
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            same(a, b, f"{where}[{i}]")
    elif isinstance(old, float) and isinstance(new, float):
        assert math.isclose(old, new, rel_tol=1e-4, abs_tol=1e-7), f"{where}: {old} != {new}"
    else:
        assert old == new, f"{where}: {old!r} != {new!r}"


def golden(name: str, suffix: str = "") -> dict[str, Any]:
    return json.loads((GOLDEN / f"{name}{suffix}.json").read_text())


@pytest.mark.parametrize("name", NAMES)
def test_port_keeps_numbers_and_verdicts(name, tmp_path, monkeypatch):
    monkeypatch.setenv("WGAN_NO_PROGRESS", "1")
    old = golden(name)
    result = run_experiment(name, old["overrides"], tmp_path)
    new = json.loads((result.run_dir / "results.json").read_text())
    numbers = {k: v for k, v in old["results"].items() if (name, k) not in DROPPED}
    same(numbers, new["results"], "results")
    assert new["verdicts"] == old["verdicts"]
    assert [v.to_dict() for v in result.verdicts] == old["verdicts"]


@pytest.mark.parametrize("name", NAMES)
def test_port_keeps_decided_verdicts(name):
    old = golden(name, "-decided")
    experiment = get_experiment(name)
    settings = apply_overrides(experiment.settings(), old["overrides"])
    judged = experiment.verdicts(json.loads(json.dumps(old["results"])), settings)
    assert [v.to_dict() for v in judged] == old["verdicts"]
