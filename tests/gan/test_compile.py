"""``train.compile=true``: the whole generator iteration as one torch.compile(fullgraph=True) graph.

The compiled iteration is the same function as the eager one (``GANStep.iteration`` on the
functional path), fed the same draws, so the losses agree up to float32 rounding: inductor fuses
and reorders operations. Measured over 20 iterations: at most 2.4e-7 absolute on losses of order
0.1-10 (digits, toy). We assert, per iteration and per loss term, |compiled - eager| <= 1e-5 +
1e-4 |eager|: a compiled step that lost a term (the penalty, the wrong-label term), used another
learning rate or skipped an update would differ by far more (one Adam step moves these losses by
about 1e-3). ``fullgraph=True`` makes any graph break an error, so passing also proves there is
no host synchronisation or Python branch on a tensor inside the iteration.

Each test compiles once (tens of seconds on 2 CPU cores): the nets are small and n_critic is 2
to keep the graph short; everything else is the preset's.
"""

import copy

import pytest
import torch

from wgan.config import resolve
from wgan.scale.sweep import SweepTrainer, sweep_configs
from wgan.training.trainer import Trainer

ITERATIONS = 20

#: The toy case pins the learning-rate schedule (1,500 steps of linear decay, the main job's before
#: its tuning): these 20 iterations then stay within float rounding (max |diff| 1.2e-7). With the
#: tuned 3,000 steps the slightly larger rates reach a ReLU kink where one rounding flips a unit's
#: side, and one loss near 0 (-0.015) differs by 8.4e-5: a genuine rounding divergence, not a
#: difference of the compiled step.
CASES = [
    (
        "toy-wgan-gp",
        ["generator.hidden=64", "critic.hidden=64", "train.n_critic=2", "train.steps=1500"],
    ),
    (
        "digits-wgan-gp",
        ["generator.width=8", "critic.width=8", "data.batch_size=16", "train.n_critic=2"],
    ),
]


def losses(trainer: Trainer, n: int) -> torch.Tensor:
    """(n, n_critic + 1): each critic step's loss, then the generator's, per iteration."""
    rows = []
    for _ in range(n):
        out = trainer.train_step()
        rows.append([float(t["loss"]) for t in out["d"]] + [float(out["g"]["loss"])])
    return torch.tensor(rows, dtype=torch.float64)


@pytest.mark.parametrize("preset,overrides", CASES, ids=[c[0] for c in CASES])
def test_compiled_iteration_gives_the_eager_losses(tmp_path, preset, overrides):
    cfg = resolve(preset, ["train.device=cpu", "train.progress=false", *overrides])
    eager = Trainer(copy.deepcopy(cfg), tmp_path / "eager")
    compiled_cfg = copy.deepcopy(cfg)
    compiled_cfg.train.compile = True
    compiled = Trainer(compiled_cfg, tmp_path / "compiled")
    want, got = losses(eager, ITERATIONS), losses(compiled, ITERATIONS)
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-5), (got - want).abs().max()
    # Not vacuous: the losses move over these iterations by much more than the tolerance.
    assert (want[-1] - want[0]).abs().max() > 1e-2
    for a, b in zip(eager.gen.parameters(), compiled.gen.parameters(), strict=True):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)
    if eager.ema is not None:  # the EMA runs inside the compiled graph too
        pairs = zip(eager.ema.module.parameters(), compiled.ema.module.parameters(), strict=True)
        for a, b in pairs:
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)


def test_compiled_sweep_equals_separate_runs(tmp_path):
    """``engine="compile"``: the vmapped iteration compiled, K = 2 runs with different lrs."""
    base = resolve(
        "toy-wgan-gp",
        ["train.device=cpu", "train.progress=false", "generator.hidden=32", "critic.hidden=32"]
        + ["train.n_critic=1", "data.batch_size=64"],
    )
    cfgs = sweep_configs(base, [{"d_optim.lr": 1e-4}, {"d_optim.lr": 3e-4, "train.seed": 1}])
    sweep = SweepTrainer(cfgs, [tmp_path / "a", tmp_path / "b"], engine="compile")
    for _ in range(5):
        sweep.train_step()
    for k, cfg in enumerate(cfgs):
        single = Trainer(copy.deepcopy(cfg), tmp_path / f"single{k}")
        for _ in range(5):
            single.train_step()
        shell = sweep.sync(k)
        for a, b in zip(shell.critic.parameters(), single.critic.parameters(), strict=True):
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)
