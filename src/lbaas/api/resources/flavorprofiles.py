"""Flavor profiles (admin): provider-specific data behind flavors.

Key choice: flavor profiles and availability zone profiles behave identically (a name, a
provider and a JSON document in a string, validated by the provider; data and provider frozen
while anything uses the profile), so ``ProfileResource`` implements both and
``availabilityzoneprofiles`` only configures it. Faultstrings follow upstream, including its
two spellings "Flavor profile" (nil UUID, in use) and "Flavor Profile" (missing row).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, Table, delete, select, update

from lbaas.api import common, listing
from lbaas.api.errors import BadRequest, Conflict, NotFound
from lbaas.api.http import ApiRequest, Handler, Response, Router
from lbaas.api.resources import crud, providers
from lbaas.api.schema import Field, String, envelope_openapi, parse_envelope
from lbaas.domain import constants as c
from lbaas.store import tables as t
from lbaas.store.listing import count


def in_use(kind: str, ident: str) -> Conflict:
    return Conflict(f"{kind} {ident} is in use and cannot be modified.")


@dataclass(frozen=True)
class ProfileResource:
    table: Table
    data_field: str  # flavor_data | availability_zone_data
    one: str  # envelope of one object
    plural: str
    links_key: str
    policy: str  # policy resource name
    label: str  # nil UUID 404 and 409 wording
    missing_label: str  # 404 wording for an unknown id
    users: Table  # flavor | availability_zone
    user_column: str  # flavor_profile_id | availability_zone_profile_id
    validate: Callable[[ApiRequest, str, Any], None]

    @property
    def fields(self) -> tuple[Field, ...]:
        return (
            Field("name", String(255), required=True),
            Field("provider_name", String(255), required=True),
            Field(self.data_field, String(4096), required=True),
        )

    @property
    def collection(self) -> listing.Collection:
        return listing.Collection(self.table, self.plural, self.links_key, has_tags=False)

    def render(self, row: Row[Any]) -> dict[str, Any]:
        return {"id": row.id, "name": row.name, "provider_name": row.provider_name,
                self.data_field: getattr(row, self.data_field)}

    def render_many(self, _conn: Connection, rows: list[Row[Any]]) -> list[dict[str, Any]]:
        return [self.render(r) for r in rows]

    def _load(self, conn: Connection, ident: str) -> Row[Any]:
        if ident == c.NIL_UUID:
            raise NotFound(self.label, ident)
        row = conn.execute(select(self.table).where(self.table.c.id == ident)).first()
        if row is None:
            raise NotFound(self.missing_label, ident)
        return row

    def _users(self, conn: Connection, ident: str) -> int:
        return count(conn, self.users, self.users.c[self.user_column] == ident)

    def _check_data(self, req: ApiRequest, provider: str, raw: str) -> None:
        data = providers.parse_profile_data(raw, self.data_field)
        self.validate(req, provider, data)

    async def get_all(self, req: ApiRequest) -> Response:
        common.authorize(req, self.policy, "get_all", req.context.project_id)
        return providers.list_global(req, self.collection, self.render_many)

    async def get_one(self, req: ApiRequest) -> Response:
        common.authorize(req, self.policy, "get_one", req.context.project_id)
        with req.app.engine.connect() as conn:
            row = self._load(conn, req.path_params["id"])
        return common.one_response(req, self.one, self.render(row))

    async def create(self, req: ApiRequest) -> Response:
        body = parse_envelope(req.json(), self.one, self.fields, "create")
        common.authorize(req, self.policy, "post", req.context.project_id)
        self._check_data(req, body["provider_name"], body[self.data_field])
        ident = common.new_id()
        with req.app.engine.begin() as conn:
            conn.execute(self.table.insert().values(
                id=ident, name=body["name"], provider_name=body["provider_name"],
                **{self.data_field: body[self.data_field]}))
            row = self._load(conn, ident)
        return Response(201, {self.one: self.render(row)})

    async def put(self, req: ApiRequest) -> Response:
        body = parse_envelope(req.json(), self.one, self._nullable_fields(), "update")
        common.authorize(req, self.policy, "put", req.context.project_id)
        for key, value in body.items():
            if value is None:
                raise BadRequest(f"None is not a valid option for {key}")
        ident = req.path_params["id"]
        with req.app.engine.begin() as conn:
            row = self._load(conn, ident)
            frozen = {"provider_name", self.data_field} & body.keys()
            if frozen and self._users(conn, ident):
                raise in_use(self.label, ident)
            if frozen:
                self._check_data(req, body.get("provider_name", row.provider_name),
                                 body.get(self.data_field, getattr(row, self.data_field)))
            if body:
                conn.execute(update(self.table).where(self.table.c.id == ident).values(**body))
            row = self._load(conn, ident)
        return Response(200, {self.one: self.render(row)})

    def _nullable_fields(self) -> tuple[Field, ...]:
        # explicit nulls reach put() so it can answer with upstream's "None is not a valid
        # option for <field>" instead of the generic "Mandatory field missing."
        return tuple(Field(f.name, f.type) for f in self.fields)

    async def delete(self, req: ApiRequest) -> Response:
        common.authorize(req, self.policy, "delete", req.context.project_id)
        ident = req.path_params["id"]
        with req.app.engine.begin() as conn:
            self._load(conn, ident)
            if self._users(conn, ident):
                raise in_use(self.label, ident)
            conn.execute(delete(self.table).where(self.table.c.id == ident))
        return Response(204)

    def register(self, router: Router, module: str, base: str, one: str, many: str) -> None:
        """The routes at ``base``, as ``module``'s handlers; OpenAPI summaries name ``one``
        ("a flavor profile") and ``many``."""
        def handler(name: str, method: Handler, doc: str) -> Handler:
            async def call(req: ApiRequest) -> Response:
                return await method(req)

            return crud.named(module, name, call, doc)

        crud.add_routes(router, base, handler("get_all", self.get_all, f"List {many}."),
                        handler("create", self.create, f"Create {one}."),
                        handler("get_one", self.get_one, f"Show {one}."),
                        handler("put", self.put, f"Update {one}."),
                        handler("delete_one", self.delete, f"Delete {one}."))

    def openapi(self) -> dict[str, Any]:
        return {"create": envelope_openapi(self.one, self.fields, "create"),
                "update": envelope_openapi(self.one, self._nullable_fields(), "update")}


FLAVOR_PROFILES = ProfileResource(
    table=t.flavor_profile, data_field="flavor_data", one="flavorprofile",
    plural="flavorprofiles", links_key="flavorprofile_links", policy="flavor-profile",
    label="Flavor profile", missing_label="Flavor Profile", users=t.flavor,
    user_column="flavor_profile_id", validate=providers.validate_flavor_data)

COLLECTION = FLAVOR_PROFILES.collection


def register(router: Router) -> None:
    FLAVOR_PROFILES.register(router, __name__, "/v2/lbaas/flavorprofiles", "a flavor profile",
                             "flavor profiles")


OPENAPI = FLAVOR_PROFILES.openapi()
