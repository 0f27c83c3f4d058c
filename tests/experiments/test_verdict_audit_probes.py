"""Verdicts that can fail (issue 23, item 4): mode-hopping and generator-only judged on
synthetic numbers that the earlier, lenient verdicts let through.

mode-hopping: a WGAN-GP whose late movement is unmeasured (diverged, or too few high-quality
records) used to pass "WGAN-GP does not hop"; hops of the early learning used to count as the
GAN's hops. generator-only: "a critic kept optimal avoids collapse" used to hold for any healthy
WGAN-GP run; it now needs the run to beat the same continuation with a lagging critic.
"""

import numpy as np
import pytest

from wgan.experiments import framework as fw
from wgan.experiments import generator_only as go
from wgan.experiments import get_experiment
from wgan.experiments import mode_hopping as mh

HOLDS, FAILS, UNTESTED = "holds", "does not hold", "not tested at these settings"

# ----------------------------------------------------------------------------------------------
# mode-hopping
# ----------------------------------------------------------------------------------------------


def stats(hops, movement, counted=12, **more):
    """A :func:`mode_hopping.hopping_stats` record (second-half numbers) of 8 Gaussians."""
    return {
        "hops": hops,
        "late_movement": movement,
        "records_counted": counted,
        "final_modes": 8,
        "n_modes": 8,
        **more,
    }


def hopping(gan, wgan, steps=2000, n_records=40):
    return mh.hopping_verdict("8gaussians", gan, wgan, steps, n_records, "GAN")


HOPPING_GAN = stats(4, 0.6)


def test_hopping_control_holds():
    """The healthy case the cases below differ from by one thing: it holds."""
    assert hopping(HOPPING_GAN, stats(0, 0.05)).status == HOLDS


def test_wgan_gp_without_a_measured_movement_is_not_tested():
    """The old verdict read a NaN movement of WGAN-GP as "WGAN-GP does not hop" (holds)."""
    # Too few high-quality records in the second half: its movement is undefined (NaN).
    few = hopping(HOPPING_GAN, stats(0, float("nan"), counted=1))
    assert few.status == UNTESTED
    assert "WGAN-GP has 1 records in the second half" in few.note
    # Read back from results.json, NaN is the string "nan".
    assert hopping(HOPPING_GAN, stats(0, "nan", counted=0)).status == UNTESTED
    # Enough records claimed but no movement: undefined all the same.
    undefined = hopping(HOPPING_GAN, stats(0, float("nan"), counted=mh.MIN_COUNTED))
    assert undefined.status == UNTESTED and "WGAN-GP's late movement is undefined" in undefined.note
    # Counted records below MIN_COUNTED, even with a finite movement from two of them.
    two = hopping(HOPPING_GAN, stats(0, 0.05, counted=mh.MIN_COUNTED - 1))
    assert two.status == UNTESTED


def test_diverged_wgan_gp_is_not_tested():
    """A WGAN-GP that diverged stopped being recorded: its small movement before that says
    nothing about the judged part (the old verdict held)."""
    diverged = hopping(HOPPING_GAN, stats(0, 0.05, diverged_at=900))
    assert diverged.status == UNTESTED
    assert "WGAN-GP diverged at step 900" in diverged.note
    assert hopping(stats(4, 0.6, diverged_at=1500), stats(0, 0.05)).status == UNTESTED


def test_verdicts_pass_the_divergence_on():
    """Through the experiment's ``verdicts``: ``diverged_at`` of results.json reaches the
    verdict, and a WGAN-GP that diverged before its first record (no stats) is not tested."""
    exp = get_experiment("mode-hopping")
    settings = mh.ModeHoppingSettings(datasets="8gaussians", methods="gan,wgan-gp")

    def run(method, st, diverged_at=None):
        return {"method": method, "dataset": "8gaussians", "stats": st, "diverged_at": diverged_at}

    healthy = {"runs": [run("gan", HOPPING_GAN), run("wgan-gp", stats(0, 0.05))]}
    assert [v.status for v in exp.verdicts(healthy, settings)] == [HOLDS]
    late = {"runs": [run("gan", HOPPING_GAN), run("wgan-gp", stats(0, 0.05), 1700)]}
    (verdict,) = exp.verdicts(late, settings)
    assert verdict.status == UNTESTED and "WGAN-GP diverged at step 1700" in verdict.note
    early = {"runs": [run("gan", HOPPING_GAN), run("wgan-gp", None, 3)]}
    assert [v.status for v in exp.verdicts(early, settings)] == [UNTESTED]


