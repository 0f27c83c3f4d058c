"""Training throughput: :func:`bench`, eager and compiled, iterations per second and FLOPs.

``wgan bench [PRESET|CONFIG.yaml] [key=value ...]`` builds the
:class:`~wgan.training.trainer.Trainer` of a config in a temporary directory (no evaluation, figures
or checkpoints), runs ``warmup`` generator iterations
(:meth:`~wgan.training.trainer.Trainer.train_step`: ``n_critic`` critic steps, then one generator
step), then ``repeats`` timed blocks of ``steps`` iterations each and reports medians:

* **time**: device-side. On CUDA, a pair of CUDA events around each block (the host synchronises
  only at the block's end, like training, which reads statistics back every ``log_every`` steps);
  on the CPU, ``time.perf_counter``. ``ms_per_iter`` is the median block time / ``steps``;
  ``ms_per_critic_step`` comes from one extra block that runs only the critic phase (per
  iteration ``n_critic`` critic steps' draws and :meth:`~wgan.gan.step.GANStep.critic_update`).
* **eager and compiled**: the measurement above is of the eager iteration. Then (unless
  ``compile=False``, ``--no-compile``) a second Trainer of the same config is built with
  ``train.compile=true`` (the whole iteration as one ``torch.compile(fullgraph=True)`` graph, a
  CUDA graph on a GPU); its first iteration, which traces and compiles, is timed on its own
  (``compile_s``: inductor's on-disk caches make a second run's compile faster), and after
  warm-up it is timed in blocks like the eager one (``compiled_ms_per_iter``);
  ``compile_speedup`` is eager ms / compiled ms.
* **FLOPs**: ``torch.utils.flop_counter.FlopCounterMode`` over one whole ``train_step``. That
  includes the gradient penalty's double backward (Gulrajani et al. 2017, Alg. 1): the input
  gradient ``grad_x D(x_hat)`` with ``create_graph=True`` and the backward through it. Only
  matrix products and convolutions are counted (2 FLOPs per multiply-add); elementwise work is
  not, so ``achieved_gflops`` is the rate of dense algebra. The count is of what actually runs:
  :func:`wgan.constraints.input_gradient_norm` skips the all-zero branch that plain autograd
  sends back through the forward pass of a ReLU critic (see there), so the paper's toy setting
  counts 16.1 GFLOP per iteration, where plain autograd counts 18.8 (the issue's "about 19").
* **memory**: ``torch.cuda.max_memory_allocated`` over the timed blocks on CUDA; on the CPU the
  peak resident set size of the whole process (``resource.getrusage``: the interpreter, torch
  and the data included, and never reset, so it is an upper bound).
* **roofline** (CPU): the best sustained rate of ``torch.mm`` at the toy model's hidden-layer
  shape, ``(B x H) @ (H x H)`` in fp32 with every thread, measured in short windows interleaved
  with the timed blocks, so that both see the same machine load. It turns into an iteration
  rate ``roofline_iters_per_s = roofline_flops_per_s / flops_per_iter``, the rate the step would
  reach if all its counted FLOPs ran as fast as that one large matmul and nothing else took
  time; ``fraction_of_roofline`` is ``iters_per_s / roofline_iters_per_s`` (and
  ``compiled_fraction_of_roofline`` the same for the compiled iteration, whose FLOPs are taken
  to be the eager count).

File-based image datasets without ``data.path`` are replaced by random images of their shape
(:mod:`wgan.scale.bench.random_data`).
"""

from __future__ import annotations

import copy
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from wgan.config import Config
from wgan.errors import WganError
from wgan.scale.bench.flops import count_flops, replay_dense_ops
from wgan.scale.bench.machine import cpu_model, peak_rss_mb
from wgan.scale.bench.random_data import needs_random_data, random_images
from wgan.scale.bench.roofline import matmul_roofline, roofline_shape
from wgan.scale.bench.timing import time_ms
from wgan.training.threads import ThreadGovernor

__all__ = ["bench"]


def _count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _critic_steps(trainer: Any) -> Callable[[], None]:
    """One iteration's critic phase alone: ``n_critic`` times one critic step's draws
    (:meth:`~wgan.gan.step.GANStep.draw_critic`) and its update, with the iteration's penalty
    factors."""
    engine = trainer.gan_step

    def run() -> None:
        h = trainer.hyper()
        for i in range(engine.n_critic):
            x = engine.draw_critic(trainer.batches, trainer.rng, trainer.batch_size)
            engine.critic_update(trainer.train_state, x, h, h["penalty_due"][i])

    return run


