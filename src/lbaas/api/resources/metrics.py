"""``GET /metrics``: Prometheus text from the service's metric sources (admin only).

Sources are callables returning exposition text, registered by whoever owns the numbers in
``ApiState.extras["metrics"]`` (the health manager registers its heartbeat counters), so the
API layer needs no knowledge of them. Admin only because the counters describe the whole
deployment (amphora failovers, forged heartbeats), not one project.
"""

from __future__ import annotations

from lbaas.api.errors import Forbidden
from lbaas.api.http import ApiRequest, Response, Router

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"


async def metrics(req: ApiRequest) -> Response:
    if not req.app.policy.admin(req.context):
        raise Forbidden()
    text = "".join(source() for source in req.app.extras.get("metrics", []))
    return Response(200, raw=text.encode(), headers=[(b"content-type", CONTENT_TYPE)])


def register(router: Router) -> None:
    router.add("GET", "/metrics", metrics)
