"""Quire's benchmarks, run with ``scripts/bench [NAME...]`` (not part of the test suite).

Each benchmark measures server time through the Flask test client (no network, no
browser) and writes its table into docs/BENCHMARKS.md between its own markers.
"""
