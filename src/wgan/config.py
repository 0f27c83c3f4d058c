"""Typed run configuration: dataclasses with defaults, YAML presets and dotted overrides.

A run is described by one :class:`Config`, composed of small sections that sit next to the
components they configure. Values come from, in order: the dataclass defaults, a preset or a
YAML file (which may ``extends:`` another preset), and ``key=value`` overrides on the command line
(dotted keys such as ``critic.hidden=256``). Every key is checked: an unknown key is rejected with
the closest valid names, and a value of the wrong type or out of range is rejected with the
expected type or range.

In a YAML file a key may be dotted too (``train.steps: 500`` is ``train: {steps: 500}``); a key
given twice, in one spelling or both, is an error naming it (PyYAML would keep the last one
silently). Every float must be finite, and every count has an upper bound declared next to its
field (``_at_most``). :data:`RESUME_MAY_CHANGE` lists the keys a resumed run may change.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import re
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml

from wgan.errors import ConfigError

MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed takes 64-bit seeds (offsets are added)
MAX_STEPS = 10**12  # iteration counts and cadences (an int64 counter never overflows)


def _at_most(default: Any, bound: int) -> Any:
    """A dataclass field with an upper bound, checked by :func:`validate` ("<= bound")."""
    return field(default=default, metadata={"max": bound})


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


@dataclass
class DataConfig:
    """Which data to train on. Toy parameters are used by the datasets that take them."""

    name: str = "8gaussians"
    batch_size: int = _at_most(256, 2**20)
    n_modes: int | None = _at_most(None, 65536)  # ring
    n_per_side: int | None = _at_most(None, 256)  # grid
    radius: float | None = None  # ring
    spacing: float | None = None  # grid
    sigma: float | None = None  # ring, grid
    theta: float | None = None  # parallel_lines
    # a fixed finite training set of this size (None: fresh samples)
    n_train: int | None = _at_most(None, 2**24)
    path: str | None = None  # image data read from the user's files (mnist, idx, cifar10, folder)
    resolution: int | None = None  # images: side length (8..64, a power of two)
    channels: int | None = None  # image folders: 1 (grayscale) or 3 (RGB)
    split: Literal["train", "test"] = "train"  # which part of a standard image dataset
    # text (data.name=text data.path=FILE, or the embedded markov_text): see wgan.data.text
    seq_len: int = _at_most(32, 4096)  # characters per sequence
    vocab_size: int = _at_most(64, 1024)  # text files: the most frequent chars + 1 unknown symbol
    # the vocabulary in index order (index 0, unknown, not included); set from the file when a
    # text run starts and stored in the run's config, so sampling decodes without the file
    vocab: str | None = None

    def dataset_params(self) -> dict[str, Any]:
        """The dataset keyword arguments that were set (None means the dataset's default)."""
        keys = ("n_modes", "n_per_side", "radius", "spacing", "sigma", "theta")
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}


@dataclass
class NetConfig:
    """A network: an MLP on vectors, or a DCGAN / ResNet on images.

    MLP: ``depth`` hidden layers of ``hidden`` units (WGAN-GP toy protocol: 3 x 512 ReLU).
    Text (``arch=text``, :mod:`wgan.nets.text`): ``depth`` residual blocks of two 1-D
    convolutions of ``width`` channels and ``kernel`` taps (the paper: 5 blocks, 512, 5).
    DCGAN / ResNet: ``width`` base channels (DCGAN 64, WGAN-GP CIFAR ResNet 128); the resolution
    and the image channels come from the data. ``norm`` is none, batch or layer norm (a critic
    trained with a gradient penalty must not use batch norm: the penalty is per sample).
    """

    arch: Literal["mlp", "dcgan", "resnet", "text"] = "mlp"
    hidden: int = _at_most(512, 65536)
    depth: int = _at_most(3, 1000)
    activation: Literal["relu", "leaky_relu", "tanh", "softplus"] = "relu"
    norm: Literal["none", "batch", "layer", "virtual"] = "none"  # virtual: generator only
    width: int = _at_most(64, 4096)
    kernel: int = _at_most(5, 255)  # text: 1-D convolution kernel size (odd)


