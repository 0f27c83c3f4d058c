"""The ``wgan`` command line, one module per family of commands.

The ``wgan`` executable runs :func:`wgan.cli.app.main` (``[project.scripts]``)."""

from wgan.cli.app import main

__all__ = ["main"]
