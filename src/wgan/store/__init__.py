"""What a run leaves on disk: run directories, checkpoints, provenance, metrics logs."""
