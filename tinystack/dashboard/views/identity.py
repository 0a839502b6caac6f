"""Identity: Projects, Users and Roles (administrators only), through Keystone's v3 API."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tinystack.dashboard.views.common import gather, list_all
from tinystack.dashboard.web import Page, api, form, redirect, render, required, session


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
    Page("GET", "/identity/users/", users, admin=True),
    Page("POST", "/identity/users/create/", create_user, admin=True),
    Page("POST", "/identity/users/{user_id}/delete/", delete_user, admin=True),
    Page("GET", "/identity/roles/", roles, admin=True),
    Page("POST", "/identity/roles/create/", create_role, admin=True),
]
