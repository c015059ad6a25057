"""kmnist's benchmark harness: `python -m benchmarks` (see README, "Performance")."""
