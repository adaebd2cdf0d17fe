"""Fixtures of the openstacksdk harness (they live in sdk_harness.py with its helpers)."""

from sdk_harness import keystone, serve

__all__ = ["keystone", "serve"]
