"""Real drivers for amphorae in network namespaces on this machine (root required)."""
