"""The GAN step, written once: draws, then critic and generator updates as functions of tensors.

One generator iteration of every GAN here (Goodfellow et al. 2014; Arjovsky et al. 2017, Alg. 1;
Gulrajani et al. 2017, Alg. 1) is ``n_critic`` critic updates followed by one generator update.
:class:`GANStep` splits it in two:

1. :meth:`GANStep.draw` takes every random number the iteration needs from the run's
   ``torch.Generator``, in one place: per critic step the real batch (and its labels), the
   generator's noise, the wrong labels of a conditional critic and the penalty's interpolation
   weights; then the generator step's labels and noise, as typed
   :class:`~wgan.gan.draws.Draws`. Nothing after this draws.
2. :meth:`GANStep.iteration` is a function of the players' parameters and buffers, the
   optimiser states, the draws and the hyperparameters. It asks :class:`wgan.gan.loss.GANLoss` for
   the named loss terms (objective, conditioning, penalty), differentiates ``terms['loss']``,
   averages the gradients over processes when data parallel, applies the one optimiser update
   of :mod:`wgan.gan.optim`, the constraint's projection and the EMA, all in place, and returns the
   terms. It has no host synchronisation and no Python branch on a tensor's value.

The same iteration therefore runs

* eagerly with autograd (``functional=False``: the modules' own parameters, ``autograd.grad``
  and the constant-mask penalty, the fastest path on a CPU);
* as a pure function of tensors (``functional=True``: :func:`torch.func.functional_call` and
  :func:`torch.func.grad`), which is what :func:`torch.compile` (``fullgraph=True``, CUDA graphs
  with ``mode="reduce-overhead"``) and :func:`torch.func.vmap` over stacked runs (a sweep,
  :mod:`wgan.scale.sweep`) take.

State layout (a pytree): ``{'d', 'd_buf', 'g', 'g_buf'}`` name -> tensor dicts of parameters and
buffers, ``'opt_d'``, ``'opt_g'`` optimiser states (:func:`wgan.gan.optim.init_state`), and
``'ema'``, ``'ema_buf'`` when the generator has an EMA; ``'scale_d'``, ``'scale_g'`` hold the
fp16 loss scale. Hyperparameters: ``{'d', 'g'}`` optimiser dicts (:func:`wgan.gan.optim.hyper`),
``'penalty_due'`` (n_critic,) factors, ``'penalty_weight'``, ``'penalty_target'``, ``'clip'``
and ``'ema_decay'``; each a float or a tensor (one value per run in a sweep).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from wgan.gan import optim
from wgan.gan.draws import CriticDraws, Draws, GeneratorDraws, at_step, stack_draws
from wgan.gan.ema import ema_update_
from wgan.gan.loss import GANLoss, PenaltyCall
from wgan.gan.precision import autocast
from wgan.gan.tricks import historical_penalty, update_historical_mean_

State = dict[str, Any]
Terms = dict[str, Tensor]


FP16_GROWTH_INTERVAL = 2000  # torch.amp.GradScaler's defaults
FP16_INIT_SCALE = 2.0**16


class Player:
    """A network as a function of its parameters and buffers (or of its own, when eager)."""

    def __init__(self, module: nn.Module, functional: bool) -> None:
        self.module, self.functional = module, functional

    def tensors(self) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """The parameters and buffers the state holds: the live ones for eager autograd,
        detached aliases (same storage, updated in place) for the functional step."""
        params = dict(self.module.named_parameters())
        buffers = dict(self.module.named_buffers())
        if self.functional:
            params = {k: v.detach() for k, v in params.items()}
        return params, buffers

    def __call__(self, params: dict, buffers: dict, *args: Any, **kwargs: Any) -> Any:
        if self.functional:
            return functional_call(self.module, (params, buffers), args, kwargs)
        return self.module(*args, **kwargs)


class BoundCritic:
    """D at given parameters, called as ``critic(x, labels)`` (:class:`wgan.gan.loss.Critic`).

    ``concat``: the critic takes the condition (``concat`` or ``projection`` conditioning,
    :attr:`wgan.gan.loss.GANLoss.paired`)."""

    def __init__(self, player: Player, params: dict, buffers: dict, concat: bool) -> None:
        self.player, self.params, self.buffers, self.concat = player, params, buffers, concat

    def __call__(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.concat:
            return self.player(self.params, self.buffers, x, labels)  # D(c, x)
        return self.player(self.params, self.buffers, x)

    def score_and_logits(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.player(self.params, self.buffers, x, with_logits=True)

    def features(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        """phi(x) (B, F) (a :class:`wgan.nets.tricks.FeatureCritic`: feature matching)."""
        if self.concat:
            return self.player(self.params, self.buffers, x, labels, features=True)
        return self.player(self.params, self.buffers, x, features=True)


class GANStep:
    """Draws and one generator iteration of a GAN; see the module docstring.

    Args:
        gen, critic: the players (``gen`` has ``noise(n, generator, device)`` and
            ``forward(noise, labels)``; a fixed generator has no parameters).
        loss: the loss terms (:class:`wgan.gan.loss.GANLoss`).
        n_critic: critic updates per generator iteration.
        d_optim, g_optim: optimiser names (adam, rmsprop, sgd); ``g_optim`` None: G is fixed.
        functional: take the pure-function path (compile, vmap) instead of eager autograd.
        precision: fp32, bf16 or fp16 (autocast; fp16 adds dynamic loss scaling).
        sync: averages a list of gradients over processes (data parallel), or None.
        historical: lambda_h of historical averaging (Salimans et al. 2016), 0: off.
        instance_noise: whether the critic's inputs get instance noise (sigma_t is the
            ``instance_noise`` hyperparameter; the draws carry standard normals).
    """

    def __init__(
        self,
        gen: nn.Module,
        critic: nn.Module,
        loss: GANLoss,
        n_critic: int,
        d_optim: str,
        g_optim: str | None,
        functional: bool = False,
        precision: str = "fp32",
        sync: Callable[[list[Tensor]], list[Tensor]] | None = None,
        historical: float = 0.0,
        instance_noise: bool = False,
    ) -> None:
        self.gen, self.critic, self.loss = gen, critic, loss
        self.historical, self.instance_noise = historical, instance_noise
        self.feature_matching = loss.feature_matching > 0
        self.g, self.d = Player(gen, functional), Player(critic, functional)
        self.n_critic, self.d_optim, self.g_optim = n_critic, d_optim, g_optim
        self.functional, self.precision, self.sync = functional, precision, sync
        self.concat = loss.paired  # D(x, c): concat or projection
        self.conditional = loss.conditioning != "none"
        self.n_classes = int(getattr(gen, "n_classes", 0) or 0)
        # Attribute-vector conditions (B, k): the schema draws the wrong vectors.
        self.attribute_schema = getattr(gen, "attribute_schema", None)
        self.has_penalty = loss.constraints.has_penalty
        self.penalty_every = loss.constraints.penalty_every
        self.device = next(critic.parameters()).device

    @classmethod
    def for_run(
        cls,
        run: Any,
        functional: bool = False,
        sync: Callable[[list[Tensor]], list[Tensor]] | None = None,
    ) -> GANStep:
        """The step of a run (a :class:`wgan.training.run.Run`: its config, players and loss),
        the one way a trainer, a sweep or an experiment's run builds it."""
        cfg = run.cfg
        return cls(
            run.gen,
            run.critic,
            run.loss,
            cfg.train.n_critic,
            cfg.d_optim.name,
            cfg.g_optim.name if run.learned_generator else None,
            functional=functional,
            precision=cfg.train.precision,
            sync=sync,
            historical=cfg.tricks.historical_averaging,
            instance_noise=cfg.tricks.instance_noise > 0,
        )

    # -- randomness, all in one place ---------------------------------------------------------

    def draw(self, batches: Any, rng: torch.Generator, batch_size: int) -> Draws:
        """Every random tensor of one generator iteration, from ``rng`` (and the data stream).

        Returns :class:`Draws`: the critic steps' :class:`CriticDraws` stacked to
        (n_critic, B, ...), and the generator step's :class:`GeneratorDraws`. Per critic step the
        order is: real batch, noise, wrong-label shift (or the wrong attribute vectors' draws),
        interpolation weights, instance noise.
        """
        b = batch_size
        steps = [self.draw_critic(batches, rng, b) for _ in range(self.n_critic)]
        critic = stack_draws(steps)
        if self.g_optim is None:
            return Draws(critic)
        # The generator's conditions are the labels of a data batch (Mirza & Osindero 2014);
        # feature matching compares with that batch.
        labels = real = inst = None
        if self.conditional:
            real, labels = batches.next_labelled()  # (B, ...), (B,)
        elif self.feature_matching:
            real = batches.next_batch()
        if not self.feature_matching:
            real = None
        noise = self.gen.noise(b, rng, self.device)  # (B, latent)
        if self.instance_noise:
            inst = torch.randn(steps[0].real.shape, generator=rng, device=self.device)
        return Draws(critic, GeneratorDraws(noise, labels, real, inst))

    def draw_critic(self, batches: Any, rng: torch.Generator, batch_size: int) -> CriticDraws:
        """One critic step's :class:`CriticDraws` (see :meth:`draw`)."""
        device, b = self.device, batch_size
        labels = wrong = eps = inst_real = inst_fake = None
        if self.conditional:
            real, labels = batches.next_labelled()  # (B, ...), (B,)
        else:
            real = batches.next_batch()  # (B, dim) or (B, C, H, W)
        noise = self.gen.noise(b, rng, device)  # (B, latent) or (B, dim) when fixed
        if self.concat and self.loss.wrong_label:
            if self.attribute_schema is not None:  # (B, k): some groups changed, never c
                wrong = self.attribute_schema.wrong(labels, rng)
            else:
                shift = torch.randint(1, self.n_classes, (b,), generator=rng, device=device)
                wrong = (labels + shift) % self.n_classes  # never the true label
        if self.has_penalty:
            eps = torch.rand(b, generator=rng, device=device)  # (B,) ~ U[0, 1]
        if self.instance_noise:  # standard normals, scaled by sigma_t in the step
            inst_real = torch.randn(real.shape, generator=rng, device=device)
            inst_fake = torch.randn(real.shape, generator=rng, device=device)
        return CriticDraws(real, noise, labels, wrong, eps, inst_real, inst_fake)

    def penalty_due(self, step: int) -> list[float]:
        """Lazy regularisation's factor per critic step of generator iteration ``step``.

        The penalty is due on one critic step in ``every``, counted over all critic steps of the
        run (critic step ``step * n_critic + i``), and multiplied by ``every`` there: its
        average strength is exactly lambda for every n_critic (Karras et al. 2020).
        """
        every = self.penalty_every
        first = step * self.n_critic
        return [float(every) if (first + i) % every == 0 else 0.0 for i in range(self.n_critic)]

    # -- state ---------------------------------------------------------------------------------

    def state(self, opt_d: State, opt_g: State | None, ema: nn.Module | None = None) -> State:
        """The state pytree over the live modules (see the module docstring)."""
        d, d_buf = self.d.tensors()
        g, g_buf = self.g.tensors()
        state: State = {"d": d, "d_buf": d_buf, "g": g, "g_buf": g_buf, "opt_d": opt_d}
        if opt_g is not None:
            state["opt_g"] = opt_g
        if ema is not None:
            state["ema"] = {k: v.detach() for k, v in ema.named_parameters()}
            state["ema_buf"] = dict(ema.named_buffers())
        if self.historical > 0:  # the running means start at the initial parameters
            for key in ("d", "g"):
                state[f"hist_{key}"] = [p.detach().clone() for p in state[key].values()]
                state[f"hist_{key}_count"] = torch.zeros((), device=self.device)
        if self.precision == "fp16":
            for key in ("scale_d", "scale_g"):
                state[key] = {
                    "scale": torch.full((), FP16_INIT_SCALE, device=self.device),
                    "good": torch.zeros((), device=self.device),
                }
        return state

    # -- one generator iteration ---------------------------------------------------------------

    def iteration(self, state: State, draws: Draws, hyper: dict[str, Any]) -> dict[str, Any]:
        """``n_critic`` critic updates, then one generator update; returns their loss terms.

        Returns ``{'d': [terms of each critic step], 'g': terms}`` (detached 0-d tensors).
        """
        d_terms = []
        for i in range(self.n_critic):
            x = at_step(draws.critic, i)
            d_terms.append(self.critic_update(state, x, hyper, hyper["penalty_due"][i]))
        out: dict[str, Any] = {"d": d_terms}
        if self.g_optim is not None:
            out["g"] = self.generator_update(state, draws.generator, hyper)
        return out

    def critic_update(
        self,
        state: State,
        x: CriticDraws,
        hyper: dict[str, Any],
        penalty_factor: float | Tensor = 1.0,
    ) -> Terms:
        """One critic update on one step's draws ``x`` (G(noise), or the given ``fake``)."""
        labels = x.labels
        with autocast(self.precision, self.device):
            if x.fake is not None:
                fake = x.fake  # (B, ...) given (a critic trained against a fixed source)
            else:
                with torch.no_grad():  # G is fixed in the critic's step
                    fake = self.g(state["g"], state["g_buf"], x.noise, labels)  # (B, ...)
        scale = state["scale_d"]["scale"] if "scale_d" in state else None
        penalty = PenaltyCall(
            factor=penalty_factor if self.has_penalty else 0.0,
            weight=hyper.get("penalty_weight"),
            target=hyper.get("penalty_target"),
            scale=scale,
            functional=self.functional,
        )
        real = x.real
        if self.instance_noise:  # every critic input, and so the interpolates, gets the noise
            sigma = hyper["instance_noise"]
            real, fake = real + sigma * x.inst_real, fake + sigma * x.inst_fake

        def loss(params: dict, buffers: dict) -> Terms:
            with autocast(self.precision, self.device):
                critic = BoundCritic(self.d, params, buffers["d"], self.concat)
                terms = self.loss.critic_terms(critic, real, fake, labels, x.wrong, x.eps, penalty)
            return self._historical(terms, params, state, "d")

        terms, grads = self._value_and_grad(loss, state["d"], _buffers(state), scale)
        params = list(state["d"].values())
        self._remember(state, "d")
        self._apply(self.d_optim, params, grads, state["opt_d"], hyper["d"], state.get("scale_d"))
        self.loss.constraints.project_(params, hyper.get("clip"))
        return terms

    def generator_update(self, state: State, x: GeneratorDraws, hyper: dict[str, Any]) -> Terms:
        """One generator update on its draws (noise, the conditions' labels, ...), then the EMA."""
        labels = x.labels
        scale = state["scale_g"]["scale"] if "scale_g" in state else None

        def loss(params: dict, buffers: dict) -> Terms:
            with autocast(self.precision, self.device):
                fake = self.g(params, buffers["g"], x.noise, labels)  # (B, ...)
                scored = fake
                if self.instance_noise:
                    scored = fake + hyper["instance_noise"] * x.inst
                critic = BoundCritic(self.d, state["d"], buffers["d"], self.concat)
                terms = self.loss.generator_terms(critic, fake, labels, x.real, scored)
            return self._historical(terms, params, state, "g")

        # Eager: D's weights need no gradient here (autograd.grad asks for G's only).
        terms, grads = self._value_and_grad(loss, state["g"], _buffers(state), scale)
        params = list(state["g"].values())
        self._remember(state, "g")
        self._apply(self.g_optim, params, grads, state["opt_g"], hyper["g"], state.get("scale_g"))
        if "ema" in state:
            ema_update_(state, params, hyper["ema_decay"], self.functional)
        return terms

    # -- historical averaging (Salimans et al. 2016) ----------------------------------------------

    def _historical(self, terms: Terms, params: dict, state: State, player: str) -> Terms:
        """Add lambda_h ||theta - mean of the past theta||^2 to the player's loss."""
        if self.historical <= 0:
            return terms
        pen = historical_penalty(list(params.values()), state[f"hist_{player}"], self.historical)
        terms["loss"] = terms["loss"] + pen
        terms["historical"] = pen.detach()
        return terms

    def _remember(self, state: State, player: str) -> None:
        """Add the parameters the loss was taken at to the running mean (before the update)."""
        if self.historical > 0:
            params = list(state[player].values())
            update_historical_mean_(state[f"hist_{player}"], params, state[f"hist_{player}_count"])

    # -- differentiation and the update ----------------------------------------------------------

    def _value_and_grad(
        self,
        loss: Callable[[dict, dict], Terms],
        params: dict[str, Tensor],
        buffers: dict[str, Tensor],
        scale: Tensor | None,
    ) -> tuple[Terms, list[Tensor]]:
        """The terms of ``loss(params, buffers)`` and d terms['loss'] / d params (times the fp16
        scale). The buffers are an input of the transformed function, so batch norm may update
        its running statistics in place inside ``torch.func.grad``."""
        if self.functional:

            def scalar(p: dict, b: dict) -> tuple[Tensor, Terms]:
                terms = loss(p, b)
                total = terms["loss"] if scale is None else terms["loss"] * scale
                return total, {k: v.detach() for k, v in terms.items()}

            grads, terms = torch.func.grad(scalar, has_aux=True)(params, buffers)
            return terms, list(grads.values())
        terms = loss(params, buffers)
        total = terms["loss"] if scale is None else terms["loss"] * scale
        leaves = list(params.values())
        grads = torch.autograd.grad(total, leaves, allow_unused=True)
        grads = [
            torch.zeros_like(p) if g is None else g for g, p in zip(grads, leaves, strict=True)
        ]
        return {k: v.detach() for k, v in terms.items()}, grads

    def _apply(
        self,
        name: str,
        params: list[Tensor],
        grads: list[Tensor],
        opt_state: State,
        h: dict[str, Any],
        scaler: dict[str, Tensor] | None,
    ) -> None:
        if self.sync is not None:
            grads = self.sync(grads)
        if scaler is None:
            optim.update_(name, params, grads, opt_state, h)
            return
        scaled_update_(name, params, grads, opt_state, h, scaler)