@dataclass
class GeneratorConfig(NetConfig):
    """The generator network and its noise. ``kind=fixed`` replaces G by real data + noise."""

    latent_dim: int = _at_most(2, 65536)
    kind: Literal["learned", "fixed"] = "learned"
    fixed_noise_std: float = 0.1  # std of the Gaussian noise added to real data when kind=fixed


@dataclass
class ObjectiveConfig:
    """The GAN game's objective (see :mod:`wgan.objectives`)."""

    name: Literal["minimax", "nonsaturating", "wasserstein", "least_squares", "hinge", "fgan"] = (
        "wasserstein"
    )
    divergence: str = "kl"  # fgan only: a name from the f-divergence table
    pi: float = 0.5  # fgan weighted_jensen_shannon only
    generator_loss: Literal["saddle", "alternative"] = "saddle"  # fgan only


@dataclass
class ConditionalConfig:
    """Conditional GANs (Mirza & Osindero 2014; Reed et al. 2016; Odena et al. 2017).

    ``concat``: G(c, z) and D(c, x) with the label embedded and concatenated (Mirza & Osindero
    2014); the critic's loss has the three terms of the matching-aware discriminator of Reed et
    al. 2016 (GAN-CLS): real matched pairs as real, generated pairs as fake, and (when
    ``wrong_label``) real images paired with a wrong label as fake (each term with weight 1; the
    wrong-label term is refused with the Wasserstein objective, whose loss it leaves unbounded
    below). ``acgan``: G(c, z) and an unconditional critic with an
    auxiliary classifier head (the WGAN-GP paper's supervised CIFAR-10 model): cross-entropy on
    real labels for D (weight ``ac_weight``) and on the requested labels for G (weight
    ``ac_weight_g``).
    """

    mode: Literal["none", "concat", "acgan"] = "none"
    embed_dim: int = _at_most(16, 65536)
    wrong_label: bool = True
    ac_weight: float = 1.0
    ac_weight_g: float = 0.1


@dataclass
class ConstraintConfig:
    """How the critic is kept (near) 1-Lipschitz; the pieces compose."""

    clip: float = 0.0  # weight clipping to [-clip, clip] after every critic step (0: off)
    penalty: Literal["none", "two_sided", "one_sided", "one_sided_squared"] = "none"
    penalty_weight: float = 10.0  # lambda
    penalty_target: float = 1.0  # the gradient norm the penalty pulls towards
    # lazy regularisation: apply every k critic steps, scaled by k
    penalty_every: int = _at_most(1, 10**6)
    penalty_impl: Literal["autograd", "func"] = "autograd"  # how grad_x D is taken
    spectral_norm: bool = False


@dataclass
class OptimConfig:
    """One optimiser. Defaults: Adam(1e-4, betas (0, 0.9)) as in the WGAN-GP paper."""

    name: Literal["adam", "rmsprop", "sgd"] = "adam"
    lr: float = 1e-4
    betas: tuple[float, float] = (0.0, 0.9)
    weight_decay: float = 0.0


@dataclass
class TrainConfig:
    """The loop: ``steps`` generator iterations, each after ``n_critic`` critic iterations."""

    steps: int = _at_most(2000, MAX_STEPS)
    n_critic: int = _at_most(5, 1000)
    lr_decay: Literal["none", "linear"] = "none"  # linear: to 0 over `steps` (WGAN-GP CIFAR)
    seed: int = _at_most(0, MAX_SEED)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # read statistics back to the host this often (no per-step sync)
    log_every: int = _at_most(50, MAX_STEPS)
    eval_every: int = _at_most(500, MAX_STEPS)  # mode metrics and exact W1 (0: only at the end)
    eval_samples: int = _at_most(2500, 2**20)
    figure_every: int = _at_most(500, MAX_STEPS)  # 0: only at the end
    checkpoint_every: int = _at_most(500, MAX_STEPS)  # 0: only at the end
    progress: bool = True
    ema: float = 0.0  # decay of an exponential moving average of G's weights (0: off)
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"  # autocast dtype; fp16 adds loss scaling
    inception_weights: str | None = None  # a local Inception file for IS/FID/KID (no download)
    channels_last: bool = False  # image nets: NHWC memory layout (faster convs on tensor cores)
    compile: bool = False  # the whole generator iteration as one torch.compile graph (+ CUDA graph)


