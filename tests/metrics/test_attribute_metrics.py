"""The attribute classifier and the per-attribute accuracy of ``wgan.metrics.attributes``."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import wgan.metrics.attributes as A
from wgan.data.attributes import AttributeSchema
from wgan.data.shapes import SHAPES_SCHEMA, make_shapes, read_shape_attributes

S = SHAPES_SCHEMA  # columns circle, square, triangle, red, green, blue, yellow, large, filled


def _vec(shape: int, colour: int, large: int, filled: int) -> list[float]:
    v = [0.0] * 9
    v[shape], v[3 + colour], v[7], v[8] = 1.0, 1.0, float(large), float(filled)
    return v


# ------------------------------------------------------------------------- the arithmetic


def test_accuracy_report_counts_each_group_on_constructed_samples():
    asked = torch.tensor(
        [_vec(2, 0, 1, 1), _vec(0, 1, 0, 0), _vec(1, 2, 1, 0), _vec(0, 3, 0, 1)]
    )  # (4, 9)
    read = torch.tensor(
        [
            _vec(2, 0, 1, 1),  # all right
            _vec(0, 3, 0, 0),  # colour wrong
            _vec(0, 2, 0, 0),  # shape and size wrong
            _vec(0, 3, 0, 1),  # all right
        ]
    )
    rep = A.accuracy_report(S, read, asked, "attr")
    assert rep == {
        "attr_accuracy": (0.75 + 0.75 + 0.75 + 1.0) / 4,
        "attr_accuracy_shape": 0.75,
        "attr_accuracy_colour": 0.75,
        "attr_accuracy_large": 0.75,
        "attr_accuracy_filled": 1.0,
        "attr_exact": 0.5,
    }
    correct = A.group_correct(S, read, asked)
    assert correct.tolist() == [
        [True, True, True, True],
        [True, False, True, True],
        [False, True, False, True],
        [True, True, True, True],
    ]


def test_decode_logits_takes_each_groups_argmax_and_each_flags_sign():
    logits = torch.tensor(
        [
            [0.1, 2.0, -1.0, 0.0, 0.0, 3.0, 0.0, 0.5, -0.5],
            [5.0, 2.0, 4.0, 1.0, 0.9, 0.8, 0.7, -2.0, 2.0],
        ]
    )
    assert A.decode_logits(S, logits).tolist() == [_vec(1, 2, 1, 0), _vec(0, 0, 0, 1)]


def test_attribute_loss_is_cross_entropy_per_group_plus_bce_per_flag():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 9, generator=g)
    c = torch.tensor([_vec(i % 3, i % 4, i % 2, (i + 1) % 2) for i in range(5)])
    by_hand = (
        F.cross_entropy(logits[:, 0:3], c[:, 0:3].argmax(1))
        + F.cross_entropy(logits[:, 3:7], c[:, 3:7].argmax(1))
        + F.binary_cross_entropy_with_logits(logits[:, 7], c[:, 7])
        + F.binary_cross_entropy_with_logits(logits[:, 8], c[:, 8])
    )
    torch.testing.assert_close(A.attribute_loss(S, logits, c), by_hand)


def test_group_keys_are_safe_for_names_from_files():
    schema = AttributeSchema.flags(["Wavy_Hair", "a b", "x\x1b[31m"])
    assert A.group_keys(schema) == ["Wavy_Hair", "a_b", "x__31m"]


def test_heldout_split_is_fixed_and_disjoint():
    tr, te = A.heldout_split(1000)
    tr2, te2 = A.heldout_split(1000)
    assert torch.equal(tr, tr2) and torch.equal(te, te2)
    assert len(te) == 100 and len(tr) == 900
    assert set(tr.tolist()).isdisjoint(te.tolist())
    assert sorted(tr.tolist() + te.tolist()) == list(range(1000))


# ------------------------------------------------------------------------- the classifier


@pytest.fixture(scope="module")
def shapes_set():
    return make_shapes(n=1440, seed=3)


@pytest.fixture(scope="module")
def trained(shapes_set):
    return A.train_attribute_classifier(shapes_set, steps=400)


def test_classifier_learns_the_shapes_attributes(trained, shapes_set):
    """Held-out accuracy per group is high (an untrained net reads about 1/3, 1/4, 1/2, 1/2)."""
    acc = trained.heldout_accuracy
    assert set(acc) == {"shape", "colour", "large", "filled"}
    assert min(acc.values()) >= 0.97, acc
    # the recorded accuracy is that of the held-out images, recomputed here
    _, te = A.heldout_split(len(shapes_set))
    read = A.predict_attributes(trained, shapes_set.images[te])
    per_group = A.group_correct(S, read, shapes_set.attributes[te]).double().mean(0)
    assert per_group.tolist() == [acc[g.name] for g in S.groups]
    assert A.classifier_accuracy(trained) == sum(acc.values()) / 4


def test_classifier_agrees_with_the_pixel_reader_on_other_shapes(trained):
    """The second check: on images it never saw (another seed), noisy as generated ones are,
    the classifier reads what the exact pixel reader reads."""
    other = make_shapes(n=480, seed=11)
    x = other.images
    x = (x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))).clamp(-1, 1)
    by_pixels = read_shape_attributes(x)
    assert torch.equal(by_pixels, other.attributes)  # the reader is exact at this noise
    agree = A.group_correct(S, A.predict_attributes(trained, x), by_pixels).double().mean(0)
    assert agree.min() >= 0.97, agree


def test_classifier_is_cached_keyed_by_the_data_and_reused(tmp_path, monkeypatch):
    monkeypatch.setattr(A, "_STEPS", 5)  # the cache, not the accuracy, is tested here
    calls = []
    real_train = A.train_attribute_classifier

    def counting(dataset, steps=None):
        calls.append(dataset)
        return real_train(dataset, steps)

    monkeypatch.setattr(A, "train_attribute_classifier", counting)
    data = make_shapes(n=96, seed=0)
    first = A.get_attribute_classifier(data, cache_dir=tmp_path)
    fp = A.data_fingerprint(data.name, S, data.pixels, data.attributes)
    path = A.attribute_classifier_path(data.name, fp, tmp_path)
    assert path.is_file() and len(calls) == 1
    again = A.get_attribute_classifier(make_shapes(n=96, seed=0), cache_dir=tmp_path)
    assert len(calls) == 1  # the same data: loaded, not trained
    for (k, v), (k2, v2) in zip(
        first.state_dict().items(), again.state_dict().items(), strict=True
    ):
        assert k == k2 and torch.equal(v, v2)
    assert again.heldout_accuracy == first.heldout_accuracy
    other = make_shapes(n=96, seed=1)  # other data: its own file, trained anew
    A.get_attribute_classifier(other, cache_dir=tmp_path)
    assert len(calls) == 2
    assert len(list((tmp_path / "wgan").glob("attribute-classifier-shapes-*.safetensors"))) == 2
    path.write_bytes(b"not a safetensors file")  # unreadable: retrained, with a warning
    with pytest.warns(UserWarning, match="unreadable"):
        A.get_attribute_classifier(data, cache_dir=tmp_path)
    assert len(calls) == 3


def test_fingerprint_changes_with_the_data():
    data = make_shapes(n=96, seed=0)
    fp = A.data_fingerprint("shapes", S, data.pixels, data.attributes)
    flipped = data.attributes.clone()
    flipped[5, 7] = 1 - flipped[5, 7]
    pixels = data.pixels.clone()
    pixels[7, 0, 3, 3] ^= 255
    assert A.data_fingerprint("shapes", S, data.pixels, flipped) != fp
    assert A.data_fingerprint("shapes", S, pixels, data.attributes) != fp
    assert A.data_fingerprint("celeba", S, data.pixels, data.attributes) != fp
    assert A.data_fingerprint("shapes", S, data.pixels.clone(), data.attributes.clone()) == fp
