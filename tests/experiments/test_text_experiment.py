"""``wgan experiment discrete-data`` at a tiny size, and the text presets' nets."""

import json

import torch

from wgan.cli.app import main
from wgan.config import resolve
from wgan.data.text import MarkovText
from wgan.gan.players import build_models


def test_discrete_data_experiment_runs_tiny(tmp_path, capsys):
    argv = ["experiment", "discrete-data", "steps=2", "eval_every=1", "width=8", "depth=1"]
    assert main([*argv, "eval_samples=32", "--out-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "WGAN-GP" in out and "GAN (minimax)" in out and "real vs real" in out
    run_dir = next(tmp_path.glob("*-exp-discrete-data"))
    assert (run_dir / "discrete_data_js.png").is_file()
    results = json.loads((run_dir / "results.json").read_text())["results"]
    assert [m["method"] for m in results["methods"]] == ["wgan-gp", "gan", "gan-ns"]
    for m in results["methods"]:
        assert [c["step"] for c in m["curve"]] == [0, 1, 2]
        assert all(0 <= c["js4"] <= 1 for c in m["curve"])


def test_experiment_settings_are_checked(capsys):
    assert main(["experiment", "discrete-data", "methods=wgan-gp,nope"]) == 2
    assert "unknown methods" in capsys.readouterr().err


def test_paper_preset_has_the_papers_nets():
    cfg = resolve("text-wgan-gp-paper")
    assert (cfg.train.n_critic, cfg.constraint.penalty_weight, cfg.data.batch_size) == (10, 10, 64)
    assert cfg.g_optim.lr == 1e-4 and tuple(cfg.g_optim.betas) == (0.5, 0.9)
    assert (cfg.generator.width, cfg.generator.depth, cfg.generator.kernel) == (512, 5, 5)
    assert cfg.generator.latent_dim == 128 and cfg.data.seq_len == 32
    gen, critic, _ = build_models(cfg, MarkovText(32), "cpu")
    with torch.no_grad():
        x = gen.sample(2, torch.Generator().manual_seed(0))  # (2, V, L)
        v = MarkovText(32).vocab.size  # 18 symbols and the unknown one
        assert x.shape == (2, v, 32) and v == 19 and torch.allclose(x.sum(1), torch.ones(2, 32))
        assert critic(x).shape == (2, 1)
    blocks = gen.net.blocks
    assert len(blocks) == 5 and blocks[0].conv1.weight.shape == (512, 512, 5)
    assert blocks[0].scale == 0.3


def _result(method, js4_curve, error=None):
    curve = [{"step": 100 * i, "js4": v} for i, v in enumerate(js4_curve)]
    return {"method": method, "label": method.upper(), "curve": curve, "error": error}


def verdict(results):
    from wgan.experiments import get_experiment
    from wgan.experiments.discrete_data import DiscreteDataSettings

    numbers = {"methods": results}
    return get_experiment("discrete-data").verdicts(numbers, DiscreteDataSettings())[0]


def test_discrete_data_verdict_holds_fails_or_is_not_tested():
    learned = _result("wgan-gp", [0.99, 0.8, 0.6, 0.45])
    stuck = _result("gan", [0.99, 0.95, 0.97, 0.98])
    assert verdict([learned, stuck]).holds is True
    # a standard GAN that learns as well as WGAN-GP contradicts the claim
    also = _result("gan-ns", [0.99, 0.7, 0.5, 0.47])
    assert verdict([learned, stuck, also]).holds is False
    # so does a WGAN-GP that did not learn (here from a lower start, below the stuck GAN)
    flat = _result("wgan-gp", [0.8, 0.78, 0.76, 0.75])
    assert verdict([flat, stuck]).holds is False
    # a diverged GAN counts as 1 bit: the claim holds
    diverged = _result("gan", [0.99, 0.9], error="stopped at step 100: non-finite")
    assert verdict([learned, diverged]).holds is True
    # too short (200 iterations) or without a standard GAN: not tested
    short = _result("wgan-gp", [0.99, 0.8, 0.3])
    assert verdict([short, stuck]).holds is None
    assert "300" in verdict([short, stuck]).note
    assert verdict([learned]).status == "not tested at these settings"


def test_discrete_data_runs_every_method_without_feature_matching_by_default():
    # the preset matches critic features; the comparison of objectives is the paper's, without
    from wgan.experiments.discrete_data import METHODS, DiscreteDataSettings

    settings = DiscreteDataSettings()
    assert resolve(settings.preset).tricks.feature_matching > 0
    for method in METHODS.values():
        cfg = resolve(settings.preset, [*settings.overrides(), *method.overrides])
        assert cfg.tricks.feature_matching == 0.0
    asked = DiscreteDataSettings(feature_matching=0.5)
    assert resolve(asked.preset, asked.overrides()).tricks.feature_matching == 0.5
