"""The sections of a run's config: typed dataclasses with defaults and declared bounds.

Each section sits next to the component it configures (data, networks, objective,
conditioning, constraint, optimisers, loop, improved techniques) and :class:`Config` composes
them. Loading, overrides and validation are in :mod:`wgan.config`, which re-exports these names.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

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

    # toy: 8gaussians, 25gaussians, ring, grid, swissroll, parallel_lines; images: digits,
    # stacked_digits, mnist, fashion_mnist, stacked_mnist, idx, cifar10, cifar100, folder (the
    # user's PNG/JPEG files); attribute images: shapes (embedded), celeba (the user's files);
    # text: text (a UTF-8 file), markov_text (the embedded corpus)
    name: str = "8gaussians"
    batch_size: int = _at_most(256, 2**20)  # real samples per critic step (and fakes per step)
    n_modes: int | None = _at_most(None, 65536)  # ring: Gaussians on the circle (null: 8)
    n_per_side: int | None = _at_most(None, 256)  # grid: Gaussians per side (null: 5)
    radius: float | None = None  # ring: the circle's radius (null: 1)
    spacing: float | None = None  # grid: the distance between neighbouring Gaussians (null: 1)
    sigma: float | None = None  # ring, grid: each Gaussian's standard deviation (null: 0.02)
    # parallel_lines: the line's x position theta (null: 0, the real distribution P0 of
    # Arjovsky et al. 2017, Example 1)
    theta: float | None = None
    # a fixed finite training set of this size (None: fresh samples); shapes: the number of
    # images (null: 12,000); celeba, a folder with attribute_file: the first N images listed
    n_train: int | None = _at_most(None, 2**24)
    # the user's files: image data (mnist, idx, cifar10, folder) or a UTF-8 text file (text; a
    # path given to the embedded markov_text, e.g. preset text-wgan-gp, makes data.name text)
    path: str | None = None
    # images: side length (8..64, a power of two); unset: the dataset's own, for an image folder
    # its files' most common size rounded to a power of two
    resolution: int | None = None
    # image folders: 1 (grayscale) or 3 (RGB); unset: 3 if any file is stored in colour, else 1
    channels: int | None = None
    split: Literal["train", "test"] = "train"  # which part of a standard image dataset
    # text (data.name=text data.path=FILE, or the embedded markov_text): see wgan.data.text
    seq_len: int = _at_most(32, 4096)  # characters per sequence
    vocab_size: int = _at_most(64, 1024)  # text files: the most frequent chars + 1 unknown symbol
    # the vocabulary in index order (index 0, unknown, not included); set from the file when a
    # text run starts and stored in the run's config, so sampling decodes without the file
    vocab: str | None = None
    # image folders: the class sub-folders' names in label order; set from the folder when a run
    # starts and stored in the run's config (wgan sample --label NAME)
    classes: tuple[str, ...] | None = None
    # attribute data (shapes, celeba, a folder with data.attribute_file): the attribute layout,
    # one-hot groups "name:v1|v2|..." and flags "name" or "name/off_name"; set from the data when
    # a run starts and stored in the run's config (wgan sample --attrs red,triangle)
    attributes: tuple[str, ...] | None = None
    # attribute data: combinations removed from training, each a request such as "green,triangle"
    # (one string holds several separated by ';': "green,triangle;red,circle")
    holdout_combos: tuple[str, ...] | None = None
    # data.name=folder: a CSV "filename,attr1,attr2,..." of 0/1 attributes for the folder's images
    attribute_file: str | None = None
    # shapes: the seed of the generated image set (the same set for every train.seed)
    seed: int = _at_most(0, MAX_SEED)
    # celeba: the side of the centre crop taken before resizing (null: 140, the usual 64x64 crop)
    crop: int | None = _at_most(None, 4096)

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
    Architecture study options (Gulrajani et al. 2017, Sec. 5.1; :mod:`wgan.nets.build`):
    ``activation`` (gated = tanh(a) * sigmoid(b); auto = the architecture's own), ``layers``
    (DCGAN convolutions in all), ``blocks`` (ResNet residual blocks), ``constant_width`` (DCGAN
    generator), and ``arch=mlp`` for an image generator (``depth`` x ``hidden``, then tanh).
    """

    arch: Literal["mlp", "dcgan", "resnet", "text"] = "mlp"  # mlp: vectors; text: sequences
    hidden: int = _at_most(512, 65536)  # mlp: units per hidden layer
    depth: int = _at_most(3, 1000)  # mlp: hidden layers; text: residual blocks
    # auto: relu for mlp and resnet, relu in a dcgan generator, leaky_relu (0.2) in its critic
    activation: Literal["auto", "relu", "leaky_relu", "tanh", "softplus", "gated"] = "auto"
    norm: Literal["none", "batch", "layer", "virtual"] = "none"  # virtual: generator only
    width: int = _at_most(64, 4096)  # dcgan, resnet: base channels; text: channels
    kernel: int = _at_most(5, 255)  # text: 1-D convolution kernel size (odd)
    layers: int = _at_most(0, 1000)  # dcgan: convolutions in all (0: one per 2x resampling)
    blocks: int = _at_most(0, 1000)  # resnet: residual blocks in all (0: the paper's count)
    constant_width: bool = False  # dcgan generator: every map has `width` channels
    # dcgan nets: dcgan = N(0, 0.02), he = N(0, 2 / fan_in) (resnet, mlp: PyTorch's, always)
    init: Literal["dcgan", "he"] = "dcgan"


