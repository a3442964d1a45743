"""Processors: what happens to a request between admission and the pipeline."""