def _buffers(state: State) -> dict[str, dict[str, Tensor]]:
    """Both players' buffers (batch-norm statistics, spectral-norm vectors): either forward may
    update them in place."""
    return {"d": state["d_buf"], "g": state["g_buf"]}


@torch.no_grad()
def scaled_update_(
    name: str,
    params: list[Tensor],
    grads: list[Tensor],
    opt_state: State,
    h: dict[str, Any],
    scaler: dict[str, Tensor],
) -> None:
    """fp16 dynamic loss scaling without a host sync: unscale, step, undo a non-finite step.

    As :class:`torch.amp.GradScaler`: gradients of ``scale * loss`` are divided by ``scale``; if
    any is not finite the step is skipped (here: computed, then undone with ``torch.where``) and
    the scale halves; after 2000 finite steps in a row it doubles.
    """
    inv = 1.0 / scaler["scale"]
    grads = [g.float() * inv for g in grads]
    bad = torch.stack([~torch.isfinite(g).all() for g in grads]).any()
    tracked = params + [t for v in opt_state.values() for t in (v if isinstance(v, list) else [v])]
    before = [t.clone() for t in tracked]
    optim.update_(name, params, [torch.nan_to_num(g) for g in grads], opt_state, h)
    for t, old in zip(tracked, before, strict=True):
        t.copy_(torch.where(bad, old, t))
    good = torch.where(bad, torch.zeros_like(scaler["good"]), scaler["good"] + 1)
    grow = good >= FP16_GROWTH_INTERVAL
    scaler["scale"].copy_(
        torch.where(
            bad, scaler["scale"] * 0.5, torch.where(grow, scaler["scale"] * 2.0, scaler["scale"])
        )
    )
    scaler["good"].copy_(torch.where(grow, torch.zeros_like(good), good))


__all__ = [
    "BoundCritic",
    "Draws",
    "GANStep",
    "Player",
    "scaled_update_",
]
