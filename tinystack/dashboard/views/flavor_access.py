"""Admin > Compute > Flavors > Flavor Access: the projects that may use a private flavor, added and removed with
compute's ``addTenantAccess`` / ``removeTenantAccess`` actions (admin-only here and in compute's policy)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tinystack.dashboard.views.common import gather, list_all
from tinystack.dashboard.web import FormError, Page, api, back, form, form_all, redirect, render, session

BASE = "/admin/flavors/"


async def _projects(request: web.Request) -> list[dict[str, Any]]:
    projects = await list_all(api(request), "identity", "/projects", "projects", paged=False)
    return sorted(projects, key=lambda p: (p.get("name") or "", p["id"]))


def known_project(projects: list[dict[str, Any]], project_id: str) -> str:
    """``project_id`` when Keystone lists it: compute records any string it is given, so the dashboard checks
    that the project exists before it asks."""
    project_id = project_id.strip()
    if not project_id:
        raise FormError("Choose a project.")
    if project_id not in {p["id"] for p in projects}:
        raise FormError(f"Unknown project {project_id!r}.")
    return project_id


async def access(request: web.Request) -> web.StreamResponse:
    flavor_id = request.match_info["flavor_id"]
    a = api(request)
    flavor, projects = await gather(a.get("compute", f"/flavors/{flavor_id}"), _projects(request))
    flavor = flavor["flavor"]
    members: set[str] = set()
    if not flavor.get("os-flavor-access:is_public", True):
        rows = (await a.get("compute", f"/flavors/{flavor_id}/os-flavor-access"))["flavor_access"]
        members = {r["tenant_id"] for r in rows}
    names = {p["id"]: p.get("name") or p["id"] for p in projects}
    return render(request, "flavor_access.html", title=f"Flavor Access: {flavor['name']}", flavor=flavor,
                  members=sorted(members, key=lambda p: names.get(p, p)), names=names,
                  others=[p for p in projects if p["id"] not in members])


async def change(request: web.Request) -> web.StreamResponse:
    flavor_id = request.match_info["flavor_id"]
    fields = await form(request)
    op = fields.get("op", "")
    if op not in ("add", "remove"):
        raise FormError(f"Unknown flavor access change {op!r}.")
    project = known_project(await _projects(request), fields.get("project", ""))
    key = "addTenantAccess" if op == "add" else "removeTenantAccess"
    await api(request).post("compute", f"/flavors/{flavor_id}/action", {key: {"tenant": project}})
    session(request).flash("success", f"Flavor access {'given to' if op == 'add' else 'taken from'} project {project}.")
    raise redirect(back(request, f"{BASE}{flavor_id}/access/"))


async def chosen(request: web.Request) -> list[str]:
    """Create Flavor's Flavor Access tab: the chosen projects, each checked against Keystone before the flavor is
    made, so a bad choice makes nothing."""
    ids = await form_all(request, "projects")
    if not ids:
        return []
    projects = await _projects(request)
    return [known_project(projects, p) for p in dict.fromkeys(ids)]


async def grant(request: web.Request, flavor_id: str, projects: list[str]) -> None:
    """The new (private) flavor made usable by ``projects``."""
    for project in projects:
        await api(request).post("compute", f"/flavors/{flavor_id}/action", {"addTenantAccess": {"tenant": project}})


PAGES = [
    Page("GET", BASE + "{flavor_id}/access/", access, admin=True),
    Page("POST", BASE + "{flavor_id}/access/", change, admin=True),
]
