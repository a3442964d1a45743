"""Real model apps the instrumentation tests run in their own processes."""
