"""Drift: sliding windows of live distributions scored against the training reference."""
