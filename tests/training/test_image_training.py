"""Training on images: one CPU step per image preset, conditional losses, EMA, mixed precision."""

from __future__ import annotations

import gzip
import pickle
import struct

import numpy as np
import pytest
import torch
from helpers import tiny

from wgan.config import resolve
from wgan.constraints import make_constraints
from wgan.errors import ConfigError, WganError
from wgan.gan.loss import GANLoss
from wgan.gan.players import LatentGenerator
from wgan.gan.step import BoundCritic, Player
from wgan.nets import MLP, ConditionalCritic, ConditionalGenerator
from wgan.objectives import make_objective
from wgan.training.trainer import Trainer

TINY = tiny(width=8, batch=8)
IMAGE_PRESETS = [
    "digits-dcgan",
    "digits-wgan-gp",
    "digits-cgan",
    "stacked-digits-wgan-gp",
    "cifar10-resnet-wgan-gp",
    "mnist-dcgan",
]


def _write_idx(path, arr):
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    path.write_bytes(gzip.compress(header + arr.astype(np.uint8).tobytes()))


def _fake_files(tmp_path):
    """A tiny MNIST directory (IDX .gz) and a CIFAR-10 directory (one pickle batch)."""
    rng = np.random.default_rng(0)
    mnist = tmp_path / "mnist"
    mnist.mkdir()
    _write_idx(mnist / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (20, 28, 28)))
    _write_idx(mnist / "train-labels-idx1-ubyte.gz", rng.integers(0, 10, (20,)))
    cifar = tmp_path / "cifar-10-batches-py"
    cifar.mkdir()
    batch = {
        b"data": rng.integers(0, 256, (20, 3072)).astype(np.uint8),
        b"labels": rng.integers(0, 10, 20).tolist(),
    }
    (cifar / "data_batch_1").write_bytes(pickle.dumps(batch, protocol=2))
    return {"mnist-dcgan": mnist, "cifar10-resnet-wgan-gp": cifar}


@pytest.mark.parametrize("preset", IMAGE_PRESETS)
def test_one_cpu_training_step_per_image_preset(preset, tmp_path):
    paths = _fake_files(tmp_path)
    extra = [f"data.path={paths[preset]}"] if preset in paths else []
    # eager (the stacked-digits preset compiles): the compiled step is tests/gan/test_compile.py's
    cfg = resolve(preset, [*TINY, *extra, "train.compile=false"])
    trainer = Trainer(cfg, tmp_path / "run")
    before = [p.detach().clone() for p in trainer.gen.parameters()]
    trainer.train_step()
    values = trainer.stats.flush()
    assert all(np.isfinite(v) for v in values.values()), values
    assert "d/loss" in values and "g/loss" in values
    moved = [not torch.equal(a, b) for a, b in zip(before, trainer.gen.parameters(), strict=True)]
    assert any(moved)
    shape = tuple(trainer.dataset.shape)
    assert tuple(trainer.samples(3).shape) == (3, *shape)


def test_image_preset_needing_files_says_so(tmp_path):
    with pytest.raises(ConfigError, match="data.path"):
        Trainer(resolve("cifar10-resnet-wgan-gp", TINY), tmp_path / "run")


def test_batch_norm_critic_with_penalty_is_rejected(tmp_path):
    cfg = resolve("digits-wgan-gp", [*TINY, "critic.norm=batch"])
    with pytest.raises(ConfigError, match="batch norm couples samples"):
        Trainer(cfg, tmp_path / "run")


def test_conditional_needs_labels(tmp_path):
    cfg = resolve("toy-wgan-gp", ["conditional.mode=concat", "train.progress=false"])
    with pytest.raises(ConfigError, match="needs labelled data"):
        Trainer(cfg, tmp_path / "run")


# -- the seed's conditional objective -------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["minimax", "nonsaturating", "wasserstein", "least_squares", "hinge"]
)
def test_fake_term_is_the_separable_fake_part_of_the_critic_loss(name):
    obj = make_objective(name)
    g = torch.Generator().manual_seed(0)
    real, fake, wrong = (torch.randn(7, generator=g) for _ in range(3))
    gap = obj.critic_loss(real, wrong)["loss"] - obj.critic_loss(real, fake)["loss"]
    torch.testing.assert_close(gap, obj.fake_term(wrong) - obj.fake_term(fake))


