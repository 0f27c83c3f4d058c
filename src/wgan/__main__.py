"""``python -m wgan`` runs the command line (also what ``torchrun -m wgan`` uses)."""

from wgan.cli.app import main

raise SystemExit(main())
