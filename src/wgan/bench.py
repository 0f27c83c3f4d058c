"""Training throughput: iterations per second, FLOPs, memory and, on the CPU, a matmul roofline.

``wgan bench [PRESET|CONFIG.yaml] [key=value ...]`` builds the :class:`~wgan.train.Trainer` of a
config in a temporary directory (no evaluation, figures or checkpoints), runs ``warmup`` generator
iterations (:meth:`~wgan.train.Trainer.train_step`: ``n_critic`` critic steps, then one generator
step), then ``repeats`` timed blocks of ``steps`` iterations each and reports medians:

* **time**: device-side. On CUDA, a pair of CUDA events around each block (the host synchronises
  only at the block's end, like training, which reads statistics back every ``log_every`` steps);
  on the CPU, ``time.perf_counter``. ``ms_per_iter`` is the median block time / ``steps``;
  ``ms_per_critic_step`` comes from one extra block that runs only the critic phase (per
  iteration ``n_critic`` critic steps' draws and :meth:`~wgan.step.GANStep.critic_update`).
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

The command line is ``wgan bench`` (:mod:`wgan.cli`); this module has only the library.

Image datasets read from the user's files (MNIST, CIFAR, folders) are replaced, when no
``data.path`` is set (or with ``random_data=True``), by 1,024 random images of the right shape in
``[-1, 1]`` (with labels when the dataset has classes): throughput does not depend on the pixels.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map
from torch.utils.flop_counter import FlopCounterMode, flop_registry

from wgan.config import Config
from wgan.errors import ConfigError, WganError

__all__ = [
    "RANDOM_IMAGES",
    "bench",
    "count_flops",
    "cpu_model",
    "format_bench",
    "git_commit",
    "matmul_roofline",
    "record_result",
    "replay_dense_ops",
]

#: Image datasets read from user files -> (channels, classes, default resolution). With no
#: ``data.path`` the benchmark replaces them by random images of this shape.
RANDOM_IMAGES: dict[str, tuple[int, int, int]] = {
    "mnist": (1, 10, 32),
    "fashion_mnist": (1, 10, 32),
    "stacked_mnist": (3, 1000, 32),
    "idx": (1, 0, 32),
    "cifar10": (3, 10, 32),
    "cifar100": (3, 100, 32),
    "folder": (3, 0, 64),
}

#: Number of random images that stand in for a file-based dataset.
RANDOM_N = 1024

_ROOFLINE_IMAGE_SHAPE = (256, 512, 512)  # a CPU reference for the image presets


# ----------------------------------------------------------------------------------------------
# Clocks, FLOPs, roofline
# ----------------------------------------------------------------------------------------------


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_ms(fn: Callable[[], None], device: torch.device) -> float:
    """Milliseconds ``fn`` takes on ``device``: CUDA events on a GPU, perf_counter on the CPU.

    The host waits for the device only once, after ``fn`` (on CUDA the end event is
    synchronised), so queued kernels overlap with Python as they do in training.
    """
    if device.type == "cuda":
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        _synchronize(device)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return float(start.elapsed_time(end))
    _synchronize(device)
    t0 = time.perf_counter()
    fn()
    _synchronize(device)
    return (time.perf_counter() - t0) * 1e3


class _GlobalOnly:
    """Stand-in for FlopCounterMode's module tracker: every FLOP is counted as 'Global'.

    The tracker's backward hooks break ``torch.autograd.grad`` (PyTorch issue #131753: "A leaf
    node was passed to _will_engine_execute_node"), which the gradient penalty calls; the
    per-module breakdown is not needed here.
    """

    parents = frozenset({"Global"})

    def __enter__(self) -> _GlobalOnly:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


@dataclasses.dataclass(frozen=True)
class _TensorSpec:
    """Shape, strides, dtype and device of a tensor argument (a pytree leaf, hashable)."""

    shape: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: torch.dtype
    device: torch.device


def _spec(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return _TensorSpec(tuple(x.shape), tuple(x.stride()), x.dtype, x.device)
    return x


class _DenseOpRecorder(TorchDispatchMode):
    """Records every op FlopCounterMode counts (mm, addmm, convolution, ...) with the shapes,
    strides and dtypes of its tensor arguments, for :func:`replay_dense_ops`."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[Any, Any, Any]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func.overloadpacket in flop_registry:
            self.calls.append((func, tree_map(_spec, args), tree_map(_spec, kwargs)))
        return func(*args, **kwargs)


