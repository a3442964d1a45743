"""Connectors: decoded records into the state they keep (features, span metrics, ground truth)."""
