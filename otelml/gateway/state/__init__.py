"""The state the connectors keep: distributions, exemplars, the series budget, self-metrics."""
