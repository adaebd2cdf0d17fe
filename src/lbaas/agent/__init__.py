"""The amphora agent: applies configuration bundles to HAProxy behind a two-way TLS API."""
