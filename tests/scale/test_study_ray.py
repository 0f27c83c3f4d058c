"""The Ray launcher (a local Ray: ``ray.init(num_cpus=2)``, one session for the module) gives
the same runs as the local launcher: the same statuses, steps, final metrics and, bit for bit,
the same weights (both at one thread per run). Skipped where Ray is not installed
(``pip install 'wgan[ray]'``; ``.ci/run`` installs it)."""

import pytest
import torch
from helpers import tiny

from wgan.config import resolve
from wgan.scale.study import run_study
from wgan.store import checkpoints, provenance, rundirs

ray = pytest.importorskip("ray")

TINY = tiny(
    "train.device=cpu", "train.checkpoint_every=5", hidden=32, batch=64, steps=10, eval_samples=300
)


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_and_local_launchers_give_identical_runs(tmp_path, local_ray):
    study = [
        ("gp", resolve("toy-wgan-gp", [*TINY, "train.seed=3"])),
        ("clip", resolve("toy-wgan-clip", [*TINY, "train.seed=4"])),
    ]
    by_ray = run_study(study, tmp_path / "ray", launcher="ray", jobs=2, threads=1)
    by_local = run_study(study, tmp_path / "local", launcher="local", jobs=2, threads=1)
    assert [r["status"] for r in by_ray] == ["done", "done"], by_ray
    for r in by_ray:  # each Ray worker: its num_cpus as its thread count, the bounded spin
        record = provenance.read(tmp_path / "ray" / r["name"])[-1]["threads"]
        assert record["used"] == [1]
        assert record["openmp"]["GOMP_SPINCOUNT"] is not None
    for r, l in zip(by_ray, by_local, strict=True):
        assert (r["name"], r["status"], r["step"]) == (l["name"], l["status"], l["step"])
        assert r["metrics"] == l["metrics"]
        a = checkpoints.load_checkpoint(tmp_path / "ray" / r["name"] / rundirs.CHECKPOINT)
        b = checkpoints.load_checkpoint(tmp_path / "local" / l["name"] / rundirs.CHECKPOINT)
        for part in ("generator", "critic"):
            for key in a[part]:
                assert torch.equal(a[part][key], b[part][key]), (r["name"], part, key)
    # A re-run through Ray skips both (their records), as a local re-run does.
    again = run_study(study, tmp_path / "ray", launcher="ray", jobs=2, threads=1)
    assert [r["status"] for r in again] == ["skipped", "skipped"]
