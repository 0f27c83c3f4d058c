"""Latent-space walks (wgan.analysis.latent) and `wgan interpolate`: path maths against hand values,
grid layout, class rows with z fixed, arithmetic on a generator whose classes are known, and
one-line errors for bad input."""

import math

import numpy as np
import pytest
import torch
from helpers import tiny
from torch import nn

from wgan.analysis import latent
from wgan.cli.app import main
from wgan.config import resolve
from wgan.errors import WganError
from wgan.figures.text import printable_line
from wgan.gan.players import LatentGenerator
from wgan.training.run import Run, load_run
from wgan.training.train import train

TINY = tiny(
    "train.progress=false",
    "train.eval_every=0",
    "train.figure_every=0",
    "train.device=cpu",
    hidden=16,
    steps=1,
    eval_samples=100,
    quiet=False,
)
CGAN = [
    "data.resolution=8",
    "generator.width=8",
    "critic.width=8",
    "generator.latent_dim=6",
    "train.ema=0",
    "data.batch_size=16",
]


# ------------------------------------------------------------------------------- the maths


def test_lerp_and_slerp_endpoints_and_hand_values():
    e1, e2 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    t = [0.0, 0.25, 0.5, 1.0]
    s = latent.slerp(e1, e2, t)  # (4, 2): a quarter circle from e1 to e2
    a = math.pi / 8  # t = 1/4 of the right angle
    expected = [[1.0, 0.0], [math.cos(a), math.sin(a)], [2**-0.5, 2**-0.5], [0.0, 1.0]]
    torch.testing.assert_close(s, torch.tensor(expected), atol=1e-6, rtol=0)
    lin = latent.lerp(e1, e2, t)
    torch.testing.assert_close(lin[:, 0], torch.tensor([1.0, 0.75, 0.5, 0.0]))
    torch.testing.assert_close(lin[:, 1], torch.tensor([0.0, 0.25, 0.5, 1.0]))
    assert lin[2].norm() == pytest.approx(2**-0.5)  # the straight midpoint leaves the circle


def test_slerp_keeps_the_norm_of_unit_and_equal_norm_endpoints():
    g = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(2, 5, 64, generator=g)  # 5 pairs in 64-D
    u0, u1 = z0 / z0.norm(dim=-1, keepdim=True), z1 / z1.norm(dim=-1, keepdim=True)
    path = latent.latent_path(u0, u1, 9, "slerp")  # (5, 9, 64)
    assert path.shape == (5, 9, 64)
    torch.testing.assert_close(path.norm(dim=-1), torch.ones(5, 9), atol=1e-5, rtol=0)
    torch.testing.assert_close(path[:, 0], u0)
    torch.testing.assert_close(path[:, -1], u1)
    scaled = latent.slerp(3 * u0, 3 * u1, torch.linspace(0, 1, 7))
    torch.testing.assert_close(scaled.norm(dim=-1), torch.full((5, 7), 3.0), atol=1e-5, rtol=0)
    # the straight path between the same unit endpoints dips inside the sphere
    assert float(latent.latent_path(u0, u1, 9, "linear")[:, 4].norm(dim=-1).max()) < 0.9


def test_slerp_of_parallel_endpoints_is_the_straight_path():
    z = torch.tensor([1.0, 2.0, 2.0])
    t = torch.linspace(0, 1, 5)
    torch.testing.assert_close(latent.slerp(z, 2 * z, t), latent.lerp(z, 2 * z, t))
    assert torch.isfinite(latent.slerp(z, -z, t)).all()


def test_path_arguments_are_checked():
    z = torch.zeros(3)
    with pytest.raises(WganError, match="path must be one of"):
        latent.latent_path(z, z, 4, "cubic")
    with pytest.raises(WganError, match="steps must be between 2"):
        latent.latent_path(z, z, 1)
    with pytest.raises(WganError, match="same shape"):
        latent.lerp(z, torch.zeros(4), [0.5])


def test_largest_step_share_by_hand():
    ramp = torch.linspace(0, 1, 5)[None, :, None] * torch.tensor([3.0, 4.0])  # (1, 5, 2)
    jump = torch.tensor([0.0, 0.0, 0.0, 1.0, 1.0])[None, :, None]  # (1, 5, 1)
    uneven = torch.tensor([0.0, 1.0, 3.0])[None, :, None]  # steps 1 and 2: share 2/3
    flat = torch.zeros(1, 4, 3)
    assert latent.largest_step_share(ramp).tolist() == [0.25]
    assert latent.largest_step_share(jump).tolist() == [1.0]
    assert latent.largest_step_share(uneven).item() == pytest.approx(2 / 3)
    assert latent.largest_step_share(flat).tolist() == [0.0]


# ------------------------------------------------------------------------- grids of a run


