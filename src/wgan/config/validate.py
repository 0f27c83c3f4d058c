"""Checks of a resolved config: value ranges, device strings, what a resume may change."""

from __future__ import annotations

import dataclasses
import math
import operator
import re
from typing import Any

from wgan.config.sections import MAX_SEED, Config
from wgan.errors import ConfigError

# --------------------------------------------------------------------------------------------
# Validation of values (ranges); types are checked while setting
# --------------------------------------------------------------------------------------------


def leaf_items(obj: Any, prefix: str = "") -> list[tuple[str, Any, dataclasses.Field]]:
    """Every leaf of a config (or section) as ``(dotted key, value, dataclass field)``."""
    out = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            out.extend(leaf_items(value, f"{prefix}{f.name}."))
        else:
            out.append((f"{prefix}{f.name}", value, f))
    return out


def _check_numbers(cfg: Config) -> None:
    """Every float is finite (no nan, no inf anywhere) and every bounded number within bounds."""
    for key, value, f in leaf_items(cfg):
        values = value if isinstance(value, tuple) else (value,)
        for v in values:
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"{key} must be a finite number, got {v}")
        bound = f.metadata.get("max")
        if bound is not None and value is not None and value > bound:
            raise ConfigError(f"{key} must be <= {bound:,}, got {value:,}")


def check_seed(value: Any, what: str = "seed") -> int:
    """``value`` as a seed: an integer in [0, :data:`MAX_SEED`], the range of ``train.seed``.

    One rule for every seed a user gives (``train.seed``, ``--seed`` of ``wgan sample``, ``eval``
    and ``interpolate``, :meth:`wgan.training.run.Run.samples`): ``torch.Generator.manual_seed``
    takes 64-bit seeds, and a run adds small offsets to its seed. Anything else (a bool, a float,
    a negative or too large number) raises :class:`ConfigError` naming ``what``.
    """
    try:
        if isinstance(value, bool):
            raise TypeError
        seed = operator.index(value)
    except TypeError:
        raise ConfigError(f"{what} must be an integer, got {_short(value)}") from None
    if not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"{what} must be in [0, {MAX_SEED}], got {_short(seed)}")
    return seed


def _short(value: Any, most: int = 40) -> str:
    """``repr(value)``, cut to ``most`` characters (a seed of a thousand digits stays one line)."""
    text = repr(value)
    return text if len(text) <= most else text[: most - 3] + "..."


def _distinct(chars: str) -> bool:
    return len(set(chars)) == len(chars)


_DEVICE_RE = re.compile(r"auto|cpu(:[0-9]+)?|cuda(:[0-9]+)?")

#: The objectives whose critic is trained towards real/fake targets, so that one-sided label
#: smoothing (Salimans et al. 2016, sec. 3.4: the real target 1 becomes 1 - alpha) is defined:
#: the cross entropy of the minimax GAN (Goodfellow et al. 2014) and the least-squares targets
#: a = 0, b = 1 of LSGAN (Mao et al. 2017). The Wasserstein and hinge critics and the f-GAN
#: critic T = g(v), which estimates f'(p/q) (Nowozin et al. 2016), have no targets to smooth.
#: The same list as the objectives that take ``label_smoothing`` in :mod:`wgan.objectives`.
LABEL_SMOOTHING_OBJECTIVES = ("minimax", "nonsaturating", "least_squares")


def _label_smoothing_message(cfg: Config) -> str | None:
    """The one-line refusal of ``tricks.label_smoothing`` for an objective without targets."""
    name = cfg.objective.name
    if not cfg.tricks.label_smoothing or name in LABEL_SMOOTHING_OBJECTIVES:
        return None
    why = {
        "wasserstein": "its critic is an unbounded score, not a classifier",
        "hinge": "its critic is trained to margins +1 and -1, not to class targets",
        "fgan": (
            "its critic T = g(v) estimates f'(p/q), not a class probability; for the GAN "
            "divergence use objective.name=minimax (saddle) or nonsaturating (alternative)"
        ),
    }.get(name, "it has no real/fake targets")
    return (
        f"tricks.label_smoothing={cfg.tricks.label_smoothing:g} needs objective.name in "
        f"{', '.join(LABEL_SMOOTHING_OBJECTIVES)}, not {name}: {why}"
    )


def validate(cfg: Config) -> Config:
    """Check ranges and cross-field rules; raise :class:`ConfigError` naming the key.

    Every float must be finite (``nan`` and ``inf`` are refused for every key) and every count
    stays below the upper bound declared next to its field (e.g. ``critic.hidden <= 65,536``,
    ``data.batch_size <= 2**20``), so an absurd or overflowing value is one clear error.
    """
    _check_numbers(cfg)
    for ok, message in _checks(cfg):
        if not ok:
            raise ConfigError(message)
    smoothing = _label_smoothing_message(cfg)
    if smoothing:
        raise ConfigError(smoothing)
    if not _DEVICE_RE.fullmatch(cfg.train.device):
        raise ConfigError(f"{DEVICE_RULE}, got {cfg.train.device!r}")
    return cfg


