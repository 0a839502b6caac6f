"""Identity: Projects, Users and Roles (administrators only), through Keystone's v3 API."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tinystack.dashboard.views.common import gather, list_all, optional
from tinystack.dashboard.web import FormError, Page, api, form, redirect, render, required, session

# Horizon's Modify Quotas form: (service, API key, label). Each service's own quota API sets its own.
QUOTAS = [("compute", "instances", "Instances"), ("compute", "cores", "VCPUs"), ("compute", "ram", "RAM (MB)"),
          ("compute", "key_pairs", "Key Pairs"), ("compute", "metadata_items", "Metadata Items"),
          ("compute", "server_groups", "Server Groups"), ("compute", "server_group_members", "Server Group Members"),
          ("volume", "volumes", "Volumes"), ("volume", "snapshots", "Volume Snapshots"),
          ("volume", "gigabytes", "Total Size of Volumes and Snapshots (GiB)"),
          ("volume", "backups", "Volume Backups"), ("volume", "backup_gigabytes", "Total Size of Backups (GiB)"),
          ("network", "network", "Networks"), ("network", "subnet", "Subnets"), ("network", "port", "Ports"),
          ("network", "router", "Routers"), ("network", "floatingip", "Floating IPs"),
          ("network", "security_group", "Security Groups"), ("network", "security_group_rule", "Security Group Rules")]


async def _all(request: web.Request, what: str) -> list[dict[str, Any]]:
    items = await list_all(api(request), "identity", f"/{what}", what, paged=False)
    return sorted(items, key=lambda x: x.get("name") or "")


async def projects(request: web.Request) -> web.StreamResponse:
    """Every project for an admin; a member sees the projects they have a role in (read only)."""
    if session(request).is_admin:
        items = await _all(request, "projects")
    else:
        items = sorted((await api(request).get("identity", "/auth/projects"))["projects"], key=lambda p: p["name"])
    return render(request, "projects.html", title="Projects", projects=items, admin=session(request).is_admin)


async def create_project(request: web.Request) -> web.StreamResponse:
    fields = await form(request)
    required(fields, "name")
    body = {"project": {"name": fields["name"].strip(), "description": fields.get("description", ""),
                        "domain_id": fields.get("domain_id") or "default", "enabled": fields.get("enabled", "on") == "on"}}
    project = (await api(request).post("identity", "/projects", body))["project"]
    session(request).flash("success", f"Created project {project['name']}.")
    raise redirect("/identity/projects/")


async def delete_project(request: web.Request) -> web.StreamResponse:
    await form(request)
    await api(request).delete("identity", f"/projects/{request.match_info['project_id']}")
    session(request).flash("success", "Deleted project.")
    raise redirect("/identity/projects/")


async def _quota_sets(request: web.Request, project_id: str) -> dict[str, dict[str, Any]]:
    a = api(request)
    compute, volume, network = await gather(
        a.get("compute", f"/os-quota-sets/{project_id}"),
        optional(a.get("volume", f"/os-quota-sets/{project_id}"), {"quota_set": {}}),
        optional(a.get("network", f"/v2.0/quotas/{project_id}"), {"quota": {}}))
    return {"compute": compute["quota_set"], "volume": volume["quota_set"], "network": network["quota"]}


async def quotas(request: web.Request) -> web.StreamResponse:
    project_id = request.match_info["project_id"]
    project, sets = await gather(api(request).get("identity", f"/projects/{project_id}"), _quota_sets(request, project_id))
    rows = [(service, key, label, sets[service][key]) for service, key, label in QUOTAS if key in sets[service]]
    return render(request, "project_quotas.html", title=f"Quotas of {project['project']['name']}",
                  project=project["project"], rows=rows)


def quota_changes(current: dict[str, dict[str, Any]], fields: dict[str, str]) -> dict[str, dict[str, int]]:
    """Per service, the quotas the form changes (whole numbers, -1 for unlimited); the rest are left alone."""
    out: dict[str, dict[str, int]] = {}
    for service, key, label in QUOTAS:
        raw = fields.get(f"{service}.{key}", "").strip()
        if not raw or key not in current[service]:
            continue
        try:
            value = int(raw)
        except ValueError:
            raise FormError(f"{label} must be a whole number (-1 for unlimited).") from None
        if value < -1:
            raise FormError(f"{label} must be -1 (unlimited) or more.")
        if value != current[service][key]:
            out.setdefault(service, {})[key] = value
    return out


async def update_quotas(request: web.Request) -> web.StreamResponse:
    project_id = request.match_info["project_id"]
    fields = await form(request)
    a = api(request)
    changes = quota_changes(await _quota_sets(request, project_id), fields)
    # Every value is checked before the first service is asked to change anything.
    if "compute" in changes:
        await a.put("compute", f"/os-quota-sets/{project_id}", {"quota_set": changes["compute"]})
    if "volume" in changes:
        await a.put("volume", f"/os-quota-sets/{project_id}", {"quota_set": changes["volume"]})
    if "network" in changes:
        await a.put("network", f"/v2.0/quotas/{project_id}", {"quota": changes["network"]})
    session(request).flash("success", "Modified the project's quotas." if changes else "No quota changed.")
    raise redirect(f"/identity/projects/{project_id}/quotas/")


async def users(request: web.Request) -> web.StreamResponse:
    user_list, project_list, role_list = await gather(_all(request, "users"), _all(request, "projects"),
                                                      _all(request, "roles"))
    names = {p["id"]: p["name"] for p in project_list}
    return render(request, "users.html", title="Users", users=user_list, projects=project_list, roles=role_list,
                  project_names=names)


async def create_user(request: web.Request) -> web.StreamResponse:
    fields = await form(request)
    required(fields, "name", "password")
    a = api(request)
    user: dict[str, Any] = {"name": fields["name"].strip(), "password": fields["password"],
                            "domain_id": fields.get("domain_id") or "default", "enabled": fields.get("enabled", "on") == "on"}
    for key in ("email", "description"):
        if fields.get(key, "").strip():
            user[key] = fields[key].strip()
    if fields.get("project"):
        user["default_project_id"] = fields["project"]
    created = (await a.post("identity", "/users", {"user": user}))["user"]
    if fields.get("project") and fields.get("role"):
        await a.put("identity", f"/projects/{fields['project']}/users/{created['id']}/roles/{fields['role']}")
    session(request).flash("success", f"Created user {created['name']}.")
    raise redirect("/identity/users/")


async def delete_user(request: web.Request) -> web.StreamResponse:
    await form(request)
    await api(request).delete("identity", f"/users/{request.match_info['user_id']}")
    session(request).flash("success", "Deleted user.")
    raise redirect("/identity/users/")


async def roles(request: web.Request) -> web.StreamResponse:
    return render(request, "roles.html", title="Roles", roles=await _all(request, "roles"))


async def create_role(request: web.Request) -> web.StreamResponse:
    fields = await form(request)
    required(fields, "name")
    await api(request).post("identity", "/roles", {"role": {"name": fields["name"].strip()}})
    session(request).flash("success", f"Created role {fields['name'].strip()}.")
    raise redirect("/identity/roles/")


PAGES = [
    Page("GET", "/identity/projects/", projects),
    Page("POST", "/identity/projects/create/", create_project, admin=True),
    Page("POST", "/identity/projects/{project_id}/delete/", delete_project, admin=True),
    Page("GET", "/identity/projects/{project_id}/quotas/", quotas, admin=True),
    Page("POST", "/identity/projects/{project_id}/quotas/", update_quotas, admin=True),
    Page("GET", "/identity/users/", users, admin=True),
    Page("POST", "/identity/users/create/", create_user, admin=True),
    Page("POST", "/identity/users/{user_id}/delete/", delete_user, admin=True),
    Page("GET", "/identity/roles/", roles, admin=True),
    Page("POST", "/identity/roles/create/", create_role, admin=True),
]