@pytest.mark.parametrize("divergence", ["kl", "jensen_shannon", "pearson", "total_variation"])
def test_fgan_fake_term(divergence):
    obj = make_objective("fgan", divergence=divergence)
    g = torch.Generator().manual_seed(1)
    real, fake, wrong = (torch.randn(9, generator=g) for _ in range(3))
    gap = obj.critic_loss(real, wrong)["loss"] - obj.critic_loss(real, fake)["loss"]
    torch.testing.assert_close(gap, obj.fake_term(wrong) - obj.fake_term(fake))


def _tiny_conditional(k=3, dim=2, latent=2, embed=2):
    torch.manual_seed(0)
    gen = LatentGenerator(ConditionalGenerator(MLP(latent + embed, dim, 8, 1), k, embed), latent, k)
    critic = ConditionalCritic(MLP(dim + embed, 1, 8, 1), k, embed)
    return gen, critic


def _bound(critic):
    """The critic as the training step calls it: ``critic(x, labels)`` (D(c, x))."""
    return BoundCritic(Player(critic, functional=False), {}, {}, concat=True)


def test_three_term_conditional_critic_loss_matches_the_seed_formula():
    """-V = -(1/m) sum log D(c,x) - (1/m) sum log(1 - D(c,G(c,z))) - (1/m) sum log(1 - D(c,x^))."""
    gen, critic = _tiny_conditional()
    real, labels = torch.randn(6, 2), torch.tensor([0, 1, 2, 0, 1, 2])
    loss = GANLoss(make_objective("minimax"), make_constraints(), "concat", wrong_label=True)
    # The step draws the noise for G(c, z) and the label shift for the wrong pairs beforehand.
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        fake = gen(torch.randn(6, 2, generator=g), labels)
    wrong = (labels + torch.randint(1, 3, (6,), generator=g)) % 3
    assert not torch.any(wrong == labels)
    terms = loss.critic_terms(_bound(critic), real, fake, labels, wrong)
    with torch.no_grad():
        d = lambda x, y: torch.sigmoid(critic(x, y)).squeeze(1)  # noqa: E731
        expected = -(
            d(real, labels).log().mean()
            + (1 - d(fake, labels)).log().mean()
            + (1 - d(real, wrong)).log().mean()
        )
    torch.testing.assert_close(terms["loss"].detach(), expected, rtol=1e-5, atol=1e-6)
    off = GANLoss(make_objective("minimax"), make_constraints(), "concat", wrong_label=False)
    two = off.critic_terms(_bound(critic), real, fake, labels)
    assert "wrong_label" not in two
    torch.testing.assert_close(
        two["loss"].detach(), expected - terms["wrong_label"], rtol=1e-5, atol=1e-6
    )
    with pytest.raises(WganError, match="needs wrong labels"):
        loss.critic_terms(_bound(critic), real, fake, labels)
    with pytest.raises(WganError, match="needs the labels"):
        loss.critic_terms(_bound(critic), real, fake)


def test_conditional_penalty_holds_the_label_fixed():
    """The penalty differentiates D(c, .) at the real batch's labels: grad_x only, so the
    label embedding gets a gradient from the penalty only through D's dependence on it."""
    gen, critic = _tiny_conditional()
    cons = make_constraints(penalty="two_sided", penalty_weight=1.0)
    loss = GANLoss(make_objective("wasserstein"), cons, "concat", wrong_label=False)
    real, labels = torch.randn(4, 2), torch.tensor([0, 1, 2, 0])
    with torch.no_grad():
        fake = gen(torch.randn(4, 2), labels)
    eps = torch.rand(4)
    terms = loss.critic_terms(_bound(critic), real, fake, labels, eps=eps)
    assert torch.isfinite(terms["penalty"]) and terms["grad_norm"] > 0
    # the same penalty by hand: ||grad_x D(c, x_hat)|| per sample at the fixed labels c
    x_hat = (eps[:, None] * real + (1 - eps[:, None]) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat, labels).sum(), x_hat)
    expected = (grad.norm(dim=1) - 1).square().mean()
    torch.testing.assert_close(terms["penalty"].detach(), expected, rtol=1e-5, atol=1e-6)
    terms["loss"].backward()
    assert critic.embedding.weight.grad is not None
    assert all(p.grad is not None for p in critic.net.parameters())


