"""Accuracy comparison of marsvision against peer pipelines."""
