"""Inception-v3 features and class probabilities from weights the user provides.

Nothing is downloaded. The supported file is the TorchScript Inception-v3 that StyleGAN2-ADA
(Karras et al. 2020) and clean-fid (Parmar et al. 2022) use for FID / KID / IS, NVIDIA's
``inception-2015-12-05.pt`` (a port of the TensorFlow graph of Heusel et al. 2017, so that
the numbers are comparable with published FIDs). Its call convention:

* ``model(x, return_features=True) -> (B, 2048)`` pool-3 features;
* ``model(x, no_output_bias=True) -> (B, 1008)`` softmax class probabilities,

with ``x`` a float ``(B, 3, H, W)`` tensor of pixel values in [0, 255] (it resizes to 299×299
internally). Point :func:`load_inception` at the file, or set ``WGAN_INCEPTION_WEIGHTS``.

Loading TorchScript runs code stored in the file: only load a file you trust.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import torch

from wgan.errors import MissingWeightsError, WganError

__all__ = [
    "INCEPTION_ENV_VAR",
    "INCEPTION_FILE_NAME",
    "InceptionExtractor",
    "images_to_uint8_range",
    "load_inception",
]

INCEPTION_ENV_VAR = "WGAN_INCEPTION_WEIGHTS"
"""Environment variable holding the path of the Inception weights."""

INCEPTION_FILE_NAME = "inception-2015-12-05.pt"
"""Name of NVIDIA's TorchScript Inception-v3 file (StyleGAN2-ADA / clean-fid)."""

_HOW_TO = (
    f"pass --inception-weights PATH or set {INCEPTION_ENV_VAR}=PATH to NVIDIA's TorchScript "
    f"Inception-v3 '{INCEPTION_FILE_NAME}' (the file StyleGAN2-ADA and clean-fid use for FID); "
    "nothing is downloaded. Alternatively save samples as images and run torch-fidelity "
    "(pip install torch-fidelity; fidelity --gpu 0 --fid --isc --kid --input1 FAKE_DIR "
    "--input2 REAL_DIR)"
)


def images_to_uint8_range(images: Any, quantize: bool = True) -> torch.Tensor:
    """Map ``(N, C, H, W)`` images in [-1, 1] to float pixels in [0, 255] with 3 channels.

    ``p = (x + 1) · 127.5`` clamped to [0, 255] and, with ``quantize``, rounded to integers as
    if the samples had been saved as 8-bit images (the protocol of StyleGAN2-ADA / clean-fid).
    A single (grayscale) channel is repeated 3 times.

    Returns:
        float32 ``(N, 3, H, W)``.
    """
    try:
        x = torch.as_tensor(images.detach() if isinstance(images, torch.Tensor) else images)
        x = x.to(torch.float32)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise WganError(f"Inception metrics need an array of images (N, C, H, W): {exc}") from exc
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise WganError(
            f"Inception metrics need images of shape (N, 1 or 3, H, W), got {tuple(x.shape)}"
        )
    if x.shape[0] == 0:
        raise WganError("Inception metrics need at least one image, got 0")
    if not bool(torch.isfinite(x).all()):
        # clamp would map inf to a valid pixel and keep nan: refuse both here.
        raise WganError("Inception metrics got images with non-finite values (nan or inf)")
    p = ((x + 1.0) * 127.5).clamp(0.0, 255.0)
    if quantize:
        p = p.round()
    if p.shape[1] == 1:
        p = p.expand(-1, 3, -1, -1)  # grayscale -> RGB   # (N, 3, H, W)
    return p