def test_acgan_terms_and_sampling_by_label(tmp_path):
    cfg = resolve("digits-wgan-gp", [*TINY, "conditional.mode=acgan"])
    trainer = Trainer(cfg, tmp_path / "run")
    trainer.train_step()
    values = trainer.stats.flush()
    assert {"d/ac_loss", "d/ac_accuracy", "g/ac_loss"} <= set(values)
    assert 0 <= values["d/ac_accuracy"] <= 1
    x = trainer.samples(5, labels=3)
    assert x.shape == (5, 1, 16, 16)
    with pytest.raises(WganError, match="out of range"):
        trainer.samples(2, labels=10)


def test_unconditional_run_rejects_a_label(tmp_path):
    trainer = Trainer(resolve("digits-wgan-gp", TINY), tmp_path / "run")
    with pytest.raises(WganError, match="not conditional"):
        trainer.samples(2, labels=1)


# -- EMA --------------------------------------------------------------------------------------


def test_ema_tracks_the_generator_and_is_used_for_samples(tmp_path):
    cfg = resolve("digits-dcgan", [*TINY, "train.ema=0.5"])
    trainer = Trainer(cfg, tmp_path / "run")
    start = [p.detach().clone() for p in trainer.gen.parameters()]
    trainer.train_step()
    live = list(trainer.gen.parameters())
    for avg, s, p in zip(trainer.ema.module.parameters(), start, live, strict=True):
        # First update: beta_0 = min(0.5, 1/10) = 0.1 (warm-up), so mostly the live weights.
        torch.testing.assert_close(avg, 0.1 * s + 0.9 * p.detach())
    assert trainer.sampler is trainer.ema.module
    state = trainer.state()
    again = Trainer(cfg, tmp_path / "run2", state=state)
    for a, b in zip(again.ema.module.parameters(), trainer.ema.module.parameters(), strict=True):
        assert torch.equal(a, b)
    assert again.ema.updates == trainer.ema.updates == 1
    assert trainer.ema.current_decay() == pytest.approx(min(0.5, 2 / 11))


# -- mixed precision ---------------------------------------------------------------------------


def _losses(cfg, tmp_path, steps=20):
    trainer = Trainer(cfg, tmp_path)
    out = []
    for _ in range(steps):
        trainer.train_step()
        out.append(trainer.stats.flush())
    return out


def _conv_output_dtypes(trainer):
    """Record the dtype of every convolution's output in G and D (forward hooks)."""
    seen = set()
    for net in (trainer.gen, trainer.critic):
        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d):
                m.register_forward_hook(lambda mod, inp, out: seen.add(out.dtype))
    return seen


def test_bf16_on_cpu_changes_the_first_20_losses_by_little(tmp_path):
    """bf16 keeps 8 mantissa bits (relative rounding 2^-9 ~ 0.2%). Over 20 steps of a tiny
    DCGAN the losses move from about 1.6 to -3.4; bf16's stay within 0.005 + 2% of fp32's
    (the largest deviation measured over seeds 0, 1, 2 is 0.42 of that tolerance, e.g. 0.017
    on a critic loss of -2.5). And bf16 really runs: the convolutions compute in bf16 and the
    losses are not fp32's bit for bit (they would be if the option were ignored)."""
    base = [*TINY, "data.batch_size=16"]
    runs = {}
    for name, extra in (("fp32", []), ("bf16", ["train.precision=bf16"])):
        trainer = Trainer(resolve("digits-wgan-gp", [*base, *extra]), tmp_path / name)
        dtypes = _conv_output_dtypes(trainer)
        losses = []
        for _ in range(20):
            trainer.train_step()
            losses.append(trainer.stats.flush())
        runs[name] = (dtypes, losses)
    assert runs["fp32"][0] == {torch.float32} and runs["bf16"][0] == {torch.bfloat16}
    ref, low = runs["fp32"][1], runs["bf16"][1]
    assert ref[-1]["d/loss"] < -2.0  # the losses move far more than the tolerance
    assert any(r["d/loss"] != lo["d/loss"] for r, lo in zip(ref, low, strict=True))
    for r, lo in zip(ref, low, strict=True):
        for key in ("d/loss", "d/estimate", "g/loss"):
            assert abs(r[key] - lo[key]) <= 0.005 + 0.02 * abs(r[key]), (key, r[key], lo[key])


