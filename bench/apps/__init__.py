"""Apps the benchmarks serve."""
