"""Figures: plots of samples and training curves, image grids and PNG files."""
