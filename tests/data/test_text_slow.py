"""Slow: the text model learns. The acceptance run of ``text-wgan-gp`` on the embedded corpus
(JS-4 at most half its value at initialisation; JS-1 within 10x of the real-vs-real baseline;
within 3x is not reached yet), and the drop in JS-4 on Tiny Shakespeare (``../shared/data/
tinyshakespeare.txt``, a file for tests only; skipped when absent) by at least a third in the
default budget (measured 0.999 -> 0.645), not by half.
"""

from pathlib import Path

import pytest

from wgan.config import resolve
from wgan.training.trainer import Trainer

SHAKESPEARE = Path(__file__).resolve().parents[3] / "shared" / "data" / "tinyshakespeare.txt"
QUIET = ["train.progress=false", "train.figure_every=0", "train.checkpoint_every=0"]


def _train(path, overrides):
    cfg = resolve("text-wgan-gp", [*QUIET, "train.eval_every=0", *overrides])
    trainer = Trainer(cfg, path)
    before = trainer.evaluate()
    trainer.fit()
    return before, trainer.evaluate()


@pytest.fixture(scope="module")
def embedded_run(tmp_path_factory):
    """The default ``text-wgan-gp`` run on the embedded corpus: JS-n before and after."""
    return _train(tmp_path_factory.mktemp("text") / "run", [])


@pytest.mark.slow
def test_text_wgan_gp_halves_js4_on_the_embedded_corpus(embedded_run):
    before, after = embedded_run
    assert after["js4"] <= 0.5 * before["js4"], (before["js4"], after["js4"])
    # the exact JS to the corpus's true 4-gram law falls the same way
    assert after["js4_exact"] <= 0.5 * before["js4_exact"]


@pytest.mark.slow
def test_text_wgan_gp_js1_within_10x_of_the_baseline(embedded_run):
    """The preset's JS-1 target (6,400 steps; benchmarks/TUNING.md): seeds 0 / 1 measured 6.6x
    and 4.5x the real-vs-real baseline."""
    _, after = embedded_run
    assert after["js1"] <= 10 * after["js1_baseline"], (after["js1"], after["js1_baseline"])


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="not met yet: JS-1 ends at 0.00090 / 0.00061 bits (seeds 0 / 1, 6,400 steps) against a "
    "real-vs-real baseline of 0.00014 (target 3x); rarer words are under-produced (docs/text.md)",
)
def test_text_wgan_gp_js1_within_3x_of_the_baseline(embedded_run):
    _, after = embedded_run
    assert after["js1"] <= 3 * after["js1_baseline"], (after["js1"], after["js1_baseline"])


@pytest.mark.slow
@pytest.mark.skipif(not SHAKESPEARE.is_file(), reason="tinyshakespeare.txt is not here")
def test_js4_drops_on_tiny_shakespeare(tmp_path):
    overrides = ["data.name=text", f"data.path={SHAKESPEARE}"]
    before, after = _train(tmp_path / "run", overrides)
    # measured: JS-4 0.999 -> 0.645 in the default 6,400 steps (0.708 at 3,200; real vs real
    # 0.35), JS-1 0.0079 (real vs real 0.0034). Issue 23's target: JS-4 falls by a third.
    assert after["js4"] <= (2 / 3) * before["js4"], (before["js4"], after["js4"])
    assert after["js1"] <= 0.1 * before["js1"], (before["js1"], after["js1"])
