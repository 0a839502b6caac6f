"""The rules for managing the catalog: regions (a hierarchy), services and their endpoints. Every function
takes an open Session; the caller owns the transaction. ``catalog.py`` renders what tokens carry."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tinystack.core import errors
from tinystack.core.db import new_id
from tinystack.identity.lookup import get_or_404
from tinystack.identity.models import Endpoint, Region, Service

INTERFACES = ("public", "internal", "admin")
# The $(name)s templates the token catalog knows how to fill (see catalog.substitute).
URL_SUBSTITUTIONS = frozenset({"tenant_id", "project_id", "user_id"})
_TEMPLATE = re.compile(r"\$\(([^)]*)\)s")

_REGION_COLUMNS = ("id", "description", "parent_region_id", "links")
_SERVICE_COLUMNS = ("id", "type", "name", "description", "enabled", "links")
_ENDPOINT_COLUMNS = ("id", "service_id", "region_id", "region", "interface", "url", "enabled", "links")


def _extras(body: dict[str, Any], columns: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in columns}


def _same_id(body: dict[str, Any], ident: str) -> None:
    if "id" in body and body["id"] != ident:
        raise errors.BadRequest("Cannot change the ID of a resource.")


# --- regions -------------------------------------------------------------------------------------


def get_region(s: Session, region_id: str) -> Region:
    region: Region = get_or_404(s, Region, region_id, "region")
    return region


def list_regions(s: Session, parent_region_id: str | None = None) -> list[Region]:
    q = select(Region)
    if parent_region_id is not None:
        q = q.where(Region.parent_region_id == parent_region_id)
    return list(s.scalars(q.order_by(Region.id)))


def create_region(s: Session, body: dict[str, Any]) -> Region:
    region_id = body.get("id") or new_id()
    if len(region_id) > 255:
        raise errors.BadRequest("Invalid input for field 'id': a region id is at most 255 characters.")
    if s.get(Region, region_id) is not None:
        raise errors.Conflict(f"Conflict occurred attempting to store region - Duplicate ID, {region_id}.")
    parent = body.get("parent_region_id")
    if parent is not None:
        get_region(s, parent)
    region = Region(id=region_id, description=body.get("description") or "", parent_region_id=parent,
                    extra=_extras(body, _REGION_COLUMNS))
    s.add(region)
    try:
        s.flush()
    except IntegrityError:
        raise errors.Conflict(f"Conflict occurred attempting to store region - Duplicate ID, {region_id}.") from None
    return region


def update_region(s: Session, region_id: str, body: dict[str, Any]) -> Region:
    _same_id(body, region_id)
    region = get_region(s, region_id)
    if "parent_region_id" in body:
        parent = body["parent_region_id"]
        # Walk up from the new parent: meeting this region again would close a loop.
        ancestor: str | None = parent
        seen: set[str] = set()
        while ancestor is not None and ancestor not in seen:
            if ancestor == region_id:
                raise errors.BadRequest(f"The specified parent region {parent} would create a circular region hierarchy.")
            seen.add(ancestor)
            ancestor = get_region(s, ancestor).parent_region_id
        region.parent_region_id = parent
    if "description" in body:
        region.description = body["description"] or ""
    extra = _extras(body, _REGION_COLUMNS)
    if extra:
        region.extra = {**region.extra, **extra}
    return region


def _subtree(s: Session, region_id: str) -> list[str]:
    """The region and all its descendants (a hierarchy damaged into a loop still ends)."""
    found = [region_id]
    frontier = [region_id]
    while frontier:
        children = [rid for rid in s.scalars(select(Region.id).where(Region.parent_region_id.in_(frontier)))
                    if rid not in found]
        found.extend(children)
        frontier = children
    return found


def delete_region(s: Session, region_id: str) -> None:
    """Delete a region with its child regions, as Keystone does; refused while any of them has endpoints."""
    get_region(s, region_id)
    ids = _subtree(s, region_id)
    if s.scalar(select(Endpoint.id).where(Endpoint.region_id.in_(ids)).limit(1)) is not None:
        raise errors.Forbidden(f"Unable to delete region {region_id} because it or its child regions have associated endpoints.")
    s.execute(delete(Region).where(Region.id.in_(ids)))


# --- services ------------------------------------------------------------------------------------


def get_service(s: Session, service_id: str) -> Service:
    service: Service = get_or_404(s, Service, service_id, "service")
    return service


def list_services(s: Session, kind: str | None = None, name: str | None = None) -> list[Service]:
    q = select(Service)
    if kind is not None:
        q = q.where(Service.type == kind)
    if name is not None:
        q = q.where(Service.name == name)
    return list(s.scalars(q.order_by(Service.type, Service.id)))


def create_service(s: Session, body: dict[str, Any]) -> Service:
    service = Service(id=new_id(), type=body["type"], name=body.get("name") or "",
                      description=body.get("description") or "", enabled=body.get("enabled", True),
                      extra=_extras(body, _SERVICE_COLUMNS))
    s.add(service)
    s.flush()
    return service


def update_service(s: Session, service_id: str, body: dict[str, Any]) -> Service:
    _same_id(body, service_id)
    service = get_service(s, service_id)
    for column in ("type", "name", "enabled"):
        if column in body:
            setattr(service, column, body[column])
    if "description" in body:
        service.description = body["description"] or ""
    extra = _extras(body, _SERVICE_COLUMNS)
    if extra:
        service.extra = {**service.extra, **extra}
    return service


def delete_service(s: Session, service_id: str) -> None:
    service = get_service(s, service_id)
    s.execute(delete(Endpoint).where(Endpoint.service_id == service_id))
    s.delete(service)


# --- endpoints -----------------------------------------------------------------------------------


def check_url(url: str) -> None:
    """Only the substitutions the catalog fills are allowed, so a token never carries a raw template."""
    names = _TEMPLATE.findall(url)
    if any(name not in URL_SUBSTITUTIONS for name in names) or url.count("$(") != len(names):
        raise errors.BadRequest(f"Cannot create an endpoint with an invalid URL: {url}.")


def _endpoint_region(s: Session, body: dict[str, Any]) -> str | None:
    """``region_id`` must name a region; the legacy ``region`` creates a missing one (v2-era clients)."""
    region_id = body.get("region_id")
    if region_id is not None:
        if s.get(Region, region_id) is None:
            raise errors.BadRequest(f"Expecting to find endpoint region_id {region_id} in the region table.")
        return str(region_id)
    legacy = body.get("region")
    if legacy is not None and s.get(Region, legacy) is None:
        s.add(Region(id=legacy, description="", parent_region_id=None, extra={}))
        s.flush()
    return None if legacy is None else str(legacy)


def _require_service(s: Session, service_id: str) -> None:
    if s.get(Service, service_id) is None:
        raise errors.BadRequest(f"Expecting to find endpoint service_id {service_id} in the service table.")


def get_endpoint(s: Session, endpoint_id: str) -> Endpoint:
    endpoint: Endpoint = get_or_404(s, Endpoint, endpoint_id, "endpoint")
    return endpoint


def list_endpoints(s: Session, service_id: str | None = None, interface: str | None = None,
                   region_id: str | None = None) -> list[Endpoint]:
    q = select(Endpoint)
    if service_id is not None:
        q = q.where(Endpoint.service_id == service_id)
    if interface is not None:
        q = q.where(Endpoint.interface == interface)
    if region_id is not None:
        q = q.where(Endpoint.region_id == region_id)
    return list(s.scalars(q.order_by(Endpoint.service_id, Endpoint.interface, Endpoint.id)))


def create_endpoint(s: Session, body: dict[str, Any]) -> Endpoint:
    check_url(body["url"])
    _require_service(s, body["service_id"])
    region_id = _endpoint_region(s, body)
    endpoint = Endpoint(id=new_id(), service_id=body["service_id"], region_id=region_id, interface=body["interface"],
                        url=body["url"], enabled=body.get("enabled", True), extra=_extras(body, _ENDPOINT_COLUMNS))
    s.add(endpoint)
    s.flush()
    return endpoint


def update_endpoint(s: Session, endpoint_id: str, body: dict[str, Any]) -> Endpoint:
    _same_id(body, endpoint_id)
    endpoint = get_endpoint(s, endpoint_id)
    if "url" in body:
        check_url(body["url"])
        endpoint.url = body["url"]
    if "service_id" in body:
        _require_service(s, body["service_id"])
        endpoint.service_id = body["service_id"]
    if "region_id" in body or "region" in body:
        endpoint.region_id = _endpoint_region(s, body)
    for column in ("interface", "enabled"):
        if column in body:
            setattr(endpoint, column, body[column])
    extra = _extras(body, _ENDPOINT_COLUMNS)
    if extra:
        endpoint.extra = {**endpoint.extra, **extra}
    return endpoint


def delete_endpoint(s: Session, endpoint_id: str) -> None:
    s.delete(get_endpoint(s, endpoint_id))
