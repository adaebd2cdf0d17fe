"""Demo programs (stdlib only) used as load balancer members in demos and data-plane tests."""
