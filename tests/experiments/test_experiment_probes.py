"""The experiments momentum, generator-only, mode-hopping and likelihood: their verdict logic on
synthetic numbers (holds / does not hold / not tested), their measurements on hand-made inputs,
and a smoke run of each at a tiny size."""

import json
import math

import numpy as np
import pytest
import torch

from wgan.errors import ConfigError
from wgan.experiments import generator_only as go
from wgan.experiments import get_experiment
from wgan.experiments import likelihood as lk
from wgan.experiments import mode_hopping as mh
from wgan.experiments import momentum as mo
from wgan.experiments.common import apply_overrides
from wgan.experiments.toy_probes import clamp_box, mode_histogram, roughness, spread
from wgan.figures.plotting import legend_covers_data, missing_axis_labels
from wgan.metrics import mode_metrics

HOLDS, FAILS, UNTESTED = "holds", "does not hold", "not tested at these settings"


def statuses(verdicts):
    return [v.status for v in verdicts]


def clean_figure(fig):
    assert legend_covers_data(fig) == []
    assert missing_axis_labels(fig) == []


@pytest.fixture
def drawn(monkeypatch):
    """The figures the experiments save (still written to their files)."""
    from wgan.figures import plotting

    figs, save = [], plotting.save_figure

    def keep(fig, path):
        figs.append(fig)
        return save(fig, path)

    monkeypatch.setattr(plotting, "save_figure", keep)
    return figs


# ----------------------------------------------------------------------------------------------
# momentum
# ----------------------------------------------------------------------------------------------


def momentum_summary(rough, failed=None, seeds=3):
    failed = failed or {}
    return {
        name: {
            "label": mo.OPTIMISERS[name].label,
            "n_seeds": seeds,
            "roughness": {"mean": r, "std": 0.0, "n": seeds},
            "w1_final": {"mean": 0.5, "std": 0.0, "n": seeds},
            "divergence_rate": failed.get(name, 0.0),
        }
        for name, r in rough.items()
    }


def mo_verdicts(summary, steps, n_records):
    settings = mo.MomentumSettings(steps=steps, n_records=n_records)
    return get_experiment("momentum").verdicts({"summary": summary}, settings)


MEASURED = {"rmsprop": 0.2, "adam-0.9": 1.7, "adam-0.5": 0.5, "adam-0": 0.3, "gp-adam-0": 0.05}


def test_momentum_verdicts_hold_on_supporting_numbers():
    assert statuses(mo_verdicts(momentum_summary(MEASURED), 1000, 50)) == [HOLDS] * 2


def test_momentum_verdicts_fail_on_contradicting_numbers():
    # Adam beta1 = 0.5 as smooth as RMSProp; WGAN-GP diverging in one seed of three.
    rough = {**MEASURED, "adam-0.5": 0.25}
    summary = momentum_summary(rough, failed={"gp-adam-0": 1 / 3})
    assert statuses(mo_verdicts(summary, 1000, 50)) == [FAILS] * 2
    # WGAN-GP rougher than RMSProp, no divergence.
    summary = momentum_summary({**MEASURED, "gp-adam-0": 0.4})
    assert statuses(mo_verdicts(summary, 1000, 50))[1] == FAILS


@pytest.mark.parametrize(
    "steps, records, seeds",
    [(mo.MIN_STEPS - 1, 50, 3), (1000, mo.MIN_RECORDS - 1, 3), (1000, 50, 1)],
)
def test_momentum_verdicts_not_tested_when_small(steps, records, seeds):
    summary = momentum_summary(MEASURED, seeds=seeds)
    assert statuses(mo_verdicts(summary, steps, records)) == [UNTESTED] * 2


def test_roughness_is_relative_change_noise():
    assert roughness([1.0, 1.0, 1.0, 1.0]) == 0.0
    # changes +1, -1, +1 over a range of 1: std of changes 0.943 / 1
    assert roughness([1.0, 2.0, 1.0, 2.0]) == pytest.approx(np.std([1, -1, 1]) / 1.0)
    # scale-free: a critic 100x larger has the same roughness
    assert roughness([100.0, 200.0, 100.0, 200.0]) == pytest.approx(roughness([1, 2, 1, 2]))
    assert roughness([1.0, float("nan")]) == 1.0  # diverged: the largest roughness


