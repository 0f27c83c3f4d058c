"""The GAN step and what it is made of: losses, players, optimiser maths, EMA, precision."""
