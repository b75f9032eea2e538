"""One small training loop (checkpoints, seeds, metrics per epoch). Not in this release yet."""
