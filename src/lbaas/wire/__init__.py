"""Controller <-> amphora contracts (agent HTTP API), shared by the agent and its client."""
