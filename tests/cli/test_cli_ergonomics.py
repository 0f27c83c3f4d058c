"""The command line as researchers use it: argument order, --version, --device, exit codes, the
provenance record, per-run TensorBoard of sweeps, output formats. All through
``wgan.cli.app.main``."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from helpers import tiny

import wgan
import wgan.cli.app as cli
import wgan.training.run as run_module
import wgan.training.train as train_module
from wgan.cli.app import main

TINY = tiny(
    "train.progress=false", "train.figure_every=0", hidden=16, eval_samples=300, quiet=False
)


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """One tiny 4-step run, trained through the CLI (shared by the tests that only read it)."""
    root = tmp_path_factory.mktemp("runs")
    argv = ["train", *TINY, "train.steps=4", "train.log_every=2", "--out-dir", str(root)]
    assert main(argv) == 0
    (run_dir,) = root.iterdir()
    return run_dir


# -- 1. argument order ---------------------------------------------------------------------------


@pytest.fixture
def recorded(monkeypatch):
    """main() parses as usual, but every subcommand records its namespace instead of running."""
    seen: list[argparse.Namespace] = []
    build = cli.build_parser

    def build_recording() -> argparse.ArgumentParser:
        parser = build()
        for sub in _subcommands(parser).values():
            sub.set_defaults(func=lambda args: seen.append(args) or 0)
        return parser

    monkeypatch.setattr(cli, "build_parser", build_recording)
    return seen


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


@pytest.mark.parametrize(
    "argv,field,expected",
    [
        # overrides on both sides of options, the preset first or among them
        (
            ["train", "a.b=1", "--out-dir", "o", "toy-wgan-gp", "--dry-run", "c.d=2"],
            "items",
            ["a.b=1", "toy-wgan-gp", "c.d=2"],
        ),
        (["sweep", "toy-wgan-gp", "--seeds", "0-3", "train.steps=100"], "items", None),
        (["bench", "a.b=1", "--steps", "2", "toy-wgan-gp", "c.d=2"], "items", None),
        (
            ["experiment", "mode-collapse", "--out-dir", "o", "steps=5", "seeds=2"],
            "overrides",
            None,
        ),
        # the run directory after the options
        (["eval", "--num", "5", "--device", "cpu", "RUN"], "run", "RUN"),
        (["sample", "--out", "x.npy", "RUN", "--num", "3"], "run", "RUN"),
        (["lipschitz", "--num", "8", "RUN", "--json"], "run", "RUN"),
    ],
)
def test_positionals_and_options_mix_in_any_order(recorded, argv, field, expected):
    assert main(argv) == 0
    (args,) = recorded
    value = getattr(args, field)
    if expected is None:  # every item that is not an option, in order
        options_and_values = {"--seeds", "0-3", "--steps", "2", "--out-dir", "o"}
        expected = [a for a in argv[1:] if a not in options_and_values]
        if field == "overrides":
            expected = expected[1:]  # the experiment's name is its own positional
    assert value == expected


def test_every_subcommand_parses_intermixed():
    """Subcommands added by other modules (add_<name>_parser) get the same parsing."""
    subs = _subcommands(cli.build_parser())
    assert {"train", "sweep", "bench", "eval", "sample", "lipschitz", "experiment"} <= set(subs)
    for name, sub in subs.items():
        assert isinstance(sub, cli._Parser), name
        assert not any(a.nargs in (argparse.PARSER, argparse.REMAINDER) for a in sub._actions)


def test_dry_run_with_an_override_after_the_option_prints_config_yaml_style(capsys):
    code, out, _ = run_cli(capsys, "train", "toy-wgan-gp", "--dry-run", "train.steps=5")
    assert code == 0
    cfg = yaml.safe_load(out)
    assert cfg["train"]["steps"] == 5 and cfg["name"] == "toy-wgan-gp"
    assert "\ntrain:\n  steps: 5\n" in out  # block style, as config.yaml (no "{steps: 5, ...}")


def test_the_preset_may_follow_overrides_and_options(capsys):
    argv = ["train", "train.steps=7", "--dry-run", "toy-wgan-clip", "train.seed=3"]
    code, out, _ = run_cli(capsys, *argv)
    assert code == 0
    cfg = yaml.safe_load(out)
    assert (cfg["name"], cfg["train"]["steps"], cfg["train"]["seed"]) == ("toy-wgan-clip", 7, 3)


def test_a_leftover_argument_points_at_the_subcommands_help(capsys):
    with pytest.raises(SystemExit) as exit_:  # argparse's exit, status 2
        main(["sweep", "toy-wgan-gp", "--seeds", "0-1", "--bogus"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.strip() == ("wgan: error: unrecognized arguments: --bogus (see 'wgan sweep --help')")


# -- 2. version, device, lazy imports --------------------------------------------------------------


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"wgan {version('wgan')} ") and wgan.__version__ == version("wgan")


def test_the_top_level_api():
    for name in ("resolve", "train_run", "resume", "load_run", "make_objective", "run_sweep"):
        assert callable(getattr(wgan, name)), name
    assert wgan.train_run is train_module.train


def test_help_does_not_import_torch():
    """Building every parser (what ``wgan --help`` does) loads none of the slow imports."""
    slow = ["torch", "numpy", "importlib.metadata"]
    code = (
        "import sys, wgan.cli.app; wgan.cli.app.build_parser(); "
        f"print([m in sys.modules for m in {slow}])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str([False] * len(slow))


@pytest.mark.parametrize(
    "argv",
    [
        ["eval", "--num", "300", "--json"],
        ["sample", "--num", "4", "--out", "OUT/s.npy"],
        ["lipschitz", "--num", "64", "--json"],
    ],
)
def test_device_on_eval_sample_and_lipschitz(trained, tmp_path, monkeypatch, capsys, argv):
    """--device cpu runs; --device mps (made to look available) reaches load_run."""
    devices = []
    original = run_module.load_run

    def spy(run_dir, device="cpu"):
        devices.append(device)
        return original(run_dir, device="cpu")  # this machine computes on its CPU either way

    monkeypatch.setattr(run_module, "load_run", spy)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    argv = [a.replace("OUT", str(tmp_path)) for a in argv]
    for device in ("cpu", "mps"):
        code, out, err = run_cli(capsys, argv[0], str(trained), *argv[1:], "--device", device)
        assert code == 0, err
    assert devices == ["cpu", "mps"]


def test_device_auto_is_the_best_available(monkeypatch):
    from wgan.cli.format import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("auto") == "mps"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda"


# -- 3. exit codes ---------------------------------------------------------------------------------


def test_exit_2_for_bad_input(capsys, trained):
    assert run_cli(capsys, "train", "train.steps=many")[0] == 2
    with pytest.raises(SystemExit) as exit_:  # not a device name: argparse's usage error
        main(["eval", str(trained), "--device", "gpu"])
    assert exit_.value.code == 2
    assert run_cli(capsys, "eval", str(trained / "missing"))[0] == 2


def test_exit_1_for_a_missing_device(capsys, trained, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, _, err = run_cli(capsys, "eval", str(trained), "--device", "cuda")
    assert code == 1
    assert err.strip() == (
        "wgan: error: --device cuda but no CUDA device is available (use cpu or auto)"
    )


def test_exit_1_for_training_on_a_missing_gpu(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    argv = ["train", *TINY, "train.steps=2", "train.device=cuda", "--out-dir", str(tmp_path)]
    code, _, err = run_cli(capsys, *argv)
    assert code == 1 and "no CUDA device is available" in err
    assert list(tmp_path.iterdir()) == []  # a failed start leaves no run directory


def test_exit_1_for_a_diverged_run(capsys, tmp_path):
    argv = ["train", *TINY, "train.steps=3", "train.checkpoint_every=1", "g_optim.lr=1e30"]
    code, _, err = run_cli(capsys, *argv, "train.eval_every=0", "--out-dir", str(tmp_path))
    assert code == 1 and "training diverged" in err
    (run_dir,) = tmp_path.iterdir()
    (entry,) = json.loads((run_dir / "provenance.json").read_text())
    assert entry["status"] == "diverged"


def test_exit_130_for_an_interrupt_and_the_record_says_so(capsys, tmp_path, monkeypatch):
    original = train_module.Trainer.train_step

    def step(self):
        if self.step == 2:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(train_module.Trainer, "train_step", step)
    argv = ["train", *TINY, "train.steps=4", "train.checkpoint_every=1", "train.eval_every=0"]
    code, _, err = run_cli(capsys, *argv, "--out-dir", str(tmp_path))
    assert code == 130 and "interrupted" in err
    (run_dir,) = tmp_path.iterdir()
    (entry,) = json.loads((run_dir / "provenance.json").read_text())
    assert entry["status"] == "interrupted" and entry["end_step"] == 2


# -- 4. provenance ---------------------------------------------------------------------------------


def _git_head() -> str | None:
    here = Path(wgan.__file__).resolve().parent
    out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True)
    return out.stdout.decode().strip() if out.returncode == 0 else None


def test_provenance_of_a_new_run_then_a_resume(tmp_path, capsys):
    argv = ["train", *TINY, "train.steps=4", "train.log_every=2", "--out-dir", str(tmp_path)]
    assert run_cli(capsys, *argv)[0] == 0
    (run_dir,) = tmp_path.iterdir()
    (first,) = json.loads((run_dir / "provenance.json").read_text())
    assert first["command"] == "wgan " + " ".join(argv)
    assert first["kind"] == "new" and first["status"] == "completed"
    assert (first["start_step"], first["end_step"]) == (0, 4)
    assert first["versions"]["torch"] == torch.__version__
    assert first["versions"]["wgan"] == wgan.__version__
    assert first["versions"]["python"] == ".".join(map(str, sys.version_info[:3]))
    assert first["device"] == "cpu" and first["host"]["name"]
    head = _git_head()
    assert (first["git"] or {}).get("commit") == head
    assert first["start"] <= first["end"]

    resume = ["train", "--resume", str(run_dir), "train.steps=6"]
    assert run_cli(capsys, *resume)[0] == 0
    entries = json.loads((run_dir / "provenance.json").read_text())
    assert entries[0] == first  # appended, not rewritten
    second = entries[1]
    assert second["kind"] == "resume" and second["command"] == "wgan " + " ".join(resume)
    assert (second["start_step"], second["end_step"], second["session"]) == (4, 6, 2)
    assert second["start"] >= first["end"]
    # A record that cannot be read is kept aside, never overwritten.
    (run_dir / "provenance.json").write_text("{not json")
    assert run_cli(capsys, "train", "--resume", str(run_dir), "train.steps=7")[0] == 0
    assert (run_dir / "provenance.json.unreadable").read_text() == "{not json"
    (third,) = json.loads((run_dir / "provenance.json").read_text())
    assert (third["kind"], third["start_step"], third["end_step"]) == ("resume", 6, 7)


def test_metrics_have_wall_clock_time_per_step(trained):
    records = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    assert [r["step"] for r in train] == [2, 4]
    first, second = train
    # Two steps per log; wall_s also counts what is not training (the evaluation at step 2).
    # Nothing but training before the first log: its two steps are all of wall_s.
    assert first["time/step_s"] > 0 and first["wall_s"] == pytest.approx(2 * first["time/step_s"])
    assert second["wall_s"] - first["wall_s"] >= 2 * second["time/step_s"] - 1e-12  # rounding
    # toy-wgan-gp decays linearly from 5e-4 over 4 steps: the rate of the next iteration
    assert [(r["lr/d"], r["lr/g"]) for r in train] == [(pytest.approx(2.5e-4),) * 2, (0.0, 0.0)]


def test_a_constant_learning_rate_is_not_logged(tmp_path, capsys):
    argv = ["train", *TINY, "train.steps=2", "train.lr_decay=none", "train.eval_every=0"]
    assert run_cli(capsys, *argv, "--out-dir", str(tmp_path))[0] == 0
    (run_dir,) = tmp_path.iterdir()
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    assert train and not any(k.startswith("lr/") for r in train for k in r)
    assert "train/lr/d" not in _scalars(run_dir / "tb")


# -- 5. TensorBoard of sweeps ----------------------------------------------------------------------


def _scalars(tb_dir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tb_dir))
    acc.Reload()
    return {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}


def test_each_sweep_run_has_its_own_tensorboard_with_the_learning_rate(
    tmp_path, capsys, monkeypatch
):
    import wgan.figures.plotting

    titles = []
    plot_toy = wgan.figures.plotting.plot_toy

    def spy(critic, real, fake, bounds, title=""):
        titles.append(title)
        return plot_toy(critic, real, fake, bounds, title)

    monkeypatch.setattr(wgan.figures.plotting, "plot_toy", spy)
    argv = ["sweep", "toy-wgan-gp", "--seeds", "0-1", *TINY, "train.steps=4", "train.log_every=2"]
    argv += ["--out-dir", str(tmp_path), "train.lr_decay=linear", "d_optim.lr=0.001"]
    code, _, err = run_cli(capsys, *argv)
    assert code == 0, err
    (sweep_dir,) = tmp_path.iterdir()
    run_dirs = sorted(p for p in sweep_dir.iterdir() if p.is_dir())
    assert [p.name for p in run_dirs] == ["00000-seed0", "00001-seed1"]
    losses = []
    for run_dir in run_dirs:
        tags = _scalars(run_dir / "tb")
        # linear decay to 0 over 4 steps, logged after steps 2 and 4
        assert tags["train/lr/d"] == [(2, pytest.approx(0.0005)), (4, 0.0)]
        assert "eval/w1" in tags and "eval/n_modes" not in tags and "eval/n_samples" not in tags
        losses.append(tags["train/d/loss"])
        (entry,) = json.loads((run_dir / "provenance.json").read_text())
        assert entry["kind"] == "sweep" and entry["end_step"] == 4
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
        train = [r for r in map(json.loads, lines) if r["kind"] == "train"]
        assert all(r["time/step_s"] > 0 and r["wall_s"] >= 2 * r["time/step_s"] for r in train)
    assert losses[0] != losses[1]  # two runs, two seeds: not one log written twice
    # the figures say which run they show
    assert titles == ["toy-wgan-gp (00000-seed0): step 4", "toy-wgan-gp (00001-seed1): step 4"]


# -- 8. output formats -----------------------------------------------------------------------------


def test_sample_csv_has_a_header_and_eval_seed_matches_sample_seed(trained, tmp_path, capsys):
    out = tmp_path / "s.csv"
    assert (
        run_cli(capsys, "sample", str(trained), "--num", "300", "--seed", "7", "--out", str(out))[0]
        == 0
    )
    lines = out.read_text().splitlines()
    assert lines[0] == "x1,x2" and len(lines) == 301
    x = np.loadtxt(out, delimiter=",", skiprows=1)
    run = wgan.load_run(trained)
    assert np.allclose(x, run.samples(300, seed=7).numpy(), rtol=1e-6, atol=0)
    # The same samples are what eval --seed 7 measures; another seed measures others.
    from wgan.metrics import toy_metrics

    expected = toy_metrics(
        torch.from_numpy(x).float(),
        run.dataset,
        n_real=300,
        generator=torch.Generator().manual_seed(1),
    )
    code, text, _ = run_cli(capsys, "eval", str(trained), "--num", "300", "--seed", "7", "--json")
    assert code == 0
    assert json.loads(text)["w1"] == pytest.approx(expected["w1"], rel=1e-5)
    other = json.loads(
        run_cli(capsys, "eval", str(trained), "--num", "300", "--seed", "8", "--json")[1]
    )
    assert other["w1"] != pytest.approx(expected["w1"], rel=1e-5)


def test_the_default_seed_is_the_apis(trained, tmp_path, capsys):
    out = tmp_path / "s.npy"
    assert run_cli(capsys, "sample", str(trained), "--num", "5", "--out", str(out))[0] == 0
    assert np.array_equal(np.load(out), wgan.load_run(trained).samples(5).numpy())


def test_sample_png_of_2d_data_is_a_scatter(trained, tmp_path, capsys):
    out = tmp_path / "s.png"
    assert run_cli(capsys, "sample", str(trained), "--num", "200", "--out", str(out))[0] == 0
    from PIL import Image

    with Image.open(out) as image:
        assert image.format == "PNG" and min(image.size) > 200


def test_train_json_prints_the_final_metrics(tmp_path, capsys):
    argv = ["train", "--json", *TINY, "train.steps=2", "--out-dir", str(tmp_path)]
    code, out, _ = run_cli(capsys, *argv)
    assert code == 0
    record = json.loads(out)
    (run_dir,) = tmp_path.iterdir()
    assert record["run"] == str(run_dir) and record["step"] == 2
    evals = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert record["metrics"] == {k: v for k, v in evals[-1].items() if k not in ("kind", "step")}


def test_eval_says_it_is_evaluating(trained, capsys):
    code, _, err = run_cli(capsys, "eval", str(trained), "--num", "300")
    assert code == 0 and err.strip() == "evaluating…"


# -- 7. bench warnings -----------------------------------------------------------------------------


def test_bench_warns_of_a_wide_spread_and_of_rates_above_the_roofline():
    from wgan.scale.bench.report import bench_warnings

    quiet = {"ms_per_iter": 10.4, "ms_per_iter_min": 10.0, "roofline_gflops": 50.0}
    quiet.update(dense_gflops=40.0, achieved_gflops=20.0)
    assert bench_warnings(quiet) == []
    busy = {**quiet, "ms_per_iter": 1204.0, "ms_per_iter_min": 471.0}  # the numbers
    (spread,) = bench_warnings(busy)
    assert spread.startswith("eager repeats spread widely: median 1204.00 ms against a best of")
    assert "(2.56 x)" in spread
    fast = {**quiet, "dense_gflops": 61.0, "roofline_shape": "(256x256)@(256x256) fp32"}
    (above,) = bench_warnings(fast)
    assert above.startswith("dense ops alone at 61.0 GFLOP/s is above the measured matmul")


def test_bench_prints_its_warnings(capsys, monkeypatch):
    import wgan.scale.bench as bench_package

    def fake_bench(cfg, **kwargs):
        from wgan.scale.bench.measure import bench

        result = bench(cfg, **kwargs)
        result["ms_per_iter"] = 3 * result["ms_per_iter_min"]  # as if the machine were busy
        return result

    monkeypatch.setattr(bench_package, "bench", fake_bench)
    argv = ["bench", "toy-wgan-gp", "--steps", "1", "--warmup", "0", "--repeats", "2"]
    argv += ["--no-compile", "--no-dense-replay", "--roofline-seconds", "0.05"]
    argv += ["generator.hidden=8", "critic.hidden=8", "data.batch_size=8", "train.device=cpu"]
    code, out, _ = run_cli(capsys, *argv)
    assert code == 0
    assert "  warning: eager repeats spread widely: median" in out
    code, out, _ = run_cli(capsys, *argv, "--json")
    assert any(w.startswith("eager repeats spread") for w in json.loads(out)["warnings"])


# -- 9. lipschitz on a critic with GroupNorm -------------------------------------------------------


def test_groupnorm_affine_part_is_bounded_on_its_own():
    from wgan.lipschitz import layer_lipschitz

    norm = torch.nn.GroupNorm(2, 4)
    with torch.no_grad():
        norm.weight.copy_(torch.tensor([0.5, -3.0, 1.0, 2.0]))
    res = layer_lipschitz(norm, (1, 4, 3, 3))
    assert res["lipschitz"] is None and res["affine"] == 3.0  # max |gamma|
    plain = layer_lipschitz(torch.nn.LayerNorm(4, elementwise_affine=False), (1, 4))
    assert plain["affine"] == 1.0


def test_lipschitz_report_of_the_digits_critic_explains_none_and_skips_identities(tmp_path):
    from wgan.analysis.critic_lipschitz import format_lipschitz_report, lipschitz_report
    from wgan.config import resolve
    from wgan.training.run import Run

    run = Run(resolve("digits-wgan-gp", ["train.device=cpu"]), tmp_path / "run")
    critic = run.critic
    assert any(isinstance(m, torch.nn.Identity) for m in critic.modules())
    norms = [m for m in critic.modules() if isinstance(m, torch.nn.GroupNorm)]
    assert norms
    with torch.no_grad():
        norms[0].weight.mul_(0).add_(1.5)  # gamma = 1.5 everywhere
    report = lipschitz_report(run, n=16)
    assert (
        report["bound"] is None
        and "GroupNorm divides by a data-dependent std" in (report["bound_reason"])
    )
    assert not any(layer["type"] == "Identity" for layer in report["layers"])
    # the rest: the listed constants, each normalisation replaced by its affine part (1.5)
    expected = 1.0
    for layer in report["layers"]:
        expected *= layer["lipschitz"] if layer["lipschitz"] is not None else 1.5
    assert report["bound_without_standardisation"] == pytest.approx(expected, rel=1e-12)
    text = format_lipschitz_report(report)
    assert "affine part max|gamma| = 1.5" in text
    assert "the other layers times the normalisations' affine parts" in text


def test_inception_features_run_on_the_runs_device(tmp_path, monkeypatch):
    """FID/IS/KID follow --device: the Inception network is loaded onto the run's device."""
    import wgan.metrics.inception as inception
    from wgan.config import resolve
    from wgan.training.run import Run

    class Loaded(Exception):
        pass

    def fake_load(path, device="cpu", **kwargs):
        raise Loaded(str(device))

    monkeypatch.setattr(inception, "load_inception", fake_load)
    run = Run(resolve("digits-wgan-gp", ["train.device=cpu"]), tmp_path / "run")
    run.cfg.data.name = "not-digits"  # straight to the Inception metrics (no digit classifier)
    run.device = torch.device("meta")  # a device that is not the CPU default
    monkeypatch.setattr(run, "samples", lambda n, seed=None, labels=None: torch.zeros(n, 1, 16, 16))
    with pytest.raises(Loaded, match="^meta$"):
        run.evaluate(8, inception_weights=str(tmp_path / "weights.pt"))
