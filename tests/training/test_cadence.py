"""The one schedule and clock of the training loops (wgan.training.cadence)."""

from types import SimpleNamespace

from wgan.training import cadence as cadence_module
from wgan.training.cadence import Cadence


def _train(**kw):
    base = dict(steps=12, log_every=4, eval_every=6, figure_every=0, checkpoint_every=5)
    return SimpleNamespace(**{**base, **kw})


def test_due_steps_follow_the_config_and_the_last_step():
    c = Cadence(_train())
    due = {step: c.due(step) for step in range(1, 13)}
    assert [s for s, d in due.items() if d.log] == [4, 5, 8, 10, 12]  # log_every, saves, last
    assert [s for s, d in due.items() if d.evaluate] == [6, 12]
    assert [s for s, d in due.items() if d.figure] == [12]  # figure_every 0: only the last
    assert [s for s, d in due.items() if d.save] == [5, 10, 12]
    assert [s for s, d in due.items() if d.check] == [5, 6, 10, 12]


def test_the_clock_leaves_time_outside_training_out(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(cadence_module.time, "perf_counter", lambda: now[0])
    c = Cadence(_train())
    c.start(step=2)
    now[0] = 104.0  # steps 3..6 trained in 4 s
    with c.outside():
        now[0] = 110.0  # 6 s of evaluation
    now[0] = 112.0  # steps 7..8 in 2 s
    timing = c.timing(8)
    assert timing == {"wall_s": 12.0, "time/step_s": 1.0}  # 6 training seconds over 6 steps
    assert c.outside_seconds == 6.0
    now[0] = 113.0
    assert c.timing(8) == {"wall_s": 13.0}  # no step since the last read: no rate
