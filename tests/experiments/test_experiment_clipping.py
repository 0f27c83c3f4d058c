"""The clipping-vs-penalty experiment (Gulrajani et al. 2017, Fig. 1)."""

import json

import pytest
import torch

from wgan.errors import ConfigError
from wgan.experiments import clipping_vs_penalty as cvp
from wgan.experiments.clipping_vs_penalty import ClippingVsPenaltySettings
from wgan.experiments.common import apply_overrides
from wgan.experiments.framework import EXPERIMENTS
from wgan.nets import MLP


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_settings_validate():
    settings = apply_overrides(
        ClippingVsPenaltySettings(), ["clips=0.01,0.1", "datasets=8gaussians"]
    )
    assert settings.clip_list() == [0.01, 0.1]
    assert settings.dataset_list() == ["eight_gaussians"]
    for bad in (["clips=0.01,-1"], ["clips=a,b"], ["datasets=nope"], ["deep_depth=1"]):
        with pytest.raises(ConfigError):
            apply_overrides(ClippingVsPenaltySettings(), bad)


def test_smoke_tiny(tmp_path):
    settings = ClippingVsPenaltySettings(
        datasets="8gaussians,swissroll",
        clips="0.01",
        hidden=16,
        depth=2,
        steps=5,
        deep_depth=3,
        deep_hidden=8,
        deep_steps=5,
        eval_samples=64,
        resolution=16,
    )
    result = EXPERIMENTS["clipping-vs-penalty"].run(settings, tmp_path)
    assert len(result.figures) == 3 and all(p.exists() for p in result.figures)
    record = json.loads((tmp_path / "results.json").read_text())["results"]
    assert [(r["dataset"], r["method"]) for r in record["surfaces"]] == [
        ("eight_gaussians", "clip c=0.01"),
        ("eight_gaussians", "GP"),
        ("swiss_roll", "clip c=0.01"),
        ("swiss_roll", "GP"),
    ]
    assert len(record["deep"]["methods"]["GP"]["layers"]) == 3
    assert "last/first" in result.table


def test_layer_gradient_norms_of_a_linear_chain():
    """With identity-like layers the gradient reaching every layer is exactly the same."""
    critic = MLP(2, 1, hidden=2, depth=3)
    with torch.no_grad():
        for m in critic.modules():
            if isinstance(m, torch.nn.Linear):
                m.weight.copy_(torch.eye(m.weight.shape[0], m.weight.shape[1]))
                m.bias.fill_(1.0)  # keeps the ReLUs active for inputs in [0, 1]^2
    real, fake = torch.rand(8, 2), torch.rand(8, 2)
    norms = cvp.layer_gradient_norms(critic, real, fake)
    # f = h_3[0] + const, so df/dh_l = e_0 for every l, and df/dx = e_0.
    assert norms["layers"] == pytest.approx([1.0, 1.0, 1.0])
    assert norms["input"] == pytest.approx(1.0)


def test_clipping_vanishes_penalty_steady_weights_at_bounds(one_thread):
    real, fake = cvp.eval_batch("swissroll", 512, 1.0, seed=1)
    # 12-layer critic, c = 0.001: the gradient decays geometrically towards the input.
    clipped = cvp.train_critic("swissroll", 0.001, (64, 12, 100))
    layers = cvp.layer_gradient_norms(clipped, real, fake)["layers"]
    assert layers[-1] / layers[0] > 1e6
    assert all(a < b for a, b in zip(layers, layers[1:], strict=False))
    # Same depth with the gradient penalty: every layer within two orders of magnitude.
    penalised = cvp.train_critic("swissroll", None, (64, 12, 100))
    layers = cvp.layer_gradient_norms(penalised, real, fake)["layers"]
    assert max(layers) / min(layers) < 100
    # A clipped 3-layer critic pushes most of its weights to +-c (they start uniform in the box).
    c = 0.01
    critic = cvp.train_critic("swissroll", c, (64, 3, 300))
    weights = cvp.weight_values(critic)
    assert abs(weights).max() <= c + 1e-9
    assert cvp.fraction_at_bound(weights, c) > 0.5