@dataclass
class TricksConfig:
    """The improved techniques (Salimans et al. 2016) and instance noise; all off by default.

    See :mod:`wgan.tricks`. Virtual batch norm is ``generator.norm=virtual`` with a reference
    batch of ``virtual_batch_size`` noise vectors drawn once per run.
    """

    feature_matching: float = 0.0  # weight of ||E d(x) - E d(G(z))||^2 in G's loss (0: off)
    feature_matching_mode: Literal["add", "replace"] = "add"  # replace: G's loss is FM alone
    minibatch: Literal["none", "discrimination", "stddev"] = "none"  # a batch feature for D
    minibatch_kernels: int = _at_most(16, 4096)  # minibatch discrimination: rows B of T
    minibatch_kernel_dim: int = _at_most(8, 4096)  # ... and their length C
    historical_averaging: float = 0.0  # lambda_h ||theta - mean of past theta||^2 (0: off)
    label_smoothing: float = 0.0  # one-sided: real targets 1 - alpha (minimax, NS, LS)
    virtual_batch_size: int = _at_most(64, 4096)  # the reference batch of generator.norm=virtual
    instance_noise: float = 0.0  # sigma_0 of N(0, sigma^2) on every critic input (0: off)
    instance_noise_steps: int = _at_most(0, 10**12)  # annealed to 0 by then (0: train.steps)
    instance_noise_schedule: Literal["linear", "exponential"] = "linear"


