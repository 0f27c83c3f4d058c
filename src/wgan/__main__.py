"""``python -m wgan`` runs the command line (also what ``torchrun -m wgan`` uses)."""

from wgan.cli.main import main

raise SystemExit(main())
