"""LocalZooKeeper: a local standalone server or ensemble for demos, tests and benchmarks."""
