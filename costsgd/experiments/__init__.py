"""Experiments: a configuration in, a results file and figures out."""
