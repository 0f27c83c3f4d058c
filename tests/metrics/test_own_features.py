"""A feature network trained on a run's own images, cached like the digit classifier, and the
FD / precision / recall / colour distance it gives, beside their real-vs-real floors (issue 25:
"your own images get no quality number")."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from wgan.data.images import ImageDataset
from wgan.metrics import own_features
from wgan.metrics.own_features import (
    data_digest,
    feature_cache_path,
    get_feature_net,
    heldout_split,
    train_feature_net,
)
from wgan.metrics.own_metrics import own_feature_metrics


def _shapes(
    n_per_class: int = 30, labelled: bool = True, seed: int = 0, side: int = 16
) -> ImageDataset:
    """RGB: a red, green or blue square of random size and place on white, as bytes."""
    rng = np.random.default_rng(seed)
    pix = np.full((3 * n_per_class, side, side, 3), 255, dtype=np.uint8)
    labels = np.repeat(np.arange(3), n_per_class)
    for i, k in enumerate(labels):
        s = int(rng.integers(side // 3, side * 2 // 3))
        y, x = (int(v) for v in rng.integers(0, side - s, size=2))
        colour = [0, 0, 0]
        colour[k] = int(rng.integers(170, 256))
        pix[i, y : y + s, x : x + s] = colour
    images = torch.from_numpy(pix).permute(0, 3, 1, 2).contiguous()
    if not labelled:
        return ImageDataset(images, name="folder")
    return ImageDataset(images, torch.from_numpy(labels), 3, name="folder")


def test_the_split_holds_out_a_fifth_in_a_fixed_random_order():
    train, held = heldout_split(90)
    assert (len(train), len(held)) == (45, 45)  # half of a small dataset
    assert sorted(torch.cat([train, held]).tolist()) == list(range(90))
    assert torch.equal(heldout_split(90)[1], held)  # deterministic
    assert held.tolist() != sorted(held.tolist())  # any prefix is a uniform sample
    sizes = {n: len(heldout_split(n)[1]) for n in (50, 600, 2000, 5000, 50_000)}
    assert sizes == {50: 25, 600: 300, 2000: 500, 5000: 1000, 50_000: 2000}


def test_classes_give_a_classifier_and_none_an_autoencoder_deterministically():
    labelled = _shapes()
    net = train_feature_net(labelled)
    assert net.kind == "classifier" and net.quality >= 0.9  # held-out accuracy
    again = train_feature_net(labelled)
    for (k, a), (_, b) in zip(net.state_dict().items(), again.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    x = labelled.images[:4]
    assert net.features(x).shape == (4, 32)


def test_the_autoencoder_learns_images_on_white():
    """Mostly white 32-px images: an autoencoder whose output saturates at white (a tanh output
    under squared error) would score the RMSE of predicting white; it must do far better."""
    ds = _shapes(labelled=False, side=32)
    ae = train_feature_net(ds)
    assert ae.kind == "autoencoder" and ae.features(ds.images[:4]).shape == (4, 32)
    x = ds.images
    white = float(((x - 1) ** 2).mean().sqrt())  # the RMSE of an all-white output
    assert ae.quality < 0.75 * white  # held-out reconstruction RMSE


def test_the_network_is_cached_and_a_broken_cache_is_retrained(tmp_path, monkeypatch):
    ds = _shapes()
    net = get_feature_net(ds, cache_dir=tmp_path)
    path = feature_cache_path(ds, cache_dir=tmp_path)
    assert path.is_file() and path.parent == tmp_path / "wgan"
    assert data_digest(ds)[:16] in path.name

    def no_training(dataset):
        raise AssertionError("trained again")

    monkeypatch.setattr(own_features, "train_feature_net", no_training)
    cached = get_feature_net(ds, cache_dir=tmp_path)
    assert cached.quality == net.quality
    assert all(
        torch.equal(a, b) for a, b in zip(cached.parameters(), net.parameters(), strict=True)
    )
    monkeypatch.undo()
    path.write_bytes(b"not safetensors")
    with pytest.warns(UserWarning, match="unreadable"):
        again = get_feature_net(ds, cache_dir=tmp_path)
    assert all(torch.equal(a, b) for a, b in zip(again.parameters(), net.parameters(), strict=True))
    other = _shapes(seed=1)  # other images: another file
    assert feature_cache_path(other, cache_dir=tmp_path) != path


def test_samples_of_the_data_reach_the_floor_and_grey_images_do_not(tmp_path, monkeypatch):
    monkeypatch.setenv("WGAN_CACHE_DIR", str(tmp_path))
    ds = _shapes(n_per_class=100)
    _, held = heldout_split(len(ds))
    fresh = _shapes(n_per_class=100, seed=7).images  # new draws of the same distribution
    order = torch.randperm(300, generator=torch.Generator().manual_seed(0))
    good = own_feature_metrics(fresh[order], ds)
    assert good["feature_samples"] == len(held) == 150
    assert "not comparable with Inception FID" in good["feature_space"]
    grey = torch.zeros(300, 3, 16, 16)  # mid-grey images: no colour, no shape
    bad = own_feature_metrics(grey, ds)
    assert bad["fd_features_baseline"] == good["fd_features_baseline"]  # one floor per size
    assert good["fd_features"] < 2 * good["fd_features_baseline"]
    assert bad["fd_features"] > 20 * bad["fd_features_baseline"]
    assert good["precision"] > 0.5 and bad["precision"] == 0.0 and bad["recall"] == 0.0
    assert good["colour_distance"] < 2 * good["colour_distance_baseline"]
    assert bad["colour_distance"] > 5 * bad["colour_distance_baseline"]


def test_too_few_images_say_so_instead_of_a_number():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = own_feature_metrics(torch.zeros(10, 3, 16, 16), _shapes(n_per_class=10))
    assert list(out) == ["feature_space"] and "30 images, fewer than the 50" in out["feature_space"]
