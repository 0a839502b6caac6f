"""The rules of unified limits (Keystone's flat model): a registered limit is a service's default for a resource
(in a region); a limit overrides it for one project or domain and needs the registered limit to exist. Every
function takes an open Session; the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from tinystack.core import errors
from tinystack.core.db import new_id
from tinystack.identity.lookup import get_or_404
from tinystack.identity.models import Domain, Limit, Project, Region, RegisteredLimit, Service
from tinystack.identity.resource_common import flush

MODEL = {"name": "flat", "description": "Limit enforcement and validation does not take project hierarchy into "
                                        "consideration."}
DUPLICATE = "Duplicate entry: a limit for this resource already exists."


def _exists(s: Session, body: Mapping[str, Any]) -> None:
    """Keystone answers a reference to a missing service, region, project or domain with a 400."""
    for key, model in (("service_id", Service), ("region_id", Region), ("project_id", Project),
                       ("domain_id", Domain)):
        value = body.get(key)
        if value is not None and s.get(model, value) is None:
            raise errors.BadRequest(f"Invalid input for field '{key}': {value} does not exist.")


# --- registered limits ---------------------------------------------------------------------------


def get_registered(s: Session, limit_id: str) -> RegisteredLimit:
    return cast(RegisteredLimit, get_or_404(s, RegisteredLimit, limit_id, "registered limit"))


def list_registered(s: Session, filters: Mapping[str, str | None]) -> list[RegisteredLimit]:
    q = select(RegisteredLimit)
    for key in ("service_id", "region_id", "resource_name"):
        if filters.get(key) is not None:
            q = q.where(getattr(RegisteredLimit, key) == filters[key])
    return list(s.scalars(q.order_by(RegisteredLimit.id)))


def create_registered(s: Session, bodies: list[Mapping[str, Any]]) -> list[RegisteredLimit]:
    out = []
    for body in bodies:
        _exists(s, body)
        limit = RegisteredLimit(id=new_id(), service_id=body["service_id"], region_id=body.get("region_id") or "",
                                resource_name=body["resource_name"], default_limit=body["default_limit"],
                                description=body.get("description"))
        s.add(limit)
        flush(s, DUPLICATE)
        out.append(limit)
    return out


def _referenced(s: Session, limit: RegisteredLimit) -> bool:
    return s.scalar(select(Limit.id).where(Limit.service_id == limit.service_id, Limit.region_id == limit.region_id,
                                           Limit.resource_name == limit.resource_name).limit(1)) is not None


def update_registered(s: Session, limit_id: str, body: Mapping[str, Any]) -> RegisteredLimit:
    limit = get_registered(s, limit_id)
    moves = any(k in body and body[k] != getattr(limit, k) for k in ("service_id", "resource_name")) or (
        "region_id" in body and (body["region_id"] or "") != limit.region_id)
    if moves and _referenced(s, limit):
        raise errors.Forbidden(f"Cannot update the service, region or resource of registered limit {limit_id}: "
                               "project limits refer to it.")
    _exists(s, body)
    for key in ("service_id", "resource_name", "default_limit", "description"):
        if key in body:
            setattr(limit, key, body[key])
    if "region_id" in body:
        limit.region_id = body["region_id"] or ""
    flush(s, DUPLICATE)
    return limit


def delete_registered(s: Session, limit_id: str) -> None:
    limit = get_registered(s, limit_id)
    if _referenced(s, limit):
        raise errors.Forbidden(f"Cannot delete registered limit {limit_id}: project limits refer to it.")
    s.delete(limit)


# --- limits --------------------------------------------------------------------------------------


def get_limit(s: Session, limit_id: str) -> Limit:
    return cast(Limit, get_or_404(s, Limit, limit_id, "limit"))


def list_limits(s: Session, filters: Mapping[str, str | None]) -> list[Limit]:
    q = select(Limit)
    for key in ("service_id", "region_id", "resource_name", "project_id", "domain_id"):
        if filters.get(key) is not None:
            q = q.where(getattr(Limit, key) == filters[key])
    return list(s.scalars(q.order_by(Limit.id)))


def create_limits(s: Session, bodies: list[Mapping[str, Any]]) -> list[Limit]:
    out = []
    for body in bodies:
        if bool(body.get("project_id")) == bool(body.get("domain_id")):
            raise errors.BadRequest("A limit is for either a project_id or a domain_id.")
        _exists(s, body)
        region = body.get("region_id") or ""
        registered = s.scalar(select(RegisteredLimit.id).where(
            RegisteredLimit.service_id == body["service_id"], RegisteredLimit.region_id == region,
            RegisteredLimit.resource_name == body["resource_name"]))
        if registered is None:
            raise errors.Forbidden("The service, region and resource of a limit must have a registered limit: "
                                   f"{body['service_id']}, {region or None}, {body['resource_name']}.")
        limit = Limit(id=new_id(), project_id=body.get("project_id") or "", domain_id=body.get("domain_id") or "",
                      service_id=body["service_id"], region_id=region, resource_name=body["resource_name"],
                      resource_limit=body["resource_limit"], description=body.get("description"))
        s.add(limit)
        flush(s, DUPLICATE)
        out.append(limit)
    return out


def update_limit(s: Session, limit_id: str, body: Mapping[str, Any]) -> Limit:
    limit = get_limit(s, limit_id)
    for key in ("resource_limit", "description"):
        if key in body:
            setattr(limit, key, body[key])
    return limit


def delete_limit(s: Session, limit_id: str) -> None:
    s.delete(get_limit(s, limit_id))