def test_momentum_smoke(tmp_path, drawn):
    s = mo.MomentumSettings(
        optimisers="rmsprop,gp-adam-0",
        n_seeds=2,
        steps=6,
        n_records=3,
        hidden=8,
        batch_size=16,
        eval_samples=40,
    )
    result = get_experiment("momentum").run(s, tmp_path)
    assert statuses(result.verdicts) == [UNTESTED] * 2
    record = json.loads((tmp_path / "results.json").read_text())
    runs = record["results"]["runs"]
    assert len(runs) == 2 * 2
    assert all(r["history"]["step"] == [0, 2, 4, 6] for r in runs)
    assert (tmp_path / "momentum.png").is_file()
    assert "WGAN clip, RMSProp" in result.table and "WGAN-GP, Adam β1=0" in result.table
    clean_figure(*drawn)


def test_momentum_configs_differ_only_in_the_critic_optimiser():
    s = mo.MomentumSettings()
    rms, adam = mo.optimiser_config("rmsprop", 0, s), mo.optimiser_config("adam-0.5", 0, s)
    assert (rms.d_optim.name, adam.d_optim.name) == ("rmsprop", "adam")
    assert adam.d_optim.betas[0] == 0.5
    assert rms.g_optim == adam.g_optim and rms.constraint == adam.constraint
    gp = mo.optimiser_config("gp-adam-0", 0, s)
    assert gp.constraint.penalty == "two_sided" and tuple(gp.d_optim.betas) == (0.0, 0.9)


# ----------------------------------------------------------------------------------------------
# mode-hopping
# ----------------------------------------------------------------------------------------------


def test_hops_and_movement_by_hand():
    counts = np.array([[10, 0, 0], [0, 10, 0], [0, 9, 1], [3, 3, 4], [10, 0, 0]])
    dominant = mh.dominant_modes(counts, 0.5)
    assert dominant == [0, 1, 1, None, 0]
    assert mh.hops(dominant) == 2  # 0 -> 1, then 1 -> 0 across the record without one
    # TV distances: 1, 0.1, 0.6, 0.7
    assert mh.movement(counts) == pytest.approx((1 + 0.1 + 0.6 + 0.7) / 4)
    assert math.isnan(mh.movement(np.array([[0, 0], [1, 1]])))  # one record with HQ samples
    # Records with fewer than min_hq HQ samples count for nothing.
    assert mh.dominant_modes(counts, 0.5, min_hq=11) == [None] * 5
    assert mh.movement(np.array([[10, 0], [0, 2], [10, 0]]), min_hq=5) == 0.0  # 2 is skipped
    assert mh.movement(np.array([[10, 0], [0, 6], [0, 10]]), min_hq=5) == pytest.approx(0.5)


def test_mode_histogram_agrees_with_mode_metrics():
    g = torch.Generator().manual_seed(0)
    modes = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    x = modes[torch.randint(0, 3, (500,), generator=g)] + 0.05 * torch.randn(500, 2, generator=g)
    x[:50] = 3 * torch.rand(50, 2, generator=g)  # some low-quality points
    counts = mode_histogram(x, modes, 0.05)
    m = mode_metrics(x, modes, 0.05)
    assert counts[3] == 0 and (counts > 0).sum() == m["modes_captured"] == 3
    assert counts.sum() / 500 == pytest.approx(m["high_quality_fraction"])


def hop_stats(hops, movement, modes=8, counted=40):
    return {
        "hops": hops,
        "late_movement": movement,
        "final_modes": modes,
        "n_modes": 8,
        "records_counted": counted,
    }


def hopping(gan, wgan, steps=2000, n_records=40):
    return mh.hopping_verdict("8g", gan, wgan, steps, n_records, "GAN")


