"""Amphorae on many hosts: placement, the host-agent client, the overlay's forwarding entries."""