def test_fp16_on_cpu_is_a_clear_error(tmp_path):
    cfg = resolve("digits-wgan-gp", [*TINY, "train.precision=fp16", "train.device=cpu"])
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        Trainer(cfg, tmp_path / "run")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_on_gpu_changes_the_first_20_losses_by_little(precision, tmp_path):
    base = [*TINY, "data.batch_size=16", "train.device=cuda"]
    ref = _losses(resolve("digits-wgan-gp", base), tmp_path / "a")
    low = _losses(
        resolve("digits-wgan-gp", [*base, f"train.precision={precision}"]), tmp_path / "b"
    )
    for r, lo in zip(ref, low, strict=True):
        for key in ("d/loss", "d/estimate", "g/loss"):
            assert abs(r[key] - lo[key]) <= 0.1 + 0.1 * abs(r[key]), (key, r[key], lo[key])


def test_channels_last_gives_the_same_losses(tmp_path):
    """NHWC layout changes only the memory order: losses equal to fp32 rounding."""
    ref = _losses(resolve("digits-wgan-gp", TINY), tmp_path / "a", steps=3)
    nhwc = _losses(
        resolve("digits-wgan-gp", [*TINY, "train.channels_last=true"]), tmp_path / "b", steps=3
    )
    for r, c in zip(ref, nhwc, strict=True):
        for key in ("d/loss", "d/penalty", "g/loss"):
            assert abs(r[key] - c[key]) <= 1e-4 * (1 + abs(r[key])), (key, r[key], c[key])
    with pytest.raises(ConfigError, match="channels_last is for image data"):
        Trainer(resolve("toy-wgan-gp", ["train.channels_last=true"]), tmp_path / "c")


def test_unknown_dataset_names_image_and_toy_choices(tmp_path):
    with pytest.raises(ConfigError, match="did you mean digits.*images: digits"):
        Trainer(resolve("digits-wgan-gp", [*TINY, "data.name=digitz"]), tmp_path / "run")


@pytest.mark.parametrize("preset", ["toy-wgan-gp", "digits-wgan-gp"])
def test_torch_func_penalty_equals_the_autograd_penalty(preset, tmp_path, monkeypatch):
    """constraint.penalty_impl=func (torch.func.grad) trains like the double-backward path.

    The two give the same values, so the test also counts which input-gradient function ran:
    without that it would pass if the option were ignored."""
    import wgan.constraints.penalty as penalty_module

    calls = {"autograd": 0, "func": 0}

    def counting(kind, fn):
        def wrapped(*args, **kwargs):
            calls[kind] += 1
            return fn(*args, **kwargs)

        return wrapped

    monkeypatch.setattr(
        penalty_module,
        "input_gradient_norm",
        counting("autograd", penalty_module.input_gradient_norm),
    )
    monkeypatch.setattr(
        penalty_module,
        "input_gradient_norm_func",
        counting("func", penalty_module.input_gradient_norm_func),
    )
    base = [*TINY, "generator.hidden=32", "critic.hidden=32", "data.batch_size=16"]
    ref = _losses(resolve(preset, base), tmp_path / "a", steps=5)
    assert calls == {"autograd": 5 * 5, "func": 0}  # 5 iterations of n_critic = 5
    fun = _losses(resolve(preset, [*base, "constraint.penalty_impl=func"]), tmp_path / "b", steps=5)
    assert calls == {"autograd": 5 * 5, "func": 5 * 5}
    for r, f in zip(ref, fun, strict=True):
        for key in ("d/loss", "d/penalty", "d/grad_norm", "g/loss"):
            assert abs(r[key] - f[key]) <= 1e-5 * (1 + abs(r[key])), (key, r[key], f[key])


def test_lipschitz_report_of_a_conv_critic(tmp_path):
    from wgan.analysis.critic_lipschitz import lipschitz_report

    trainer = Trainer(resolve("digits-wgan-gp", [*TINY, "critic.norm=none"]), tmp_path / "a")
    trainer.train_step()
    report = lipschitz_report(trainer, n=32)
    assert report["input_shape"] == [1, 16, 16]
    assert report["bound"] is not None and report["bound_holds"] is True  # conv FFT bounds
    assert report["empirical_max"] > 0
    cgan = Trainer(resolve("digits-cgan", TINY), tmp_path / "b")
    with pytest.raises(WganError, match="takes a label"):
        lipschitz_report(cgan, n=8)
