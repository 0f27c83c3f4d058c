"""The random tensors of one GAN iteration, typed: what :meth:`wgan.gan.step.GANStep.draw` returns.

Named tuples are pytrees, so ``torch.func.vmap`` (a sweep) and ``torch.compile`` take them as
they are; absent parts are None.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor


class CriticDraws(NamedTuple):
    """The random tensors of one critic step (B = batch), or of ``n_critic`` steps stacked on a
    leading axis. A named tuple is a pytree, so ``vmap`` and ``compile`` take it as it is;
    absent parts are None.

    ``real`` (B, ...) a data batch, ``noise`` (B, latent) the generator's input, ``labels`` (B,)
    the batch's classes or (B, k) its attribute vectors (conditional), ``wrong`` (B,) mismatched
    classes or (B, k) mismatched attribute vectors (the wrong-label term),
    ``eps`` (B,) the penalty's interpolation weights, ``inst_real`` / ``inst_fake`` (B, ...)
    standard normals for instance noise, ``fake`` (B, ...) given fakes in place of G(noise) (a
    critic trained against a fixed source).
    """

    real: Tensor
    noise: Tensor | None = None
    labels: Tensor | None = None
    wrong: Tensor | None = None
    eps: Tensor | None = None
    inst_real: Tensor | None = None
    inst_fake: Tensor | None = None
    fake: Tensor | None = None


class GeneratorDraws(NamedTuple):
    """The random tensors of the generator step: ``noise`` (B, latent), ``labels`` (B,) or
    (B, k) the conditions (a data batch's classes or attribute vectors), ``real`` (B, ...) the
    batch feature matching compares with, ``inst`` (B, ...) standard normals for instance
    noise."""

    noise: Tensor
    labels: Tensor | None = None
    real: Tensor | None = None
    inst: Tensor | None = None


class Draws(NamedTuple):
    """Every random tensor of one generator iteration: the critic steps' (stacked,
    (n_critic, B, ...)) and the generator step's (None when the generator is fixed)."""

    critic: CriticDraws
    generator: GeneratorDraws | None = None

    def as_dict(self) -> dict[str, Tensor]:
        """The parts present, by name: the critic's fields, and ``g_<field>`` for the
        generator step's (``g_noise``, ``g_labels``, ...)."""
        out = {k: v for k, v in self.critic._asdict().items() if v is not None}
        if self.generator is not None:
            gen = self.generator._asdict().items()
            out.update({f"g_{k}": v for k, v in gen if v is not None})
        return out

    @classmethod
    def from_dict(cls, named: dict[str, Tensor]) -> Draws:
        """The inverse of :meth:`as_dict` (e.g. draws saved with ``torch.save`` as plain dicts)."""
        critic = CriticDraws(**{k: v for k, v in named.items() if not k.startswith("g_")})
        gen = {k[2:]: v for k, v in named.items() if k.startswith("g_")}
        return cls(critic, GeneratorDraws(**gen) if gen else None)


def stack_draws(parts: list[Any]) -> Any:
    """Named tuples of tensors (or None) stacked field by field on a new leading axis."""
    first = parts[0]
    fields = [
        None if values[0] is None else torch.stack(list(values))
        for values in zip(*parts, strict=True)
    ]
    return type(first)(*fields)


def at_step(draws: CriticDraws, i: int) -> CriticDraws:
    """Critic step ``i`` of stacked critic draws."""
    return CriticDraws(*(None if v is None else v[i] for v in draws))


__all__ = ["CriticDraws", "Draws", "GeneratorDraws", "at_step", "stack_draws"]