def count_flops(fn: Callable[[], Any], record: list | None = None) -> int:
    """FLOPs of the matrix products and convolutions ``fn`` runs (forward and backward).

    Uses :class:`torch.utils.flop_counter.FlopCounterMode` (2 FLOPs per multiply-add: an
    ``(m x k) @ (k x n)`` product counts ``2 m k n``); double backward (``create_graph=True``)
    is counted like any other op it runs. With ``record`` (a list), the counted calls are
    appended to it for :func:`replay_dense_ops`.
    """
    counter = FlopCounterMode(display=False)
    if hasattr(counter, "mod_tracker"):
        counter.mod_tracker = _GlobalOnly()  # see _GlobalOnly
    recorder = _DenseOpRecorder() if record is not None else contextlib.nullcontext()
    with counter, recorder:
        fn()
    if record is not None:
        record.extend(recorder.calls)
    return int(counter.get_total_flops())


def replay_dense_ops(calls: list, passes: int = 3) -> float:
    """Milliseconds the recorded dense ops take alone: the best of ``passes`` back-to-back runs.

    Every call is re-run on random tensors with the recorded shapes, strides and dtypes
    (operands with equal specs share one tensor); nothing else runs in between. This is the
    time a step would take if only its matrix products and convolutions cost anything, with
    caches as warm as back-to-back calls make them: an optimistic bound.
    """
    if not calls:
        return 0.0
    g = torch.Generator().manual_seed(0)
    cache: dict[_TensorSpec, torch.Tensor] = {}

    def materialise(x: Any) -> Any:
        if not isinstance(x, _TensorSpec):
            return x
        if x not in cache:
            size = 1 + sum((n - 1) * st for n, st in zip(x.shape, x.stride, strict=True))
            base = torch.randn(max(size, 1), generator=g).to(device=x.device, dtype=x.dtype)
            cache[x] = base.as_strided(x.shape, x.stride)
        return cache[x]

    runs = [(f, tree_map(materialise, a), tree_map(materialise, k)) for f, a, k in calls]
    device = next(iter(cache.values())).device if cache else torch.device("cpu")

    def run() -> None:
        for func, args, kwargs in runs:
            func(*args, **kwargs)

    run()  # warm-up
    return min(_time_ms(run, device) for _ in range(max(1, passes)))


def matmul_roofline(
    m: int,
    k: int,
    n: int,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    seconds: float = 1.0,
    windows: int = 5,
) -> float:
    """Best sustained GFLOP/s of ``torch.mm`` on ``(m x k) @ (k x n)`` (``2 m k n`` FLOPs each).

    The time budget is split into ``windows`` windows; in each, products are run back to back
    into a preallocated output for about ``seconds / windows`` seconds and the window's mean
    rate is taken; the result is the best window (sustained, not a single lucky call). Uses all
    the threads torch is set to (``torch.get_num_threads()``).
    """
    if min(m, k, n) < 1:
        raise WganError(f"matmul_roofline needs positive sizes, got {m}x{k} @ {k}x{n}")
    device = torch.device(device)
    g = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(m, k, generator=g, device=device).to(dtype)  # (m, k)
    b = torch.randn(k, n, generator=g, device=device).to(dtype)  # (k, n)
    out = torch.empty(m, n, device=device, dtype=dtype)  # (m, n)
    flops = 2.0 * m * k * n
    torch.mm(a, b, out=out)  # warm-up: library init, caches
    _synchronize(device)
    window = max(seconds, 1e-3) / max(1, windows)
    best = 0.0
    for _ in range(max(1, windows)):
        calls, elapsed_ms = 0, 0.0
        batch = 1
        while elapsed_ms < window * 1e3:

            def run(batch: int = batch) -> None:
                for _ in range(batch):
                    torch.mm(a, b, out=out)

            elapsed_ms += _time_ms(run, device)
            calls += batch
            batch = min(batch * 2, 64)  # amortise the clock and the sync over more calls
        best = max(best, flops * calls / (elapsed_ms * 1e-3))
    return best / 1e9


# ----------------------------------------------------------------------------------------------
# Random stand-in data
# ----------------------------------------------------------------------------------------------


