"""marsvision.inference."""
