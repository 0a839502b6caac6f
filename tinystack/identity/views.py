"""Identity resources as Keystone v3 renders them."""

from __future__ import annotations

from typing import Any

from tinystack.identity import models as m
from tinystack.identity.timeutil import naive_iso


def link(base: str, path: str) -> dict[str, str]:
    return {"self": f"{base}/v3/{path}"}


def collection(base: str, path: str, key: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {key: items, "links": {"self": f"{base}/v3/{path}", "previous": None, "next": None}}


def domain(base: str, d: m.Domain) -> dict[str, Any]:
    return {**d.extra, "id": d.id, "name": d.name, "description": d.description, "enabled": d.enabled,
            "tags": list(d.tags), "options": {}, "links": link(base, f"domains/{d.id}")}


def project(base: str, p: m.Project) -> dict[str, Any]:
    return {**p.extra, "id": p.id, "name": p.name, "domain_id": p.domain_id, "description": p.description,
            "enabled": p.enabled, "parent_id": p.parent_id or p.domain_id, "is_domain": False,
            "tags": list(p.tags), "options": dict(p.options), "links": link(base, f"projects/{p.id}")}


def user(base: str, u: m.User) -> dict[str, Any]:
    out = {**u.extra, "id": u.id, "name": u.name, "domain_id": u.domain_id, "enabled": u.enabled,
           "password_expires_at": None, "options": dict(u.options), "links": link(base, f"users/{u.id}")}
    if u.default_project_id:
        out["default_project_id"] = u.default_project_id
    if u.description:
        out["description"] = u.description
    return out


def group(base: str, g: m.Group) -> dict[str, Any]:
    return {**g.extra, "id": g.id, "name": g.name, "domain_id": g.domain_id, "description": g.description,
            "links": link(base, f"groups/{g.id}")}


def role(base: str, r: m.Role) -> dict[str, Any]:
    return {**r.extra, "id": r.id, "name": r.name, "domain_id": r.domain_id or None, "description": r.description or None,
            "options": dict(r.options), "links": link(base, f"roles/{r.id}")}


def role_ref(base: str, r: m.Role) -> dict[str, Any]:
    return {"id": r.id, "name": r.name, "links": link(base, f"roles/{r.id}")}


def region(base: str, r: m.Region) -> dict[str, Any]:
    return {**r.extra, "id": r.id, "description": r.description, "parent_region_id": r.parent_region_id,
            "links": link(base, f"regions/{r.id}")}


def service(base: str, s: m.Service) -> dict[str, Any]:
    return {**s.extra, "id": s.id, "type": s.type, "name": s.name, "description": s.description,
            "enabled": s.enabled, "links": link(base, f"services/{s.id}")}


def endpoint(base: str, e: m.Endpoint) -> dict[str, Any]:
    return {**e.extra, "id": e.id, "service_id": e.service_id, "region_id": e.region_id, "region": e.region_id,
            "interface": e.interface, "url": e.url, "enabled": e.enabled, "links": link(base, f"endpoints/{e.id}")}


def app_credential(base: str, c: m.ApplicationCredential, roles: list[m.Role], secret: str | None = None) -> dict[str, Any]:
    out = {"id": c.id, "name": c.name, "user_id": c.user_id, "project_id": c.project_id,
           "description": c.description or None, "expires_at": naive_iso(c.expires_at), "unrestricted": c.unrestricted,
           "roles": [{"id": r.id, "name": r.name, "domain_id": r.domain_id or None} for r in roles],
           "access_rules": [], "links": link(base, f"users/{c.user_id}/application_credentials/{c.id}")}
    if secret is not None:
        out["secret"] = secret
    return out


def credential(base: str, c: m.Credential) -> dict[str, Any]:
    return {**c.extra, "id": c.id, "user_id": c.user_id, "project_id": c.project_id, "type": c.type,
            "blob": c.blob, "links": link(base, f"credentials/{c.id}")}