def _run(tmp_path, preset=None, *overrides):
    cfg = resolve(preset, [*TINY, *overrides])
    return Run(cfg, tmp_path / "run")


def test_interpolation_grid_layout_and_samples(tmp_path):
    run = _run(tmp_path)  # toy 2-D WGAN-GP, untrained: the layout is what is tested
    grid = latent.interpolation_grid(run, num_paths=3, steps=5, path="both", seed=4)
    assert grid.samples.shape == (6, 5, 2) and grid.z.shape == (6, 5, run.gen.latent_dim)
    assert grid.row_paths == ["linear", "slerp"] * 3 and grid.labels is None
    assert grid.row_names[:2] == ["linear 1", "slerp 1"] and len(grid.col_names) == 5
    # consecutive rows share endpoints; their inside differs (straight vs spherical)
    torch.testing.assert_close(grid.z[0::2, [0, -1]], grid.z[1::2, [0, -1]])
    assert not torch.allclose(grid.z[0, 2], grid.z[1, 2])
    torch.testing.assert_close(
        grid.z[0], latent.lerp(grid.z[0, 0], grid.z[0, -1], [0, 0.25, 0.5, 0.75, 1])
    )
    gen = run.sampler.eval()
    with torch.no_grad():
        direct = gen(grid.z.reshape(-1, grid.z.shape[-1])).reshape(6, 5, 2)
    torch.testing.assert_close(grid.samples, direct)
    again = latent.interpolation_grid(run, num_paths=3, steps=5, path="slerp", seed=4)
    torch.testing.assert_close(again.z, grid.z[1::2])  # same seed, same endpoints
    with pytest.raises(WganError, match="not conditional"):
        latent.interpolation_grid(run, classes=[1])
    # a generator that is the identity on z: straight paths move in equal steps
    run.gen = LatentGenerator(Identity(), latent_dim=2)
    lines = latent.interpolation_grid(run, num_paths=3, steps=6, path="linear", seed=4)
    assert lines.info["largest_step_share"] == pytest.approx([0.2] * 3, abs=1e-6)


def test_conditional_rows_keep_z_fixed_down_each_column(tmp_path):
    run = _run(tmp_path, "digits-cgan", *CGAN)
    grid = latent.interpolation_grid(run, num_paths=1, steps=4, path="slerp", classes=[2, 5, 7])
    assert grid.samples.shape == (3, 4, 1, 8, 8)
    assert grid.labels.tolist() == [[2] * 4, [5] * 4, [7] * 4]
    for r in (1, 2):
        torch.testing.assert_close(grid.z[r], grid.z[0])  # the same z in every class row
    gen = run.sampler.eval()
    with torch.no_grad():
        row = gen(grid.z[1], torch.full((4,), 5))
    torch.testing.assert_close(grid.samples[1], row)
    assert not torch.allclose(grid.samples[0], grid.samples[1])  # the class changes the image
    full = latent.interpolation_grid(run, num_paths=2, steps=3, path="both")
    assert full.samples.shape == (2 * 2 * 10, 3, 1, 8, 8)  # paths x kinds x classes rows
    with pytest.raises(WganError, match="class must be between 0 and 9"):
        latent.interpolation_grid(run, classes=[10])


