"""Experiments of the paper: configuration in, results file and PNG out."""
