"""fp16 dynamic loss scaling in the step (wgan.gan.step.scaled_update_), checked on the CPU in fp32.

fp16 training itself needs CUDA; the scaling logic is plain tensor maths, so it is tested here:
an update from the gradients of ``scale * loss`` equals the unscaled update; a non-finite
gradient skips the whole step (parameters and optimiser state unchanged) and halves the scale;
2000 finite steps in a row double it (torch.amp.GradScaler's rules).
"""

import torch

from wgan.gan import optim
from wgan.gan.step import FP16_GROWTH_INTERVAL, scaled_update_


def setup(name="adam"):
    torch.manual_seed(0)
    params = [torch.randn(4, 3), torch.randn(3)]
    state = optim.init_state(name, params)
    h = optim.hyper(1e-2, (0.5, 0.9), 0.0)
    scaler = {"scale": torch.tensor(1024.0), "good": torch.tensor(0.0)}
    return params, state, h, scaler


def test_scaled_gradients_give_the_unscaled_update():
    params, state, h, scaler = setup()
    ref_params = [p.clone() for p in params]
    ref_state = optim.init_state("adam", ref_params)
    grads = [torch.randn_like(p) for p in params]
    scaled_update_("adam", params, [g * 1024.0 for g in grads], state, h, scaler)
    optim.update_("adam", ref_params, grads, ref_state, h)
    for a, b in zip(params, ref_params, strict=True):
        torch.testing.assert_close(a, b)
    assert not torch.equal(params[0], setup()[0][0])  # it did move
    assert float(scaler["scale"]) == 1024.0 and float(scaler["good"]) == 1.0


def test_a_non_finite_gradient_skips_the_step_and_halves_the_scale():
    params, state, h, scaler = setup()
    optim.update_("adam", params, [torch.ones_like(p) for p in params], state, h)  # some state
    before = [p.clone() for p in params]
    moments = [m.clone() for m in state["exp_avg"] + state["exp_avg_sq"]]
    step = state["step"].clone()
    grads = [torch.randn_like(p) for p in params]
    grads[1][0] = float("inf")
    scaled_update_("adam", params, grads, state, h, scaler)
    for a, b in zip(params, before, strict=True):
        assert torch.equal(a, b)
    for a, b in zip(state["exp_avg"] + state["exp_avg_sq"], moments, strict=True):
        assert torch.equal(a, b)
    assert torch.equal(state["step"], step)
    assert float(scaler["scale"]) == 512.0 and float(scaler["good"]) == 0.0


def test_the_scale_doubles_after_a_run_of_finite_steps():
    params, state, h, scaler = setup("sgd")
    scaler["good"].fill_(FP16_GROWTH_INTERVAL - 1)
    scaled_update_("sgd", params, [torch.ones_like(p) for p in params], state, h, scaler)
    assert float(scaler["scale"]) == 2048.0 and float(scaler["good"]) == 0.0