@dataclass
class GeneratorConfig(NetConfig):
    """The generator network and its noise. ``kind=fixed`` replaces G by real data + noise."""

    latent_dim: int = _at_most(2, 65536)  # the size of the noise z ~ N(0, I)
    kind: Literal["learned", "fixed"] = "learned"  # fixed: real data + noise (a critic study)
    fixed_noise_std: float = 0.1  # std of the Gaussian noise added to real data when kind=fixed


@dataclass
class ObjectiveConfig:
    """The GAN game's objective (see :mod:`wgan.objectives`)."""

    # minimax and nonsaturating (Goodfellow et al. 2014), wasserstein (Arjovsky et al. 2017),
    # least_squares (Mao et al. 2017), hinge (Lim & Ye 2017), fgan (Nowozin et al. 2016)
    name: Literal["minimax", "nonsaturating", "wasserstein", "least_squares", "hinge", "fgan"] = (
        "wasserstein"
    )
    divergence: str = "kl"  # fgan only: a name from the f-divergence table
    pi: float = 0.5  # fgan weighted_jensen_shannon only: its weight pi
    # fgan only: saddle = G minimises the saddle objective, alternative = G maximises E_Q[T]
    # (Nowozin et al. 2016, sec. 3.2; for the GAN divergence: the non-saturating loss)
    generator_loss: Literal["saddle", "alternative"] = "saddle"


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
    ``ac_weight_g``). ``projection``: G(c, z) as for concat and the projection discriminator
    D(x, c) = psi(phi(x)) + <V c, phi(x)> (Miyato & Koyama 2018), with the same three terms.
    On attribute data (``data.attributes``) c is a vector in {0, 1}^k: its embedding is linear,
    the wrong vector changes a random non-empty set of attribute groups, and the acgan head is
    multi-label (a binary cross-entropy per attribute).
    """

    # auto: concat when the data has classes (e.g. a folder's sub-folders), else none
    mode: Literal["none", "concat", "projection", "acgan", "auto"] = "none"
    embed_dim: int = _at_most(16, 65536)  # the condition's embedding size (G; concat: D too)
    wrong_label: bool = True  # concat, projection: the GAN-CLS term of real data, wrong label
    ac_weight: float = 1.0  # acgan: the weight of the critic's classification loss
    ac_weight_g: float = 0.1  # acgan: the weight of the generator's classification loss


@dataclass
class ConstraintConfig:
    """How the critic is kept (near) 1-Lipschitz; the pieces compose."""

    clip: float = 0.0  # weight clipping to [-clip, clip] after every critic step (0: off)
    # gradient penalty on interpolates: two_sided (||grad D|| - t)^2 (WGAN-GP, Gulrajani et al.
    # 2017), one_sided max(0, ||grad D|| - t), one_sided_squared (Petzka et al. 2018)
    penalty: Literal["none", "two_sided", "one_sided", "one_sided_squared"] = "none"
    penalty_weight: float = 10.0  # lambda, the penalty's weight
    penalty_target: float = 1.0  # the gradient norm the penalty pulls towards
    # lazy regularisation: apply every k critic steps, scaled by k
    penalty_every: int = _at_most(1, 10**6)
    penalty_impl: Literal["autograd", "func"] = "autograd"  # how grad_x D is taken
    spectral_norm: bool = False  # spectral normalisation of the critic's layers (Miyato 2018)


@dataclass
class OptimConfig:
    """One optimiser. Defaults: Adam(1e-4, betas (0, 0.9)) as in the WGAN-GP paper."""

    name: Literal["adam", "rmsprop", "sgd"] = "adam"  # the update rule (wgan.gan.optim)
    lr: float = 1e-4  # learning rate (train.lr_decay may decay it)
    betas: tuple[float, float] = (0.0, 0.9)  # adam: [beta1, beta2]; sgd: [momentum, unused]
    weight_decay: float = 0.0  # L2 weight decay, added to the gradient (torch's convention)


@dataclass
class TrainConfig:
    """The loop: ``steps`` generator iterations, each after ``n_critic`` critic iterations."""

    steps: int = _at_most(2000, MAX_STEPS)  # generator iterations in all (resume: raise it)
    n_critic: int = _at_most(5, 1000)  # critic iterations per generator iteration
    # linear: lr * (1 - step / steps), 0 at `steps` (WGAN-GP CIFAR-10). A function of the step
    # and the current `steps`: a resume with more steps follows the schedule of a run of the
    # new length from its step on (a rate that reached 0 rises to lr * (1 - step / new steps));
    # wgan train --resume prints the rate before and after
    lr_decay: Literal["none", "linear"] = "none"
    seed: int = _at_most(0, MAX_SEED)  # initialisation, data and noise (one run per seed: sweep)
    device: str = "auto"  # where training runs (auto: CUDA if present, else the CPU)
    threads: int = _at_most(0, 1024)  # CPU threads while training (0: as many as are free)
    # read statistics back to the host this often (no per-step sync)
    log_every: int = _at_most(50, MAX_STEPS)
    eval_every: int = _at_most(500, MAX_STEPS)  # mode metrics and exact W1 (0: only at the end)
    eval_samples: int = _at_most(2500, 2**20)  # generated samples per evaluation
    figure_every: int = _at_most(500, MAX_STEPS)  # figures this often (0: only at the end)
    checkpoint_every: int = _at_most(500, MAX_STEPS)  # a checkpoint this often (0: at the end)
    # also a checkpoint when this many minutes passed since the last one (default 10; 0: off),
    # so that a kill loses minutes, not a long checkpoint_every interval; a save only
    checkpoint_minutes: float = _at_most(10.0, 10**6)
    progress: bool = True  # a progress bar on stderr
    ema: float = 0.0  # decay of an exponential moving average of G's weights (0: off)
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"  # autocast dtype; fp16 adds loss scaling
    inception_weights: str | None = None  # a local Inception file for IS/FID/KID (no download)
    channels_last: bool = False  # image nets: NHWC memory layout (faster convs on tensor cores)
    compile: bool = False  # the whole generator iteration as one torch.compile graph (+ CUDA graph)


@dataclass
class TricksConfig:
    """The improved techniques (Salimans et al. 2016) and instance noise; all off by default.

    See :mod:`wgan.gan.tricks`. Virtual batch norm is ``generator.norm=virtual`` with a reference
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
    instance_noise_schedule: Literal["linear", "exponential"] = "linear"  # sigma's annealing


@dataclass
class Config:
    """A whole run."""

    name: str = "run"  # the run's folder is out_dir/NNNNN-name (default: the preset's name)
    out_dir: str = "runs"  # the folder of the numbered run folders
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