DEVICE_RULE = "train.device must be auto, cpu, cuda or cuda:N"


def _checks(cfg: Config) -> list[tuple[bool, str]]:
    """The range and cross-field checks of :func:`validate`: ``(holds, message)`` pairs."""
    checks: list[tuple[bool, str]] = [
        (cfg.data.batch_size >= 1, "data.batch_size must be >= 1"),
        (cfg.generator.latent_dim >= 1, "generator.latent_dim must be >= 1"),
        (cfg.generator.fixed_noise_std >= 0, "generator.fixed_noise_std must be >= 0"),
        (cfg.constraint.clip >= 0, "constraint.clip must be >= 0 (0 turns clipping off)"),
        (cfg.constraint.penalty_weight >= 0, "constraint.penalty_weight (lambda) must be >= 0"),
        (cfg.constraint.penalty_target > 0, "constraint.penalty_target must be > 0"),
        (cfg.constraint.penalty_every >= 1, "constraint.penalty_every must be >= 1"),
        (0.0 < cfg.objective.pi < 1.0, "objective.pi must be in (0, 1)"),
        (cfg.train.steps >= 1, "train.steps must be >= 1"),
        (cfg.train.n_critic >= 1, "train.n_critic must be >= 1"),
        (cfg.train.seed >= 0, "train.seed must be >= 0"),
        (cfg.train.log_every >= 1, "train.log_every must be >= 1"),
        (cfg.train.eval_every >= 0, "train.eval_every must be >= 0"),
        (cfg.train.eval_samples >= 1, "train.eval_samples must be >= 1"),
        (cfg.train.figure_every >= 0, "train.figure_every must be >= 0"),
        (cfg.train.checkpoint_every >= 0, "train.checkpoint_every must be >= 0"),
        (cfg.train.checkpoint_minutes >= 0, "train.checkpoint_minutes must be >= 0 (0: off)"),
        (cfg.data.n_train is None or cfg.data.n_train >= 1, "data.n_train must be >= 1"),
        (cfg.data.n_modes is None or cfg.data.n_modes >= 1, "data.n_modes must be >= 1"),
        (cfg.data.n_per_side is None or cfg.data.n_per_side >= 1, "data.n_per_side must be >= 1"),
        (cfg.conditional.embed_dim >= 1, "conditional.embed_dim must be >= 1"),
        (cfg.conditional.ac_weight >= 0, "conditional.ac_weight must be >= 0"),
        (cfg.conditional.ac_weight_g >= 0, "conditional.ac_weight_g must be >= 0"),
        (0.0 <= cfg.train.ema < 1.0, "train.ema (the EMA decay) must be in [0, 1)"),
        (cfg.tricks.feature_matching >= 0, "tricks.feature_matching must be >= 0"),
        (
            cfg.tricks.feature_matching_mode == "add" or cfg.tricks.feature_matching > 0,
            "tricks.feature_matching_mode=replace needs a weight tricks.feature_matching > 0",
        ),
        (cfg.tricks.minibatch_kernels >= 1, "tricks.minibatch_kernels must be >= 1"),
        (cfg.tricks.minibatch_kernel_dim >= 1, "tricks.minibatch_kernel_dim must be >= 1"),
        (cfg.tricks.historical_averaging >= 0, "tricks.historical_averaging must be >= 0"),
        (0.0 <= cfg.tricks.label_smoothing < 1.0, "tricks.label_smoothing must be in [0, 1)"),
        (cfg.tricks.virtual_batch_size >= 1, "tricks.virtual_batch_size must be >= 1"),
        (cfg.tricks.instance_noise >= 0, "tricks.instance_noise must be >= 0"),
        (cfg.tricks.instance_noise_steps >= 0, "tricks.instance_noise_steps must be >= 0"),
        (
            cfg.critic.norm != "virtual",
            "critic.norm=virtual: virtual batch norm is for the "
            "generator (its reference batch is fixed noise); use batch, layer or none",
        ),
        (
            cfg.data.channels is None or cfg.data.channels in (1, 3),
            "data.channels must be 1 or 3",
        ),
        (
            cfg.data.resolution is None or cfg.data.resolution in (8, 16, 32, 64),
            "data.resolution must be 8, 16, 32 or 64",
        ),
    ]
    checks += [
        (cfg.data.seq_len >= 1, "data.seq_len must be >= 1"),
        (cfg.data.vocab_size >= 2, "data.vocab_size must be >= 2 (one symbol + unknown)"),
        (
            cfg.data.vocab is None
            or (0 < len(cfg.data.vocab) < 1024 and _distinct(cfg.data.vocab)),
            "data.vocab must be a string of 1 to 1023 distinct characters",
        ),
    ]
    for net_key in ("generator", "critic"):
        net = getattr(cfg, net_key)
        checks.append((net.kernel >= 1 and net.kernel % 2 == 1, f"{net_key}.kernel must be odd"))
        checks.append((net.hidden >= 1, f"{net_key}.hidden must be >= 1"))
        checks.append((net.depth >= 0, f"{net_key}.depth must be >= 0"))
        checks.append((net.width >= 1, f"{net_key}.width must be >= 1"))
    for opt_key in ("g_optim", "d_optim"):
        opt = getattr(cfg, opt_key)
        checks.append((opt.lr > 0, f"{opt_key}.lr must be > 0"))
        checks.append((all(0 <= b < 1 for b in opt.betas), f"{opt_key}.betas must be in [0, 1)"))
        checks.append((opt.weight_decay >= 0, f"{opt_key}.weight_decay must be >= 0"))
    return checks


