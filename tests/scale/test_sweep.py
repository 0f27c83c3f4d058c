"""Sweeps: K runs trained together equal K separate Trainer runs, and leave regular run dirs.

Tolerance. A sweep is the single-run step (wgan.gan.step.GANStep.iteration) under torch.func.vmap,
fed the same random numbers as the separate runs, so the only possible differences are float32
rounding: a batched product (bmm over runs) rounds differently from a single one, and the
functional gradient (torch.func.grad) sums some terms in another order than eager autograd.
After 10 iterations of tiny MLPs we see at most ~1e-7; we assert ATOL = 1e-6, 100x below one Adam
step (lr 1e-4 per weight and step), so any real mistake (a wrong draw, a wrong hyperparameter, a
missed or extra step) fails. Convolutional nets (image presets), whose oneDNN kernels round
differently batched, get ATOL_CONV = 1e-5 after 3 iterations, still ten times below one step.
Spectral normalisation divides by a power-iteration estimate, which amplifies rounding; its
case asserts ATOL_SN = 1e-4 after 3 iterations at lr 1e-4, one Adam step.
"""

import copy
import json
import math

import pytest
import torch
from helpers import tiny

from wgan.cli.app import main as cli_main
from wgan.config import resolve, set_value
from wgan.errors import ConfigError
from wgan.scale.bench.sweep import benchmark_sweep
from wgan.scale.sweep import (
    SweepTrainer,
    expand_variants,
    parse_seeds,
    parse_vary,
    run_sweep,
    sweep_configs,
)
from wgan.store.checkpoints import load_checkpoint
from wgan.store.rundirs import read_config
from wgan.store.tracking import read_jsonl
from wgan.training.run import load_run
from wgan.training.train import resume, train
from wgan.training.trainer import Trainer

ATOL = 1e-6
ATOL_LN = 1e-5
ATOL_CONV = 1e-5
ATOL_SN = 1e-4

TINY = tiny("train.device=cpu", hidden=32, batch=64, steps=10, eval_samples=300)


def tiny(preset, *overrides):
    return resolve(preset, [*TINY, *overrides])


def max_param_diff(a: torch.nn.Module, b: torch.nn.Module) -> float:
    pairs = zip(a.named_parameters(), b.named_parameters(), strict=True)
    return max(((x - y).abs().max().item() for (_, x), (_, y) in pairs), default=0.0)


def train_both(tmp_path, base, variants, engine="vmap", iterations=10):
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
        gen_diff = max_param_diff(shell.gen, single.gen)
        if single.ema is not None:  # the averaged generator too
            gen_diff = max(gen_diff, max_param_diff(shell.ema.module, single.ema.module))
        diffs.append((gen_diff, max_param_diff(shell.critic, single.critic)))
        # The logged statistics are the same averages of the same terms.
        expected = single.stats.flush()
        assert list(sweep_stats[k]) == list(expected)
        for name, value in expected.items():
            assert sweep_stats[k][name] == pytest.approx(value, rel=1e-4, abs=1e-5), name
    return diffs


SEEDS = [{"train.seed": s} for s in (0, 1, 2)]

