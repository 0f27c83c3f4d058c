"""Slow: the text model learns. The acceptance run of ``text-wgan-gp`` on the embedded corpus
(JS-4 at most half its value at initialisation, JS-1 within 3x of the real-vs-real baseline),
and the same drop in JS-4 on Tiny Shakespeare (``../shared/data/tinyshakespeare.txt``, a file
for tests only; skipped when absent).
"""

from pathlib import Path

import pytest

from wgan.config import resolve
from wgan.train import Trainer

SHAKESPEARE = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"
QUIET = ["train.progress=false", "train.figure_every=0", "train.checkpoint_every=0"]


def _train(tmp_path, overrides):
    cfg = resolve("text-wgan-gp", [*QUIET, *overrides])
    trainer = Trainer(cfg, tmp_path / "run")
    before = trainer.evaluate()
    trainer.fit()
    return before, trainer.evaluate()


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="not met yet: measured at step 1000 JS-4 0.83 (0.98 at init; target <= 0.49) and "
    "JS-1 0.031 (baseline 0.0005; target <= 0.0016); tune text-wgan-gp, then drop this mark",
)
def test_text_wgan_gp_acceptance_on_the_embedded_corpus(tmp_path):
    before, after = _train(tmp_path, ["train.eval_every=0"])
    assert after["js4"] <= 0.5 * before["js4"], (before["js4"], after["js4"])
    assert after["js1"] <= 3 * after["js1_baseline"], (after["js1"], after["js1_baseline"])
    assert after["js4_exact"] < before["js4_exact"]


@pytest.mark.slow
@pytest.mark.skipif(not SHAKESPEARE.is_file(), reason="tinyshakespeare.txt is not here")
def test_js4_drops_on_tiny_shakespeare(tmp_path):
    overrides = ["data.name=text", f"data.path={SHAKESPEARE}", "train.eval_every=0"]
    before, after = _train(tmp_path, [*overrides, "train.steps=400"])
    assert after["js4"] < 0.95 * before["js4"], (before["js4"], after["js4"])
    assert after["js1"] < 0.5 * before["js1"], (before["js1"], after["js1"])