def test_hopping_verdict():
    assert hopping(hop_stats(5, 0.4), hop_stats(0, 0.02)).holds
    # The GAN never changes its dominant mode, or moves as little as WGAN-GP: does not hold.
    assert hopping(hop_stats(0, 0.4), hop_stats(0, 0.02)).status == FAILS
    assert hopping(hop_stats(3, 0.03), hop_stats(0, 0.02)).status == FAILS
    small = hopping(hop_stats(5, 0.4), hop_stats(0, 0.02), steps=mh.MIN_STEPS - 1)
    assert small.status == UNTESTED
    assert hopping(hop_stats(5, 0.4), None).status == UNTESTED
    # A GAN with too few high-quality samples to follow: its hops are noise.
    assert hopping(hop_stats(5, 0.4, counted=3), hop_stats(0, 0.02)).status == UNTESTED
    assert hopping(hop_stats(1, float("nan")), hop_stats(0, 0.02)).status == UNTESTED


def test_mode_hopping_smoke(tmp_path, drawn):
    s = mh.ModeHoppingSettings(steps=4, n_records=2, hidden=8, batch_size=16, eval_samples=50)
    result = get_experiment("mode-hopping").run(s, tmp_path)
    assert statuses(result.verdicts) == [UNTESTED] * 4  # (dataset, GAN) pairs
    runs = json.loads((tmp_path / "results.json").read_text())["results"]["runs"]
    assert [(r["dataset"], r["method"]) for r in runs] == [
        (d, m) for d in ("8gaussians", "25gaussians") for m in ("gan", "gan-metz", "wgan-gp")
    ]
    for r in runs:
        assert r["steps"] == [0, 2, 4]
        assert np.asarray(r["counts"]).shape == (3, 8 if r["dataset"] == "8gaussians" else 25)
    assert (tmp_path / "mode_hopping.png").is_file()
    clean_figure(*drawn)


# ----------------------------------------------------------------------------------------------
# generator-only
# ----------------------------------------------------------------------------------------------


def go_condition(spread0, spread1, dist1, modes0=8, modes1=8):
    rec = {"critic_at_samples": 1.0, "critic_max": 2.0, "high_quality_fraction": 0.5}
    return {
        "records": [
            {**rec, "spread": spread0, "modes_captured": modes0, "distance_to_argmax": 1.8},
            {**rec, "spread": spread1, "modes_captured": modes1, "distance_to_argmax": dist1},
        ],
        "data_spread": 1.41,
        "box_half_width": 1.9,
    }


def go_verdicts(runs, g_steps):
    conditions = [{"condition": name, **run} for name, run in runs.items()]
    settings = go.GeneratorOnlySettings(g_steps=g_steps)
    return get_experiment("generator-only").verdicts({"conditions": conditions}, settings)


def test_generator_only_verdicts():
    collapse = go_condition(1.2, 0.05, 0.05, modes1=1)
    kept = go_condition(1.3, 1.25, 1.5, modes1=8)
    runs = {"gan-frozen": collapse, "wgan-frozen": collapse, "wgan-optimal": kept}
    assert statuses(go_verdicts(runs, 1000)) == [HOLDS, HOLDS, UNTESTED]  # no wgan-lagging
    runs = {"gan-frozen": kept, "wgan-frozen": kept, "wgan-optimal": collapse}
    assert statuses(go_verdicts(runs, 1000)) == [FAILS, FAILS, UNTESTED]  # no wgan-lagging
    # Spread collapsed but away from D's argmax: not "the point that fools D most".
    far = go_verdicts({"gan-frozen": go_condition(1.2, 0.05, 1.0)}, 1000)
    assert statuses(far) == [FAILS, UNTESTED, UNTESTED]
    runs = {"gan-frozen": collapse, "wgan-frozen": collapse, "wgan-optimal": kept}
    assert statuses(go_verdicts(runs, 100)) == [UNTESTED] * 3
    # A generator that had collapsed before the phase has nothing left to lose.
    already = go_verdicts({"gan-frozen": go_condition(0.1, 0.01, 0.01)}, 1000)
    assert already[0].status == UNTESTED


