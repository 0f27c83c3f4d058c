"""Data parallelism on images: 2 processes x B/2 take the same steps as 1 process with batch B.

The image counterpart of tests/training/test_distributed.py's MLP test (gloo on the CPU, 2
processes): a DCGAN WGAN-GP on the digits, a conditional GAN (label embeddings, wrong-label term),
and a WGAN-GP whose generator keeps an EMA (updated inside the iteration). Two generator iterations
of the real step (GANStep.iteration) run on the same draws: all of them in one process, each
process's half of the rows in two. The generator has no batch norm here, because batch norm
normalises each shard with its own statistics (as DistributedDataParallel without SyncBatchNorm),
which is not the full batch's step.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from helpers import tiny

from wgan.config import resolve
from wgan.gan.draws import Draws
from wgan.training.distributed import DistContext
from wgan.training.trainer import Trainer

B = 8
ITERATIONS = 2
BASE = tiny("generator.norm=none", "train.n_critic=1", width=8, batch=B)
CASES = {
    "image": ("digits-wgan-gp", ["train.ema=0"]),
    # BN-free critic: the minimax critic of digits-dcgan has batch norm, which couples samples.
    "conditional": ("digits-cgan", ["critic.norm=none", "train.ema=0"]),
    "ema": ("digits-wgan-gp", ["train.ema=0.9"]),
}
# Keys of a draw whose first axis is the batch; the others are (n_critic, B, ...).
BATCH_FIRST = ("g_noise", "g_labels")


def _trainer(case: str, run_dir: Path, ctx: DistContext) -> Trainer:
    preset, extra = CASES[case]
    return Trainer(resolve(preset, [*BASE, *extra]), run_dir, dist=ctx)


def _rows(draws: dict, ctx: DistContext) -> dict:
    """This process's rows of full-batch draws."""
    rows = slice(ctx.rank * B // ctx.world_size, (ctx.rank + 1) * B // ctx.world_size)
    return {k: v[rows] if k in BATCH_FIRST else v[:, rows] for k, v in draws.items()}


def _steps(case: str, ctx: DistContext, run_dir: Path, draws: list[dict], out: Path) -> None:
    trainer = _trainer(case, run_dir, ctx)
    assert (trainer.gan_step.sync is not None) == ctx.enabled
    assert (trainer.ema is not None) == (case == "ema")
    for full in draws:
        mine = _rows(full, ctx)
        assert mine["real"].shape[1] == trainer.batch_size  # this process's share of B
        terms = trainer.gan_step.iteration(
            trainer.train_state, Draws.from_dict(mine), trainer.hyper()
        )
        assert "g" in terms and all(torch.isfinite(v) for v in terms["g"].values())
        if case == "conditional":
            assert "wrong_label" in terms["d"][0]
        else:
            assert "penalty" in terms["d"][0]
        trainer.step += 1
    if ctx.is_main:
        state = {"g": trainer.gen.state_dict(), "d": trainer.critic.state_dict()}
        if trainer.ema is not None:
            state["ema"] = trainer.ema.module.state_dict()
        torch.save(state, out)


def _worker(rank: int, world: int, init_file: str, tmp: str) -> None:
    """Every case in one process group (one spawn: starting processes is the cost here)."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        ctx = DistContext(rank, world, rank)
        for case in CASES:
            d = Path(tmp) / case
            _steps(case, ctx, d / f"run-rank{rank}", torch.load(d / "draws.pt"), d / "double.pt")
    finally:
        dist.destroy_process_group()


def test_two_processes_of_half_batch_equal_one_process_of_full_batch(tmp_path):
    for case in CASES:
        d = tmp_path / case
        # The draws of two full-batch iterations (real images, labels, noise, wrong labels, eps).
        maker = _trainer(case, d / "draws", DistContext())
        rng = torch.Generator().manual_seed(1)
        draws = [maker.gan_step.draw(maker.batches, rng, B).as_dict() for _ in range(ITERATIONS)]
        assert draws[0]["real"].shape == (1, B, 1, 16, 16)
        if case == "conditional":
            assert {"labels", "wrong", "g_labels"} <= set(draws[0])
        torch.save(draws, d / "draws.pt")
        _steps(case, DistContext(), d / "run1", draws, d / "single.pt")

    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)

    for case in CASES:
        d = tmp_path / case
        a, b = torch.load(d / "single.pt"), torch.load(d / "double.pt")
        assert a.keys() == b.keys() == ({"g", "d", "ema"} if case == "ema" else {"g", "d"})
        start = _trainer(case, d / "start", DistContext())
        moved = False
        for part in a:
            for key in a[part]:
                # Float tolerance: the all-reduce sums two half-batch means in another order.
                torch.testing.assert_close(
                    b[part][key], a[part][key], rtol=1e-5, atol=1e-6, msg=f"{case} {part} {key}"
                )
            if part in ("g", "d"):
                before = (start.gen if part == "g" else start.critic).state_dict()
                moved |= any(not torch.equal(before[k], a[part][k]) for k in a[part])
        assert moved, case  # the steps changed the weights (not two initial states compared)