def histograms(dominants, size=100, share=0.6):
    """(T, 4) counts: ``share`` of ``size`` HQ samples on each record's dominant mode, the rest
    on the next mode, which cycles from record to record (the histogram moves, TV 0.4, even
    when the dominant mode stays)."""
    rows = []
    for t, d in enumerate(dominants):
        row = np.zeros(4, dtype=int)
        row[d] = share * size
        row[(d + 1 + t % 3) % 4] += size - row[d]
        rows.append(row)
    return np.stack(rows)


def test_early_hops_do_not_count():
    """A GAN that hops while it learns (first half) and then keeps its dominant mode: the old
    verdict counted the early hops (4 here) and held; none are in the judged part."""
    counts = histograms([0, 1, 2, 3, 0, 0, 0, 0, 0, 0])  # (10, 4); second half: records 5..9
    st = mh.hopping_stats(counts, 0.5, min_hq=20)
    assert st["hops_all"] == 4 and st["hops"] == 0
    assert st["records_counted"] == 5 and st["records_counted_all"] == 10
    assert st["late_movement"] == pytest.approx(0.4)  # it moves, but around the same mode
    still = mh.hopping_stats(histograms([0] * 10, share=1.0), 0.5, min_hq=20)
    assert still["late_movement"] == 0.0
    verdict = hopping(st, still)
    assert verdict.status == FAILS
    assert "second half: GAN 0 hops" in verdict.measured and "whole run: GAN 4" in verdict.measured


def test_hops_across_the_halfway_record_do_not_count():
    """The change from the last early dominant mode to the first late one is not a late hop."""
    st = mh.hopping_stats(histograms([1] * 5 + [2] * 5), 0.5, min_hq=20)
    assert st["hops_all"] == 1 and st["hops"] == 0


def test_late_hops_count():
    counts = histograms([0] * 5 + [1, 2, 1, 3, 0])
    st = mh.hopping_stats(counts, 0.5, min_hq=20)
    assert st["hops"] == 4 and st["hop_rate"] == pytest.approx(4 / 4)
    still = mh.hopping_stats(histograms([0] * 10, share=1.0), 0.5, min_hq=20)
    assert hopping(st, still).status == HOLDS


def test_late_records_must_count_for_the_gan():
    """Hops seen in few high-quality records of the second half are not tested, however many
    counted records the first half had."""
    counts = histograms([0] * 5 + [1, 2, 1, 3, 0])
    counts[5:8] = 0  # the second half keeps 2 counted records
    st = mh.hopping_stats(counts, 0.5, min_hq=20)
    assert st["records_counted_all"] == 7 and st["records_counted"] == 2
    still = mh.hopping_stats(histograms([0] * 10, share=1.0), 0.5, min_hq=20)
    verdict = hopping(st, still)
    assert verdict.status == UNTESTED and "the GAN has 2 records" in verdict.note


# ----------------------------------------------------------------------------------------------
# generator-only
# ----------------------------------------------------------------------------------------------

DATA_SPREAD = 1.4


def condition(spread1, modes1=8, spread0=1.35, modes0=8):
    rec = {"critic_at_samples": -4.0, "critic_max": -3.5, "high_quality_fraction": 0.4}
    return {
        "records": [
            {**rec, "spread": spread0, "modes_captured": modes0, "distance_to_argmax": 1.8},
            {**rec, "spread": spread1, "modes_captured": modes1, "distance_to_argmax": 1.8},
        ],
        "data_spread": DATA_SPREAD,
        "box_half_width": 1.91,
    }


