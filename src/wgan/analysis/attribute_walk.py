"""One attribute changed along each row, z kept: ``wgan interpolate RUN --attrs-walk GROUP``.

For a generator G(z, c) with c in {0, 1}^k (one-hot groups and flags; Mirza & Osindero 2014),
each row of the grid keeps one latent vector z and one condition c, and changes one group of c
along the row: through every value of a one-hot group (``colour``: red, green, blue, yellow), or
a flag from 0 to 1 (``large``: small, large). What changes along a row is the attribute alone;
what changes down a column is z and the other attributes, which are drawn from the training
data's law (:mod:`wgan.training.attribute_sampling`), or asked for (``attrs``), or held the same
for every row (``fixed``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from wgan.analysis.latent import MAX_PATHS, LatentGrid, _check_int, _endpoints, _seed
from wgan.data.attribute_law import request_words, set_request
from wgan.errors import WganError
from wgan.store.printable import printable

__all__ = ["attribute_walk_grid"]


def _values(group: Any) -> list[str]:
    """The column names of a walk along ``group``: its values, or a flag's 0 and 1 states."""
    if group.flag:
        return [group.off or f"not {group.name}", group.name]
    return list(group.values)


@torch.no_grad()
def _generate(run: Any, z: Tensor, c: Tensor) -> Tensor:
    """G(z, c) for (N, D) noise and (N, k) vectors, in eval mode, on the CPU, checked finite."""
    from wgan.training.sampling import NonFiniteSamples

    gen = run.sampler
    was_training = gen.training
    gen.eval()
    try:
        x = gen(z.to(run.device), c.to(run.device)).float().cpu()
    finally:
        gen.train(was_training)
    if not bool(torch.isfinite(x).all()):
        raise NonFiniteSamples(
            f"the generator of {run.run_dir} at step {run.step} produces non-finite samples"
        )
    return x


def attribute_walk_grid(
    run: Any,
    walk: str,
    rows: int = 4,
    seed: int | None = None,
    attrs: Any = None,
    fixed: bool = False,
) -> LatentGrid:
    """A grid of ``rows`` rows, one column per value of the group ``walk`` names (a group's
    name or one of its values, a flag or its off-name): row r is G(z_r, c_r with the group set
    to the column's value).

    z_r ~ N(0, I) is drawn on the CPU from ``seed`` (default: the run's sample seed); c_r from
    the data's law, with ``attrs`` (a request that may not name the walked group) set, one draw
    for all rows with ``fixed``. ``info["walked"]`` names the group; on the embedded shapes
    ``info["read_right"]`` is, per column, the fraction of rows whose walked attribute the pixel
    reader (:func:`wgan.data.shapes.read_shape_attributes`) reads as asked.
    """
    from wgan.training.attribute_sampling import (
        attribute_conditions,
        attribute_schema,
        parse_request,
    )

    schema = attribute_schema(run)
    if schema is None or not run.conditional:
        raise WganError(
            "--attrs-walk needs a run conditioned on attribute vectors (data.name=shapes, "
            "celeba or a folder with data.attribute_file, and conditional.mode concat, "
            "projection or acgan)"
        )
    rows = _check_int("rows", rows, 1, MAX_PATHS)
    group = schema.group(walk)
    if attrs is not None and group in parse_request(schema, attrs):
        raise WganError(
            f"--attrs-walk {walk} changes '{group.name}' along each row: leave it out of --attrs"
        )
    seed = _seed(run, seed)
    base, _ = attribute_conditions(run, rows, seed, attrs, fixed)  # (R, k)
    z, _ = _endpoints(int(run.sampler.latent_dim), rows, seed)  # (R, D)
    names = _values(group)
    cells = torch.stack(
        [set_request(schema, base, {group: j}) for j in range(len(names))], dim=1
    )  # (R, V, k): column j has the group's value j
    zz = z[:, None].expand(rows, len(names), z.shape[1])  # (R, V, D): z kept along a row
    x = _generate(run, zz.reshape(-1, z.shape[1]), cells.reshape(-1, schema.dim))
    samples = x.reshape(rows, len(names), *x.shape[1:])
    others = {g: 0 for g in schema.groups if g is not group}
    row_names = [f"z{r + 1}: " + _words(schema, base[r], others) for r in range(rows)]
    info: dict[str, Any] = {
        "walked": group.name,
        "xlabel": f"{group.name} (the same z and other attributes along a row)",
        "ylabel": "latent vector and other attributes",
    }
    if run.cfg.data.name == "shapes" and tuple(x.shape[1:]) == (3, 16, 16):
        from wgan.data.shapes import read_shape_attributes
        from wgan.metrics.attributes import group_correct

        read = read_shape_attributes(x)  # (R * V, k)
        j = schema.groups.index(group)
        right = group_correct(schema, read, cells.reshape(-1, schema.dim))[:, j]
        info["read_right"] = right.reshape(rows, len(names)).double().mean(0).tolist()
    return LatentGrid(
        samples=samples,
        z=zz.clone(),
        labels=None,
        row_names=row_names,
        col_names=names,
        row_paths=[None] * rows,
        title=printable(f"{run.cfg.name} at step {run.step}: {group.name} along each row, z fixed"),
        info=info,
    )


def _words(schema: Any, c: Tensor, groups: dict) -> str:
    """The values of ``groups`` in the vector ``c`` (k,), in words."""
    request = {}
    for g in groups:
        cols = schema.columns(g)
        request[g] = int(c[cols.start] > 0.5) if g.flag else int(c[cols].argmax())
    return request_words(schema, request)
