"""Training throughput: iterations per second, FLOPs, memory and, on the CPU, a matmul roofline.

The command line is ``wgan bench`` (:mod:`wgan.cli.scale`); this package has only the library, in
modules whose imports run one way (each imports only those above it in this list):

* :mod:`wgan.scale.bench.timing`: device-side clocks (CUDA events on a GPU, ``perf_counter`` on the
  CPU);
* :mod:`wgan.scale.bench.flops`: :func:`count_flops` (``FlopCounterMode``: matrix products and
  convolutions, the gradient penalty's double backward included) and
  :func:`replay_dense_ops` (the counted ops alone);
* :mod:`wgan.scale.bench.roofline`: :func:`matmul_roofline`, the best sustained ``torch.mm`` rate;
* :mod:`wgan.scale.bench.machine`: :func:`cpu_model`, :func:`git_commit`, peak memory;
* :mod:`wgan.scale.bench.random_data`: random images standing in for file-based datasets
  (:data:`RANDOM_IMAGES`);
* :mod:`wgan.scale.bench.measure`: :func:`bench` itself, eager and compiled (its docstring describes
  the method);
* :mod:`wgan.scale.bench.report`: :func:`format_bench` (a table) and :func:`record_result` (a row of
  a markdown record).
"""

from __future__ import annotations

from wgan.scale.bench.flops import count_flops, replay_dense_ops
from wgan.scale.bench.machine import cpu_model, git_commit
from wgan.scale.bench.measure import bench
from wgan.scale.bench.random_data import RANDOM_IMAGES, RANDOM_N
from wgan.scale.bench.report import format_bench, record_result
from wgan.scale.bench.roofline import matmul_roofline

__all__ = [
    "RANDOM_IMAGES",
    "RANDOM_N",
    "bench",
    "count_flops",
    "cpu_model",
    "format_bench",
    "git_commit",
    "matmul_roofline",
    "record_result",
    "replay_dense_ops",
]
