"""The demo, the counter workload, its checker, nemeses, the TCP proxy and torture."""
