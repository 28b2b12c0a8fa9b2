"""Benchmarks, run from the repository root: ``python -m bench.ingest``, ``python -m bench.detect``
(see bench/README.md). They share the test suite's servers and harnesses, ``tests.support``."""
