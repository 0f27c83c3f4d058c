"""Sweeps: K runs trained together equal K separate Trainer runs, and leave regular run dirs.

Tolerance. A sweep draws the same random numbers as the separate runs and mirrors torch.optim's
updates operation by operation, so the only possible differences are float32 rounding of the
batched kernels (baddbmm per run vs addmm, a vmapped objective's reductions, layer norm's affine
step). On CPU the fused engine is in practice bit for bit equal for plain MLPs; we assert
ATOL = 1e-6 after 10 iterations, 100x below one Adam step (lr 1e-4 per weight and step), so any
real mistake (a wrong draw, a wrong hyperparameter, a missed or extra step) fails, while a
different BLAS kernel choice does not. Layer norm (whose fused kernel we match only to ~1e-7: we
see ~1.2e-7 after 10 iterations) gets ATOL_LN = 1e-5, ten times below one Adam step.
"""

import argparse
import copy
import json
import math

import pytest
import torch

from wgan.config import resolve, set_value
from wgan.errors import ConfigError
from wgan.runs import load_checkpoint, read_config
from wgan.sweep import (
    SweepTrainer,
    add_sweep_parser,
    benchmark_sweep,
    expand_variants,
    parse_seeds,
    parse_vary,
    run_sweep,
    sweep_configs,
)
from wgan.tracking import read_jsonl
from wgan.train import Trainer, load_run, resume, train

ATOL = 1e-6
ATOL_LN = 1e-5

TINY = [
    "generator.hidden=32",
    "critic.hidden=32",
    "data.batch_size=64",
    "train.device=cpu",
    "train.progress=false",
    "train.eval_every=0",
    "train.figure_every=0",
    "train.checkpoint_every=0",
    "train.eval_samples=300",
    "train.steps=10",
]


def tiny(preset, *overrides):
    return resolve(preset, [*TINY, *overrides])


def max_param_diff(a: torch.nn.Module, b: torch.nn.Module) -> float:
    pairs = zip(a.named_parameters(), b.named_parameters(), strict=True)
    return max(((x - y).abs().max().item() for (_, x), (_, y) in pairs), default=0.0)


def train_both(tmp_path, base, variants, engine="fused", iterations=10):
    """Run a sweep and separate Trainers side by side; returns per-run (gen, critic) diffs."""
    cfgs = sweep_configs(base, variants)
    sweep = SweepTrainer(cfgs, [tmp_path / f"sweep{i}" for i in range(len(cfgs))], engine)
    for _ in range(iterations):
        sweep.train_step()
    sweep_stats = sweep.stats.flush_runs(len(cfgs))
    diffs = []
    for k, cfg in enumerate(cfgs):
        single = Trainer(copy.deepcopy(cfg), tmp_path / f"single{k}")
        for _ in range(iterations):
            single.train_step()
        shell = sweep.sync(k)
        diffs.append(
            (max_param_diff(shell.gen, single.gen), max_param_diff(shell.critic, single.critic))
        )
        # The logged statistics are the same averages of the same terms.
        expected = single.stats.flush()
        assert list(sweep_stats[k]) == list(expected)
        for name, value in expected.items():
            assert sweep_stats[k][name] == pytest.approx(value, rel=1e-5, abs=1e-6), name
    return diffs


SEEDS = [{"train.seed": s} for s in (0, 1, 2)]