def test_clamp_box_and_spread():
    x = torch.tensor([[-5.0, 0.5], [0.25, 9.0]])
    assert clamp_box(x, (-1.0, 1.0, -2.0, 2.0)).tolist() == [[-1.0, 0.5], [0.25, 2.0]]
    assert spread(torch.ones(10, 2)) == 0.0
    assert spread(torch.tensor([[0.0, 0.0], [2.0, 0.0]])) == pytest.approx(1.0)


def test_generator_alone_climbs_the_frozen_critic(tmp_path):
    from wgan.experiments.common import experiment_config, make_trainer
    from wgan.experiments.toy_probes import box_samples, critic_argmax, generator_alone

    cfg = experiment_config(
        "toy-gan", "t", [], None, dataset="8gaussians", batch_size=32, hidden=16, depth=2,
        steps=10,
        seed=0, device="cpu",
    )  # fmt: skip
    trainer = make_trainer(cfg, tmp_path)
    trainer.advance(10)
    box = trainer.dataset.bounds()
    critic = [p.detach().clone() for p in trainer.critic.parameters()]
    with torch.no_grad():
        before = trainer.critic(box_samples(trainer, 256, 1, box)).mean().item()
    from wgan.objectives import make_objective

    ns = make_objective("nonsaturating")  # -log D(G(z)): does not saturate on a short run
    _, d_max = critic_argmax(trainer, box, 51)
    generator_alone(trainer, 100, box, torch.optim.Adam(trainer.gen.parameters(), lr=1e-2), ns)
    with torch.no_grad():
        x = box_samples(trainer, 256, 1, box)
        after = trainer.critic(x).mean().item()
    assert after - before > 0.5 * (d_max - before)  # G climbed D, most of the way to its max
    assert all(torch.equal(a, b) for a, b in zip(critic, trainer.critic.parameters(), strict=True))
    assert bool((x.abs() <= box[1] + 1e-6).all())


def test_generator_only_smoke(tmp_path, drawn):
    s = go.GeneratorOnlySettings(
        pretrain_steps=3,
        g_steps=4,
        optimal_steps=2,
        refit_every=2,
        refit_steps=1,
        n_records=2,
        hidden=8,
        batch_size=16,
        eval_samples=50,
        grid=11,
    )
    result = get_experiment("generator-only").run(s, tmp_path)
    assert statuses(result.verdicts) == [UNTESTED] * 3
    conditions = json.loads((tmp_path / "results.json").read_text())["results"]["conditions"]
    assert [c["condition"] for c in conditions] == list(go.CONDITIONS)
    for c in conditions:
        assert [r["g_step"] for r in c["records"]] == [0, 2, 4]
        lo, hi = -c["box_half_width"] - 1e-6, c["box_half_width"] + 1e-6
        assert all(lo <= v <= hi for r in c["records"] for v in r["argmax"])
    # The two WGAN-GP conditions share their pretraining: same start.
    a, b = conditions[1]["records"][0], conditions[2]["records"][0]
    assert a["spread"] == b["spread"] and a["argmax"] == b["argmax"]
    assert (tmp_path / "generator_only.png").is_file()
    clean_figure(*drawn)


# ----------------------------------------------------------------------------------------------
# likelihood
# ----------------------------------------------------------------------------------------------


def test_mixture_logpdf_is_exact():
    from scipy.stats import multivariate_normal

    centres = torch.tensor([[0.0, 0.0, 0.0], [1.0, 2.0, -1.0]], dtype=torch.float64)
    x = torch.tensor([[0.1, 0.2, 0.3], [3.0, -1.0, 0.0]], dtype=torch.float64)
    want = np.log(
        0.5 * multivariate_normal(centres[0].numpy(), 0.09).pdf(x.numpy())
        + 0.5 * multivariate_normal(centres[1].numpy(), 0.09).pdf(x.numpy())
    )
    assert lk.gaussian_mixture_logpdf(x, centres, 0.3).numpy() == pytest.approx(want, rel=1e-10)


