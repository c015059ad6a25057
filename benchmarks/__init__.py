"""kmnist's benchmark harness: `python -m benchmarks` and its siblings; their JSON becomes the
documentation's benchmark pages (docs/benchmarks/, python -m docs.generate)."""
