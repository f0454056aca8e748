"""Benchmarks (run as scripts) and the load kit the load test shares with them."""
