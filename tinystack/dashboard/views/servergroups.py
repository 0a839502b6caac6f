"""Project > Compute > Server Groups: the project's groups with their policy and members, create and delete.
The launch wizard offers them as its Server Group step (a ``group`` scheduler hint)."""

from __future__ import annotations

from aiohttp import web

from tinystack.dashboard.views.common import gather, list_all
from tinystack.dashboard.web import FormError, Page, api, form, redirect, render, required, session

BASE = "/project/server_groups/"
# The policies compute 2.64+ takes (one per group; the soft ones since 2.15).
POLICIES = ["affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity"]


async def index(request: web.Request) -> web.StreamResponse:
    a = api(request)
    groups, servers = await gather(list_all(a, "compute", "/os-server-groups", "server_groups", paged=False),
                                   list_all(a, "compute", "/servers", "servers"))
    names = {s["id"]: s.get("name") or s["id"] for s in servers}
    return render(request, "server_groups.html", title="Server Groups", policies=POLICIES, server_names=names,
                  groups=sorted(groups, key=lambda g: (g.get("name") or "", g["id"])))


async def create(request: web.Request) -> web.StreamResponse:
    fields = await form(request)
    required(fields, "name")
    policy = fields.get("policy", "")
    if policy not in POLICIES:
        raise FormError(f"Choose a policy: {', '.join(POLICIES)}.")
    body = {"server_group": {"name": fields["name"].strip(), "policy": policy}}
    group = (await api(request).post("compute", "/os-server-groups", body))["server_group"]
    session(request).flash("success", f"Created server group {group['name']}.")
    raise redirect(BASE)


async def delete(request: web.Request) -> web.StreamResponse:
    await form(request)
    await api(request).delete("compute", f"/os-server-groups/{request.match_info['group_id']}")
    session(request).flash("success", "Deleted server group.")
    raise redirect(BASE)


PAGES = [
    Page("GET", BASE, index),
    Page("POST", BASE + "create/", create),
    Page("POST", BASE + "{group_id}/delete/", delete),
]