class Identity(nn.Module):
    """G(z) = z, with a parameter for the device look-up."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(()))

    def forward(self, z):
        return z + 0 * self.anchor


class TemplateNet(nn.Module):
    """G(z) = the template image of class argmax(z): whose class the classifier knows."""

    def __init__(self, templates: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("templates", templates)  # (10, 1, R, R)
        self.anchor = nn.Parameter(torch.zeros(()))  # a parameter, for the device look-up

    def forward(self, z):
        return self.templates[z.argmax(1)] + 0 * self.anchor  # (B, 1, R, R)


def test_arithmetic_on_a_generator_with_known_classes(tmp_path):
    from wgan.metrics.classifier import digits_split, get_digit_classifier
    from wgan.metrics.images import classify

    run = _run(tmp_path, "digits-dcgan", "data.resolution=8", "generator.width=8",
               "critic.width=8", "train.ema=0")  # fmt: skip
    clf = get_digit_classifier(8)
    _, _, x, y = digits_split(8)
    right = classify(clf, x)[1].argmax(1) == y
    templates = torch.stack([x[(y == k) & right][0] for k in range(10)])  # (10, 1, 8, 8)
    run.gen = LatentGenerator(TemplateNet(templates), latent_dim=10)
    n = 4000
    grid = latent.arithmetic_grid(run, [3, 5, 8], num_samples=n, seed=1, classifier=clf, top=None)
    # E[z_k | argmax z = k] is the mean of the largest of 10 standard normals, 1.5388; the
    # other 9 coordinates share -1.5388 (the sum has mean 0): -0.171 each.
    top, rest = 1.5388, -1.5388 / 9
    means = grid.z[0, :3]  # (3, 10)
    for row, k in zip(means, (3, 5, 8), strict=True):
        expected = torch.full((10,), rest)
        expected[k] = top
        torch.testing.assert_close(row, expected, atol=0.15, rtol=0)
    result = torch.full((10,), rest)  # a - b + c, coordinate by coordinate
    result[3], result[5], result[8] = top, rest - top + rest, top
    torch.testing.assert_close(grid.z[0, 3], result, atol=0.25, rtol=0)
    torch.testing.assert_close(grid.z[0, 3], means[0] - means[1] + means[2])
    # counts are those of argmax z = k among the same draws: about n / 10 each
    z = torch.randn(n, 10, generator=torch.Generator().manual_seed(1))
    assert grid.info["counts"] == [int((z.argmax(1) == k).sum()) for k in (3, 5, 8)]
    assert grid.info["predicted"][0][:3] == [3, 5, 8]  # G of a class mean is that class
    assert grid.info["predicted"][0][3] in (3, 8)  # a - b + c: the largest coordinates
    assert grid.samples.shape == (2, 4, 1, 8, 8)


class Scores(nn.Module):
    """A fake classifier: the logits are the first ten pixels of the image."""

    def features(self, x):
        return x.flatten(1)[:, :10]

    def head(self, f):
        return f


class OneHotStrength(nn.Module):
    """G(z): pixel argmax(z[:10]) set to 5 + z[10] (> 0 but for 1 in 3.5 million), the rest 0."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(()))

    def forward(self, z):
        img = torch.zeros(z.shape[0], 64) + 0 * self.anchor
        img[torch.arange(z.shape[0]), z[:, :10].argmax(1)] = 5 + z[:, 10]
        return img.reshape(-1, 1, 8, 8)


def test_arithmetic_averages_the_most_confident_samples(tmp_path):
    run = _run(tmp_path, "digits-dcgan", "data.resolution=8", "generator.width=8",
               "critic.width=8", "train.ema=0")  # fmt: skip
    run.gen = LatentGenerator(OneHotStrength(), latent_dim=11)
    means, counts, _ = latent.class_latent_means(run, [2, 6], 500, seed=5, classifier=Scores())
    # the classifier's confidence in class k grows with z[10]: the three largest z[10] win
    z = torch.randn(500, 11, generator=torch.Generator().manual_seed(5))
    for row, k in zip(means, (2, 6), strict=True):
        mine = z[z[:, :10].argmax(1) == k]
        best = mine[mine[:, 10].argsort(descending=True)[:3]]
        torch.testing.assert_close(row, best.mean(0))
    assert counts == [3, 3]
    everyone, counts, _ = latent.class_latent_means(run, [2], 500, 5, Scores(), top=None)
    assert counts == [int((z[:, :10].argmax(1) == 2).sum())]


def test_arithmetic_refuses_runs_it_cannot_classify(tmp_path):
    toy = _run(tmp_path)
    with pytest.raises(WganError, match="digits data"):
        latent.arithmetic_grid(toy, [1, 2, 3])
    cond = Run(resolve("digits-cgan", [*TINY, *CGAN]), tmp_path / "c")
    with pytest.raises(WganError, match="unconditional"):
        latent.arithmetic_grid(cond, [1, 2, 3])


# ------------------------------------------------------------------------------ the command


@pytest.fixture(scope="module")
def saved_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("latent-runs")
    out = {}
    for key, preset, extra in (("toy", None, []), ("cgan", "digits-cgan", CGAN)):
        cfg = resolve(preset, [*TINY, *extra])
        cfg.out_dir = str(root)
        out[key] = train(cfg, tensorboard=False).run_dir
    return out


def _cli(capsys, *argv):
    code = main(list(map(str, argv)))
    out, err = capsys.readouterr()
    return code, out, err


