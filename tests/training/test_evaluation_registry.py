"""The evaluator registry (wgan.training.evaluation): a run reports the metrics registered for
its kind of data, and a new metric is one registered function."""

import pytest

from wgan.training import evaluation
from wgan.training.evaluation import EVALUATORS, data_kinds, register_evaluator
from wgan.training.trainer import Trainer


def test_every_kind_of_data_has_its_evaluators():
    names = {kind: [name for name, _ in EVALUATORS[kind]] for kind in EVALUATORS}
    assert names["toy"] == ["toy_metrics"]
    assert names["digits"] == ["digits_metrics"]
    assert names["stacked_digits"] == ["stacked_digits_metrics"]
    assert names["image"] == ["inception_metrics"]
    assert names["text"] == ["ngram_metrics"]


@pytest.fixture
def extra_toy_metric(monkeypatch):
    """A metric registered for toy data for one test (the registry is restored after)."""
    monkeypatch.setitem(EVALUATORS, "toy", list(EVALUATORS["toy"]))
    seen = []

    @register_evaluator("spread", "toy")
    def spread(ctx):
        seen.append(ctx.n)
        return {"spread": float(ctx.fake.std())}

    return seen


def test_a_registered_metric_is_reported_by_evaluate(fast_config, tmp_path, extra_toy_metric):
    run = Trainer(fast_config("toy-wgan-gp"), tmp_path / "run")
    assert data_kinds(run) == ["toy"]
    out = run.evaluate(300)
    assert extra_toy_metric == [300]
    assert out["spread"] == pytest.approx(float(run.samples(300).std()))
    assert {"modes_captured", "w1"} <= set(out)  # the built-in toy metrics still come first
    assert list(out)[-1] == "spread"


def test_only_the_runs_kinds_are_asked(fast_config, tmp_path, monkeypatch):
    called = []
    monkeypatch.setitem(EVALUATORS, "text", [("probe", lambda ctx: called.append(1) or {})])
    run = Trainer(fast_config("toy-wgan-gp"), tmp_path / "run")
    evaluation.evaluate(run, 200)
    assert called == []
