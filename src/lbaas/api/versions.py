"""Version discovery (``GET /``), ``GET /v2`` and the optional oslo-style healthcheck."""

from __future__ import annotations

from lbaas.api.errors import route_not_found
from lbaas.api.http import ApiRequest, Response, Router

# upstream's root_controller: (date, time) of each minor version; v2.7 and v2.18 are not midnight
VERSION_DATES = (
    "2016-12-11", "2018-04-20", "2018-07-31", "2018-12-18", "2018-12-19", "2019-01-21",
    "2019-01-25", "2018-01-25T12:00:00", "2019-02-12", "2019-03-04", "2019-03-05",
    "2019-06-24", "2019-09-11", "2019-09-13", "2019-11-10", "2020-03-10", "2020-03-15",
    "2020-04-29", "2020-04-29T01:00:00", "2020-05-12", "2020-08-02", "2020-09-03",
    "2020-09-04", "2020-09-07", "2020-10-15", "2021-10-02", "2022-08-29", "2023-05-05",
    "2023-11-08", "2024-10-15", "2025-02-26",
)


def _updated(date: str) -> str:
    return f"{date}Z" if "T" in date else f"{date}T00:00:00Z"


async def root(req: ApiRequest) -> Response:
    base = req.base_url.rstrip("/") + "/"
    last = len(VERSION_DATES) - 1
    versions = [
        {
            "id": f"v2.{minor}",
            "status": "CURRENT" if minor == last else "SUPPORTED",
            "updated": _updated(date),
            "links": [{"href": f"{base}v2", "rel": "self"}],
        }
        for minor, date in enumerate(VERSION_DATES)
    ]
    return Response(200, {"versions": versions})


async def v2(req: ApiRequest) -> Response:
    return Response(200, "v2")


async def healthcheck(req: ApiRequest) -> Response:
    if not req.app.settings.api.healthcheck_enabled:
        raise route_not_found()
    return Response(200, raw=b"OK", headers=[(b"content-type", b"text/plain")])


def register(router: Router) -> None:
    router.add("GET", "/", root)
    # upstream's V2Controller and both of its sub-controllers answer "v2"
    for path in ("/v2", "/v2/lbaas", "/v2/octavia"):
        router.add("GET", path, v2)
    router.add("GET", "/healthcheck", healthcheck)
