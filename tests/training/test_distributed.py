"""Data parallelism: 2 processes x B/2 give the same step as 1 process with batch B (gloo, CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from wgan.config import resolve
from wgan.errors import ConfigError
from wgan.gan.draws import CriticDraws, Draws, GeneratorDraws
from wgan.training.distributed import DistContext
from wgan.training.train import train
from wgan.training.trainer import Trainer

B = 16


def _one_step(ctx: DistContext, run_dir: Path, out: Path) -> None:
    """One generator iteration of the real step (GANStep: a critic update with the objective
    and the gradient penalty, then a generator update) on this process's rows of one batch.

    The Trainer wires ``sync`` (the all-reduce of gradients) into its GANStep; the draws are
    the full batch's, made identically everywhere, so 2 x B/2 and 1 x B see the same samples.
    """
    overrides = [
        "generator.hidden=16",
        "critic.hidden=16",
        "train.n_critic=1",
        "train.progress=false",
    ]
    overrides.append(f"data.batch_size={B}")
    trainer = Trainer(resolve("toy-wgan-gp", overrides), run_dir, dist=ctx)
    engine = trainer.gan_step
    assert (engine.sync is not None) == ctx.enabled  # gradients are averaged over processes
    g = torch.Generator().manual_seed(1)
    latent = trainer.gen.latent_dim
    real = torch.randn(1, B, 2, generator=g)  # (n_critic, B, dim)
    noise = torch.randn(1, B, latent, generator=g)
    eps = torch.rand(1, B, generator=g)
    g_noise = torch.randn(B, latent, generator=g)
    rows = slice(ctx.rank * B // ctx.world_size, (ctx.rank + 1) * B // ctx.world_size)
    draws = Draws(
        CriticDraws(real[:, rows], noise[:, rows], eps=eps[:, rows]),
        GeneratorDraws(g_noise[rows]),
    )
    assert draws.critic.real.shape[1] == trainer.batch_size  # this process's share of B
    out_terms = engine.iteration(trainer.train_state, draws, trainer.hyper())
    assert "penalty" in out_terms["d"][0] and "g" in out_terms
    if ctx.is_main:
        torch.save({"g": trainer.gen.state_dict(), "d": trainer.critic.state_dict()}, out)


def _worker(rank: int, world: int, init_file: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        ctx = DistContext(rank, world, rank)
        # average_tensors: each tensor's mean over the processes (one all-reduce)
        mine = [torch.full((2, 3), float(rank)), torch.full((4,), 10.0 * rank)]
        averaged = ctx.average_tensors(mine)
        assert torch.equal(averaged[0], torch.full((2, 3), (world - 1) / 2))
        assert torch.equal(averaged[1], torch.full((4,), 10.0 * (world - 1) / 2))
        _one_step(ctx, Path(out).parent / "run2", Path(out))
    finally:
        dist.destroy_process_group()


def test_two_processes_of_half_batch_equal_one_process_of_full_batch(tmp_path):
    single, double = tmp_path / "single.pt", tmp_path / "double.pt"
    _one_step(DistContext(), tmp_path / "run1", single)
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
    grads = [torch.randn(3, 2), torch.randn(4)]
    before = [g.clone() for g in grads]
    averaged = ctx.average_tensors(grads)
    assert all(torch.equal(a, b) for a, b in zip(averaged, before, strict=True))
    values = torch.randn(5)
    assert torch.equal(ctx.average(values), values)
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


def test_torchrun_resumes_a_one_process_run_with_two(tmp_path):
    """A run trained by 1 process continues under `torchrun --nproc_per_node 2 -m wgan train
    --resume RUN`: rank 0 continues the saved stream, the other rank starts its own; each step
    is logged once, only rank 0 writes, and the weights move on from the checkpoint."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    common = [
        "generator.hidden=16",
        "critic.hidden=16",
        "data.batch_size=32",
        "train.eval_every=0",
        "train.figure_every=0",
        "train.progress=false",
        "train.eval_samples=200",
        "train.log_every=1",
    ]
    cfg = resolve("toy-wgan-gp", ["train.steps=2", *common])  # 1 process: this one
    cfg.out_dir = str(tmp_path)
    run = train(cfg, tensorboard=False).run_dir
    before = torch.load(run / "checkpoint.pt", weights_only=True)
    assert before["step"] == 2
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    resumed = subprocess.run(
        [*cmd, "-m", "wgan", "train", "--resume", str(run), "train.steps=4"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert resumed.stdout.count("run:") == 1  # only rank 0 reports
    assert [p for p in tmp_path.iterdir() if p.is_dir()] == [run]  # no second run directory
    assert not list(run.glob(".checkpoint.pt.tmp*"))
    after = torch.load(run / "checkpoint.pt", weights_only=True)
    assert after["step"] == 4
    for net in ("generator", "critic"):
        assert all(torch.isfinite(v).all() for v in after[net].values())
        assert any(not torch.equal(before[net][k], v) for k, v in after[net].items())
    # Adam's step count went on from the checkpoint's (5 critic steps per iteration)
    assert after["opt_d"]["step"].item() == before["opt_d"]["step"].item() + 2 * 5
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["kind"] == "train"] == [1, 2, 3, 4]
