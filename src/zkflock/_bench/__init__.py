"""Benchmarks: zkflock side by side with kazoo's recipes, reported as ratios."""