def test_p2_is_within_log_100_of_p():
    s = lk.LikelihoodSettings()
    modes, sigma = lk.embedded_modes("8gaussians", 16)
    x = lk.sample_mixture(modes, sigma, 200, torch.Generator().manual_seed(0))
    log_p = lk.model_logpdf("p", x, modes, sigma, x, s)
    log_p2 = lk.model_logpdf("p2", x, modes, sigma, x, s)
    assert bool((log_p2 >= log_p - math.log(100)).all())
    assert bool((log_p2 < log_p).all())  # near the modes the noise adds almost nothing
    # At the origin, 1.41 from every mode (σ 0.014), p is 0 to double precision: p2 is 0.99 noise.
    origin = torch.zeros(1, 16, dtype=torch.float64)
    want = math.log(0.99) - 8 * math.log(2 * math.pi)  # log 0.99 N(0 | 0, I_16)
    assert lk.model_logpdf("p2", origin, modes, sigma, x, s).item() == pytest.approx(want)


def lk_dim(dim, ll_p, ll_p1, ll_p2, hq_p1=0.99, hq_p2=0.01):
    def model(ll, hq):
        return {"loglik": ll, "high_quality_fraction": hq}

    return {
        "dim": dim,
        "p": model(ll_p, 0.997),
        "p1": model(ll_p1, hq_p1),
        "p2": model(ll_p2, hq_p2),
    }


MEASURED_LK = [
    lk_dim(2, 3.6, 0.97, -0.78),
    lk_dim(8, 20.7, -140, 16.1),
    lk_dim(128, 362, -8703, 357),
]


def lk_verdicts(per_dim, settings):
    return get_experiment("likelihood").verdicts({"per_dim": per_dim}, settings)


def test_likelihood_verdicts():
    s = lk.LikelihoodSettings()
    assert statuses(lk_verdicts(MEASURED_LK, s)) == [HOLDS] * 3
    # p1 with a better likelihood than p2 at the largest d, and p2 with good samples: all fail.
    bad = [lk_dim(2, 3.6, 0.97, -0.78, hq_p2=0.5), lk_dim(128, 362, 360, 357, hq_p2=0.5)]
    assert statuses(lk_verdicts(bad, s)) == [FAILS] * 3
    wide = lk.LikelihoodSettings(kernel_std=1.0)
    assert statuses(lk_verdicts(MEASURED_LK, wide)) == [UNTESTED] * 3
    assert statuses(lk_verdicts(MEASURED_LK[:1], s)) == [UNTESTED] * 3
    # p1's likelihood poor at every d but not poorer per dimension as d grows: (1) fails alone.
    flat = [lk_dim(2, 3.6, -200, -0.78), lk_dim(128, 362, -500, 357)]
    assert statuses(lk_verdicts(flat, s)) == [FAILS, HOLDS, HOLDS]


@pytest.mark.parametrize("override", ["dims=1", "dims=two", "p2_weight=1"])
def test_likelihood_out_of_range_settings_raise(override):
    with pytest.raises(ConfigError):
        apply_overrides(lk.LikelihoodSettings(), [override])


def test_likelihood_smoke(tmp_path):
    s = lk.LikelihoodSettings(dims="2,6", n_train=60, n_test=50, n_samples=50)
    result = get_experiment("likelihood").run(s, tmp_path)
    assert statuses(result.verdicts) == [UNTESTED] * 3  # fewer than MIN_POINTS points
    per_dim = json.loads((tmp_path / "results.json").read_text())["results"]["per_dim"]
    assert [r["dim"] for r in per_dim] == [2, 6]
    for r in per_dim:
        # p1's samples are training points plus 0.1 sigma: every one high quality.
        assert r["p1"]["high_quality_fraction"] == 1.0
        assert r["p"]["loglik"] > r["p2"]["loglik"] >= r["p"]["loglik"] - math.log(100)
    clean_figure(lk.figure(per_dim))


# ----------------------------------------------------------------------------------------------
# settings
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, override",
    [
        ("momentum", "optimisers=sgd"),
        ("momentum", "n_records=1"),
        ("mode-hopping", "datasets=swissroll"),
        ("mode-hopping", "concentrated=0"),
        ("generator-only", "dataset=swissroll"),
        ("generator-only", "g_steps=0"),
    ],
)
def test_out_of_range_settings_raise(name, override):
    with pytest.raises(ConfigError):
        apply_overrides(get_experiment(name).settings(), [override])