def _bench_eager(
    cfg: Config,
    run_dir: Path,
    dataset: Any,
    steps: int,
    warmup: int,
    repeats: int,
    roofline_seconds: float,
    dense_replay: bool,
    tick: Callable[[], None],
) -> dict[str, Any]:
    """The eager measurement of :func:`bench`: FLOPs, blocks, critic block, roofline, memory.

    The Trainer lives only here, so that its memory is free before the compiled one is built.
    """
    from wgan.training.trainer import Trainer

    trainer = Trainer(cfg, run_dir, dataset=dataset)
    device = trainer.device
    is_cpu = device.type == "cpu"

    for _ in range(warmup):
        trainer.train_step()
    calls: list = []
    flops = count_flops(trainer.train_step, calls)  # one full generator iteration

    def block() -> None:
        for _ in range(steps):
            trainer.train_step()
            tick()

    critic_phase = _critic_steps(trainer)

    def critic_block() -> None:
        for _ in range(steps):
            critic_phase()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    m, k, n = roofline_shape(cfg)
    roofline = 0.0
    block_ms: list[float] = []
    # The roofline is measured in windows interleaved with the blocks, so that both see the
    # same machine load; at least 5 windows in all, so one preempted window is no loss.
    windows = max(1, -(-5 // repeats))  # per block
    for _ in range(repeats):
        if is_cpu:
            rate = matmul_roofline(m, k, n, seconds=roofline_seconds / repeats, windows=windows)
            roofline = max(roofline, rate)
        block_ms.append(time_ms(block, device))
    critic_ms = time_ms(critic_block, device)
    if device.type == "cuda":  # read before the replay allocates its operands
        peak_mb = torch.cuda.max_memory_allocated(device) / 2**20
        peak_kind = "cuda max_memory_allocated"
        device_name = torch.cuda.get_device_name(device)
    else:
        peak_mb = peak_rss_mb()
        peak_kind = "cpu peak RSS of the process"
        device_name = cpu_model()
    dense_ms = replay_dense_ops(calls, passes=min(repeats, 3)) if dense_replay else None
    return {
        "device": device,
        "device_name": device_name,
        "flops": flops,
        "block_ms": block_ms,
        "critic_ms": critic_ms,
        "roofline": roofline,
        "roofline_shape": (m, k, n),
        "peak_mb": peak_mb,
        "peak_kind": peak_kind,
        "dense_ms": dense_ms,
        "params_g": _count_params(trainer.gen),
        "params_d": _count_params(trainer.critic),
    }


def _bench_compiled(
    cfg: Config,
    run_dir: Path,
    dataset: Any,
    steps: int,
    warmup: int,
    repeats: int,
    tick: Callable[[], None],
) -> dict[str, Any]:
    """Compile time and ms / iteration of ``cfg`` with ``train.compile=true``.

    The first :meth:`~wgan.training.trainer.Trainer.train_step` traces and compiles the whole
    iteration (``torch.compile(fullgraph=True)``) and runs it once: its time is ``compile_s``. Then
    ``max(warmup, 2)`` untimed iterations (on CUDA, ``mode="reduce-overhead"`` records its CUDA
    graph on a later call than the first) and ``repeats`` timed blocks of ``steps``.
    """
    from wgan.training.trainer import Trainer

    cfg = copy.deepcopy(cfg)
    cfg.train.compile = True
    trainer = Trainer(cfg, run_dir, dataset=dataset)
    device = trainer.device
    compile_ms = time_ms(trainer.train_step, device)  # trace + compile + one iteration
    for _ in range(max(warmup, 2)):
        trainer.train_step()

    def block() -> None:
        for _ in range(steps):
            trainer.train_step()
            tick()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    block_ms = [time_ms(block, device) for _ in range(repeats)]
    out: dict[str, Any] = {
        "compile_s": compile_ms / 1e3,
        "compiled_ms_per_iter": statistics.median(block_ms) / steps,
        "compiled_ms_per_iter_min": min(block_ms) / steps,
    }
    if device.type == "cuda":
        out["compiled_peak_mem_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


def bench(
    cfg: Config,
    steps: int = 20,
    warmup: int = 3,
    repeats: int = 5,
    random_data: bool | None = None,
    roofline_seconds: float = 1.0,
    dense_replay: bool = True,
    compile: bool = True,
) -> dict[str, Any]:
    """Measure the training throughput of ``cfg`` (see the module docstring for the method).

    The main measurement is of the eager iteration (``train.compile`` is set false for it);
    with ``compile`` a second Trainer of the same config with ``train.compile=true`` is then
    built and timed the same way, after its first (compiling) iteration.

    Args:
        cfg: the run's config (not modified).
        steps: generator iterations per timed block.
        warmup: untimed generator iterations first (allocator, kernels, caches).
        repeats: timed blocks; times are their median.
        random_data: replace the dataset by random images of its shape: ``None`` does so only
            for file-based image datasets without ``data.path`` (MNIST, CIFAR, folders).
        roofline_seconds: CPU time budget of the matmul roofline, spread over the blocks.
        dense_replay: also time the iteration's matrix products and convolutions alone
            (:func:`replay_dense_ops`), to split the iteration into dense work and the rest.
        compile: also measure the compiled iteration (``train.compile=true``).

    Returns:
        A flat dict: ``preset``, ``device``, ``device_name``, ``torch``, ``threads``,
        ``precision``, ``batch_size``, ``n_critic``, ``params_g``, ``params_d``,
        ``flops_per_iter``, ``ms_per_iter``, ``ms_per_iter_min``, ``ms_per_critic_step``,
        ``ms_per_generator_step``, ``iters_per_s``, ``achieved_gflops``, ``peak_mem_mb``,
        ``peak_mem_kind``, ``compile`` (whether the compiled iteration was measured); with
        ``dense_replay`` ``dense_ms_per_iter`` (the dense ops alone), ``dense_gflops`` and
        ``fraction_of_dense_bound`` (= dense time / iteration time); on the CPU
        ``roofline_gflops``, ``roofline_shape``, ``roofline_iters_per_s`` and
        ``fraction_of_roofline``. With ``compile``: ``compile_s`` (the first compiled
        iteration, compilation included), ``compiled_ms_per_iter``,
        ``compiled_ms_per_iter_min``, ``compiled_iters_per_s``, ``compiled_achieved_gflops``
        (the eager FLOP count over the compiled time), ``compile_speedup`` (eager ms /
        compiled ms), on the CPU ``compiled_fraction_of_roofline`` and on CUDA
        ``compiled_peak_mem_mb``.
    """
    if steps < 1 or repeats < 1 or warmup < 0:
        raise WganError(
            f"bench needs steps >= 1, repeats >= 1 and warmup >= 0 "
            f"(got steps={steps}, repeats={repeats}, warmup={warmup})"
        )
    cfg = copy.deepcopy(cfg)
    cfg.train.progress = False
    cfg.train.eval_every = cfg.train.figure_every = cfg.train.checkpoint_every = 0
    cfg.train.compile = False  # the eager measurement; the compiled one follows
    use_random = needs_random_data(cfg, random_data)
    dataset = random_images(cfg) if use_random else None
    data_label = cfg.data.name if dataset is None else f"random {tuple(dataset.images.shape)}"

    # Threads as in training: train.threads, or as many as other processes leave free.
    governor = ThreadGovernor(cfg.train.threads)
    with tempfile.TemporaryDirectory(prefix="wgan-bench-") as tmp, governor:
        eager = _bench_eager(
            cfg,
            Path(tmp) / "eager",
            dataset,
            steps,
            warmup,
            repeats,
            roofline_seconds,
            dense_replay,
            governor.tick,
        )
        compiled = (
            _bench_compiled(
                cfg, Path(tmp) / "compiled", dataset, steps, warmup, repeats, governor.tick
            )
            if compile
            else None
        )
    device, flops, block_ms = eager["device"], eager["flops"], eager["block_ms"]
    is_cpu = device.type == "cpu"
    roofline, (m, k, n), dense_ms = eager["roofline"], eager["roofline_shape"], eager["dense_ms"]

    ms_per_iter = statistics.median(block_ms) / steps
    n_critic = cfg.train.n_critic
    ms_per_critic = eager["critic_ms"] / (steps * n_critic)
    result: dict[str, Any] = {
        "preset": cfg.name,
        "data": data_label,
        "device": device.type,
        "device_name": eager["device_name"],
        "torch": torch.__version__,
        "threads": governor.threads,
        "thread_counts": list(governor.used),  # every count used (they follow the load)
        "interop_threads": torch.get_num_interop_threads(),
        "precision": cfg.train.precision,
        "batch_size": cfg.data.batch_size,
        "n_critic": n_critic,
        "params_g": eager["params_g"],
        "params_d": eager["params_d"],
        "steps": steps,
        "repeats": repeats,
        "flops_per_iter": flops,
        "ms_per_iter": ms_per_iter,
        "ms_per_iter_min": min(block_ms) / steps,
        "ms_per_critic_step": ms_per_critic,
        "ms_per_generator_step": max(0.0, ms_per_iter - n_critic * ms_per_critic),
        "iters_per_s": 1e3 / ms_per_iter,
        "achieved_gflops": flops / (ms_per_iter * 1e-3) / 1e9,
        "peak_mem_mb": eager["peak_mb"],
        "peak_mem_kind": eager["peak_kind"],
        "compile": compiled is not None,
    }
    if dense_ms is not None and dense_ms > 0:
        result.update(
            dense_ms_per_iter=dense_ms,
            dense_gflops=flops / (dense_ms * 1e-3) / 1e9,
            fraction_of_dense_bound=dense_ms / ms_per_iter,
        )
    if is_cpu:
        roofline_iters = roofline * 1e9 / flops if flops else float("nan")
        result.update(
            roofline_gflops=roofline,
            roofline_shape=f"({m}x{k})@({k}x{n}) fp32",
            roofline_iters_per_s=roofline_iters,
            fraction_of_roofline=result["iters_per_s"] / roofline_iters if flops else 0.0,
        )
    if compiled is not None:
        compiled_ms = compiled["compiled_ms_per_iter"]
        result.update(compiled)
        result.update(
            compiled_iters_per_s=1e3 / compiled_ms,
            compiled_achieved_gflops=flops / (compiled_ms * 1e-3) / 1e9,
            compile_speedup=ms_per_iter / compiled_ms,
        )
        if is_cpu:
            result["compiled_fraction_of_roofline"] = (
                result["compiled_iters_per_s"] / result["roofline_iters_per_s"] if flops else 0.0
            )
    return result
