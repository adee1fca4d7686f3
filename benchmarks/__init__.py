"""tapepath benchmarks: each bench_*.py prints figures and ratios against a peer."""
