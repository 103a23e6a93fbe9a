"""Benchmark suites: methods x datasets x seeds, aggregated with rliable, with learning curves."""