def _needs_random_data(cfg: Config, random_data: bool | None) -> bool:
    """Whether to replace the dataset: ``None`` = only when it needs files and has no path."""
    if random_data is None:
        return cfg.data.name in RANDOM_IMAGES and not cfg.data.path
    return bool(random_data)


def _random_images(cfg: Config, n: int = RANDOM_N):
    """An ImageDataset of ``n`` uniform images in [-1, 1] shaped like ``cfg.data``'s dataset."""
    from wgan.data.images import ImageDataset

    name = cfg.data.name
    if name in RANDOM_IMAGES:
        channels, n_classes, resolution = RANDOM_IMAGES[name]
    elif name in ("digits", "stacked_digits"):
        channels, n_classes, resolution = (1, 10, 16) if name == "digits" else (3, 1000, 16)
    else:
        raise ConfigError(
            f"random data stands in for image datasets; data.name={name!r} is toy data that "
            "is generated anyway (drop --random-data)"
        )
    if cfg.data.channels is not None:
        channels = cfg.data.channels
    if cfg.data.resolution is not None:
        resolution = cfg.data.resolution
    g = torch.Generator().manual_seed(0)
    images = torch.rand(n, channels, resolution, resolution, generator=g) * 2 - 1  # (N, C, R, R)
    labels = torch.randint(n_classes, (n,), generator=g) if n_classes else None  # (N,)
    return ImageDataset(images, labels, n_classes, name=f"random-{name}", source="random")


