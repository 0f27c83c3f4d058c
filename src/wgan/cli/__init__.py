"""The ``wgan`` command line, one module per family of commands.

``wgan.cli.main:main`` is the entry point (:func:`wgan.cli.main.main.main`)."""

from wgan.cli.main.main import main

__all__ = ["main"]
