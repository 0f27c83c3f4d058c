"""Image-quality metrics: FD / KID / IS, precision-recall, digit classifier, Inception loader."""

import importlib
import math
import time
import warnings

import numpy as np
import pytest
import scipy.linalg
import torch
from helpers import FakeInception

from wgan.errors import MissingWeightsError, WganError
from wgan.metrics.classifier import (
    DIGITS_N_TRAIN,
    classifier_accuracy,
    classifier_cache_path,
    digits_split,
    get_digit_classifier,
)
from wgan.metrics.frechet import (
    feature_statistics,
    frechet_distance,
    frechet_distance_features,
    inception_score,
    kernel_inception_distance,
)
from wgan.metrics.images import (
    class_metrics,
    conditional_accuracy,
    digits_metrics,
    inception_metrics,
    stacked_digits_metrics,
)
from wgan.metrics.inception import (
    INCEPTION_ENV_VAR,
    images_to_uint8_range,
    load_inception,
)
from wgan.metrics.precision_recall import precision_recall

# ---------------------------------------------------------------------------------------------
# Fréchet distance, KID, IS
# ---------------------------------------------------------------------------------------------


def scipy_fd(f1: np.ndarray, f2: np.ndarray) -> float:
    """Reference FD with the classic scipy.linalg.sqrtm(Σ₁ Σ₂) formulation."""
    m1, m2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    covmean = np.real(covmean)
    return float(((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def _correlated(rng, n, d, scale):
    return rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) * scale + rng.normal(size=d)


@pytest.mark.parametrize("d", [8, 64])
def test_fd_matches_scipy_reference(d):
    rng = np.random.default_rng(d)
    f1 = _correlated(rng, 600, d, 0.5)
    f2 = _correlated(rng, 500, d, 0.3)
    ours = frechet_distance_features(f1, f2)
    assert ours == pytest.approx(scipy_fd(f1, f2), rel=1e-8, abs=1e-8)
    assert ours > 1.0


@pytest.mark.parametrize("d", [8, 64])
def test_fd_near_singular_covariance(d):
    # Half the coordinates are (almost exactly) linear in the other half: rank ≈ d/2.
    rng = np.random.default_rng(100 + d)

    def near_singular(n):
        a = rng.normal(size=(n, d // 2))
        b = a @ rng.normal(size=(d // 2, d // 2)) + 1e-6 * rng.normal(size=(n, d // 2))
        return np.concatenate([a, b], axis=1)

    f1, f2 = near_singular(400), near_singular(400)
    assert np.linalg.cond(np.cov(f1, rowvar=False)) > 1e10
    ours = frechet_distance_features(f1, f2)
    assert isinstance(ours, float) and math.isfinite(ours)
    assert ours == pytest.approx(scipy_fd(f1, f2), rel=1e-6)


@pytest.mark.parametrize(("n1", "n2", "d"), [(40, 30, 64), (300, 50, 256), (3, 2, 16)])
def test_fd_small_sample_path_equals_statistics_path(n1, n2, d):
    # n < d: frechet_distance_features uses the N₁×N₂ singular values instead of d×d eigh.
    rng = np.random.default_rng(n1 + d)
    f1, f2 = _correlated(rng, n1, d, 0.2), _correlated(rng, n2, d, 0.3)
    direct = frechet_distance(*feature_statistics(f1), *feature_statistics(f2))
    # Σ₁ is singular here: the d×d path takes square roots of ~1e-13 rounding-noise
    # eigenvalues on its null space (each adding up to ~1e-6), so agreement is ~1e-8 relative.
    assert frechet_distance_features(f1, f2) == pytest.approx(direct, rel=1e-6)
    assert frechet_distance_features(f1, f1) < 1e-8


def test_fd_identical_statistics_is_zero():
    rng = np.random.default_rng(0)
    mu, sigma = feature_statistics(_correlated(rng, 300, 64, 1.0))
    assert mu.dtype == np.float64 and sigma.shape == (64, 64)
    assert np.allclose(sigma, sigma.T)
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-6
    # Singular covariance (rank 10 < d = 64): still 0, not nan and no complex part.
    mu_s, sigma_s = feature_statistics(rng.normal(size=(11, 64)))
    assert abs(frechet_distance(mu_s, sigma_s, mu_s, sigma_s)) < 1e-6


def test_fd_of_mean_shift_is_squared_norm():
    rng = np.random.default_rng(1)
    m = np.array([1.0, -2.0, 0.5, 0.0])
    f1 = rng.normal(size=(50_000, 4))
    f2 = rng.normal(size=(50_000, 4)) + m
    # Sampling error of ‖μ̂₁ − μ̂₂‖²: std ≈ 2‖m‖·√(2/N) ≈ 0.03.
    assert frechet_distance_features(f1, f2) == pytest.approx(float(m @ m), abs=0.1)
    # Closed form for diagonal Gaussians: ‖Δμ‖² + Σ (σ₁ − σ₂)².
    s1, s2 = np.diag([1.0, 4.0]), np.diag([9.0, 1.0])
    assert frechet_distance([0, 0], s1, [3, 0], s2) == pytest.approx(9 + 4 + 1, abs=1e-10)


def test_fd_input_errors():
    with pytest.raises(WganError, match="same d"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2))
    with pytest.raises(WganError, match="at least 2"):
        feature_statistics(np.zeros((1, 3)))
    with pytest.raises(WganError, match="dimension"):
        frechet_distance_features(np.zeros((5, 3)), np.zeros((5, 4)))


def test_kid_same_distribution_near_zero_and_shift_positive():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(1500, 16))
    b = rng.normal(size=(1500, 16))
    c = rng.normal(size=(1500, 16)) + 0.5
    same = kernel_inception_distance(a, b, subsets=20, subset_size=500)
    shifted = kernel_inception_distance(a, c, subsets=20, subset_size=500)
    assert set(same) == {"kid_mean", "kid_std"}
    assert abs(same["kid_mean"]) < 0.01
    assert abs(same["kid_mean"]) < 3 * same["kid_std"] + 1e-3  # unbiased: centred on 0
    assert shifted["kid_mean"] > 0.1
    assert shifted["kid_mean"] > 20 * shifted["kid_std"]
    # Deterministic given the seed; subset size capped by the set sizes.
    assert kernel_inception_distance(a, c[:50], subsets=3, seed=7) == kernel_inception_distance(
        a, c[:50], subsets=3, seed=7
    )


def test_kid_matches_direct_formula():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(20, 5)), rng.normal(size=(20, 5)) + 0.3
    # subset_size >= n: every subset is the whole set (a permutation), so the std is ~0.
    out = kernel_inception_distance(x, y, subsets=3, subset_size=100)

    def k(a, b):
        return (a @ b.T / 5 + 1) ** 3

    m = 20
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    expected = (
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
        + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        - 2 * kxy.mean()
    )
    assert out["kid_mean"] == pytest.approx(expected, rel=1e-10)
    assert out["kid_std"] < 1e-10


def test_inception_score_bounds_and_known_value():
    k = 7
    onehot = np.eye(k)[np.arange(700) % k]  # one-hot, each class equally often
    s = inception_score(onehot, splits=10)
    assert s["is_mean"] == pytest.approx(k, rel=1e-12)
    assert s["is_std"] < 1e-12
    same = np.tile(np.array([0.2, 0.3, 0.5]), (100, 1))
    assert inception_score(same, splits=5)["is_mean"] == pytest.approx(1.0, abs=1e-12)
    # Half the rows (1, 0), half (0.5, 0.5): p(y) = (0.75, 0.25).
    p = np.array([[1.0, 0.0]] * 50 + [[0.5, 0.5]] * 50)
    kl1 = math.log(1 / 0.75)
    kl2 = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    assert inception_score(p, splits=1)["is_mean"] == pytest.approx(math.exp((kl1 + kl2) / 2))
    with pytest.raises(WganError, match="probabilities"):
        inception_score(np.ones((10, 3)), splits=2)
    with pytest.raises(WganError, match="splits"):
        inception_score(onehot[:5], splits=10)


# ---------------------------------------------------------------------------------------------
# Precision / recall
# ---------------------------------------------------------------------------------------------


def _clusters(rng, centres, n_per):
    return np.concatenate([c + 0.1 * rng.normal(size=(n_per, centres.shape[1])) for c in centres])


def test_precision_recall_identical_and_disjoint():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(400, 8))
    assert precision_recall(x, x.copy()) == {"precision": 1.0, "recall": 1.0}
    far = rng.normal(size=(300, 8)) + 100.0
    assert precision_recall(x, far) == {"precision": 0.0, "recall": 0.0}
    with pytest.raises(WganError, match="more than 3"):
        precision_recall(x, x[:3])
    with pytest.raises(WganError, match="dimension"):
        precision_recall(x, far[:, :4])


def test_precision_recall_half_the_modes(monkeypatch):
    rng = np.random.default_rng(5)
    # 10 well-separated 2-D modes (in higher dimension the union of k-NN balls of a finite
    # sample covers less of its own distribution, and precision of a perfect sample drops).
    centres = np.stack([10.0 * np.arange(10), np.zeros(10)], axis=1)  # (10, 2)
    real = _clusters(rng, centres, 300)  # (3000, 2)
    fake = _clusters(rng, centres[:5], 300)  # covers modes 0-4 only
    pr = precision_recall(torch.from_numpy(real), fake, k=3)
    assert pr["precision"] > 0.95
    assert 0.46 < pr["recall"] <= 0.5
    # Chunked computation (tiny blocks) gives exactly the same answer.
    prm = importlib.import_module("wgan.metrics.precision_recall")  # the package re-exports

    monkeypatch.setattr(prm, "_BLOCK_ENTRIES", 1000)
    assert precision_recall(real, fake, k=3) == pr


# ---------------------------------------------------------------------------------------------
# Digit classifier (one R=16 classifier trained once for the module, in a temporary cache)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("wgan-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WGAN_CACHE_DIR", str(d))
        yield d


@pytest.fixture(scope="module")
def trained16(cache_dir):
    t0 = time.perf_counter()
    clf = get_digit_classifier(16)
    return clf, time.perf_counter() - t0


@pytest.fixture(scope="module")
def clf16(trained16):
    return trained16[0]


def test_digits_split_is_fixed_and_disjoint():
    x_tr, y_tr, x_te, y_te = digits_split(16)
    assert x_tr.shape == (DIGITS_N_TRAIN, 1, 16, 16) and x_te.shape == (297, 1, 16, 16)
    assert y_tr.dtype == torch.int64 and set(y_te.tolist()) == set(range(10))
    assert float(x_tr.min()) >= -1.0 and float(x_tr.max()) <= 1.0
    assert float(x_tr[:, :, 0, 0].mean()) < -0.9  # background (corner pixels) is -1
    x8 = digits_split(8)[0]
    assert set(np.unique(x8.numpy() * 8 + 8).round(6)) <= set(range(17))  # v/16·2-1, v ∈ 0..16
    # No held-out digit is also a training digit (the split is of indices, not values, but the
    # 8×8 images are almost all distinct): the sets barely intersect.
    tr = {tuple(v) for v in x8.flatten(1).tolist()}
    te8 = digits_split(8)[2].flatten(1).tolist()
    assert sum(tuple(v) in tr for v in te8) <= 3
    again = digits_split(16)
    assert torch.equal(again[2], x_te) and torch.equal(again[1], y_tr)


def test_classifier_trains_caches_and_is_accurate(trained16, cache_dir, monkeypatch):
    clf, seconds = trained16
    print(f"classifier trained in {seconds:.1f} s")  # reported, not asserted (no timed tests)
    assert not clf.training
    path = classifier_cache_path(16)
    assert path == cache_dir / "wgan" / "digits-classifier-r16-v1.safetensors"
    assert path.is_file()
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    assert float(meta["heldout_accuracy"]) == clf.heldout_accuracy
    acc = classifier_accuracy(clf)
    assert acc >= 0.97
    assert acc == pytest.approx(clf.heldout_accuracy)

    import wgan.metrics.classifier as classifier_module

    def no_training(*args, **kwargs):
        raise AssertionError("the cached classifier should be loaded, not retrained")

    monkeypatch.setattr(classifier_module, "train_digit_classifier", no_training)
    again = get_digit_classifier(16)  # loaded from the cache
    x = digits_split(16)[2][:64]
    with torch.no_grad():
        assert torch.equal(again(x), clf(x))
        assert clf.features(x).shape == (64, clf.feature_dim)
    with pytest.raises(WganError, match=r"\(B, 1, 16, 16\)"):
        clf(torch.zeros(2, 1, 8, 8))


def test_corrupt_cache_is_retrained(tmp_path):
    path = classifier_cache_path(8, tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a safetensors file")
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    threads = torch.get_num_threads()
    with pytest.warns(UserWarning, match="unreadable"):
        clf = get_digit_classifier(8, cache_dir=tmp_path)
    # Training ran in a forked RNG with a local thread count: the caller's state is untouched.
    assert torch.equal(torch.rand(3), expected)
    assert torch.get_num_threads() == threads
    assert classifier_accuracy(clf) >= 0.97
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the overwritten file now loads without warning
        again = get_digit_classifier(8, cache_dir=tmp_path)
    x = digits_split(8)[2][:32]
    with torch.no_grad():
        assert torch.equal(again(x), clf(x))
    assert not list(path.parent.glob("*.tmp"))  # no temporary file left behind


def test_class_metrics():
    assert class_metrics(np.arange(100) % 10, 10) == {"classes_covered": 10, "kl_to_uniform": 0.0}
    collapsed = class_metrics(torch.full((50,), 3), 10)
    assert collapsed["classes_covered"] == 1
    assert collapsed["kl_to_uniform"] == pytest.approx(math.log(10))
    half = class_metrics([0, 1] * 10, 4)  # two of four classes, balanced: KL = log 2
    assert half == {"classes_covered": 2, "kl_to_uniform": pytest.approx(math.log(2))}
    with pytest.raises(WganError, match=r"\[0, 10\)"):
        class_metrics([0, 10], 10)


def test_digits_metrics_real_vs_real_and_noise(clf16):
    x_tr, y_tr, x_te, y_te = digits_split(16)
    real = digits_metrics(x_te, clf16, real=x_tr)
    assert set(real) == {
        "classes_covered",
        "class_kl",
        "confidence",
        "digit_is",
        "fd_classifier",
        "precision",
        "recall",
    }
    assert real["classes_covered"] == 10
    assert real["class_kl"] < 0.05
    assert real["confidence"] > 0.9
    # Reference FD of real held-out vs real training digits (finite-sample floor): ≈ 6.0.
    assert 1.0 < real["fd_classifier"] < 15.0
    assert real["precision"] > 0.8 and real["recall"] > 0.8
    noise = torch.rand(297, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    fake = digits_metrics(noise, clf16, real=x_tr)
    assert fake["fd_classifier"] > 20 * real["fd_classifier"]
    assert fake["precision"] < 0.2 and fake["recall"] < 0.2
    # Without real images: only the label statistics.
    keys = {"classes_covered", "class_kl", "confidence", "digit_is"}
    assert set(digits_metrics(x_te, clf16)) == keys
    with pytest.raises(WganError, match=r"\(N, 1, 16, 16\)"):
        digits_metrics(torch.zeros(4, 1, 8, 8), clf16)


def test_conditional_accuracy(clf16):
    _, _, x_te, y_te = digits_split(16)
    assert conditional_accuracy(clf16, x_te, y_te) >= 0.97
    wrong = (y_te + 1) % 10
    assert conditional_accuracy(clf16, x_te, wrong) < 0.05
    with pytest.raises(WganError, match="labels"):
        conditional_accuracy(clf16, x_te, y_te[:5])


def test_stacked_digits_metrics_protocol(clf16):
    _, _, x_te, y_te = digits_split(16)
    n = 26_000
    idx = torch.randint(0, len(x_te), (n, 3), generator=torch.Generator().manual_seed(0))
    stacked = x_te[idx].squeeze(2)  # (N, 3, 1, 16, 16) -> (N, 3, 16, 16)
    m = stacked_digits_metrics(stacked, clf16)
    # Expected coverage of 26,000 draws from the real label distribution: ≈ 1000.0.
    q = np.bincount(y_te.numpy(), minlength=10) / len(y_te)
    pm = np.einsum("a,b,c->abc", q, q, q).ravel()
    assert (1 - (1 - pm) ** n).sum() > 999.9
    assert m["modes_covered"] >= 995
    assert m["mode_kl"] < 0.1
    # Mode arithmetic: channels (3, 1, 4) -> mode 314, all samples collapsed onto it.
    pick = [int((y_te == d).nonzero()[0]) for d in (3, 1, 4)]
    one = x_te[pick].reshape(1, 3, 16, 16).expand(50, -1, -1, -1)
    collapsed = stacked_digits_metrics(one, clf16)
    assert collapsed == {"modes_covered": 1, "mode_kl": pytest.approx(math.log(1000))}


# ---------------------------------------------------------------------------------------------
# Inception loader (a tiny TorchScript stand-in with NVIDIA's call convention)
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def fake_inception_file(tmp_path):
    path = tmp_path / "inception-2015-12-05.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated in 2.13
        torch.jit.save(torch.jit.script(FakeInception()), str(path))
    return path


def test_load_inception_shapes_and_scaling(fake_inception_file):
    ext = load_inception(fake_inception_file, batch_size=3)
    imgs = torch.cat([torch.full((3, 1, 8, 8), -1.0), torch.full((4, 1, 8, 8), 1.0)])
    f = ext.features(imgs)  # 7 images in batches of 3
    assert f.shape == (7, 2048) and f.dtype == torch.float64
    assert torch.equal(f[:3, :9], torch.zeros(3, 9))
    assert torch.equal(f[3:, :9], torch.full((4, 9), 255.0))  # grayscale -> 3 equal channels
    p = ext.probabilities(imgs)
    assert p.shape == (7, 1008)
    assert torch.allclose(p.sum(1), torch.ones(7, dtype=torch.float64))
    # [-1, 1] -> [0, 255], quantised like 8-bit images; RGB passes through.
    x = torch.tensor([-1.0, -0.5, 0.0, 0.999, 2.0]).reshape(1, 1, 1, 5).expand(1, 3, 1, 5)
    assert images_to_uint8_range(x)[0, 0, 0].tolist() == [0.0, 64.0, 128.0, 255.0, 255.0]
    with pytest.raises(WganError, match=r"\(N, 1 or 3, H, W\)"):
        ext.features(torch.zeros(2, 2, 8, 8))


def test_inception_metrics_with_fake_model(fake_inception_file, monkeypatch):
    monkeypatch.setenv(INCEPTION_ENV_VAR, str(fake_inception_file))
    ext = load_inception()  # from the environment variable
    g = torch.Generator().manual_seed(0)
    real = torch.rand(60, 3, 8, 8, generator=g) * 2 - 1
    fake = torch.rand(60, 3, 8, 8, generator=g) * 0.5
    out = inception_metrics(fake, real, ext, kid_subsets=5, kid_subset_size=30, is_splits=3)
    assert set(out) == {"fid", "kid_mean", "kid_std", "is_mean", "is_std"}
    assert out["fid"] > 100.0 and out["kid_mean"] > 0.0
    assert 1.0 <= out["is_mean"] <= 1008.0
    same = inception_metrics(real, ext.features(real), ext, kid_subsets=2, is_splits=2)
    assert abs(same["fid"]) < 1e-6  # precomputed real features accepted


def test_missing_inception_weights_messages(tmp_path, monkeypatch):
    monkeypatch.delenv(INCEPTION_ENV_VAR, raising=False)
    with pytest.raises(MissingWeightsError) as e:
        load_inception()
    msg = str(e.value)
    for needle in ("--inception-weights", INCEPTION_ENV_VAR, "inception-2015-12-05.pt"):
        assert needle in msg
    assert "nothing is downloaded" in msg and "\n" not in msg
    missing = tmp_path / "nope.pt"
    with pytest.raises(MissingWeightsError, match="nope.pt"):
        load_inception(missing)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torchscript archive")
    with pytest.raises(WganError, match="bad.pt") as e2:
        load_inception(bad)
    assert not isinstance(e2.value, MissingWeightsError)


def test_package_exports_image_metrics():
    import wgan.metrics as wm

    for name in (
        "digits_metrics",
        "stacked_digits_metrics",
        "inception_metrics",
        "precision_recall",
        "get_digit_classifier",
        "load_inception",
        "frechet_distance",
    ):
        assert name in wm.__all__ and callable(getattr(wm, name))
    assert wm.precision_recall is precision_recall
