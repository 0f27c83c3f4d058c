"""The digit Inception score IS = exp(E_x KL(p(y|x) || p(y))) (Salimans et al. 2016)."""

import math

import pytest
import torch
from torch import nn

from wgan.errors import WganError
from wgan.metrics import digit_inception_score, digits_metrics, digits_split


class FixedProbabilities(nn.Module):
    """A stand-in classifier: image i carries log p(y|x_i) in its first row of pixels, so its
    softmax is exactly the class probabilities the test chose."""

    resolution = 16

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 0, 0, :3]  # (B, 3): log-probabilities of 3 classes

    def head(self, f: torch.Tensor) -> torch.Tensor:
        return f


def _images(probs: list[list[float]]) -> torch.Tensor:
    x = torch.zeros(len(probs), 1, 16, 16)
    x[:, 0, 0, :3] = torch.log(torch.tensor(probs))
    return x


def test_equals_a_hand_computation():
    # p(y|x_1) = (0.7, 0.2, 0.1), p(y|x_2) = (0.1, 0.2, 0.7): p(y) = (0.4, 0.2, 0.4), and
    # KL_1 = KL_2 = 0.7 ln(0.7/0.4) + 0.2 ln(0.2/0.2) + 0.1 ln(0.1/0.4) = 0.253102...
    kl = 0.7 * math.log(0.7 / 0.4) + 0.1 * math.log(0.1 / 0.4)
    assert kl == pytest.approx(0.2531, abs=1e-4)
    out = digit_inception_score(_images([[0.7, 0.2, 0.1], [0.1, 0.2, 0.7]]), FixedProbabilities())
    assert out["digit_is"] == pytest.approx(math.exp(kl), rel=1e-6)  # 1.28803
    assert out["n_samples"] == 2
    # a third sample equal to the marginal: p(y) unchanged, its KL is 0, the mean KL 2/3 of it
    three = _images([[0.7, 0.2, 0.1], [0.1, 0.2, 0.7], [0.4, 0.2, 0.4]])
    out = digit_inception_score(three, FixedProbabilities())
    assert out["digit_is"] == pytest.approx(math.exp(2 * kl / 3), rel=1e-6)


def test_extremes_and_splits():
    sure = [[1 - 2e-6, 1e-6, 1e-6], [1e-6, 1 - 2e-6, 1e-6], [1e-6, 1e-6, 1 - 2e-6]]
    # three classes, each used once with certainty: IS -> K = 3
    assert digit_inception_score(_images(sure), FixedProbabilities())["digit_is"] == pytest.approx(
        3.0, rel=1e-4
    )
    # every sample the same distribution: IS = 1
    same = _images([[0.5, 0.3, 0.2]] * 4)
    assert digit_inception_score(same, FixedProbabilities())["digit_is"] == pytest.approx(1.0)
    # two splits of one class each: within each split p(y) = p(y|x), so IS = 1 per split
    split = _images([sure[0], sure[0], sure[1], sure[1]])
    out = digit_inception_score(split, FixedProbabilities(), splits=2)
    assert out["digit_is"] == pytest.approx(1.0) and out["digit_is_std"] == pytest.approx(0.0)
    assert digit_inception_score(split, FixedProbabilities())["digit_is"] == pytest.approx(
        2.0, rel=1e-4
    )


def test_real_digits_score_near_ten_noise_and_one_digit_low():
    _, _, x_te, y_te = digits_split(16)
    real = digit_inception_score(x_te)["digit_is"]
    assert 8.5 < real <= 10.0  # 9.04: confident and balanced
    # one class only (a collapsed generator): confident but p(y) is a spike
    ones = x_te[y_te == 1]
    assert digit_inception_score(ones)["digit_is"] < 1.5
    noise = torch.rand(297, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert digit_inception_score(noise)["digit_is"] < real - 3.0
    # digits_metrics (wgan eval of a digits run) reports the same number
    assert digits_metrics(x_te, _classifier(16))["digit_is"] == pytest.approx(real, rel=1e-9)


def _classifier(resolution):
    from wgan.metrics import get_digit_classifier

    return get_digit_classifier(resolution)


@pytest.mark.parametrize(
    "images, match",
    [
        (torch.zeros(4, 3, 16, 16), r"\(N, 1, R, R\)"),
        (torch.zeros(4, 1, 12, 12), "resolution must be one of"),
        (torch.zeros(0, 1, 16, 16), "empty"),
        (torch.full((2, 1, 16, 16), float("nan")), "non-finite"),
    ],
)
def test_bad_images(images, match):
    with pytest.raises(WganError, match=match):
        digit_inception_score(images)
