"""Experiments (registry assembled in this file once all modules exist)."""