class InceptionExtractor:
    """Batched Inception-v3 features / probabilities of images in [-1, 1].

    Wraps a module with the call convention of NVIDIA's TorchScript Inception (see the module
    docstring). Images are converted with :func:`images_to_uint8_range`, sent in batches of
    ``batch_size`` to ``device`` and the outputs returned as float64 CPU tensors.

    Args:
        model: the TorchScript (or any) module.
        source: where it came from (named in error messages).
        device: device to run on (default CPU).
        batch_size: images per forward pass.
        quantize: round pixels to integers as for saved 8-bit images.
    """

    def __init__(
        self,
        model: Any,
        source: str = "<module>",
        device: str | torch.device = "cpu",
        batch_size: int = 64,
        quantize: bool = True,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise WganError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        self.model = model
        self.source = source
        self.device = torch.device(device)
        self.batch_size = int(batch_size)
        self.quantize = bool(quantize)
        self.model.eval()
        self.model.to(self.device)

    def to(self, device: str | torch.device) -> InceptionExtractor:
        """Move the model to ``device`` (returns self)."""
        self.device = torch.device(device)
        self.model.to(self.device)
        return self

    def _run(self, images: Any, **kwargs: bool) -> torch.Tensor:
        x = images_to_uint8_range(images, self.quantize)  # (N, 3, H, W) in [0, 255]
        outs = []
        with torch.inference_mode():
            for i in range(0, x.shape[0], self.batch_size):
                xb = x[i : i + self.batch_size].to(self.device)
                try:
                    out = self.model(xb, **kwargs)
                except (RuntimeError, TypeError) as e:
                    raise WganError(
                        f"Inception model {self.source} failed on a batch of shape "
                        f"{tuple(xb.shape)} with {kwargs}: does it follow the call convention "
                        f"of {INCEPTION_FILE_NAME}? ({type(e).__name__}: {e})"
                    ) from e
                if (
                    not isinstance(out, torch.Tensor)
                    or out.ndim != 2
                    or out.shape[0] != xb.shape[0]
                ):
                    got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                    raise WganError(
                        f"Inception model {self.source} returned {got} for a batch of "
                        f"{xb.shape[0]} images with {kwargs}; expected a (B, K) tensor"
                    )
                outs.append(out.detach().to("cpu", torch.float64))
        if not outs:
            raise WganError("Inception metrics need at least one image, got 0")
        return torch.cat(outs)

    def features(self, images: Any) -> torch.Tensor:
        """Pool-3 features ``(N, C, H, W) in [-1, 1] -> (N, 2048)`` float64."""
        return self._run(images, return_features=True)

    def probabilities(self, images: Any) -> torch.Tensor:
        """Class probabilities ``(N, C, H, W) in [-1, 1] -> (N, K)`` float64 (K = 1008)."""
        return self._run(images, no_output_bias=True)


def load_inception(
    path: str | Path | None = None,
    device: str | torch.device = "cpu",
    batch_size: int = 64,
) -> InceptionExtractor:
    """Load the user's TorchScript Inception-v3 (never downloads anything).

    The file is ``path`` or else ``$WGAN_INCEPTION_WEIGHTS``: NVIDIA's
    ``inception-2015-12-05.pt`` as used by StyleGAN2-ADA and clean-fid, loaded with
    ``torch.jit.load(path, map_location="cpu")``. **Loading TorchScript executes code from the
    file: only use a file from a source you trust.**

    Raises:
        MissingWeightsError: no path given and the variable unset (the message says how to
            provide the file), or the path does not exist (the message names it).
        WganError: the file is not a TorchScript archive (the message names it).
    """
    if path is None or str(path) == "":
        env = os.environ.get(INCEPTION_ENV_VAR)
        if not env:
            raise MissingWeightsError(f"FID/KID/IS need Inception-v3 weights: {_HOW_TO}")
        path = env
    p = Path(path).expanduser()
    if not p.is_file():
        raise MissingWeightsError(f"Inception weights file {p} does not exist: {_HOW_TO}")
    try:
        with warnings.catch_warnings():
            # torch.jit is deprecated in torch >= 2.10, but the reference file is TorchScript.
            warnings.simplefilter("ignore", DeprecationWarning)
            model = torch.jit.load(str(p), map_location="cpu")
    except Exception as e:  # noqa: BLE001 - torch.jit.load raises various types on bad files
        raise WganError(
            f"{p} is not a TorchScript Inception-v3 ({INCEPTION_FILE_NAME}) file: "
            f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        ) from e
    return InceptionExtractor(model, source=str(p), device=device, batch_size=batch_size)
