"""Training: sampling of examples from the cubes, loops, checkpoints."""
