"""Roles, inference rules and role assignments as Keystone v3 renders them."""

from __future__ import annotations

from typing import Any

from tinystack.identity.assignment_listing import Entry, Names
from tinystack.identity.models import Role
from tinystack.identity.views import link, role_ref

# The path suffix of grants inherited to a target's projects (OS-INHERIT).
INHERITED_SUFFIX = "/inherited_to_projects"


def inference(base: str, prior: Role, implied: Role) -> dict[str, Any]:
    return {"role_inference": {"prior_role": role_ref(base, prior), "implies": role_ref(base, implied)},
            "links": link(base, f"roles/{prior.id}/implies/{implied.id}")}


def implied_by(base: str, prior: Role, implied: list[Role]) -> dict[str, Any]:
    return {"role_inference": {"prior_role": role_ref(base, prior), "implies": [role_ref(base, r) for r in implied]},
            "links": link(base, f"roles/{prior.id}/implies")}


def inference_rules(base: str, rules: list[tuple[Role, list[Role]]]) -> dict[str, Any]:
    return {"role_inferences": [{"prior_role": role_ref(base, prior), "implies": [role_ref(base, r) for r in implied]}
                                for prior, implied in rules]}


def _ref(table: dict[str, tuple[str, str]], names: Names, ident: str) -> dict[str, Any]:
    name, domain_id = table.get(ident, ("", ""))
    return {"id": ident, "name": name, "domain": {"id": domain_id, "name": names.domains.get(domain_id, "")}}


def render_assignment(base: str, e: Entry, names: Names | None) -> dict[str, Any]:
    """One entry of ``role_assignments`` in Keystone's shape; ``links.assignment`` is the grant it stems from."""
    out: dict[str, Any] = {}
    links: dict[str, str] = {}
    if e.project_id:
        out["scope"] = {"project": _ref(names.projects, names, e.project_id) if names else {"id": e.project_id}}
        path = (f"/domains/{e.via_domain}" if e.via_domain else
                f"/projects/{e.via_project}" if e.via_project else f"/projects/{e.project_id}")
    elif e.domain_id:
        domain = {"id": e.domain_id, "name": names.domains.get(e.domain_id, "")} if names else {"id": e.domain_id}
        out["scope"] = {"domain": domain}
        path = f"/domains/{e.domain_id}"
    else:
        out["scope"] = {"system": {"all": True}}
        path = "/system"
    if e.user_id:
        out["user"] = _ref(names.users, names, e.user_id) if names else {"id": e.user_id}
        if e.via_group:
            links["membership"] = f"{base}/v3/groups/{e.via_group}/users/{e.user_id}"
            path += f"/groups/{e.via_group}"
        else:
            path += f"/users/{e.user_id}"
    elif e.group_id:
        out["group"] = _ref(names.groups, names, e.group_id) if names else {"id": e.group_id}
        path += f"/groups/{e.group_id}"
    role: dict[str, Any] = {"id": e.role_id}
    if names:
        role_name, role_domain = names.roles.get(e.role_id, ("", ""))
        role["name"] = role_name
        if role_domain:
            role["domain"] = {"id": role_domain, "name": names.domains.get(role_domain, "")}
    out["role"] = role
    path += f"/roles/{e.prior_role_id or e.role_id}"
    if e.inherited:
        out["scope"]["OS-INHERIT:inherited_to"] = "projects"
        path = f"/OS-INHERIT{path}{INHERITED_SUFFIX}"
    links["assignment"] = f"{base}/v3{path}"
    if e.prior_role_id:
        links["prior_role"] = f"{base}/v3/roles/{e.prior_role_id}/implies/{e.role_id}"
    out["links"] = links
    return out
