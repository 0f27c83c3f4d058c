"""GAN objectives as small pure functions, plus a name -> objective registry.

Every objective implements :class:`~wgan.objectives.base.Objective`: ``critic_loss(real_out,
fake_out)`` returns at least ``{'loss', 'estimate'}``, ``generator_loss(fake_out)`` at least
``{'loss'}``; both losses are minimised, all values are 0-d tensors on the autograd graph.

Registry names (``make_objective(name, **params)``):

* ``"minimax"`` / ``"nonsaturating"``: Goodfellow et al. 2014 (estimate: JS divergence);
* ``"wasserstein"``: Arjovsky et al. 2017 (estimate: W1, given a Lipschitz critic);
* ``"least_squares"``: Mao et al. 2017 (estimate: triangular discrimination);
* ``"hinge"``: Lim & Ye 2017, Miyato et al. 2018 (estimate: total variation);
* ``"fgan"``: Nowozin et al. 2016, params ``divergence`` (required), ``pi=0.5`` (weighted JS
  only, ignored otherwise), ``generator_loss="saddle"|"alternative"``.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Callable
from typing import Any

from wgan.errors import ConfigError
from wgan.objectives.base import Objective, as_batch
from wgan.objectives.fdivergence import (
    DIVERGENCES,
    FGAN,
    GENERATOR_LOSSES,
    FDivergence,
    fgan_critic_loss,
    fgan_generator_loss,
    get_divergence,
    variational_bound,
    weighted_jensen_shannon,
)
from wgan.objectives.lambertw import lambertw_exp
from wgan.objectives.standard import (
    HingeGAN,
    LeastSquaresGAN,
    MinimaxGAN,
    NonSaturatingGAN,
    WassersteinGAN,
    hinge_critic_loss,
    hinge_generator_loss,
    least_squares_critic_loss,
    least_squares_generator_loss,
    minimax_critic_loss,
    minimax_generator_loss,
    nonsaturating_generator_loss,
    wasserstein_critic_loss,
    wasserstein_generator_loss,
)

__all__ = [
    "DIVERGENCES",
    "FGAN",
    "GENERATOR_LOSSES",
    "OBJECTIVES",
    "FDivergence",
    "HingeGAN",
    "LeastSquaresGAN",
    "MinimaxGAN",
    "NonSaturatingGAN",
    "Objective",
    "WassersteinGAN",
    "as_batch",
    "fgan_critic_loss",
    "fgan_generator_loss",
    "get_divergence",
    "hinge_critic_loss",
    "hinge_generator_loss",
    "lambertw_exp",
    "least_squares_critic_loss",
    "least_squares_generator_loss",
    "make_objective",
    "minimax_critic_loss",
    "minimax_generator_loss",
    "nonsaturating_generator_loss",
    "variational_bound",
    "wasserstein_critic_loss",
    "wasserstein_generator_loss",
    "weighted_jensen_shannon",
]

#: Objective constructors by registry name.  ``OBJECTIVES[name](**params)`` builds one; prefer
#: :func:`make_objective`, which validates ``params`` and raises ``ConfigError``.
OBJECTIVES: dict[str, Callable[..., Objective]] = {
    "minimax": MinimaxGAN,
    "nonsaturating": NonSaturatingGAN,
    "wasserstein": WassersteinGAN,
    "least_squares": LeastSquaresGAN,
    "hinge": HingeGAN,
    "fgan": FGAN,
}

# Accepted keyword parameters per objective (all others raise ConfigError).
_PARAMS: dict[str, tuple[str, ...]] = {
    "minimax": ("label_smoothing",),
    "nonsaturating": ("label_smoothing",),
    "wasserstein": (),
    "least_squares": ("label_smoothing",),
    "hinge": (),
    "fgan": ("divergence", "pi", "generator_loss"),
}


def make_objective(name: str, **params: Any) -> Objective:
    """Build an objective from its registry name and parameters.

    Args:
        name: one of ``"minimax"``, ``"nonsaturating"``, ``"wasserstein"``,
            ``"least_squares"``, ``"hinge"``, ``"fgan"``.
        **params: ``label_smoothing`` (one-sided, alpha in [0, 1)) for the objectives with
            labels: minimax, nonsaturating, least_squares. ``"fgan"`` takes ``divergence``
            (required; a key of :data:`DIVERGENCES`), ``pi`` (float in (0, 1), default 0.5,
            used only by ``"weighted_jensen_shannon"``), ``generator_loss`` (``"saddle"``
            default, or ``"alternative"``).

    Raises:
        ConfigError: unknown name (with the closest valid one), unknown/missing parameter or
            invalid value (``pi`` outside (0, 1) is refused for every divergence, as in the
            config); the message lists the valid choices.
    """
    if not isinstance(name, str) or name not in OBJECTIVES:
        key = name.strip().lower().replace("-", "_") if isinstance(name, str) else ""
        close = difflib.get_close_matches(key, list(OBJECTIVES), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"unknown objective {name!r}{hint}; valid choices: {', '.join(OBJECTIVES)}"
        )
    allowed = _PARAMS[name]
    if "label_smoothing" in params and "label_smoothing" not in allowed:
        if not params["label_smoothing"]:
            params = {k: v for k, v in params.items() if k != "label_smoothing"}
        else:
            # Salimans et al. 2016 smooth a classifier's real target; the Wasserstein, hinge and
            # f-GAN critics (T = g(v) estimates f'(p/q), Nowozin et al. 2016) have none.
            raise ConfigError(
                f"label smoothing needs an objective with real/fake labels (minimax, "
                f"nonsaturating, least_squares), not {name!r}"
            )
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        valid = ", ".join(allowed) if allowed else "none"
        raise ConfigError(
            f"unknown parameter(s) {', '.join(unknown)} for objective {name!r}; "
            f"valid parameters: {valid}"
        )
    if name == "fgan" and "divergence" not in params:
        raise ConfigError(
            "objective 'fgan' needs a 'divergence' parameter; valid choices: "
            + ", ".join(DIVERGENCES)
        )
    if "pi" in params:
        # Checked whatever the divergence (as the config does), not only where it is used.
        pi = params["pi"]
        if (
            isinstance(pi, bool)
            or not isinstance(pi, numbers.Real)
            or not math.isfinite(float(pi))
            or not 0.0 < float(pi) < 1.0
        ):
            raise ConfigError(f"objective 'fgan': pi must be a number in (0, 1), got {pi!r}")
    return OBJECTIVES[name](**params)
