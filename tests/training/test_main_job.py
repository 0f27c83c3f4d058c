"""End to end: the main job (`wgan train`, no argument) reaches a measured quality.

The run time is printed, not asserted: speed is measured by `wgan bench`, never by a timed test
(a loaded CI machine would make such a test flaky).
"""

import json
import subprocess
import sys
import time

import pytest

from wgan.store.tracking import read_jsonl


def run_main_job(tmp_path, *overrides):
    start = time.time()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "wgan",
            "train",
            *overrides,
            "train.progress=false",
            "--out-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    seconds = time.time() - start
    assert proc.returncode == 0, proc.stderr[-2000:]
    run = next(tmp_path.iterdir())
    evals = [r for r in read_jsonl(run / "metrics.jsonl") if r["kind"] == "eval"]
    return proc.stdout, evals[-1], seconds


def test_main_job_covers_8_of_8_modes(tmp_path):
    out, final, seconds = run_main_job(tmp_path)
    print(json.dumps({"seconds": round(seconds, 1), **final}))
    assert "figures:" in out and "metrics:" in out
    assert final["n_samples"] == 2500
    # Measured (2 CPU cores, PyTorch 2.13; 3,000 steps; seed 0, this test's): 8/8 modes,
    # high-quality fraction 0.912, KL to uniform 0.0018, exact W1 0.059 (seeds 1, 2 in the
    # tuning sweep: 0.916 / 0.929, W1 0.041 / 0.069). Each bound fails a 2x regression: twice
    # the low-quality fraction (0.18) gives 0.82 < 0.85, twice the W1 (0.08-0.14) > 0.10 for
    # all but the best seed.
    assert final["modes_captured"] == 8
    assert final["high_quality_fraction"] >= 0.85
    assert final["kl_to_uniform"] < 0.01
    assert final["w1"] <= 0.10  # two independent 2,500-sample sets of the data: ~0.03-0.07


@pytest.mark.slow
def test_25_gaussians_covers_25_of_25_modes(tmp_path):
    out, final, seconds = run_main_job(tmp_path, "toy-wgan-gp-25")
    print(json.dumps({"seconds": round(seconds, 1), **final}))
    # Measured (seed 0, this test's): 25/25, high quality 0.877, W1 0.092 in 101 s (seeds 1, 2
    # in the tuning sweep: 0.806 / 0.867). A 2x regression of the low-quality fraction (0.25)
    # gives 0.75 < 0.78; the old preset's 0.41-0.62 fails it too.
    assert final["modes_captured"] == 25
    assert final["high_quality_fraction"] >= 0.78


# -- The toy presets' targets (issue 23), on three seeds, raw and refined -----------------------


def _raw_and_refined(tmp_path, preset: str, seed: int) -> tuple[dict, dict]:
    """Train ``preset`` with ``seed`` in-process; its final metrics on the evaluation samples,
    then the same samples moved by 50 steps of discriminator gradient flow (the refinement that
    reaches the targets: benchmarks/TUNING.md)."""
    from wgan.config import resolve
    from wgan.training.run import load_run
    from wgan.training.train import train

    cfg = resolve(preset, [f"train.seed={seed}", "train.progress=false", "train.figure_every=0"])
    cfg.out_dir = str(tmp_path / f"{preset}-{seed}")
    result = train(cfg, tensorboard=False)
    run = load_run(result.run_dir)
    return run.evaluate(), run.evaluate(refine="flow")


#: Two independent 2,500-point samples of the data are 0.03-0.07 apart in exact W1, so a
#: refined W1 within 0.01 of the raw one is "no worse" (measured: up by at most 0.005).
W1_NOISE = 0.01


@pytest.fixture(scope="module")
def toy_targets(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy-targets")
    return {
        (p, s): _raw_and_refined(out, p, s)
        for p in ("toy-wgan-gp", "toy-wgan-gp-25")
        for s in (0, 1, 2)
    }


@pytest.mark.slow
@pytest.mark.parametrize(
    "preset, modes, raw_hq, refined_hq",
    [("toy-wgan-gp", 8, 0.90, 0.98), ("toy-wgan-gp-25", 25, 0.75, 0.95)],
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_toy_preset_meets_its_targets_raw_and_refined(
    toy_targets, preset, modes, raw_hq, refined_hq, seed
):
    # Measured (benchmarks/TUNING.md): 8 Gaussians 91.2-92.9 % raw, 99.8-100 % after 50 flow
    # steps; 25 Gaussians 80.6-87.7 % raw, 99.9 % refined (seed 0).
    raw, refined = toy_targets[(preset, seed)]
    print(json.dumps({"preset": preset, "seed": seed, "raw": raw, "refined": refined}))
    assert raw["modes_captured"] == modes and refined["modes_captured"] == modes
    assert raw["high_quality_fraction"] >= raw_hq
    assert refined["high_quality_fraction"] >= refined_hq
    assert refined["w1"] <= raw["w1"] + W1_NOISE