@dataclass
class Config:
    """A whole run."""

    name: str = "run"
    out_dir: str = "runs"
    data: DataConfig = field(default_factory=DataConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    critic: NetConfig = field(default_factory=NetConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    conditional: ConditionalConfig = field(default_factory=ConditionalConfig)
    constraint: ConstraintConfig = field(default_factory=ConstraintConfig)
    g_optim: OptimConfig = field(default_factory=OptimConfig)
    d_optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    tricks: TricksConfig = field(default_factory=TricksConfig)

    def to_dict(self) -> dict[str, Any]:
        """A plain nested dict (tuples as lists), suitable for YAML and checkpoints."""
        return _plain(dataclasses.asdict(self))


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


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


def _distinct(chars: str) -> bool:
    return len(set(chars)) == len(chars)


_DEVICE_RE = re.compile(r"auto|cpu(:[0-9]+)?|cuda(:[0-9]+)?")


def validate(cfg: Config) -> Config:
    """Check ranges and cross-field rules; raise :class:`ConfigError` naming the key.

    Every float must be finite (``nan`` and ``inf`` are refused for every key) and every count
    stays below the upper bound declared next to its field (e.g. ``critic.hidden <= 65,536``,
    ``data.batch_size <= 2**20``), so an absurd or overflowing value is one clear error.
    """
    _check_numbers(cfg)
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
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
    if not _DEVICE_RE.fullmatch(cfg.train.device):
        raise ConfigError(
            f"train.device must be auto, cpu, cuda or cuda:N, got {cfg.train.device!r}"
        )
    return cfg


# --------------------------------------------------------------------------------------------
# Resuming a run: which keys may change
# --------------------------------------------------------------------------------------------

RESUME_MAY_CHANGE = (
    "train.steps",
    "train.n_critic",
    "train.lr_decay",
    "train.log_every",
    "train.eval_every",
    "train.eval_samples",
    "train.figure_every",
    "train.checkpoint_every",
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
through :meth:`wgan.train.Trainer.hyper`; the penalty's weight, target and period, the clipping
bound and the EMA decay likewise), set how long and how often things happen (steps, critic
steps per iteration, schedule, log / eval / figure / checkpoint cadence, the progress bar), or
where the run computes or reads (device, the user's data files, the user's Inception weights).
Turning the EMA on starts the average at the current generator; turning it off drops it.

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


# --------------------------------------------------------------------------------------------
# Setting values by dotted key, with type checks
# --------------------------------------------------------------------------------------------


def _field_types(obj: Any) -> dict[str, Any]:
    return _type_hints(type(obj))


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin is tuple:
        return "a list of " + ", ".join(_type_name(a) for a in get_args(tp))
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Return ``value`` as type ``tp`` or raise ConfigError (ints are accepted for floats)."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        for arg in get_args(tp):
            try:
                return _coerce(value, arg, key)
            except ConfigError:
                continue
    elif origin is Literal:
        if value in get_args(tp):
            return value
    elif origin is tuple:
        args = get_args(tp)
        if isinstance(value, (list, tuple)) and len(value) == len(args):
            return tuple(_coerce(v, a, key) for v, a in zip(value, args, strict=True))
    elif tp is type(None):
        if value is None:
            return None
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
    raise ConfigError(f"{key} must be {_type_name(tp)}, got {value!r}")


def _unknown_key(key: str, valid: list[str]) -> ConfigError:
    close = difflib.get_close_matches(key.rsplit(".", 1)[-1], valid, n=3, cutoff=0.5)
    prefix = key.rsplit(".", 1)[0] + "." if "." in key else ""
    hint = f"; did you mean {', '.join(prefix + c for c in close)}?" if close else ""
    return ConfigError(f"unknown config key '{key}'{hint} (valid here: {', '.join(valid)})")


def set_value(cfg: Config, key: str, value: Any) -> None:
    """Set the dotted ``key`` of ``cfg`` to ``value`` after checking the key and its type."""
    parts = key.split(".")
    obj: Any = cfg
    for i, part in enumerate(parts):
        hints = _field_types(obj)
        if part not in hints:
            raise _unknown_key(".".join(parts[: i + 1]), sorted(hints))
        if i == len(parts) - 1:
            if dataclasses.is_dataclass(getattr(obj, part)):
                raise ConfigError(f"{key} is a section; set one of its keys, e.g. {key}.<name>")
            setattr(obj, part, _coerce(value, hints[part], key))
        else:
            obj = getattr(obj, part)
            if not dataclasses.is_dataclass(obj):
                raise ConfigError(f"{'.'.join(parts[: i + 1])} is not a section")


def _section_at(cfg: Config, dotted: str) -> Any:
    """The section a dotted key names, or None for a value key; unknown keys are errors."""
    parts = dotted.split(".")
    obj: Any = cfg
    for i, part in enumerate(parts):
        hints = _field_types(obj)
        if part not in hints:
            raise _unknown_key(".".join(parts[: i + 1]), sorted(hints))
        obj = getattr(obj, part)
        if not dataclasses.is_dataclass(obj):
            if i < len(parts) - 1:
                raise ConfigError(f"{'.'.join(parts[: i + 1])} is not a section")
            return None
    return obj


def apply_mapping(cfg: Config, mapping: dict[str, Any], prefix: str = "") -> None:
    """Apply a nested mapping (from YAML) onto ``cfg``, checking every key.

    A key may be dotted like an override: ``train.steps: 5`` is ``train: {steps: 5}``. A key
    given twice in one mapping, in any spelling (``train: {steps: 5}`` and ``train.steps: 6``),
    is an error naming it.
    """
    _apply_mapping(cfg, mapping, prefix, set())


def _apply_mapping(cfg: Config, mapping: Any, prefix: str, seen: set[str]) -> None:
    if not isinstance(mapping, dict):
        where = prefix.rstrip(".") or "the config file"
        raise ConfigError(f"{where} must be a mapping of keys to values, got {mapping!r}")
    for key, value in mapping.items():
        dotted = f"{prefix}{key}"
        if _section_at(cfg, dotted) is not None:
            _apply_mapping(cfg, value if value is not None else {}, f"{dotted}.", seen)
            continue
        if dotted in seen:
            raise ConfigError(f"config key '{dotted}' is given twice (once dotted, once nested)")
        seen.add(dotted)
        set_value(cfg, dotted, value)


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``key=value``; the value is read as YAML (``5`` -> int, ``[0, 0.9]`` -> list)."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' is not of the form key=value")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


# --------------------------------------------------------------------------------------------
# Presets and files
# --------------------------------------------------------------------------------------------


def preset_names() -> list[str]:
    """All presets shipped with the package, sorted."""
    folder = resources.files("wgan") / "presets"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: Any, line: int) -> None:
        super().__init__(f"duplicate key {key!r} on line {line}")
        self.key, self.line = key, line


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, but a mapping that repeats a key is an error (PyYAML keeps the
    last value silently, which drops a whole block when a section is repeated). Keys merged in
    with ``<<`` may be overridden, as YAML intends."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: PyYAML's own error follows
                continue
            if duplicate:
                raise _DuplicateKey(key, key_node.start_mark.line + 1)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml_mapping(text: str, where: str) -> dict[str, Any]:
    """Parse YAML ``text`` holding a mapping; ``where`` names it in errors (ConfigError).

    A repeated key is an error naming the key and its line.
    """
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except _DuplicateKey as err:
        raise ConfigError(
            f"{where}: key '{err.key}' is given twice (line {err.line}); each key may appear "
            "once in a mapping"
        ) from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{where} is not valid YAML: {err}".splitlines()[0]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must hold a mapping of keys to values")
    return data


