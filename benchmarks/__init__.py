"""unirun's benchmark suite: unirun side by side with the stdlib pools and peers.

Run it with ``python benchmarks/run.py``; see docs/benchmarks.md for the latest
results and how to read them. Nothing here is imported by unirun or its tests'
pass/fail logic; tests/test_benchmarks.py only checks that every cell runs and
verifies its results.
"""
