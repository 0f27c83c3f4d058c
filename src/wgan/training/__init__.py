"""Training one run: the trainer, the run handle, its statistics, evaluation, data parallel and CPU
threads."""
