"""Whether ``train.compile=true`` can work here: :func:`torch.compile`'s inductor backend turns
the step into C++ (on the CPU) or Triton kernels (on a GPU, whose launcher is also built with a
C compiler), so it needs a C/C++ compiler on the machine. Without one, inductor fails at the
first step with a long traceback; :func:`require_compiler` says so in one line before training.
"""

from __future__ import annotations

import os
import shutil

from wgan.errors import ConfigError

#: What inductor looks for on Linux and macOS when ``$CXX`` is not set (torch's own search list
#: starts with these).
COMPILERS = ("g++", "c++", "clang++")


def find_compiler() -> str | None:
    """The C++ compiler inductor would use, or None. Asks torch's own search first; it is a
    private API, so when it fails (no compiler: its private ``InvalidCxxCompiler``; or a torch
    without it) this looks for ``$CXX``, else the usual names, on the ``PATH``."""
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler

        return str(get_cpp_compiler())
    except Exception:  # noqa: BLE001, S110 - any failure: search ourselves
        pass
    names = (os.environ["CXX"],) if os.environ.get("CXX") else COMPILERS
    return next((found for n in names if (found := shutil.which(n))), None)


def require_compiler() -> None:
    """Raise :class:`~wgan.errors.ConfigError` (one line) when no C++ compiler is found."""
    if find_compiler() is None:
        raise ConfigError(
            "train.compile=true needs a C/C++ compiler for torch.compile and none was found "
            "(install g++ or clang, or point $CXX at one); or train eagerly: train.compile=false"
        )
