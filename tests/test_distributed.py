"""Data parallelism: 2 processes x B/2 give the same step as 1 process with batch B (gloo, CPU)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from wgan.config import resolve
from wgan.constraints import GradientPenalty, input_gradient_norm
from wgan.data import make_dataset
from wgan.distributed import DistContext
from wgan.errors import ConfigError
from wgan.game import build_models, build_objective
from wgan.train import Phase, Trainer, build_optimizer

B = 16


def _one_step(ctx: DistContext, out: Path) -> None:
    """One critic step (objective + gradient penalty) and one generator step on this shard."""
    torch.manual_seed(0)
    cfg = resolve("toy-wgan-gp", ["generator.hidden=16", "critic.hidden=16"])
    gen, critic, _ = build_models(cfg, make_dataset("8gaussians"), "cpu")
    objective, gp = build_objective(cfg), GradientPenalty(weight=10.0)
    opt_d = build_optimizer(cfg.d_optim, critic.parameters())
    opt_g = build_optimizer(cfg.g_optim, gen.parameters())
    # The full batch is drawn identically everywhere; each process keeps its own rows.
    g = torch.Generator().manual_seed(1)
    real, z, eps, z2 = (
        torch.randn(B, 2, generator=g),
        torch.randn(B, 2, generator=g),
        torch.rand(B, 1, generator=g),
        torch.randn(B, 2, generator=g),
    )
    rows = slice(ctx.rank * B // ctx.world_size, (ctx.rank + 1) * B // ctx.world_size)
    real, z, eps, z2 = real[rows], z[rows], eps[rows], z2[rows]

    def critic_loss(i: int) -> dict[str, torch.Tensor]:
        fake = gen(z).detach()
        terms = dict(objective.critic_loss(critic(real), critic(fake)))
        x_hat = eps * real + (1 - eps) * fake
        terms["loss"] = terms["loss"] + gp.value(input_gradient_norm(critic, x_hat, True))
        return terms

    def generator_loss(i: int) -> dict[str, torch.Tensor]:
        return dict(objective.generator_loss(critic(gen(z2))))

    sync = ctx.average_gradients if ctx.enabled else None
    Trainer.optimise(Phase("critic", critic, opt_d, 1, critic_loss, sync=sync), 0)
    Trainer.optimise(Phase("generator", gen, opt_g, 1, generator_loss, critic, sync=sync), 0)
    if ctx.is_main:
        torch.save({"g": gen.state_dict(), "d": critic.state_dict()}, out)


def _worker(rank: int, world: int, init_file: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        _one_step(DistContext(rank, world, rank), Path(out))
    finally:
        dist.destroy_process_group()


def test_two_processes_of_half_batch_equal_one_process_of_full_batch(tmp_path):
    single, double = tmp_path / "single.pt", tmp_path / "double.pt"
    _one_step(DistContext(), single)
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(double)), nprocs=2, join=True)
    a, b = torch.load(single), torch.load(double)
    for part in ("g", "d"):
        for key in a[part]:
            # Float tolerance: the all-reduce sums two half-batch means in another order.
            torch.testing.assert_close(b[part][key], a[part][key], rtol=1e-5, atol=1e-6)


def test_shard_must_divide_the_batch():
    ctx = DistContext(rank=1, world_size=3)
    assert ctx.shard(9) == 3
    assert ctx.seed(5) != DistContext().seed(5)
    with pytest.raises(ConfigError, match="does not divide among 3 processes"):
        ctx.shard(10)


def test_single_process_context_is_a_no_op():
    ctx = DistContext()
    module = torch.nn.Linear(2, 1)
    module(torch.ones(1, 2)).sum().backward()
    before = module.weight.grad.clone()
    ctx.average_gradients(module)
    assert torch.equal(module.weight.grad, before)
    assert ctx.broadcast_object("x") == "x" and ctx.is_main and not ctx.enabled


def test_torchrun_two_processes_train_and_resume_with_one(tmp_path):
    """`torchrun --nproc_per_node 2 -m wgan train` writes one run (rank 0); 1 process resumes."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    common = [
        "generator.hidden=32",
        "critic.hidden=32",
        "data.batch_size=32",
        "train.eval_every=0",
        "train.figure_every=0",
        "train.progress=false",
        "train.eval_samples=200",
        "train.log_every=2",
    ]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "wgan",
        "train",
        "toy-wgan-gp",
        "train.steps=4",
        *common,
        "--out-dir",
        str(tmp_path),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dirs = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert len(run_dirs) == 1  # only rank 0 created a run directory
    run = run_dirs[0]
    assert (run / "checkpoint.pt").is_file() and (run / "metrics.jsonl").is_file()
    assert proc.stdout.count("run:") == 1  # only rank 0 reports
    resumed = subprocess.run(
        [sys.executable, "-m", "wgan", "train", "--resume", str(run), "train.steps=6"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["step"] == 6
