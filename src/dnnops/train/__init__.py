"""Training: the loop, checkpoints and exact resume, schedules, precision, distribution."""
