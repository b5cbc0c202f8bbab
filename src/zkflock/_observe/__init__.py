"""Cluster-wide lock state for Prometheus (``zkflock exporter``)."""