def value_ranges(cfg: Config) -> dict[str, str]:
    """The range of each key that has one, in the words of :func:`validate`'s checks (one
    source for the check and its description): ``{"train.steps": ">= 1, <= 1,000,000,000,000",
    "objective.pi": "in (0, 1)", ...}``. A declared upper bound (``_at_most``) is added, and
    every float must be finite."""
    out: dict[str, list[str]] = {}
    for _, message in [*_checks(cfg), (True, DEVICE_RULE)]:
        key, sep, rule = message.partition(" must be ")
        if sep and " " not in key.strip():
            out.setdefault(key, []).append(rule)
        elif sep and key.endswith(")"):  # "train.ema (the EMA decay) must be in [0, 1)"
            out.setdefault(key.split(" ", 1)[0], []).append(rule)
    for key, _, f in leaf_items(cfg):
        bound = f.metadata.get("max")
        if bound is not None:
            out.setdefault(key, []).append(f"<= {bound:,}")
    return {key: ", ".join(rules) for key, rules in out.items()}


# --------------------------------------------------------------------------------------------
# Resuming a run: which keys may change
# --------------------------------------------------------------------------------------------

RESUME_MAY_CHANGE = (
    "train.steps",
    "train.threads",
    "train.n_critic",
    "train.lr_decay",
    "train.log_every",
    "train.eval_every",
    "train.eval_samples",
    "train.figure_every",
    "train.checkpoint_every",
    "train.checkpoint_minutes",
    "train.progress",
    "train.device",
    "train.ema",
    "train.inception_weights",
    "d_optim.lr",
    "d_optim.betas",
    "d_optim.weight_decay",
    "g_optim.lr",
    "g_optim.betas",
    "g_optim.weight_decay",
    "constraint.penalty_weight",
    "constraint.penalty_target",
    "constraint.penalty_every",
    "constraint.clip",
    "data.path",
)
"""The config keys whose values may change when a run is resumed (dotted names).

They are read afresh by the loop (learning rates, betas and weight decay go into every update
through :meth:`wgan.training.trainer.Trainer.hyper`; the penalty's weight, target and period, the
clipping bound and the EMA decay likewise), set how long and how often things happen (steps, critic
steps per iteration, schedule, log / eval / figure / checkpoint cadence, the progress bar), or where
the run computes or reads (device, the user's data files, the user's Inception weights). Turning the
EMA on starts the average at the current generator; turning it off drops it.

Every other key fixes the shapes of the saved weights and optimiser states (architecture, data,
latent and label sizes, conditioning), the optimiser kind (its saved state holds other moments),
the code path (objective, which constraints, precision, compilation, memory layout) or the
run's identity (name, seed, out_dir), and is refused on resume, naming it and both values.
"""


def changed_keys(old: Config, new: Config) -> dict[str, tuple[Any, Any]]:
    """The dotted keys whose values differ between two configs: ``{key: (old, new)}``."""
    a = {k: v for k, v, _ in leaf_items(old)}
    return {k: (a[k], v) for k, v, _ in leaf_items(new) if a[k] != v}


def check_resume(saved: Config, cfg: Config) -> None:
    """Refuse a resumed config that changes a key outside :data:`RESUME_MAY_CHANGE`.

    ``saved`` is the checkpoint's config, ``cfg`` the one to continue with (after overrides).
    The error names every such key with the run's value and the new one.
    """
    bad = {k: v for k, v in changed_keys(saved, cfg).items() if k not in RESUME_MAY_CHANGE}
    if not bad:
        return
    items = []
    for key, (old, new) in bad.items():
        item = f"{key} from {old!r} to {new!r}"
        if key in ("d_optim.name", "g_optim.name"):
            item += f" (the saved optimiser state is not a {new} state)"
        items.append(item)
    what = "this key" if len(bad) == 1 else "these keys"
    raise ConfigError(
        f"cannot resume with {'; '.join(items)}: {what} cannot change on resume (shapes, the "
        f"optimiser kind, code paths or the run's identity); keys that may change: "
        f"{', '.join(RESUME_MAY_CHANGE)}"
    )
