"""Many runs and their speed: stacked sweeps, studies and their launchers, benchmarks."""
