"""marsvision.training."""