# ----------------------------------------------------------------------------------------------
# Machine description
# ----------------------------------------------------------------------------------------------


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux, else ``platform.processor()``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _git(where: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(where), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_commit(where: Path | None = None) -> str:
    """``git rev-parse --short HEAD`` of the source tree, ``+dirty`` with uncommitted changes to
    tracked files, or ``'unknown'`` outside a git checkout (read-only git commands)."""
    where = where or Path(__file__).resolve().parent
    commit = _git(where, "rev-parse", "--short", "HEAD")
    if not commit:
        return "unknown"
    dirty = _git(where, "status", "--porcelain", "--untracked-files=no")
    return f"{commit}+dirty" if dirty else commit


def _peak_rss_mb() -> float:
    """Peak resident set size of this process in MB (ru_maxrss: KB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _roofline_shape(cfg: Config) -> tuple[int, int, int]:
    """(m, k, n) of the roofline matmul: the critic's hidden layer (B x H) @ (H x H) for MLPs."""
    if cfg.critic.arch == "mlp":
        return (cfg.data.batch_size, cfg.critic.hidden, cfg.critic.hidden)
    return _ROOFLINE_IMAGE_SHAPE


# ----------------------------------------------------------------------------------------------
# The benchmark
# ----------------------------------------------------------------------------------------------


def _critic_steps(trainer: Any) -> Callable[[], None]:
    """One iteration's critic phase alone: ``n_critic`` times one critic step's draws
    (:meth:`~wgan.step.GANStep.draw_critic`) and its update, with the iteration's penalty
    factors."""
    engine = trainer.engine

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
) -> dict[str, Any]:
    """The eager measurement of :func:`bench`: FLOPs, blocks, critic block, roofline, memory.

    The Trainer lives only here, so that its memory is free before the compiled one is built.
    """
    from wgan.train import Trainer

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

    critic_phase = _critic_steps(trainer)

    def critic_block() -> None:
        for _ in range(steps):
            critic_phase()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    m, k, n = _roofline_shape(cfg)
    roofline = 0.0
    block_ms: list[float] = []
    # The roofline is measured in windows interleaved with the blocks, so that both see the
    # same machine load; at least 5 windows in all, so one preempted window is no loss.
    windows = max(1, -(-5 // repeats))  # per block
    for _ in range(repeats):
        if is_cpu:
            rate = matmul_roofline(m, k, n, seconds=roofline_seconds / repeats, windows=windows)
            roofline = max(roofline, rate)
        block_ms.append(_time_ms(block, device))
    critic_ms = _time_ms(critic_block, device)
    if device.type == "cuda":  # read before the replay allocates its operands
        peak_mb = torch.cuda.max_memory_allocated(device) / 2**20
        peak_kind = "cuda max_memory_allocated"
        device_name = torch.cuda.get_device_name(device)
    else:
        peak_mb = _peak_rss_mb()
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
    cfg: Config, run_dir: Path, dataset: Any, steps: int, warmup: int, repeats: int
) -> dict[str, Any]:
    """Compile time and ms / iteration of ``cfg`` with ``train.compile=true``.

    The first :meth:`~wgan.train.Trainer.train_step` traces and compiles the whole iteration
    (``torch.compile(fullgraph=True)``) and runs it once: its time is ``compile_s``. Then
    ``max(warmup, 2)`` untimed iterations (on CUDA, ``mode="reduce-overhead"`` records its CUDA
    graph on a later call than the first) and ``repeats`` timed blocks of ``steps``.
    """
    from wgan.train import Trainer

    cfg = copy.deepcopy(cfg)
    cfg.train.compile = True
    trainer = Trainer(cfg, run_dir, dataset=dataset)
    device = trainer.device
    compile_ms = _time_ms(trainer.train_step, device)  # trace + compile + one iteration
    for _ in range(max(warmup, 2)):
        trainer.train_step()

    def block() -> None:
        for _ in range(steps):
            trainer.train_step()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    block_ms = [_time_ms(block, device) for _ in range(repeats)]
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
    use_random = _needs_random_data(cfg, random_data)
    dataset = _random_images(cfg) if use_random else None
    data_label = cfg.data.name if dataset is None else f"random {tuple(dataset.images.shape)}"

    with tempfile.TemporaryDirectory(prefix="wgan-bench-") as tmp:
        eager = _bench_eager(
            cfg,
            Path(tmp) / "eager",
            dataset,
            steps,
            warmup,
            repeats,
            roofline_seconds,
            dense_replay,
        )
        compiled = (
            _bench_compiled(cfg, Path(tmp) / "compiled", dataset, steps, warmup, repeats)
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
        "threads": torch.get_num_threads(),
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


# ----------------------------------------------------------------------------------------------
# Output
# ----------------------------------------------------------------------------------------------


def format_bench(result: dict[str, Any]) -> str:
    """A two-column table of a :func:`bench` result (TFLOP/s on a GPU, GFLOP/s on the CPU)."""
    gpu = result["device"] == "cuda"

    def flop_rate(gflops: float) -> str:
        return f"{gflops / 1e3:.3f} TFLOP/s" if gpu else f"{gflops:.1f} GFLOP/s"

    rate = flop_rate(result["achieved_gflops"])
    rows = [
        ("preset", f"{result['preset']}  (data: {result['data']})"),
        (
            "device",
            f"{result['device']}: {result['device_name']}, {result['threads']} threads, "
            f"torch {result['torch']}, {result['precision']}",
        ),
        ("batch / n_critic", f"{result['batch_size']} / {result['n_critic']}"),
        ("params G / D", f"{result['params_g']:,} / {result['params_d']:,}"),
        ("generator iterations/s", f"{result['iters_per_s']:.3f}"),
        (
            "ms / iteration",
            f"{result['ms_per_iter']:.2f} (median of {result['repeats']} blocks of "
            f"{result['steps']}; best {result['ms_per_iter_min']:.2f})",
        ),
        ("ms / critic step", f"{result['ms_per_critic_step']:.2f}"),
        ("ms / generator step", f"{result['ms_per_generator_step']:.2f} (iteration - critic)"),
        ("GFLOP / iteration", f"{result['flops_per_iter'] / 1e9:.3f}"),
        ("achieved", rate),
        ("peak memory", f"{result['peak_mem_mb']:.0f} MB ({result['peak_mem_kind']})"),
    ]
    if "dense_ms_per_iter" in result:
        rows.append(
            (
                "dense ops alone",
                f"{result['dense_ms_per_iter']:.2f} ms/iteration at "
                + flop_rate(result["dense_gflops"])
                + f" ({100 * result['fraction_of_dense_bound']:.1f} % of the iteration)",
            )
        )
    if "roofline_gflops" in result:
        rows += [
            (
                "matmul roofline",
                f"{result['roofline_gflops']:.1f} GFLOP/s (torch.mm {result['roofline_shape']})",
            ),
            ("roofline iterations/s", f"{result['roofline_iters_per_s']:.3f}"),
            ("fraction of roofline", f"{100 * result['fraction_of_roofline']:.1f} %"),
        ]
    if "compiled_ms_per_iter" in result:
        rows += [
            ("compiled iterations/s", f"{result['compiled_iters_per_s']:.3f} (train.compile=true)"),
            (
                "compiled ms / iteration",
                f"{result['compiled_ms_per_iter']:.2f} (median of {result['repeats']} blocks "
                f"of {result['steps']}; best {result['compiled_ms_per_iter_min']:.2f})",
            ),
            ("compile time", f"{result['compile_s']:.1f} s (the first compiled iteration)"),
            ("eager / compiled", f"{result['compile_speedup']:.2f} x"),
            ("compiled achieved", flop_rate(result["compiled_achieved_gflops"])),
        ]
        if "compiled_fraction_of_roofline" in result:
            rows.append(
                (
                    "compiled fraction of roofline",
                    f"{100 * result['compiled_fraction_of_roofline']:.1f} %",
                )
            )
        if "compiled_peak_mem_mb" in result:
            rows.append(("compiled peak memory", f"{result['compiled_peak_mem_mb']:.0f} MB"))
    elif result.get("compile") is False:
        rows.append(("compiled", "not measured (--no-compile)"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


_RECORD_COLUMNS = (
    "date",
    "machine",
    "commit",
    "preset",
    "device",
    "threads",
    "precision",
    "it/s",
    "ms/iter",
    "ms/critic step",
    "GFLOP/iter",
    "achieved GFLOP/s",
    "roofline GFLOP/s",
    "fraction",
    "dense ms",
    "peak MB",
    "compiled ms/iter",
    "compile s",
    "eager/compiled",
    "load avg",
)


def _machine() -> str:
    return f"{platform.system()} {platform.machine()}, {cpu_model()}"


def _last_table_header(text: str) -> str | None:
    """The header line of the markdown table that ends ``text`` (None if ``text`` does not end
    in a table)."""
    lines = [line.strip() for line in text.rstrip().splitlines()]
    if not lines or not lines[-1].startswith("|"):
        return None
    i = len(lines) - 1
    while i > 0 and lines[i - 1].startswith("|"):
        i -= 1
    return lines[i]


def record_result(result: dict[str, Any], path: str | Path, commit: str | None = None) -> str:
    """Append ``result`` as one row of a markdown table to ``path``.

    The row goes under the table that ends the file when its header has this version's
    columns; otherwise (no table, or one written with other columns) a new header comes first.
    """
    path = Path(path)
    commit = commit if commit is not None else git_commit()
    try:
        load = f"{os.getloadavg()[0]:.2f}"
    except OSError:
        load = "n/a"
    roof = result.get("roofline_gflops")
    frac = result.get("fraction_of_roofline")
    device = result["device"] if result["device"] == "cpu" else result["device_name"]
    cells = [
        datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        _machine(),
        commit,
        result["preset"],
        device,
        str(result["threads"]),
        result["precision"],
        f"{result['iters_per_s']:.3f}",
        f"{result['ms_per_iter']:.1f}",
        f"{result['ms_per_critic_step']:.2f}",
        f"{result['flops_per_iter'] / 1e9:.3f}",
        f"{result['achieved_gflops']:.1f}",
        f"{roof:.1f}" if roof is not None else "-",
        f"{100 * frac:.1f} %" if frac is not None else "-",
        f"{result['dense_ms_per_iter']:.1f}" if "dense_ms_per_iter" in result else "-",
        f"{result['peak_mem_mb']:.0f}",
        f"{result['compiled_ms_per_iter']:.1f}" if "compiled_ms_per_iter" in result else "-",
        f"{result['compile_s']:.1f}" if "compile_s" in result else "-",
        f"{result['compile_speedup']:.2f}" if "compile_speedup" in result else "-",
        load,
    ]
    row = "| " + " | ".join(cells) + " |"
    header = "| " + " | ".join(_RECORD_COLUMNS) + " |"
    text = path.read_text() if path.exists() else ""
    lines = []
    if _last_table_header(text) != header:  # no table yet, or one with other columns
        if text and not text.endswith("\n"):
            lines.append("")
        lines += ["", header, "|" + "|".join("---" for _ in _RECORD_COLUMNS) + "|"]
    lines.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fh.write("\n".join(lines) + "\n")
    return row