CASES = [
    # (id, preset, overrides, variants, engine, atol)
    ("wgan-gp seeds", "toy-wgan-gp", [], SEEDS, "vmap", ATOL),
    (
        "wgan-gp lrs, lambdas, betas",
        "toy-wgan-gp",
        [],
        [
            {"train.seed": 0, "d_optim.lr": 1e-4, "g_optim.lr": 1e-3},
            {"train.seed": 1, "d_optim.lr": 2e-4, "constraint.penalty_weight": 10.0},
            {"train.seed": 2, "d_optim.lr": 5e-4, "d_optim.betas": [0.0, 0.99]},
        ],
        "vmap",
        ATOL,
    ),
    (
        "wgan-gp lrs and penalty targets",
        "toy-wgan-gp",
        [],
        [{"d_optim.lr": 1e-4}, {"d_optim.lr": 3e-4, "constraint.penalty_target": 0.5}],
        "vmap",
        ATOL,
    ),
    (
        "minimax with clipping (one run unclipped)",
        "toy-gan",
        [],
        [{"constraint.clip": 0.05}, {"constraint.clip": 0.0, "train.seed": 1}],
        "vmap",
        ATOL,
    ),
    ("hinge", "toy-gan", ["objective.name=hinge"], SEEDS[:2], "vmap", ATOL),
    (
        "wgan-clip rmsprop lrs",
        "toy-wgan-clip",
        [],
        [{"d_optim.lr": 5e-5}, {"d_optim.lr": 1e-3}],
        "vmap",
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
        "vmap",
        ATOL,
    ),
    (
        "fixed generator, finite training set",
        "toy-wgan-gp",
        ["generator.kind=fixed", "data.n_train=100"],
        SEEDS[:2],
        "vmap",
        ATOL,
    ),
    (
        "layer norm, one-sided lazy penalty",
        "toy-wgan-gp-onesided",
        ["critic.norm=layer", "generator.norm=layer", "constraint.penalty_every=2"],
        SEEDS[:2],
        "vmap",
        ATOL_LN,
    ),
    ("f-GAN Jeffrey (Lambert W under vmap)", "toy-fgan-jeffrey", [], SEEDS[:2], "vmap", ATOL),
]

DIGITS_TINY = ["generator.width=8", "critic.width=8", "data.batch_size=16", "train.steps=3"]

IMAGE_CASES = [
    # Acceptance of the one-step issue: K = 4 digits-wgan-gp runs (batch-norm G, layer-norm
    # critic, EMA) equal 4 separate runs; a conditional preset with EMA; AC-GAN; spectral norm.
    (
        "digits-wgan-gp K=4",
        "digits-wgan-gp",
        [],
        [*SEEDS, {"train.seed": 3, "d_optim.lr": 1e-4}],
        ATOL_CONV,
    ),
    ("digits-cgan (concat, wrong labels, EMA)", "digits-cgan", [], SEEDS[:2], ATOL_CONV),
    ("acgan", "digits-wgan-gp", ["conditional.mode=acgan"], SEEDS[:2], ATOL_CONV),
    ("spectral norm", "toy-wgan-sn", [], SEEDS[:2], ATOL_SN),
]


@pytest.mark.parametrize("case", IMAGE_CASES, ids=[c[0] for c in IMAGE_CASES])
def test_sweep_of_image_conditional_and_ema_runs_equals_separate_runs(tmp_path, case):
    _, preset, overrides, variants, atol = case
    base = tiny(preset, *DIGITS_TINY, *overrides)
    diffs = train_both(tmp_path, base, variants, iterations=3)
    for gen_diff, critic_diff in diffs:
        assert gen_diff <= atol and critic_diff <= atol, diffs


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
    before = {key: {n: t.clone() for n, t in sweep.state[key].items()} for key in ("d", "g")}
    for _ in range(3):
        sweep.train_step()
    for key in ("d", "g"):
        moved = torch.stack(
            [(sweep.state[key][n] - t).flatten(1).abs().amax(1) for n, t in before[key].items()]
        ).amax(0)  # (K,): the largest change of each run
        assert moved.min() > 1e-4, (key, moved)


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
        assert list(state) == list(expected)
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
                if isinstance(value, float) and key not in ("wall_s", "time/step_s"):  # clocks
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
        ([{"critic.hiden": 3}], [], "did you mean critic.hidden"),
        ([], [], "at least one run"),
        ([{}], ["train.precision=fp16"], "sweep does not support train.precision=fp16"),
        (
            [{}],
            [
                "data.name=digits",
                "generator.arch=dcgan",
                "critic.arch=dcgan",
                "train.channels_last=true",
            ],
            "sweep does not support train.channels_last",
        ),
    ],
)
def test_bad_sweeps_are_config_errors(variants, overrides, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        sweep_configs(tiny("toy-wgan-gp", *overrides), variants)


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
    argv = ["sweep", "toy-wgan-clip", *TINY, "train.steps=3", "--seeds", "0,1"]
    argv += ["--vary", "d_optim.lr=5e-5,1e-4", "--out-dir", str(tmp_path), "--json"]
    assert cli_main(argv) == 0
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
