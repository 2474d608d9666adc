"""Benchmark tooling: the seeds x games launcher (local GPU pool or SLURM), launch scripts, throughput checks."""
