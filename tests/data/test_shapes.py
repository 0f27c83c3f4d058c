"""The embedded coloured shapes (issue 26): pictures that match their attribute vectors, all 48
combinations balanced, a pixel reader exact on every image, held-out combinations, seeds."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from wgan.cli.app import main
from wgan.config import DataConfig, resolve
from wgan.data.build import build_dataset, held_out
from wgan.data.shapes import (
    SHAPES_N_DEFAULT,
    SHAPES_SCHEMA,
    SHAPES_SPEC,
    make_shapes,
    read_shape_attributes,
    render_shapes,
)
from wgan.errors import ConfigError, DataError

RGB = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255), "yellow": (255, 255, 0)}


@pytest.fixture(scope="module")
def default_set():
    return make_shapes()  # the set data.name=shapes trains on: 12,000 images from seed 0


def test_the_schema_has_the_nine_columns_of_the_brief():
    assert SHAPES_SCHEMA.to_spec() == SHAPES_SPEC
    names = ("circle", "square", "triangle", "red", "green", "blue", "yellow", "large", "filled")
    assert SHAPES_SCHEMA.names == names


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_the_pixel_reader_is_exact_on_every_image_of_the_default_set(seed, default_set):
    ds = default_set if seed == 0 else make_shapes(seed=seed)
    assert len(ds) == SHAPES_N_DEFAULT
    assert torch.equal(read_shape_attributes(ds.images), ds.attributes)


def test_each_picture_is_one_pure_colour_on_black_as_its_vector_says(default_set):
    ds = default_set
    pix = ds.pixels.permute(0, 2, 3, 1).reshape(len(ds), -1, 3)  # (N, 256, 3) bytes
    on = pix.amax(2) > 0  # (N, 256) shape pixels
    for j, (name, rgb) in enumerate(RGB.items()):
        rows = ds.attributes[:, 3 + j] == 1
        want = torch.tensor(rgb, dtype=torch.uint8)
        shape_pixels = pix[rows][on[rows]]  # (M, 3) every lit pixel of this colour's images
        assert bool((shape_pixels == want).all()), name
    assert bool(((pix == 0) | (pix == 255)).all())
    # large shapes light more pixels than small ones of the same shape and fill, in every image
    area = on.sum(1).float()
    for shape in range(3):
        for filled in (0, 1):
            sel = (ds.attributes[:, shape] == 1) & (ds.attributes[:, 8] == filled)
            small = area[sel & (ds.attributes[:, 7] == 0)]
            large = area[sel & (ds.attributes[:, 7] == 1)]
            assert small.max() < large.min()
    # a filled shape lights more pixels than its outline: a solid interior
    for shape in range(3):
        for large in (0, 1):
            sel = (ds.attributes[:, shape] == 1) & (ds.attributes[:, 7] == large)
            assert (
                area[sel & (ds.attributes[:, 8] == 0)].max()
                < area[sel & (ds.attributes[:, 8] == 1)].min()
            )


def test_the_three_shapes_fill_their_box_as_a_square_a_circle_and_a_triangle():
    zero = torch.zeros(3, dtype=torch.int64)
    shapes = torch.arange(3)
    img = render_shapes(shapes, zero, zero + 1, zero + 1, zero, zero)  # large, solid, centred
    mask = img.amax(1) > 0  # (3, 16, 16)
    rows, cols = mask.any(2), mask.any(1)  # (3, 16)
    box = rows.sum(1) * cols.sum(1)
    ratio = (mask.sum((1, 2)) / box).tolist()
    assert (rows.sum(1).tolist(), cols.sum(1).tolist()) == ([11] * 3, [11] * 3)
    # circle ~ pi/4, square 1, triangle ~ 1/2 of the 11x11 box
    assert ratio[1] == 1.0
    assert ratio[2] < ratio[0] < ratio[1]


def test_every_combination_is_present_and_balanced(default_set):
    combos, counts = torch.unique(default_set.attributes, dim=0, return_counts=True)
    assert combos.shape == (48, 9)
    assert counts.tolist() == [SHAPES_N_DEFAULT // 48] * 48
    _, counts = torch.unique(make_shapes(100, seed=3).attributes, dim=0, return_counts=True)
    assert sorted(counts.tolist()) == [2] * 44 + [3] * 4  # 100 = 48 * 2 + 4
    # the jitter moves shapes: more than one position per combination
    first = default_set.pixels[(default_set.attributes == combos[0]).all(1)]
    assert len(torch.unique(first.reshape(len(first), -1), dim=0)) > 1


def test_the_reader_reads_blurred_and_noisy_pictures_as_drawn():
    ds = make_shapes(2400, seed=5)
    x = ds.images
    kernel = torch.tensor([[1.0, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16
    blurred = F.conv2d(F.pad(x, (1, 1, 1, 1), value=-1.0), kernel.expand(3, 1, 3, 3), groups=3)
    assert torch.equal(read_shape_attributes(blurred), ds.attributes)
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    assert torch.equal(read_shape_attributes((x + 0.4 * noise).clamp(-1, 1)), ds.attributes)
    assert torch.equal(read_shape_attributes(x * 0.5), ds.attributes)  # dim colours


def test_the_reader_refuses_other_shapes_of_input():
    with pytest.raises(Exception, match=r"\(N, 3, 16, 16\)"):
        read_shape_attributes(torch.zeros(2, 1, 16, 16))


def test_a_seed_gives_the_same_set_whatever_the_global_seed_and_another_seed_another():
    torch.manual_seed(1)
    a = make_shapes(500, seed=3)
    torch.manual_seed(2)
    b = make_shapes(500, seed=3)
    c = make_shapes(500, seed=4)
    assert torch.equal(a.pixels, b.pixels) and torch.equal(a.attributes, b.attributes)
    assert not torch.equal(a.pixels, c.pixels)
    assert not torch.equal(a.attributes, c.attributes)


def test_the_config_builds_the_set_from_data_seed_and_n_train():
    ds = build_dataset(DataConfig(name="shapes", seed=3, n_train=500))
    assert torch.equal(ds.pixels, make_shapes(500, seed=3).pixels)
    assert (ds.name, ds.attribute_schema, ds.shape) == ("shapes", SHAPES_SCHEMA, (3, 16, 16))
    assert ds.conditions is ds.attributes and ds.n_classes == 0
    assert build_dataset(DataConfig(name="shapes", resolution=32)).shape == (3, 32, 32)


def test_holdout_removes_exactly_the_matching_images(default_set):
    full = default_set
    combos = ("green,triangle", "red, large, outline")
    ds = build_dataset(DataConfig(name="shapes", holdout_combos=combos))
    a = full.attributes
    drop = ((a[:, 4] == 1) & (a[:, 2] == 1)) | ((a[:, 3] == 1) & (a[:, 7] == 1) & (a[:, 8] == 0))
    assert int(drop.sum()) == 4 * 250 + 3 * 250  # the 4 green triangles, 3 red large outlines
    assert torch.equal(held_out(full, combos), drop)
    assert len(ds) == len(full) - int(drop.sum())
    assert torch.equal(ds.pixels, full.pixels[~drop])
    assert torch.equal(ds.attributes, a[~drop])


def test_holdout_refuses_unknown_names_and_combinations_that_remove_everything():
    with pytest.raises(ConfigError, match=r"'gren'.*did you mean green"):
        build_dataset(DataConfig(name="shapes", holdout_combos=("gren,triangle",)))
    with pytest.raises(ConfigError, match="removes every one of the 12,000 images"):
        build_dataset(DataConfig(name="shapes", holdout_combos=("large", "small")))
    with pytest.raises(ConfigError, match="holdout_combos is for attribute data"):
        build_dataset(DataConfig(name="digits", holdout_combos=("red",)))


def test_dry_run_checks_the_set_and_records_its_attributes(capsys):
    args = ["train", "digits-cgan", "--dry-run", "data.name=shapes", "data.n_train=480"]
    assert main([*args, "data.holdout_combos=['green,triangle']"]) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first == (
        "# data checked: shapes: 440 images of 3x16x16, 9 attributes (shape, colour, large, "
        "filled); 40 held out matching green,triangle"
    )
    assert "  - shape:circle|square|triangle\n  - colour:red|green|blue|yellow\n" in out
    assert main([*args, "data.holdout_combos=['green,triangel']"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "did you mean triangle?" in err


def test_a_run_on_shapes_takes_n_train_and_records_the_schema(tmp_path):
    from wgan.training.run import Run

    tiny = ["generator.width=4", "critic.width=4", "data.batch_size=4", "train.progress=false"]
    cfg = resolve("digits-cgan", ["data.name=shapes", "data.n_train=96", *tiny])
    run = Run(cfg, tmp_path / "r")
    assert len(run.dataset) == 96
    assert cfg.data.attributes == SHAPES_SPEC


def test_a_run_refuses_data_whose_attributes_differ_from_those_recorded(tmp_path):
    from wgan.data.adopt import adopt_data

    cfg = resolve("digits-cgan", ["data.name=shapes", "data.n_train=96"])
    cfg.data.attributes = ("shape:circle|square|triangle", "colour:red|green|blue", "large")
    with pytest.raises(DataError, match=r"data.attributes .* are shape:circle\|square"):
        adopt_data(cfg, make_shapes(96))


def test_conditional_mode_auto_conditions_on_the_attributes():
    from wgan.data.adopt import adopt_data

    cfg = resolve("digits-cgan", ["data.name=shapes", "conditional.mode=auto"])
    adopt_data(cfg)
    assert (cfg.conditional.mode, cfg.data.attributes) == ("concat", SHAPES_SPEC)
    cfg = resolve("digits-cgan", ["data.name=shapes", "conditional.mode=auto"])
    adopt_data(cfg, make_shapes(96))
    assert cfg.conditional.mode == "concat"
