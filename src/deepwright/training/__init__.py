"""The training loop, optimizers, schedules and checkpoints."""
