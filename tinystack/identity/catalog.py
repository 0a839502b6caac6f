"""The service catalog as tokens carry it, rendered from the service and endpoint tables."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tinystack.identity.models import Endpoint, Service


def substitute(url: str, project_id: str | None, user_id: str) -> str | None:
    """Fill ``$(project_id)s``-style templates; an endpoint that needs a missing value is left out."""
    values = {"project_id": project_id, "tenant_id": project_id, "user_id": user_id}
    for key, value in values.items():
        marker = f"$({key})s"
        if marker in url:
            if value is None:
                return None
            url = url.replace(marker, value)
    return url


def load(s: Session) -> list[tuple[Service, list[Endpoint]]]:
    services = list(s.scalars(select(Service).where(Service.enabled.is_(True)).order_by(Service.type)))
    endpoints: dict[str, list[Endpoint]] = {}
    for ep in s.scalars(select(Endpoint).where(Endpoint.enabled.is_(True)).order_by(Endpoint.interface)):
        endpoints.setdefault(ep.service_id, []).append(ep)
    return [(svc, endpoints.get(svc.id, [])) for svc in services]


def render_v3(entries: list[tuple[Service, list[Endpoint]]], project_id: str | None, user_id: str,
              allowed: set[str] | None = None) -> list[dict[str, Any]]:
    out = []
    for svc, eps in entries:
        rendered = []
        for ep in eps:
            url = substitute(ep.url, project_id, user_id)
            if url is not None and (allowed is None or ep.id in allowed):
                rendered.append({"id": ep.id, "interface": ep.interface, "region": ep.region_id,
                                 "region_id": ep.region_id, "url": url})
        out.append({"endpoints": rendered, "id": svc.id, "type": svc.type, "name": svc.name})
    return out


def render_v2(entries: list[tuple[Service, list[Endpoint]]], project_id: str | None, user_id: str,
              allowed: set[str] | None = None) -> list[dict[str, Any]]:
    """The v2.0 ``serviceCatalog``: one endpoint entry per region with the three interface URLs. ``allowed``
    (both renderings): the endpoint ids a project's endpoint filter leaves, None for all."""
    out = []
    for svc, eps in entries:
        by_region: dict[str | None, dict[str, Any]] = {}
        for ep in eps:
            url = substitute(ep.url, project_id, user_id)
            if url is None or (allowed is not None and ep.id not in allowed):
                continue
            entry = by_region.setdefault(ep.region_id, {"region": ep.region_id, "id": ep.id})
            entry[f"{ep.interface}URL"] = url
        out.append({"endpoints": list(by_region.values()), "endpoints_links": [], "type": svc.type, "name": svc.name})
    return out
