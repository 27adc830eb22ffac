"""Demo catalog and synthetic data for the `demo` command, benchmarks and tests."""
