"""Tests of marsvision.evaluation (a package so that test module names cannot clash with other folders)."""
