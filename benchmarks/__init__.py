"""The benchmark suite: ``python -m benchmarks`` (``make bench``) prints one table of figures, each
beside a baseline measured in the same run, and writes it to ``benchmarks/results/``."""
