"""``lbaas host-agent``: builds amphorae on one amphora host for the controller (mTLS API)."""
