"""Asking a run conditioned on attribute vectors for attributes: ``wgan sample --attrs``,
``--attrs-fixed``, ``wgan interpolate --attrs-walk``, ``run.samples(n, attrs=...)``, the law the
unnamed attributes are drawn from, and the attribute metrics of ``wgan eval``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import tiny

import wgan.metrics.attributes as A
from wgan.cli.app import main
from wgan.config import resolve
from wgan.data.attribute_law import AttributeLaw
from wgan.data.shapes import SHAPES_SCHEMA, make_shapes, read_shape_attributes
from wgan.training.attribute_sampling import LAW_FILE, attribute_conditions, condition_seed
from wgan.training.run import SAMPLE_SEED, load_run
from wgan.training.train import train

S = SHAPES_SCHEMA
SHAPES = [
    "data.name=shapes",
    "data.n_train=480",
    "data.seed=7",  # a set of its own: its (quickly trained) classifier is cached for it alone
    "generator.width=8",
    "critic.width=8",
    "generator.latent_dim=6",
    "train.ema=0",
    "data.batch_size=16",
]


def _train(root, *extra):
    cfg = resolve("digits-cgan", [*tiny(hidden=16, steps=1, eval_samples=50), *SHAPES, *extra])
    cfg.out_dir = str(root)
    return train(cfg, tensorboard=False).run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("attrs-runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(A, "_STEPS", 30)  # a quick classifier: the wiring is tested, not its skill
        out = {
            "shapes": _train(root),
            "holdout": _train(root, 'data.holdout_combos=["green,triangle"]'),
        }
        cfg = resolve(None, tiny(hidden=16, steps=1, eval_samples=50))
        cfg.out_dir = str(root)
        out["toy"] = train(cfg, tensorboard=False).run_dir
        yield out


def _cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------------- the law


def _law() -> AttributeLaw:
    rows = torch.tensor(
        [
            [1, 0, 0, 1, 0, 0, 0, 1, 1],  # circle red large filled
            [1, 0, 0, 1, 0, 0, 0, 0, 0],  # circle red small outline
            [0, 1, 0, 1, 0, 0, 0, 1, 0],  # square red large outline
            [0, 0, 1, 0, 0, 1, 0, 0, 1],  # triangle blue small filled
        ],
        dtype=torch.float32,
    )
    return AttributeLaw(S, rows, torch.tensor([1, 3, 6, 10]))


def test_unnamed_attributes_follow_the_conditional_law():
    law = _law()
    n = 20_000
    c, note = law.draw(n, S.parse("red"), generator=torch.Generator().manual_seed(0))
    assert note is None and c.shape == (n, 9)
    # only rows that are red, in proportion to their counts 1 : 3 : 6
    which = (c[:, None, :] == law.rows[None]).all(2)  # (n, 4)
    assert bool(which.any(1).all()) and int(which[:, 3].sum()) == 0
    freq = which[:, :3].double().mean(0)
    p = torch.tensor([0.1, 0.3, 0.6], dtype=torch.float64)
    assert bool(((freq - p).abs() <= 4 * (p * (1 - p) / n).sqrt()).all()), freq  # 4 sigma
    # a flag asked for: only the circle rows are small; "small" sets large = 0
    c, _ = law.draw(50, S.parse("circle,small"), generator=torch.Generator().manual_seed(1))
    assert bool((c == law.rows[1]).all())


def test_fixed_draws_one_row_for_all_and_is_seeded():
    law = _law()
    c, _ = law.draw(64, S.parse("red"), generator=torch.Generator().manual_seed(3), fixed=True)
    assert bool((c == c[0]).all())
    c1, _ = law.draw(64, None, generator=torch.Generator().manual_seed(3))
    c2, _ = law.draw(64, None, generator=torch.Generator().manual_seed(3))
    assert torch.equal(c1, c2) and len(torch.unique(c1, dim=0)) > 1


def test_a_combination_no_row_has_is_drawn_from_the_closest_rows_and_said():
    law = _law()
    g = torch.Generator().manual_seed(0)
    c, note = law.draw(200, S.parse("blue,circle,large"), generator=g)
    # circle+large (row 0) and blue (row 3) match 2 and 1 named attributes: row 0 is closest
    assert note is not None and "2 of the 3 named attributes" in note and "circle, blue" in note
    expected = torch.tensor([1, 0, 0, 0, 0, 1, 0, 1, 1], dtype=torch.float32)  # filled from row 0
    assert bool((c == expected).all())
    c, note = law.draw(400, S.parse("yellow"), generator=g)  # no row has it
    assert "marginal" in note
    assert bool((c[:, 3:7] == torch.tensor([0.0, 0, 0, 1])).all())
    others = torch.cat([c[:, :3], c[:, 7:]], 1)  # the unnamed groups: from every row
    assert len(torch.unique(others, dim=0)) == 4


def test_the_law_is_stored_with_the_run_and_used_without_the_data(runs):
    run_dir = runs["shapes"]
    law = AttributeLaw.load(run_dir / LAW_FILE)
    run = load_run(run_dir)
    assert law == AttributeLaw.from_vectors(S, run.dataset.attributes)
    assert law.total == 480 and len(law.rows) == 48
    before = run.samples(12, attrs="red,triangle")
    run = load_run(run_dir)
    run.dataset.attributes = None  # as if the data were gone: the run's file is the law
    torch.testing.assert_close(run.samples(12, attrs="red,triangle"), before, rtol=0, atol=0)
    (run_dir / LAW_FILE).rename(run_dir / "moved.json")
    try:
        run = load_run(run_dir)
        run.dataset.attributes = None
        with pytest.raises(Exception, match="no attributes.json"):
            run.samples(4, attrs="red")
    finally:
        (run_dir / "moved.json").rename(run_dir / LAW_FILE)


# ------------------------------------------------------------------------------ asking


def test_sample_attrs_writes_the_asked_samples(runs, tmp_path, capsys):
    run_dir = runs["shapes"]
    code, out, err = _cli(
        capsys, "sample", run_dir, "--attrs", "red,triangle,large", "--num", 32,
        "--out", tmp_path / "x.npy",
    )  # fmt: skip
    assert code == 0 and "asked for triangle, red, large" in out, out + err
    run = load_run(run_dir)
    c, note = attribute_conditions(run, 32, SAMPLE_SEED, "red,triangle,large")
    assert note is None and bool(S.matches(c, S.parse("red,triangle,large")).all())
    assert len(torch.unique(c, dim=0)) > 1  # size is named; filled is drawn per sample
    x = torch.from_numpy(np.load(tmp_path / "x.npy"))
    torch.testing.assert_close(x, run.samples(32, labels=c), rtol=0, atol=0)
    torch.testing.assert_close(x, run.samples(32, attrs="red,triangle,large"), rtol=0, atol=0)
    by_dict = run.samples(32, attrs={"colour": "red", "shape": "triangle", "large": True})
    torch.testing.assert_close(x, by_dict, rtol=0, atol=0)
    blue = run.samples(32, attrs="blue,triangle,large")  # the same z, another condition
    assert not torch.equal(x, blue)
    code, _, _ = _cli(capsys, "sample", run_dir, "--attrs", "red", "--out", tmp_path / "x.png")
    assert code == 0 and (tmp_path / "x.png").stat().st_size > 0


def test_attrs_fixed_shares_one_draw_of_the_unnamed_attributes(runs, tmp_path, capsys):
    run_dir = runs["shapes"]
    code, out, err = _cli(
        capsys, "sample", run_dir, "--attrs", "green", "--attrs-fixed", "--num", 16,
        "--seed", 5, "--out", tmp_path / "f.npy",
    )  # fmt: skip
    assert code == 0 and "other attributes fixed" in out, out + err
    run = load_run(run_dir)
    c, _ = attribute_conditions(run, 16, 5, "green", fixed=True)
    assert bool((c == c[0]).all()) and c[0, 4] == 1
    x = torch.from_numpy(np.load(tmp_path / "f.npy"))
    torch.testing.assert_close(x, run.samples(16, seed=5, labels=c[0]), rtol=0, atol=0)
    free, _ = attribute_conditions(run, 16, 5, "green")
    assert len(torch.unique(free, dim=0)) > 1
    assert not torch.equal(x, run.samples(16, seed=5, attrs="green"))
    code, out, _ = _cli(
        capsys, "sample", run_dir, "--attrs-fixed", "--num", 8, "--out", tmp_path / "a.npy"
    )
    assert code == 0 and "one attribute vector drawn for all" in out
    one, _ = attribute_conditions(run, 8, SAMPLE_SEED, None, fixed=True)  # every group drawn once
    assert bool((one == one[0]).all())
    x = torch.from_numpy(np.load(tmp_path / "a.npy"))
    torch.testing.assert_close(x, run.samples(8, labels=one[0]), rtol=0, atol=0)
    # the condition stream is its own: the same seed gives the same z with or without attrs
    g = torch.Generator().manual_seed(condition_seed(5))
    assert torch.equal(free, run_law_draw(run, 16, "green", g))


def run_law_draw(run, n, attrs, g):
    from wgan.training.attribute_sampling import attribute_law

    return attribute_law(run).draw(n, S.parse(attrs), generator=g)[0]


def test_attrs_errors_are_one_line_with_exit_2(runs, tmp_path, capsys):
    shapes, toy = runs["shapes"], runs["toy"]
    out = tmp_path / "e.npy"
    code, _, err = _cli(capsys, "sample", shapes, "--attrs", "red,trianlge", "--out", out)
    assert code == 2 and "unknown attribute 'trianlge'; did you mean triangle?" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = _cli(capsys, "sample", shapes, "--attrs", "red,blue", "--out", out)
    assert code == 2 and "asked for twice" in err and len(err.strip().splitlines()) == 1
    code, _, err = _cli(capsys, "sample", toy, "--attrs", "red", "--out", out)
    assert code == 2 and "has no attributes" in err and len(err.strip().splitlines()) == 1
    code, _, err = _cli(capsys, "sample", shapes, "--label", "3", "--out", out)
    assert code == 2 and "--attrs" in err and len(err.strip().splitlines()) == 1
    code, _, err = _cli(capsys, "interpolate", shapes, "--attrs-walk", "color", "--out", out)
    assert code == 2 and "did you mean colour?" in err
    code, _, err = _cli(capsys, "interpolate", toy, "--attrs-walk", "colour", "--out", out)
    assert code == 2 and "--attrs-walk needs a run conditioned on attribute vectors" in err
    assert not out.exists()


def test_a_held_out_combination_is_drawn_and_said(runs, tmp_path, capsys):
    run_dir = runs["holdout"]
    code, out, err = _cli(
        capsys, "sample", run_dir, "--attrs", "green,triangle", "--num", 8,
        "--out", tmp_path / "g.npy",
    )  # fmt: skip
    assert code == 0, err
    notes = [line for line in err.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "no training image is triangle, green" in notes[0]


# ------------------------------------------------------------------------------- the walk


def test_attrs_walk_keeps_z_along_a_row_and_changes_one_attribute(runs, tmp_path, capsys):
    run_dir = runs["shapes"]
    code, out, err = _cli(
        capsys, "interpolate", run_dir, "--attrs-walk", "colour", "--num-paths", 3,
        "--out", tmp_path / "w.npy",
    )  # fmt: skip
    assert code == 0 and "3 x 4 grid" in out, out + err
    grid = np.load(tmp_path / "w.npy")
    assert grid.shape == (3, 4, 3, 16, 16)
    # by hand: z_r from the seed (as the latent walks draw endpoints), c_r from the law, and
    # column j the colour j
    run = load_run(run_dir)
    z = torch.randn(2, 3, 6, generator=torch.Generator().manual_seed(SAMPLE_SEED))[0]
    base, _ = attribute_conditions(run, 3, SAMPLE_SEED)
    cells = base[:, None].repeat(1, 4, 1)  # (3, 4, 9): column j has colour j
    cells[:, :, 3:7] = torch.eye(4)
    zz = z[:, None].expand(3, 4, 6)  # the same z along a row
    with torch.no_grad():
        expected = run.sampler.eval()(zz.reshape(12, 6), cells.reshape(12, 9)).reshape(grid.shape)
    torch.testing.assert_close(torch.from_numpy(grid), expected, rtol=0, atol=0)
    assert not np.array_equal(grid[:, 0], grid[:, 1])
    code, out, _ = _cli(
        capsys, "interpolate", run_dir, "--attrs-walk", "large", "--attrs", "red,square",
        "--attrs-fixed", "--out", tmp_path / "w.png",
    )  # fmt: skip
    assert code == 0 and "4 x 2 grid" in out and "small" in out and "large" in out
    from wgan.analysis.attribute_walk import attribute_walk_grid

    g = attribute_walk_grid(run, "large", 4, attrs="red,square", fixed=True)
    assert g.col_names == ["small", "large"]
    assert len(set(g.row_names)) == 4  # z differs by row; the other attributes are shared
    assert {name.split(": ")[1] for name in g.row_names} == {g.row_names[0].split(": ")[1]}
    assert "square, red" in g.row_names[0]


# -------------------------------------------------------------------------------- eval


def _by_hand(run, n):
    """The pixel-read accuracy of ``run.samples(n)`` against the vectors it was asked."""
    c, _ = attribute_conditions(run, n, SAMPLE_SEED)
    read = read_shape_attributes(run.samples(n))
    return A.group_correct(S, read, c).double().mean(0)  # (groups,)


def test_eval_reports_the_attribute_accuracy(runs, capsys):
    run_dir = runs["shapes"]
    code, out, err = _cli(capsys, "eval", run_dir, "--num", 96, "--json")
    assert code == 0, err
    m = json.loads(out)
    per_group = _by_hand(load_run(run_dir), 96)
    for j, g in enumerate(S.groups):
        assert m[f"attr_pixel_accuracy_{g.name}"] == float(per_group[j])
    assert m["attr_pixel_accuracy"] == float(per_group.mean())
    group_means = [m[f"attr_accuracy_{g.name}"] for g in S.groups]
    assert m["attr_accuracy"] == pytest.approx(sum(group_means) / 4, abs=1e-12)
    assert "attr_classifier_accuracy" in m and "attr_heldout_accuracy" not in m
    code, out, _ = _cli(capsys, "eval", run_dir, "--num", 96)
    assert code == 0
    lines = {line.split()[0]: line.split()[1] for line in out.splitlines() if line.strip()}
    assert lines["attr_pixel_accuracy"] == f"{m['attr_pixel_accuracy']:.4g}"
    # Python: the same numbers
    assert load_run(run_dir).evaluate(96)["attr_accuracy"] == m["attr_accuracy"]


def test_eval_reports_held_out_combinations_beside_seen_ones(runs, capsys):
    run_dir = runs["holdout"]
    code, out, err = _cli(capsys, "eval", run_dir, "--num", 64, "--json")
    assert code == 0, err
    m = json.loads(out)
    run = load_run(run_dir)
    from wgan.training.attribute_eval import HELDOUT_SEED
    from wgan.training.attribute_sampling import attribute_law

    request = S.parse("green,triangle")
    c, _ = attribute_law(run).draw(
        64, request, generator=torch.Generator().manual_seed(HELDOUT_SEED)
    )
    assert bool(S.matches(c, request).all())
    read = read_shape_attributes(run.samples(64, seed=HELDOUT_SEED, labels=c))
    right = A.group_correct(S, read, c)  # (64, 4)
    assert m["attr_pixel_heldout_accuracy"] == float(right.double().mean(0).mean())
    assert m["attr_pixel_heldout_combo"] == float(right[:, :2].all(1).double().mean())
    seen, _ = attribute_conditions(run, 64, SAMPLE_SEED)
    seen_right = A.group_correct(S, read_shape_attributes(run.samples(64)), seen)
    assert m["attr_pixel_seen_combo"] == float(seen_right[:, :2].all(1).double().mean())
    for key in ("attr_heldout_accuracy", "attr_heldout_combo", "attr_seen_combo"):
        assert key in m
    # the classifier judging them was trained on the whole set, green triangles included
    reduced = run.dataset
    assert int(S.matches(reduced.attributes, request).sum()) == 0
    path = A.attribute_classifier_path(
        "shapes", A.data_fingerprint("shapes", S, reduced.pixels, reduced.attributes)
    )
    assert not path.exists()
    full = make_shapes(n=480, seed=7)
    fp = A.data_fingerprint("shapes", S, full.pixels, full.attributes)
    assert A.attribute_classifier_path("shapes", fp).exists()
