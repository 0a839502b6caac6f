"""The metadata definitions catalog (Glance's metadefs): namespaces of property, object and tag definitions
that tell clients which metadata a resource type (an image, a flavor, a volume) understands. Everyone reads
public namespaces and their project's private ones; changing the catalog is for admins (``metadef_admin``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from tinystack.core import errors, paging
from tinystack.core.auth import RequestContext
from tinystack.core.web import validate
from tinystack.image import metadef_schemas as ms
from tinystack.image.models import MetadefAssociation, MetadefItem, MetadefNamespace, MetadefResourceType, utcnow

if TYPE_CHECKING:
    from tinystack.image.service import ImageService

T = TypeVar("T")
KINDS = {"objects": "object", "properties": "property", "tags": "tag"}
PLURAL = {kind: plural for plural, kind in KINDS.items()}
_ITEM_SCHEMAS = {"object": ms.OBJECT, "property": ms.PROPERTY, "tag": ms.TAG}
SORT_KEYS = ("namespace", "display_name", "created_at", "updated_at")
WORDING = paging.Wording(
    not_integer="{name} param must be an integer", too_small="{name} param must be positive",
    sort_key="Invalid sort key: {key}. It must be one of the following: {keys}.",
    sort_dir="Invalid sort direction: {direction}", sort_count="Number of sort dirs does not match the number of sort keys",
    mixed_syntax="Old and new sorting syntax cannot be combined", marker="Namespace {marker} could not be found.")


def _clean(body: Any, schema: Mapping[str, Any]) -> dict[str, Any]:
    """The body without the read-only fields a client may echo back, checked against ``schema``."""
    if not isinstance(body, dict):
        raise errors.BadRequest("Request body must be a JSON object.")
    body = {k: v for k, v in body.items() if k not in ms.READ_ONLY}
    validate(body, schema)
    return body


def _definition(kind: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """What the catalog stores of an item: everything but its name (tags have nothing else)."""
    return {k: v for k, v in body.items() if k != "name"} if kind != "tag" else {}


class Metadefs:
    def __init__(self, svc: ImageService) -> None:
        self.svc = svc

    # --- finding and checking -------------------------------------------------------------------

    def _visible(self, ctx: RequestContext, ns: MetadefNamespace) -> bool:
        return ctx.is_admin or ns.visibility == "public" or (ctx.project_id is not None and ns.owner == ctx.project_id)

    def _find(self, s: Session, ctx: RequestContext, name: str) -> MetadefNamespace:
        ns = s.scalars(select(MetadefNamespace).where(MetadefNamespace.namespace == name)).one_or_none()
        if ns is None or not self._visible(ctx, ns):
            raise errors.NotFound(f"Metadata definition namespace={name} was not found.")
        return ns


    def _read(self, ctx: RequestContext, rule: str, fn: Callable[[Session], T]) -> T:
        self.svc.enforce(ctx, rule)
        with self.svc.session() as s:
            return fn(s)

    # --- namespaces -----------------------------------------------------------------------------

    def list_namespaces(self, ctx: RequestContext, query: paging.Query) -> tuple[list[MetadefNamespace], str | None]:
        page = paging.page(query, SORT_KEYS, self.svc.settings.limit_param_default, self.svc.settings.api_limit_max,
                           WORDING, default_key="created_at")
        visibility = query.get("visibility")
        if visibility not in (None, "public", "private"):
            raise errors.BadRequest(f"Invalid visibility value: {visibility}")
        wanted = {t.strip() for t in str(query.get("resource_types") or "").split(",") if t.strip()}

        def read(s: Session) -> list[MetadefNamespace]:
            stmt = select(MetadefNamespace)
            if visibility:
                stmt = stmt.where(MetadefNamespace.visibility == visibility)
            for key, direction in paging.with_tiebreaks(page.sort or [("created_at", "asc")], ("namespace",)):
                column = getattr(MetadefNamespace, key)
                stmt = stmt.order_by(column.asc() if direction == "asc" else column.desc())
            rows = [ns for ns in s.scalars(stmt).all() if self._visible(ctx, ns)]
            return [ns for ns in rows if not wanted or wanted & {a.name for a in ns.associations}]

        rows = self._read(ctx, "get_metadef_namespaces", read)
        limit = page.limit if page.limit is not None else len(rows)
        rows = paging.paginate(rows, limit + 1, page.marker, lambda ns: ns.namespace, WORDING)
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (rows[-1].namespace if more and rows else None)

    def get_namespace(self, ctx: RequestContext, name: str) -> MetadefNamespace:
        return self._read(ctx, "get_metadef_namespace", lambda s: self._find(s, ctx, name))

    async def create_namespace(self, ctx: RequestContext, body: Any) -> MetadefNamespace:
        self.svc.enforce(ctx, "add_metadef_namespace")
        doc = _clean(body, ms.NAMESPACE)
        return await self.svc.write(lambda s: self.insert_namespace(s, doc, doc.get("owner", ctx.project_id)))

    def insert_namespace(self, s: Session, doc: Mapping[str, Any], owner: str | None,
                         protect_types: bool = False) -> MetadefNamespace:
        """A namespace and everything it defines, from a checked create body (also how definitions load)."""
        name = doc["namespace"]
        if s.scalars(select(MetadefNamespace.id).where(MetadefNamespace.namespace == name)).first() is not None:
            raise errors.Conflict(f"Metadata definition namespace={name} already exists.")
        now = utcnow()
        ns = MetadefNamespace(namespace=name, display_name=doc.get("display_name"),
                              description=doc.get("description"), visibility=doc.get("visibility", "private"),
                              protected=doc.get("protected", False), owner=owner, created_at=now, updated_at=now)
        ns.items = []
        ns.associations = []
        items = ([("property", {"name": k, **v}) for k, v in doc.get("properties", {}).items()]
                 + [("object", o) for o in doc.get("objects", [])] + [("tag", t) for t in doc.get("tags", [])])
        seen: set[tuple[str, str]] = set()
        for kind, item in items:
            if (kind, item["name"]) in seen:
                raise errors.Conflict(f"Duplicate {kind} {item['name']} in namespace {name}.")
            seen.add((kind, item["name"]))
            ns.items.append(MetadefItem(kind=kind, name=item["name"], body=_definition(kind, item),
                                        created_at=now, updated_at=now))
        for assoc in doc.get("resource_type_associations", []):
            self._resource_type(s, assoc["name"], protect_types)
            ns.associations.append(MetadefAssociation(name=assoc["name"], prefix=assoc.get("prefix"),
                                                      properties_target=assoc.get("properties_target"),
                                                      created_at=now, updated_at=now))
        s.add(ns)
        s.flush()
        return ns

    async def update_namespace(self, ctx: RequestContext, name: str, body: Any) -> MetadefNamespace:
        self.svc.enforce(ctx, "modify_metadef_namespace")
        doc = _clean(body, ms.NAMESPACE)
        if {"properties", "objects", "tags", "resource_type_associations"} & doc.keys():
            raise errors.BadRequest("A namespace update changes the namespace only; use its sub-resources.")

        def step(s: Session) -> MetadefNamespace:
            ns = self._find(s, ctx, name)
            if doc["namespace"] != name and s.scalars(select(MetadefNamespace.id).where(
                    MetadefNamespace.namespace == doc["namespace"])).first() is not None:
                raise errors.Conflict(f"Metadata definition namespace={doc['namespace']} already exists.")
            for key in ("namespace", "display_name", "description", "visibility", "protected", "owner"):
                if key in doc:
                    setattr(ns, key, doc[key])
            ns.updated_at = utcnow()
            return ns

        return await self.svc.write(step)

    async def delete_namespace(self, ctx: RequestContext, name: str) -> None:
        self.svc.enforce(ctx, "delete_metadef_namespace")

        def step(s: Session) -> None:
            ns = self._find(s, ctx, name)
            if ns.protected:
                raise errors.Forbidden(f"Namespace {name} is protected and cannot be deleted.")
            s.delete(ns)

        await self.svc.write(step)

    # --- objects, properties and tags -----------------------------------------------------------

    def list_items(self, ctx: RequestContext, name: str, kind: str) -> list[MetadefItem]:
        return self._read(ctx, f"get_metadef_{PLURAL[kind]}",
                          lambda s: [i for i in self._find(s, ctx, name).items if i.kind == kind])

    def get_item(self, ctx: RequestContext, name: str, kind: str, item_name: str) -> MetadefItem:
        return self._read(ctx, f"get_metadef_{kind}", lambda s: self._item(self._find(s, ctx, name), kind, item_name))

    @staticmethod
    def _item(ns: MetadefNamespace, kind: str, item_name: str) -> MetadefItem:
        found = next((i for i in ns.items if i.kind == kind and i.name == item_name), None)
        if found is None:
            raise errors.NotFound(f"Metadata definition {kind} not found: {item_name} in namespace {ns.namespace}.")
        return found

    async def create_item(self, ctx: RequestContext, name: str, kind: str, body: Any) -> MetadefItem:
        self.svc.enforce(ctx, f"add_metadef_{kind}")
        doc = _clean(body, _ITEM_SCHEMAS[kind])

        def step(s: Session) -> MetadefItem:
            ns = self._find(s, ctx, name)
            if any(i.kind == kind and i.name == doc["name"] for i in ns.items):
                raise errors.Conflict(f"A metadata definition {kind} named {doc['name']} already exists in "
                                      f"namespace {name}.")
            now = utcnow()
            item = MetadefItem(kind=kind, name=doc["name"], body=_definition(kind, doc), created_at=now,
                               updated_at=now)
            ns.items.append(item)
            s.flush()
            return item

        return await self.svc.write(step)

    async def update_item(self, ctx: RequestContext, name: str, kind: str, item_name: str, body: Any) -> MetadefItem:
        self.svc.enforce(ctx, f"modify_metadef_{kind}")
        doc = _clean(body, _ITEM_SCHEMAS[kind])

        def step(s: Session) -> MetadefItem:
            ns = self._find(s, ctx, name)
            item = self._item(ns, kind, item_name)
            if doc["name"] != item_name and any(i.kind == kind and i.name == doc["name"] for i in ns.items):
                raise errors.Conflict(f"A metadata definition {kind} named {doc['name']} already exists.")
            item.name, item.body, item.updated_at = doc["name"], _definition(kind, doc), utcnow()
            return item

        return await self.svc.write(step)

    async def delete_item(self, ctx: RequestContext, name: str, kind: str, item_name: str) -> None:
        self.svc.enforce(ctx, "delete_metadef_tag" if kind == "tag" else f"remove_metadef_{kind}")

        def step(s: Session) -> None:
            ns = self._find(s, ctx, name)
            if ns.protected:
                raise errors.Forbidden(f"Namespace {name} is protected: its {kind}s cannot be deleted.")
            ns.items.remove(self._item(ns, kind, item_name))

        await self.svc.write(step)

    async def delete_items(self, ctx: RequestContext, name: str, kind: str) -> None:
        # Glance has no rule of its own for emptying objects or properties.
        self.svc.enforce(ctx, "delete_metadef_tags" if kind == "tag" else f"remove_metadef_{kind}")

        def step(s: Session) -> None:
            ns = self._find(s, ctx, name)
            if ns.protected:
                raise errors.Forbidden(f"Namespace {name} is protected: its {kind}s cannot be deleted.")
            ns.items = [i for i in ns.items if i.kind != kind]

        await self.svc.write(step)

    async def set_tags(self, ctx: RequestContext, name: str, body: Any, append: bool) -> list[MetadefItem]:
        """``POST .../tags``: replace the namespace's tags (or add to them, with ``X-OpenStack-Append``)."""
        self.svc.enforce(ctx, "add_metadef_tags")
        doc = _clean(body, ms.TAGS)
        names = [t["name"] for t in doc["tags"]]
        if len(set(names)) != len(names):
            raise errors.Conflict("Duplicate tags in the request.")

        def step(s: Session) -> list[MetadefItem]:
            ns = self._find(s, ctx, name)
            existing = {i.name for i in ns.items if i.kind == "tag"}
            if append and existing & set(names):
                raise errors.Conflict(f"Tag(s) {', '.join(sorted(existing & set(names)))} already exist.")
            if not append:
                ns.items = [i for i in ns.items if i.kind != "tag"]
            now = utcnow()
            ns.items.extend(MetadefItem(kind="tag", name=t, body={}, created_at=now, updated_at=now) for t in names)
            s.flush()
            return [i for i in ns.items if i.kind == "tag"]

        return await self.svc.write(step)

    # --- resource types -------------------------------------------------------------------------

    @staticmethod
    def _resource_type(s: Session, name: str, protected: bool = False) -> MetadefResourceType:
        found = s.get(MetadefResourceType, name)
        if found is None:
            now = utcnow()
            found = MetadefResourceType(name=name, protected=protected, created_at=now, updated_at=now)
            s.add(found)
            s.flush()
        return found

    def resource_types(self, ctx: RequestContext) -> list[MetadefResourceType]:
        return self._read(ctx, "list_metadef_resource_types", lambda s: list(
            s.scalars(select(MetadefResourceType).order_by(MetadefResourceType.name)).all()))

    def associations(self, ctx: RequestContext, name: str) -> list[MetadefAssociation]:
        return self._read(ctx, "get_metadef_resource_type", lambda s: list(self._find(s, ctx, name).associations))

    async def associate(self, ctx: RequestContext, name: str, body: Any) -> MetadefAssociation:
        self.svc.enforce(ctx, "add_metadef_resource_type_association")
        doc = _clean(body, ms.ASSOCIATION)

        def step(s: Session) -> MetadefAssociation:
            ns = self._find(s, ctx, name)
            if any(a.name == doc["name"] for a in ns.associations):
                raise errors.Conflict(f"Resource type {doc['name']} is already associated with namespace {name}.")
            self._resource_type(s, doc["name"])
            now = utcnow()
            assoc = MetadefAssociation(name=doc["name"], prefix=doc.get("prefix"),
                                       properties_target=doc.get("properties_target"), created_at=now, updated_at=now)
            ns.associations.append(assoc)
            s.flush()
            return assoc

        return await self.svc.write(step)

    async def dissociate(self, ctx: RequestContext, name: str, resource_type: str) -> None:
        self.svc.enforce(ctx, "remove_metadef_resource_type_association")

        def step(s: Session) -> None:
            ns = self._find(s, ctx, name)
            found = next((a for a in ns.associations if a.name == resource_type), None)
            if found is None:
                raise errors.NotFound(f"Resource type {resource_type} is not associated with namespace {name}.")
            if ns.protected:
                raise errors.Forbidden(f"Namespace {name} is protected: its associations cannot be removed.")
            ns.associations.remove(found)

        await self.svc.write(step)
