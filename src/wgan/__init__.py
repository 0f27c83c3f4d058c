"""wgan."""
