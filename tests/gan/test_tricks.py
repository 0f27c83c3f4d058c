"""The improved techniques' defining properties, piece by piece (wgan.gan.tricks)."""

import math

import pytest
import torch
from torch import nn

from wgan.errors import ConfigError
from wgan.gan.tricks import (
    feature_matching_loss,
    historical_penalty,
    instance_noise_std,
    update_historical_mean_,
)
from wgan.nets import MLP
from wgan.nets.tricks import (
    BatchAwareCritic,
    MinibatchDiscrimination,
    MinibatchStdDev,
    VirtualBatchNet,
    VirtualBatchNorm,
)


def test_feature_matching_equals_a_hand_computation():
    real = torch.tensor([[1.0, 2.0], [3.0, 4.0]])  # mean (2, 3)
    fake = torch.tensor([[0.0, 0.0], [1.0, 2.0], [2.0, 1.0]])  # mean (1, 1)
    assert feature_matching_loss(real, fake).item() == pytest.approx((2 - 1) ** 2 + (3 - 1) ** 2)


def test_conditional_feature_matching_matches_per_class():
    """Class 0: real mean (0, 0), fake mean (1, 0) -> 1; class 1: real (4, 4), fake (4, 2) -> 4;
    weights are the fractions of fakes per class: 1/3 and 2/3 -> 1/3 + 8/3 = 3. The
    unconditional loss of the same batches is different (0.111...)."""
    real = torch.tensor([[0.0, 0.0], [4.0, 4.0]])
    real_labels = torch.tensor([0, 1])
    fake = torch.tensor([[1.0, 0.0], [4.0, 1.0], [4.0, 3.0]])
    fake_labels = torch.tensor([0, 1, 1])
    got = feature_matching_loss(real, fake, real_labels, fake_labels, n_classes=3)
    assert got.item() == pytest.approx(3.0)
    assert feature_matching_loss(real, fake).item() != pytest.approx(3.0)


def test_minibatch_discrimination_depends_on_the_other_samples():
    torch.manual_seed(0)
    layer = MinibatchDiscrimination(5, kernels=4, kernel_dim=3)
    f = torch.randn(6, 5)
    out = layer(f)
    assert out.shape == (6, 4)
    g = f.clone()
    g[3] += 1.0  # another sample of the batch changes
    assert not torch.allclose(layer(g)[0], out[0])
    # o_b = sum_{j != i} exp(-||M_i,b - M_j,b||_1), by hand for sample 0, kernel 1
    m = (f @ layer.T).view(6, 4, 3)
    expected = sum(torch.exp(-(m[0, 1] - m[j, 1]).abs().sum()) for j in range(1, 6))
    assert out[0, 1].item() == pytest.approx(expected.item(), rel=1e-5)


def test_minibatch_stddev_and_the_batch_aware_critic():
    torch.manual_seed(0)
    critic = BatchAwareCritic(MLP(2, 1, 8, 2), MinibatchStdDev())
    x = torch.randn(5, 2)
    out = critic(x)
    assert out.shape == (5, 1) and critic.features(x).shape == (5, 8)
    y = x.clone()
    y[4] *= 3.0
    assert not torch.allclose(critic(y)[0], out[0])  # sample 0 sees sample 4's change
    with pytest.raises(ConfigError, match="features"):
        BatchAwareCritic(nn.Linear(2, 1), MinibatchStdDev())


def test_historical_mean_is_the_mean_of_the_past_parameters():
    torch.manual_seed(0)
    p = [torch.randn(3, 2), torch.randn(4)]
    means = [torch.zeros_like(t) for t in p]
    count = torch.zeros(())
    seen = []
    for _ in range(7):
        update_historical_mean_(means, p, count)
        seen.append([t.clone() for t in p])
        for t in p:
            t.add_(torch.randn_like(t))
    for i, m in enumerate(means):
        torch.testing.assert_close(m, torch.stack([s[i] for s in seen]).mean(0))
    pen = historical_penalty(p, means, 0.5)
    hand = 0.5 * sum(((a - b) ** 2).sum() for a, b in zip(p, means, strict=True))
    assert pen.item() == pytest.approx(hand.item(), rel=1e-6)


def _vbn_net():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(4, 6), VirtualBatchNorm(6), nn.ReLU(), nn.Unflatten(1, (6, 1, 1)),
        nn.ConvTranspose2d(6, 3, 2), VirtualBatchNorm(3), nn.Tanh(),
    )  # fmt: skip
    return VirtualBatchNet(net, torch.randn(16, 4))


def test_virtual_batch_norm_output_does_not_depend_on_the_batch():
    net = _vbn_net()
    z = torch.randn(64, 4)
    batch = net(z)  # (64, 3, 2, 2)
    alone = torch.cat([net(z[i : i + 1]) for i in range(64)])
    torch.testing.assert_close(alone, batch, rtol=1e-5, atol=1e-6)
    # ... while ordinary batch norm's does (the property is not vacuous)
    bn = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6))
    assert not torch.allclose(bn(z)[:2], bn(z[:2]))


def test_virtual_batch_norm_uses_the_reference_batch():
    """Changing the reference batch changes every output; it is a buffer (in the state dict)."""
    net = _vbn_net()
    z = torch.randn(8, 4)
    before = net(z)
    assert "z_ref" in net.state_dict()
    other = _vbn_net()
    other.z_ref.copy_(torch.randn(16, 4))
    assert not torch.allclose(other(z), before)


@pytest.mark.parametrize("schedule", ["linear", "exponential"])
def test_instance_noise_follows_its_schedule_to_zero(schedule):
    values = [instance_noise_std(t, 0.5, 100, schedule) for t in range(0, 121, 10)]
    assert values[0] == pytest.approx(0.5)
    assert all(a > b for a, b in zip(values[:10], values[1:11], strict=True))  # decreasing
    assert values[10] == 0.0 and values[-1] == 0.0  # 0 from the anneal step on
    if schedule == "linear":
        assert values[5] == pytest.approx(0.25)
    else:
        expected = 0.5 * (math.exp(-2.5) - math.exp(-5.0)) / (1 - math.exp(-5.0))
        assert values[5] == pytest.approx(expected)
    tensor = instance_noise_std(torch.tensor(50.0), 0.5, 100, schedule)
    assert float(tensor) == pytest.approx(values[5], rel=1e-6)


def test_virtual_batch_norm_uses_the_reference_batch_plus_the_sample_itself():
    """Each current sample is normalised with the statistics of [reference batch; itself] (per
    channel, over rows and positions), the reference rows with their own: by hand."""
    torch.manual_seed(0)
    layer = VirtualBatchNorm(3)
    layer.n_ref = 5
    x = torch.randn(5 + 2, 3, 2, 2)  # 5 reference rows, then 2 current samples
    out = layer(x)
    for i in (5, 6):
        group = torch.cat([x[:5], x[i : i + 1]])  # (6, 3, 2, 2)
        mean = group.mean(dim=(0, 2, 3)).view(1, 3, 1, 1)
        var = group.var(dim=(0, 2, 3), unbiased=False).view(1, 3, 1, 1)
        torch.testing.assert_close(out[i : i + 1], (x[i : i + 1] - mean) / (var + 1e-5).sqrt())
    ref = x[:5]
    mean = ref.mean(dim=(0, 2, 3)).view(1, 3, 1, 1)
    var = ref.var(dim=(0, 2, 3), unbiased=False).view(1, 3, 1, 1)
    torch.testing.assert_close(out[:5], (ref - mean) / (var + 1e-5).sqrt())
