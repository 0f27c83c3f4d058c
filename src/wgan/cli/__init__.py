"""The ``wgan`` command line, one module per family of commands.

``wgan.cli:main`` is the entry point (:func:`wgan.cli.app.main`)."""

from wgan.cli.app import main

__all__ = ["main"]
