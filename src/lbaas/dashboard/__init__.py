"""The web dashboard served at ``/dashboard/`` on the API port.

Static pages and small hand-written scripts (no third-party code, no build step) that drive the
public API with the user's own token, so RBAC stays the API's: the browser calls
``/dashboard/api/<API path>`` and ``proxy.py`` hands the request to the API app unchanged but
for the token, kept in an HttpOnly cookie (docs/decisions/0015-dashboard-stack.md).

``mount(api)`` is the one call any role that assembles the API app makes.
"""

from __future__ import annotations

from lbaas.api.app import ApiApp
from lbaas.dashboard.app import PREFIX, DashboardApp

__all__ = ["PREFIX", "DashboardApp", "mount"]


def mount(api: ApiApp) -> DashboardApp:
    """Serve the dashboard under ``/dashboard`` of ``api``; returns the mounted app."""
    dashboard = DashboardApp(api)
    api.mount(PREFIX, dashboard)
    return dashboard
