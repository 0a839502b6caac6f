"""Identity resources as Keystone v3 renders them."""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from tinystack.identity import models as m
from tinystack.identity.timeutil import iso, naive_iso

if TYPE_CHECKING:
    from tinystack.identity.fernet import TokenPayload
    from tinystack.identity.resource_ops import ProjectTree
    from tinystack.identity.tokens import Validated


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
           "password_expires_at": naive_iso(u.password_expires_at), "options": dict(u.options),
           "links": link(base, f"users/{u.id}")}
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


def access_rule(base: str, r: m.AccessRule) -> dict[str, Any]:
    return {"id": r.id, "service": r.service, "method": r.method, "path": r.path,
            "links": link(base, f"users/{r.user_id}/access_rules/{r.id}")}


def app_credential(base: str, c: m.ApplicationCredential, roles: list[m.Role], secret: str | None = None,
                   rules: Collection[m.AccessRule] = ()) -> dict[str, Any]:
    out = {"id": c.id, "name": c.name, "user_id": c.user_id, "project_id": c.project_id,
           "description": c.description or None, "expires_at": naive_iso(c.expires_at), "unrestricted": c.unrestricted,
           "roles": [{"id": r.id, "name": r.name, "domain_id": r.domain_id or None} for r in roles],
           "access_rules": [{"id": r.id, "service": r.service, "method": r.method, "path": r.path} for r in rules],
           "links": link(base, f"users/{c.user_id}/application_credentials/{c.id}")}
    if secret is not None:
        out["secret"] = secret
    return out


def trust(base: str, t: m.Trust, roles: list[m.Role]) -> dict[str, Any]:
    return {**t.extra, "id": t.id, "trustor_user_id": t.trustor_user_id, "trustee_user_id": t.trustee_user_id,
            "project_id": t.project_id, "impersonation": t.impersonation, "expires_at": iso(t.expires_at),
            "remaining_uses": t.remaining_uses, "allow_redelegation": t.allow_redelegation,
            "redelegation_count": t.redelegation_count, "redelegated_trust_id": t.redelegated_from,
            "roles": [role_ref(base, r) for r in roles],
            "roles_links": {"self": f"{base}/v3/OS-TRUST/trusts/{t.id}/roles", "previous": None, "next": None},
            "links": link(base, f"OS-TRUST/trusts/{t.id}")}


def registered_limit(base: str, r: m.RegisteredLimit) -> dict[str, Any]:
    return {"id": r.id, "service_id": r.service_id, "region_id": r.region_id or None,
            "resource_name": r.resource_name, "default_limit": r.default_limit, "description": r.description,
            "links": link(base, f"registered_limits/{r.id}")}


def limit(base: str, lim: m.Limit) -> dict[str, Any]:
    return {"id": lim.id, "project_id": lim.project_id or None, "domain_id": lim.domain_id or None,
            "service_id": lim.service_id, "region_id": lim.region_id or None, "resource_name": lim.resource_name,
            "resource_limit": lim.resource_limit, "description": lim.description,
            "links": link(base, f"limits/{lim.id}")}


def endpoint_group(base: str, g: m.EndpointGroup) -> dict[str, Any]:
    return {"id": g.id, "name": g.name, "description": g.description, "filters": dict(g.filters),
            "links": link(base, f"OS-EP-FILTER/endpoint_groups/{g.id}")}


def credential(base: str, c: m.Credential) -> dict[str, Any]:
    return {**c.extra, "id": c.id, "user_id": c.user_id, "project_id": c.project_id, "type": c.type,
            "blob": c.blob, "links": link(base, f"credentials/{c.id}")}


def domain_as_project(base: str, d: m.Domain) -> dict[str, Any]:
    """A domain seen through the projects API, as Keystone's projects acting as domains."""
    return {**d.extra, "id": d.id, "name": d.name, "domain_id": None, "description": d.description,
            "enabled": d.enabled, "parent_id": None, "is_domain": True, "tags": list(d.tags), "options": {},
            "links": link(base, f"projects/{d.id}")}


def any_project(base: str, p: m.Project | m.Domain) -> dict[str, Any]:
    """A project, or a domain acting as one."""
    return domain_as_project(base, p) if isinstance(p, m.Domain) else project(base, p)


def project_tree(base: str, tree: ProjectTree, expand: Collection[str]) -> dict[str, Any]:
    """A project with Keystone's ``parents_as_*`` and ``subtree_as_*`` expansions named in ``expand``; the
    domain tops the parents."""
    p, visible = tree.project, tree.visible
    out = project(base, p)
    if "parents_as_ids" in expand:
        nested: dict[str, Any] | None = {p.domain_id: None}
        for parent in reversed(tree.parents):
            nested = {parent.id: nested}
        out["parents"] = nested
    elif "parents_as_list" in expand:
        out["parents"] = [{"project": project(base, q)} for q in tree.parents if visible is None or q.id in visible]
    if "subtree_as_ids" in expand:
        def below(pid: str) -> dict[str, Any] | None:
            kids = {q.id: below(q.id) for q in tree.subtree if q.parent_id == pid}
            return kids or None

        out["subtree"] = below(p.id)
    elif "subtree_as_list" in expand:
        out["subtree"] = [{"project": project(base, q)} for q in tree.subtree if visible is None or q.id in visible]
    return out


def v2_access(token: str, payload: TokenPayload, validated: Validated, service_catalog: list[dict[str, Any]]) -> dict[str, Any]:
    """A token as Keystone v2.0's ``access`` document."""
    c = validated.ctx
    token_doc: dict[str, Any] = {"id": token, "issued_at": iso(payload.issued_at), "expires": iso(payload.expires_at),
                                 "audit_ids": list(payload.audit_ids)}
    if c.project_id:
        token_doc["tenant"] = {"id": c.project_id, "name": c.project_name, "enabled": True, "description": None}
    return {
        "token": token_doc,
        "serviceCatalog": service_catalog,
        "user": {"id": c.user_id, "name": c.user_name, "username": c.user_name, "roles_links": [],
                 "roles": [{"name": r} for r in c.roles]},
        "metadata": {"is_admin": 0, "roles": list(c.role_ids)},
    }