_read_yaml = read_yaml_mapping


def load_preset_mapping(name: str) -> dict[str, Any]:
    """The raw mapping of preset ``name``; raises ConfigError naming close matches."""
    names = preset_names()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.4)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown preset '{name}'{hint} (run 'wgan presets' to list them)")
    text = (resources.files("wgan") / "presets" / f"{name}.yaml").read_text()
    return _read_yaml(text, f"preset '{name}'")


def preset_description(name: str) -> str:
    """The first comment line of a preset file (its one-line description)."""
    text = (resources.files("wgan") / "presets" / f"{name}.yaml").read_text()
    for line in text.splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def _resolve_mapping(mapping: dict[str, Any], cfg: Config, seen: tuple[str, ...]) -> None:
    """Apply ``mapping`` after the presets it ``extends`` (recursively, cycles rejected)."""
    mapping = dict(mapping)
    parent = mapping.pop("extends", None)
    if parent is not None:
        if not isinstance(parent, str):
            raise ConfigError(f"'extends' must name a preset, got {parent!r}")
        if parent in seen:
            raise ConfigError(f"presets extend each other in a cycle: {' -> '.join(seen)}")
        _resolve_mapping(load_preset_mapping(parent), cfg, (*seen, parent))
    apply_mapping(cfg, mapping)


def resolve(source: str | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Build a validated Config from a preset name or YAML path, then ``key=value`` overrides.

    ``source`` is a preset name (see :func:`preset_names`), a path to a ``.yaml``/``.yml`` file,
    or None for the default preset ``toy-wgan-gp``.
    """
    cfg = Config()
    source = source or "toy-wgan-gp"
    if source.endswith((".yaml", ".yml")) or "/" in source:
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(f"cannot read config file {path}: {err}") from None
        mapping = _read_yaml(text, f"config file {path}")
        mapping.setdefault("name", path.stem)
    else:
        mapping = load_preset_mapping(source)
        mapping.setdefault("name", source)
    _resolve_mapping(mapping, cfg, (source,))
    for text in overrides:
        key, value = parse_override(text)
        set_value(cfg, key, value)
    return validate(cfg)


def from_dict(mapping: dict[str, Any]) -> Config:
    """Rebuild a Config from :meth:`Config.to_dict` output (e.g. a run's saved config)."""
    cfg = Config()
    apply_mapping(cfg, mapping)
    return validate(cfg)


def dump_yaml(cfg: Config) -> str:
    """The resolved config as YAML text."""
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False, default_flow_style=None)