CASES = [
    # (id, preset, overrides, variants, engine, atol)
    ("wgan-gp seeds", "toy-wgan-gp", [], SEEDS, "fused", ATOL),
    ("wgan-gp seeds func", "toy-wgan-gp", [], SEEDS, "func", ATOL),
    (
        "wgan-gp lrs, lambdas, betas",
        "toy-wgan-gp",
        [],
        [
            {"train.seed": 0, "d_optim.lr": 1e-4, "g_optim.lr": 1e-3},
            {"train.seed": 1, "d_optim.lr": 2e-4, "constraint.penalty_weight": 10.0},
            {"train.seed": 2, "d_optim.lr": 5e-4, "d_optim.betas": [0.0, 0.99]},
        ],
        "fused",
        ATOL,
    ),
    (
        "wgan-gp lrs func",
        "toy-wgan-gp",
        [],
        [{"d_optim.lr": 1e-4}, {"d_optim.lr": 3e-4, "constraint.penalty_target": 0.5}],
        "func",
        ATOL,
    ),
    (
        "minimax with clipping (one run unclipped)",
        "toy-gan",
        [],
        [{"constraint.clip": 0.05}, {"constraint.clip": 0.0, "train.seed": 1}],
        "fused",
        ATOL,
    ),
    ("hinge", "toy-gan", ["objective.name=hinge"], SEEDS[:2], "fused", ATOL),
    (
        "wgan-clip rmsprop lrs",
        "toy-wgan-clip",
        [],
        [{"d_optim.lr": 5e-5}, {"d_optim.lr": 1e-3}],
        "fused",
        ATOL,
    ),
    (
        "sgd momentum, weight decay",
        "toy-wgan-gp",
        ["d_optim.name=sgd", "g_optim.name=sgd"],
        [
            {"d_optim.betas": [0.0, 0.9]},
            {"d_optim.betas": [0.9, 0.9], "d_optim.weight_decay": 0.01},
        ],
        "fused",
        ATOL,
    ),
    (
        "fixed generator, finite training set",
        "toy-wgan-gp",
        ["generator.kind=fixed", "data.n_train=100"],
        SEEDS[:2],
        "fused",
        ATOL,
    ),
    (
        "layer norm, one-sided lazy penalty",
        "toy-wgan-gp-onesided",
        ["critic.norm=layer", "generator.norm=layer", "constraint.penalty_every=2"],
        SEEDS[:2],
        "fused",
        ATOL_LN,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_sweep_equals_separate_trainer_runs(tmp_path, case):
    _, preset, overrides, variants, engine, atol = case
    diffs = train_both(tmp_path, tiny(preset, *overrides), variants, engine)
    for gen_diff, critic_diff in diffs:
        assert gen_diff <= atol and critic_diff <= atol, diffs


def test_training_moves_the_weights(tmp_path):
    """The equality above is not vacuous: 10 iterations change every run's weights."""
    cfgs = sweep_configs(tiny("toy-wgan-gp"), SEEDS)
    sweep = SweepTrainer(cfgs, [tmp_path / f"r{i}" for i in range(3)])
    before = sweep.d.flat.clone(), sweep.g.flat.clone()
    for _ in range(3):
        sweep.train_step()
    assert (sweep.d.flat - before[0]).abs().amax(1).min() > 1e-4  # every run moved
    assert (sweep.g.flat - before[1]).abs().amax(1).min() > 1e-4


def compare_states(a, b, path="state"):
    """Checkpoints equal key by key: tensors bitwise, everything else exactly."""
    if isinstance(a, dict):
        assert list(a) == list(b), path
        for key in a:
            compare_states(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            compare_states(x, y, f"{path}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape, path
        assert torch.allclose(a.double(), b.double(), atol=ATOL, rtol=0), path
    else:
        assert a == b, (path, a, b)


def test_run_dirs_metrics_and_checkpoints_work_like_trainer_runs(tmp_path):
    base = tiny("toy-wgan-gp", "train.steps=6", "train.log_every=3")
    variants = [{"train.seed": 0, "d_optim.lr": 2e-4}, {"train.seed": 1}]
    results = run_sweep(base, variants, out_dir=tmp_path / "sweeps")
    summary = json.loads((results[0].run_dir.parent / "sweep.json").read_text())
    assert [r["overrides"] for r in summary["runs"]] == variants
    for result, variant in zip(results, variants, strict=True):
        assert result.step == 6 and result.diverged is None and result.overrides == variant
        cfg = copy.deepcopy(base)
        for key, value in variant.items():
            set_value(cfg, key, value)
        assert read_config(result.run_dir)["train"]["seed"] == variant["train.seed"]
        single = train(cfg, tmp_path / f"single{variant['train.seed']}", tensorboard=False)
        # The checkpoint has the Trainer's format and the same content (optimiser moments,
        # scheduler, both RNG states, step, config up to out_dir).
        state, expected = load_checkpoint(result.run_dir), load_checkpoint(single.run_dir)
        assert list(state) == list(Trainer.state(load_run(single.run_dir)))
        state["config"]["out_dir"] = expected["config"]["out_dir"]
        compare_states(state, expected)
        # metrics.jsonl: the same records, names and (up to rounding) values.
        got = read_jsonl(result.run_dir / "metrics.jsonl")
        want = read_jsonl(single.run_dir / "metrics.jsonl")
        assert [(r["kind"], r["step"], list(r)) for r in got] == [
            (r["kind"], r["step"], list(r)) for r in want
        ]
        assert {"d/loss", "d/estimate", "d/penalty", "d/grad_norm", "g/loss"} <= set(got[0])
        for g, w in zip(got, want, strict=True):
            for key, value in w.items():
                if isinstance(value, float):
                    assert g[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
        assert result.metrics["w1"] == pytest.approx(single.metrics["w1"], abs=1e-6)
        # eval / sample: a Trainer restored from the sweep's checkpoint gives the same samples.
        restored = load_run(result.run_dir)
        assert restored.step == 6
        assert torch.allclose(
            restored.samples(200), load_run(single.run_dir).samples(200), atol=1e-6
        )
        # train --resume continues a sweep run exactly like the separate run.
        resumed = resume(result.run_dir, {"train.steps": 8}, tensorboard=False)
        resumed_single = resume(single.run_dir, {"train.steps": 8}, tensorboard=False)
        assert resumed.step == 8
        a, b = load_checkpoint(resumed.run_dir), load_checkpoint(resumed_single.run_dir)
        a["config"]["out_dir"] = b["config"]["out_dir"]
        compare_states(a, b)


def test_a_diverged_run_is_frozen_and_the_others_finish(tmp_path):
    base = tiny(
        "toy-wgan-gp",
        "d_optim.name=sgd",
        "g_optim.name=sgd",
        "train.n_critic=1",
        "train.steps=8",
        "train.log_every=1",
        "train.checkpoint_every=1",
    )
    variants = [{"d_optim.lr": 1e-4}, {"d_optim.lr": 10.0}]
    good, bad = run_sweep(base, variants, out_dir=tmp_path)
    assert good.diverged is None and good.step == 8 and math.isfinite(good.metrics["w1"])
    assert bad.diverged is not None and "diverged" in bad.diverged and bad.step < 8
    records = read_jsonl(bad.run_dir / "metrics.jsonl")
    assert records[-1]["kind"] == "error" and records[-1]["event"] == "diverged"
    assert load_checkpoint(bad.run_dir)["step"] == bad.step - 1  # the last good one is kept
    # The healthy run is untouched by its neighbour's divergence: it equals its own Trainer run.
    cfg = copy.deepcopy(base)
    set_value(cfg, "d_optim.lr", 1e-4)
    single = Trainer(cfg, tmp_path / "single")
    for _ in range(8):
        single.train_step()
    assert max_param_diff(load_run(good.run_dir).critic, single.critic) <= ATOL


@pytest.mark.parametrize(
    "variants,overrides,needle",
    [
        ([{"critic.hidden": 32}, {"critic.hidden": 64}], [], "critic.hidden"),
        ([{"train.n_critic": 5}, {"train.n_critic": 1}], [], "train.n_critic"),
        ([{"data.batch_size": 64}, {"data.batch_size": 32}], [], "data.batch_size"),
        ([{"d_optim.name": "adam"}, {"d_optim.name": "sgd"}], [], "d_optim.name"),
        ([{}], ["critic.norm=batch"], "sweep does not support batch norm"),
        ([{}], ["generator.norm=batch"], "sweep does not support batch norm"),
        ([{}], ["constraint.spectral_norm=true"], "spectral norm"),
        ([{"critic.hiden": 3}], [], "did you mean critic.hidden"),
        ([], [], "at least one run"),
        ([{}], ["train.ema=0.9"], "sweep does not support train.ema"),
        ([{}], ["train.precision=bf16"], "sweep does not support train.precision"),
        ([{}], ["data.name=digits", "generator.norm=none"], "sweep does not support data.name"),
    ],
)
def test_bad_sweeps_are_config_errors(variants, overrides, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        sweep_configs(tiny("toy-wgan-gp", *overrides), variants)


def test_func_engine_rejects_an_objective_it_cannot_transform(tmp_path):
    cfgs = sweep_configs(tiny("toy-fgan-jeffrey"), [{}])
    with pytest.raises(ConfigError, match="use engine fused"):
        SweepTrainer(cfgs, [tmp_path / "r0"], engine="func")


def test_variant_helpers():
    assert parse_seeds("0-2,5") == [0, 1, 2, 5]
    assert parse_vary("d_optim.betas=[0.5, 0.9],[0, 0.99]") == (
        "d_optim.betas",
        [[0.5, 0.9], [0, 0.99]],
    )
    assert parse_vary("d_optim.lr=1e-4,2.0e-4") == ("d_optim.lr", [1e-4, 2.0e-4])
    variants = expand_variants([0, 1], [("d_optim.lr", [1e-4, 2e-4])])
    assert variants == [
        {"d_optim.lr": 1e-4, "train.seed": 0},
        {"d_optim.lr": 1e-4, "train.seed": 1},
        {"d_optim.lr": 2e-4, "train.seed": 0},
        {"d_optim.lr": 2e-4, "train.seed": 1},
    ]
    with pytest.raises(ConfigError, match="integers"):
        parse_seeds("0,x")


def test_cli_sweep_prints_json_for_the_cross_product(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_sweep_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["sweep", "toy-wgan-clip", *TINY, "train.steps=3", "--seeds", "0,1"]
        + ["--vary", "d_optim.lr=5e-5,1e-4", "--out-dir", str(tmp_path), "--json"]
    )
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["runs"]) == 4 and out["run_iters_per_s"] > 0
    assert [(r["seed"], r["overrides"]["d_optim.lr"]) for r in out["runs"]] == [
        (0, 5e-5),
        (1, 5e-5),
        (0, 1e-4),
        (1, 1e-4),
    ]
    assert all(r["step"] == 3 and "w1" in r["metrics"] for r in out["runs"])


def test_benchmark_sweep_returns_positive_timings():
    result = benchmark_sweep(tiny("toy-wgan-gp", "train.n_critic=1"), k=2, steps=2, repeats=1)
    assert result["k"] == 2
    for key in ("sweep_s_per_iter", "single_s_per_iter", "ratio", "run_iters_per_s"):
        assert result[key] > 0 and math.isfinite(result[key]), key
    assert result["run_iters_per_s"] == pytest.approx(2 / result["sweep_s_per_iter"])
