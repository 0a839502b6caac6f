"""The metadata definitions catalog as Glance v2 renders it."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from tinystack.image.models import MetadefAssociation, MetadefItem, MetadefNamespace, MetadefResourceType
from tinystack.image.views import iso

BASE = "/v2/metadefs/namespaces"


def _stamps(row: MetadefNamespace | MetadefItem | MetadefAssociation | MetadefResourceType) -> dict[str, Any]:
    return {"created_at": iso(row.created_at), "updated_at": iso(row.updated_at)}


def association(a: MetadefAssociation) -> dict[str, Any]:
    out: dict[str, Any] = {"name": a.name, **_stamps(a)}
    out.update({k: v for k, v in (("prefix", a.prefix), ("properties_target", a.properties_target)) if v})
    return out


def namespace(ns: MetadefNamespace, detail: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"namespace": ns.namespace, "visibility": ns.visibility, "protected": ns.protected,
                           "owner": ns.owner, **_stamps(ns), "self": f"{BASE}/{quote(ns.namespace)}",
                           "schema": "/v2/schemas/metadefs/namespace"}
    out.update({k: v for k, v in (("display_name", ns.display_name), ("description", ns.description)) if v})
    if ns.associations:
        out["resource_type_associations"] = [association(a) for a in ns.associations]
    if detail:
        props = properties([i for i in ns.items if i.kind == "property"])["properties"]
        objs = [obj(ns.namespace, i) for i in ns.items if i.kind == "object"]
        tag_list = [tag(i) for i in ns.items if i.kind == "tag"]
        out.update({k: v for k, v in (("properties", props), ("objects", objs), ("tags", tag_list)) if v})
    return out


def namespaces(items: list[MetadefNamespace], params: list[tuple[str, str]], next_marker: str | None
               ) -> dict[str, Any]:
    kept = [(k, v) for k, v in params if k != "marker"]
    body: dict[str, Any] = {"namespaces": [namespace(ns) for ns in items],
                            "first": f"{BASE}?{urlencode(kept)}" if kept else BASE,
                            "schema": "/v2/schemas/metadefs/namespaces"}
    if next_marker is not None:
        body["next"] = f"{BASE}?{urlencode([*kept, ('marker', next_marker)])}"
    return body


def obj(ns_name: str, item: MetadefItem) -> dict[str, Any]:
    return {"name": item.name, "description": item.body.get("description"), "required": item.body.get("required", []),
            "properties": item.body.get("properties", {}), **_stamps(item),
            "self": f"{BASE}/{quote(ns_name)}/objects/{quote(item.name)}", "schema": "/v2/schemas/metadefs/object"}


def objects(ns_name: str, items: list[MetadefItem]) -> dict[str, Any]:
    return {"objects": [obj(ns_name, i) for i in items], "schema": "/v2/schemas/metadefs/objects"}


def prop(item: MetadefItem) -> dict[str, Any]:
    return {"name": item.name, **item.body}


def properties(items: list[MetadefItem]) -> dict[str, Any]:
    return {"properties": {i.name: dict(i.body) for i in items}, "schema": "/v2/schemas/metadefs/properties"}


def tag(item: MetadefItem) -> dict[str, Any]:
    return {"name": item.name, **_stamps(item)}


def tags(items: list[MetadefItem]) -> dict[str, Any]:
    return {"tags": [tag(i) for i in items], "schema": "/v2/schemas/metadefs/tags"}


def resource_types(items: list[MetadefResourceType]) -> dict[str, Any]:
    return {"resource_types": [{"name": r.name, **_stamps(r)} for r in items]}


def associations(items: list[MetadefAssociation]) -> dict[str, Any]:
    return {"resource_type_associations": [association(a) for a in items]}
