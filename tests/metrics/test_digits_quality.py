"""End to end on the embedded digits: the GANs reach a measured quality.

The default suite runs shortened versions; the full presets (and stacked digits, whose shortest
informative run takes minutes) are marked slow:
``python -m pytest -q -m slow tests/metrics/test_digits_quality.py``.

Every bound is the measured value with a stated margin for run-to-run spread, tight enough that
a 2x regression fails (measured on 2 CPU cores, PyTorch 2.13; seeds 0 and 1 where two values are
given, seed 0 being the tests' default).
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch
from PIL import Image

from wgan.cli.app import main
from wgan.config import resolve
from wgan.metrics.classifier import digits_split, get_digit_classifier
from wgan.metrics.images import digits_metrics
from wgan.training.train import train

QUIET = ["train.progress=false", "train.figure_every=0", "train.checkpoint_every=0"]


def _run(preset, tmp_path, *overrides):
    cfg = resolve(preset, [*QUIET, *overrides])
    cfg.out_dir = str(tmp_path)
    start = time.time()
    result = train(cfg, tensorboard=False)
    return result, time.time() - start


def _reference_fd() -> float:
    """Fréchet distance of the 297 held-out real digits to the 1,500 training digits."""
    x_train, _, x_test, _ = digits_split(16)
    return digits_metrics(x_test, get_digit_classifier(16), real=x_train)["fd_classifier"]


def test_digits_wgan_gp_short_run_covers_the_classes(tmp_path):
    result, seconds = _run("digits-wgan-gp", tmp_path, "train.steps=400", "train.eval_every=0")
    m = result.metrics
    noise = torch.rand(2000, 1, 16, 16) * 2 - 1
    fd_noise = digits_metrics(noise, get_digit_classifier(16), real=digits_split(16)[2])
    print(f"\n400 steps in {seconds:.0f} s: {m}; real held-out FD {_reference_fd():.2f}")
    # measured at 400 steps: 10/10 classes, class KL 0.053 / 0.064, FD 18.0 / 21.4, recall
    # 0.91 / 0.92 (for scale: noise FD ~600, the full 2,000-step run ~10, real held-out ~6)
    assert m["classes_covered"] == 10
    assert m["class_kl"] < 0.15
    assert m["fd_classifier"] < 30.0  # 1.4-1.7x the measured values; 2x (36-43) fails
    assert m["fd_classifier"] < 0.05 * fd_noise["fd_classifier"]
    assert m["recall"] > 0.8


@pytest.fixture(scope="module")
def digits_full(tmp_path_factory):
    """The whole ``digits-wgan-gp`` preset (seed 0) and the held-out floor of FD."""
    result, seconds = _run("digits-wgan-gp", tmp_path_factory.mktemp("digits"))
    floor = _reference_fd()
    print(f"\ndigits-wgan-gp: {seconds:.0f} s, {result.metrics}; real held-out FD {floor:.2f}")
    return result.metrics, floor


@pytest.mark.slow
def test_digits_wgan_gp_full_preset(digits_full):
    # Issue 23's targets: FD <= 1.5x the held-out floor, recall >= 0.85. Measured at 4,000 steps
    # (benchmarks/TUNING.md), seed 0: 10/10 classes, class KL 0.015, FD 8.73-8.94 against the
    # floor 6.0 (seeds 1, 2: 10.0, 6.7), precision 0.69-0.70, recall 0.89-0.90.
    m, floor = digits_full
    assert m["classes_covered"] == 10
    assert m["class_kl"] < 0.05
    assert m["fd_classifier"] <= 1.5 * floor
    assert m["recall"] >= 0.85
    assert m["precision"] > 0.6  # the 2,000-step preset's was 0.65


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="not met: precision 0.68-0.70 on seeds 0-2 against the target 0.8 (benchmarks/TUNING.md "
    "'Digits': steps, lr decay, a wider G or D, and the refinements were tried)",
)
def test_digits_wgan_gp_precision_target(digits_full):
    m, _ = digits_full
    assert m["precision"] >= 0.8


def test_digits_cgan_generates_the_requested_class(tmp_path):
    result, seconds = _run("digits-cgan", tmp_path, "train.steps=600", "train.eval_every=0")
    print(f"\ndigits-cgan 600 steps in {seconds:.0f} s: {result.metrics}")
    m = result.metrics
    # measured at 600 steps: conditional accuracy 0.991 / 0.998, FD 13.6 / 12.7, 10/10 classes
    assert m["conditional_accuracy"] >= 0.95  # 5x the measured error rate (0.9% / 0.2%)
    assert m["classes_covered"] == 10
    assert m["fd_classifier"] < 20.0  # 1.5x the measured values


@pytest.fixture(scope="module")
def cgan_full(tmp_path_factory):
    """The whole ``digits-cgan`` preset (seed 0) and the held-out floor of FD."""
    result, seconds = _run("digits-cgan", tmp_path_factory.mktemp("cgan"))
    print(f"\ndigits-cgan: {seconds:.0f} s, {result.metrics}")
    return result.metrics, _reference_fd()


@pytest.mark.slow
def test_digits_cgan_full_preset(cgan_full):
    # measured (benchmarks/TUNING.md, seeds 0 / 1 at 4,000 steps): asked class 99.95 / 99.90 %,
    # 10/10 classes, FD 10.4 / 11.1 against the floor 6.0
    m, _ = cgan_full
    assert m["conditional_accuracy"] >= 0.995  # issue 23's target
    assert m["classes_covered"] == 10
    assert m["fd_classifier"] < 16.0


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="not met: FD 10.4-11.1 against 1.5x the floor (9.0); the samples are crisp (precision "
    "0.96) but cover a third of the held-out digits (recall 0.37-0.39; benchmarks/TUNING.md)",
)
def test_digits_cgan_fd_target(cgan_full):
    m, floor = cgan_full
    assert m["fd_classifier"] <= 1.5 * floor


@pytest.mark.slow
def test_stacked_digits_short_run_covers_most_modes(tmp_path):
    """300 steps (about 2.5 minutes on 2 shared cores): the 1,000 modes are mostly covered.
    (At 100 steps 5 modes, at 200 steps 118-155 on 10,000 samples: the coverage rises steeply
    between 200 and 300 steps, so no shorter run is informative.)"""
    result, seconds = _run(
        "stacked-digits-wgan-gp", tmp_path, "train.steps=300", "train.eval_every=0"
    )
    m = result.metrics
    print(f"\nstacked-digits-wgan-gp 300 steps in {seconds:.0f} s: {m}")
    # measured at 300 steps on 26,000 samples: 841 / 824 modes, KL to uniform 1.55 / 1.56
    # (an untrained generator: 1 mode, KL 6.9 = log 1000)
    assert m["modes_covered"] >= 700  # twice the measured missing modes (~170) fails
    assert m["mode_kl"] < 2.2


@pytest.fixture(scope="module")
def stacked_full(tmp_path_factory):
    """The whole ``stacked-digits-wgan-gp`` preset (seed 0)."""
    out = tmp_path_factory.mktemp("stacked")
    result, seconds = _run("stacked-digits-wgan-gp", out, "train.eval_every=0")
    print(f"\nstacked-digits-wgan-gp: {seconds:.0f} s, {result.metrics}")
    return result.metrics


@pytest.mark.slow
def test_stacked_digits_full_preset(stacked_full):
    # measured at 12,500 compiled steps (benchmarks/TUNING.md): 1000/1000 modes on 26,000
    # samples, KL to uniform 0.081 (seed 0; 0.0797 on one thread, seed 1 0.085), against the
    # target 0.08, met on some seeds only (26,000 real stacked samples: KL 0.05; eager 10,000
    # steps: 0.099)
    assert stacked_full["modes_covered"] == 1000  # issue 23's target
    assert stacked_full["mode_kl"] < 0.16  # 2x the measured KL


def test_cli_sample_by_label_and_eval_on_an_image_run(tmp_path, capsys):
    out = tmp_path / "runs"
    args = [
        "train",
        "digits-cgan",
        "train.steps=2",
        "generator.width=8",
        "critic.width=8",
        "train.eval_samples=100",
        *QUIET,
        "--out-dir",
        str(out),
    ]
    assert main(args) == 0
    run = next(out.iterdir())
    assert (run / "figures" / "latest.png").is_file()
    assert (
        main(
            [
                "sample",
                str(run),
                "--label",
                "3",
                "--num",
                "16",
                "--out",
                str(tmp_path / "three.png"),
            ]
        )
        == 0
    )
    grid = np.asarray(Image.open(tmp_path / "three.png"))
    assert grid.ndim == 2 and grid.shape[0] > 16  # a grayscale grid of 16 digits
    assert (
        main(
            ["sample", str(run), "--label", "3", "--num", "5", "--out", str(tmp_path / "three.npy")]
        )
        == 0
    )
    assert np.load(tmp_path / "three.npy").shape == (5, 1, 16, 16)
    capsys.readouterr()
    assert main(["eval", str(run), "--num", "100", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert {"classes_covered", "class_kl", "fd_classifier", "conditional_accuracy"} <= set(metrics)
    assert (
        main(["sample", str(run), "--label", "12", "--num", "2", "--out", str(tmp_path / "x.png")])
        == 2
    )
    assert "out of range" in capsys.readouterr().err
    assert main(["sample", str(run), "--num", "2", "--out", str(tmp_path / "x.csv")]) == 2


def _tiny_digits_run(tmp_path):
    """A one-step digits-wgan-gp run at width 8 trained through the CLI; its directory."""
    out = tmp_path / "runs"
    args = [
        "train",
        "digits-wgan-gp",
        "train.steps=1",
        "generator.width=8",
        "critic.width=8",
        "train.eval_samples=50",
        *QUIET,
        "--out-dir",
        str(out),
    ]
    assert main(args) == 0
    return next(out.iterdir())


def test_cli_eval_without_inception_weights_says_how(tmp_path, capsys):
    run = _tiny_digits_run(tmp_path)
    capsys.readouterr()
    missing = tmp_path / "nope.pt"
    assert main(["eval", str(run), "--num", "50", "--inception-weights", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err


def test_cli_eval_with_inception_weights_gives_is_fid_kid(tmp_path, capsys):
    import warnings

    from helpers import FakeInception

    weights = tmp_path / "inception-2015-12-05.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated in 2.13
        torch.jit.save(torch.jit.script(FakeInception()), str(weights))
    run = _tiny_digits_run(tmp_path)
    capsys.readouterr()
    assert (
        main(["eval", str(run), "--num", "60", "--json", "--inception-weights", str(weights)]) == 0
    )
    metrics = json.loads(capsys.readouterr().out)
    for key in ("fid", "kid_mean", "kid_std", "is_mean", "is_std", "fd_classifier"):
        assert np.isfinite(metrics[key]), key
    assert metrics["fid"] > 0 and metrics["is_mean"] >= 1.0