def test_interpolate_writes_png_and_npy(saved_runs, tmp_path, capsys):
    toy, cgan = saved_runs["toy"], saved_runs["cgan"]
    code, out, _ = _cli(capsys, "interpolate", toy, "--out", tmp_path / "p.npy", "--steps", 6)
    assert code == 0 and np.load(tmp_path / "p.npy").shape == (8, 6, 2)  # 4 paths x 2 kinds
    # at t = 1/2 the spherical path is |z0 + z1| / (2 cos(W/2)), the straight one |z0 + z1| / 2
    norms = {
        line.split()[-3]: float(line.split()[-1]) for line in out.splitlines() if "t = 1/2" in line
    }
    assert set(norms) == {"linear", "slerp"} and norms["slerp"] > norms["linear"] > 0, out
    code, _, _ = _cli(capsys, "interpolate", toy, "--out", tmp_path / "a" / "p.png")
    assert code == 0 and (tmp_path / "a" / "p.png").stat().st_size > 0
    code, out, _ = _cli(
        capsys, "interpolate", cgan, "--out", tmp_path / "c.npy", "--path", "linear",
        "--classes", "0,4", "--steps", 3, "--device", "cpu",
    )  # fmt: skip
    assert code == 0 and np.load(tmp_path / "c.npy").shape == (2, 3, 1, 8, 8), out
    grid = np.load(tmp_path / "c.npy")
    assert not np.allclose(grid[0], grid[1])
    code, _, _ = _cli(capsys, "interpolate", cgan, "--out", tmp_path / "c.png", "--steps", 3)
    assert code == 0 and (tmp_path / "c.png").stat().st_size > 0
    loaded = load_run(cgan)
    torch.testing.assert_close(
        torch.from_numpy(grid[1]),
        latent.interpolation_grid(loaded, 1, 3, "linear", None, [4]).samples[0],  # one default
    )


@pytest.mark.parametrize(
    "args,needle",
    [
        (["{missing}", "--out", "{tmp}/x.png"], "run directory not found"),
        (["{toy}", "--out", "{tmp}/x.png", "--classes", "1,2"], "not conditional"),
        (["{toy}", "--out", "{tmp}/x.png", "--arithmetic", "1,2,3"], "digits data"),
        (["{toy}", "--out", "{tmp}/x.txt"], "--out must end in .png or .npy"),
        (["{toy}", "--out", "{tmp}/file.txt/x.png"], "--out"),
        (["{toy}", "--out", "{tmp}"], "is a directory"),
        (["{toy}", "--out", "{tmp}/x.png", "--steps", "1"], "--steps must be between 2"),
        (["{toy}", "--out", "{tmp}/x.png", "--num-paths", "0"], "--num-paths must be between"),
        (["{cgan}", "--out", "{tmp}/x.png", "--classes", "3,x"], "class numbers separated"),
        (["{cgan}", "--out", "{tmp}/x.png", "--classes", "12"], "class must be between 0 and 9"),
        (["{cgan}", "--out", "{tmp}/x.png", "--arithmetic", "1,2"], "three classes"),
        (["{cgan}", "--out", "{tmp}/x.png", "--arithmetic", "1,2,3"], "unconditional"),
        (["{toy}", "--out", "{tmp}/x.png", "--device", "gpu"], "--device"),
        (["{cgan}", "--out", "{tmp}/x.npy", "--num-paths", "64", "--steps", "64"], "too large"),
    ],
)
def test_interpolate_bad_input_is_one_line_exit_2(saved_runs, tmp_path, capsys, args, needle):
    (tmp_path / "file.txt").write_text("a file, not a folder")
    names = {"missing": tmp_path / "nope", "tmp": tmp_path, **saved_runs}
    argv = [a.format(**names) for a in args]
    try:
        code, out, err = _cli(capsys, "interpolate", *argv)
    except SystemExit as exc:  # argparse usage errors exit from the parser
        code, err = exc.code, capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wgan: error: ") and needle in lines[0], err
    assert not (tmp_path / "x.png").exists()


def test_text_run_writes_decoded_strings_per_path(tmp_path):
    run = _run(tmp_path, "text-wgan-gp", "generator.width=16", "critic.width=16")
    grid = latent.interpolation_grid(run, num_paths=2, steps=4, path="both", seed=3)
    assert grid.samples.shape == (4, 4, *run.dataset.shape)  # (rows, steps, V, L) softmax
    path = latent.write_grid(grid, run, tmp_path / "walk.txt")
    blocks = path.read_text(encoding="utf-8").split("# ")[1:]
    assert [b.splitlines()[0] for b in blocks] == ["linear 1", "slerp 1", "linear 2", "slerp 2"]
    texts = [[line.split("  ", 1)[1] for line in b.splitlines()[1:]] for b in blocks]
    assert all(len(t) == 4 and all(len(s) == run.dataset.seq_len for s in t) for t in texts)
    for lin, sph in ((texts[0], texts[1]), (texts[2], texts[3])):
        assert (lin[0], lin[-1]) == (sph[0], sph[-1])  # the same endpoints, decoded
    gen = run.sampler.eval()
    with torch.no_grad():  # cell (r, j) is G at the grid's z[r, j], argmax-decoded
        for r, j in ((0, 0), (1, 2), (3, 1)):
            assert texts[r][j] == printable_line(run.dataset.decode(gen(grid.z[r, j][None]))[0])
    with pytest.raises(WganError, match=r"\.txt or \.npy for text"):
        latent.write_grid(grid, run, tmp_path / "walk.png")
