"""The health manager: signed heartbeats in, operating statuses and statistics out, failover."""