def claim2(opt, lagging, g_steps=1000):
    runs = {"wgan-optimal": opt, "wgan-lagging": lagging}
    conditions = [{"condition": k, **v} for k, v in runs.items() if v is not None]
    settings = go.GeneratorOnlySettings(g_steps=g_steps)
    return get_experiment("generator-only").verdicts({"conditions": conditions}, settings)[2]


def test_kept_optimal_no_better_than_lagging_does_not_hold():
    """The old verdict held for any healthy kept-optimal run; a lagging critic that keeps G
    just as spread shows no effect of optimality."""
    healthy = condition(1.39)
    verdict = claim2(healthy, condition(1.39))
    assert verdict.status == FAILS
    assert "1 critic step per G step: spread 1.35 -> 1.39" in verdict.measured


def test_kept_optimal_better_than_lagging_holds():
    assert claim2(condition(1.39), condition(0.6, modes1=4)).status == HOLDS  # lagging collapses
    # Either margin alone: the spread ...
    wider = 1.39 - 1.1 * go.BETTER_SPREAD * DATA_SPREAD
    assert claim2(condition(1.39), condition(wider)).status == HOLDS
    narrower = 1.39 - 0.9 * go.BETTER_SPREAD * DATA_SPREAD
    assert claim2(condition(1.39), condition(narrower)).status == FAILS
    # ... or the modes.
    fewer = 8 - go.BETTER_MODES
    assert claim2(condition(1.39), condition(1.39, modes1=fewer)).status == HOLDS
    assert claim2(condition(1.39), condition(1.39, modes1=fewer + 1)).status == FAILS


def test_kept_optimal_must_keep_its_own_spread():
    """Beating a lagging critic that collapsed harder is not avoiding the collapse."""
    assert claim2(condition(0.3, modes1=3), condition(0.0, modes1=0)).status == FAILS
    assert claim2(condition(1.39, modes1=6), condition(0.0, modes1=0)).status == FAILS


def test_without_the_comparison_not_tested():
    verdict = claim2(condition(1.39), None)
    assert verdict.status == UNTESTED and "wgan-lagging" in verdict.note
    assert claim2(None, condition(0.0, modes1=0)).status == UNTESTED
    assert claim2(condition(1.39), condition(0.0, modes1=0), g_steps=100).status == UNTESTED


class _Bar:
    def update(self, n):
        pass


def test_lagging_continues_the_shared_pretraining_with_one_critic_step(tmp_path):
    """The comparison differs from the kept-optimal run only after the pretraining: the same
    start (weights after pretraining and the fit to optimality), one critic update per
    generator update, no refits."""
    exp = get_experiment("generator-only")
    s = go.GeneratorOnlySettings(
        pretrain_steps=2, g_steps=1, optimal_steps=2, n_records=1, hidden=8, batch_size=16
    )
    cells = {c.method.name: c for c in exp.cells(s)}
    ctx = fw.Context(tmp_path, _Bar())
    frozen = exp.pretrained(s, cells["wgan-frozen"], ctx)
    optimal = exp.pretrained(s, cells["wgan-optimal"], ctx)
    lagging = exp.pretrained(s, cells["wgan-lagging"], ctx)
    assert frozen.cfg.train.n_critic == optimal.cfg.train.n_critic == 5
    assert lagging.cfg.train.n_critic == 1
    for a, b in ((frozen, lagging), (optimal, lagging)):
        for key in ("gen", "critic"):
            pa, pb = getattr(a, key).state_dict(), getattr(b, key).state_dict()
            assert all(bool((pa[k] == pb[k]).all()) for k in pa)
    info = go.CONDITIONS["wgan-lagging"].info
    assert info.get("joint") and not info.get("refit")
    assert go.CONDITIONS["wgan-optimal"].info.get("refit")
