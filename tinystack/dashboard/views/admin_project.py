"""Admin panels over every project: Overview (usage of all projects over a period), Volumes, Routers and Floating
IPs of every project, and the instance actions only an administrator has (migrate, live migrate, reset state).
The routes are admin-only in the dashboard, and the APIs' policy checks the same again."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

from aiohttp import web
from yarl import URL

from tinystack.dashboard.client import Api
from tinystack.dashboard.views.common import by_id, cached, gather, list_all, optional, page_of
from tinystack.dashboard.views.overview import cell, period
from tinystack.dashboard.views.volumes import REVERSE as VOLUME_REVERSE
from tinystack.dashboard.web import FormError, Page, api, back, form, redirect, render, session

# os-resetState takes these two states only.
RESET_STATES = ("active", "error")


async def project_names(request: web.Request) -> dict[str, str]:
    projects = await cached(session(request), "project_names", lambda: optional(
        list_all(api(request), "identity", "/projects", "projects", paged=False), []))
    return {p: v.get("name", p) for p, v in by_id(projects).items()}


async def all_usage(a: Api, start: date, end: date) -> list[dict[str, Any]]:
    """Every project's usage over the period, summed per project over the pages of compute's answer."""
    params = {"start": f"{start.isoformat()}T00:00:00", "end": f"{end.isoformat()}T23:59:59.999999", "detailed": "0"}
    totals: dict[str, dict[str, Any]] = {}
    seen_marker = None
    while True:
        body = await a.get("compute", "/os-simple-tenant-usage", params)
        for u in body.get("tenant_usages", []):
            row = totals.setdefault(u["tenant_id"], {"project_id": u["tenant_id"], "vcpu_hours": 0.0,
                                                     "memory_mb_hours": 0.0, "disk_gb_hours": 0.0, "hours": 0.0})
            row["vcpu_hours"] += u.get("total_vcpus_usage", 0.0)
            row["memory_mb_hours"] += u.get("total_memory_mb_usage", 0.0)
            row["disk_gb_hours"] += u.get("total_local_gb_usage", 0.0)
            row["hours"] += u.get("total_hours", 0.0)
        # From compute 2.40 the answer comes in pages of instances: the next page's link names its marker.
        nxt = [link["href"] for link in body.get("tenant_usages_links", []) if link.get("rel") == "next"]
        marker = URL(nxt[0]).query.get("marker") if nxt else None
        if not marker or marker == seen_marker:
            return sorted(totals.values(), key=lambda r: r["project_id"])
        params["marker"] = seen_marker = marker


def usage_csv(rows: list[dict[str, Any]], names: dict[str, str], start: date, end: date) -> str:
    """Horizon's admin CSV summary: the period, then one row per project (names written as text, never formulas)."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["Usage Report For Period:", start.isoformat(), end.isoformat()])
    w.writerow([])
    w.writerow(["Project Name", "VCPU Hours", "Disk GB Hours", "Memory MB Hours", "Instance Hours"])
    for r in rows:
        w.writerow([cell(names.get(r["project_id"], r["project_id"])), f"{r['vcpu_hours']:.2f}",
                    f"{r['disk_gb_hours']:.2f}", f"{r['memory_mb_hours']:.2f}", f"{r['hours']:.2f}"])
    return out.getvalue()


async def overview(request: web.Request) -> web.StreamResponse:
    start, end = period(request.query)
    rows, names = await gather(all_usage(api(request), start, end), project_names(request))
    if request.query.get("format") == "csv":
        return web.Response(text=usage_csv(rows, names, start, end), content_type="text/csv", charset="utf-8",
                            headers={"Content-Disposition": f'attachment; filename="usage_{start.isoformat()}_'
                                                            f'{end.isoformat()}.csv"'})
    return render(request, "admin_overview.html", title="Usage Overview", rows=rows, names=names, start=start, end=end,
                  totals={k: sum(r[k] for r in rows) for k in ("vcpu_hours", "memory_mb_hours", "disk_gb_hours")})


async def volumes(request: web.Request) -> web.StreamResponse:
    page, names = await gather(page_of(api(request), "volume", "/volumes/detail", "volumes", request,
                                       {"all_tenants": "1"}, VOLUME_REVERSE), project_names(request))
    return render(request, "admin_volumes.html", title="Volumes", volumes=page.items, page=page, names=names)


async def routers(request: web.Request) -> web.StreamResponse:
    items, names = await gather(list_all(api(request), "network", "/v2.0/routers", "routers", paged=False),
                                project_names(request))
    return render(request, "admin_routers.html", title="Routers", names=names,
                  routers=sorted(items, key=lambda r: (names.get(r.get("project_id", ""), ""), r.get("name") or "")))


async def floating_ips(request: web.Request) -> web.StreamResponse:
    items, names = await gather(list_all(api(request), "network", "/v2.0/floatingips", "floatingips", paged=False),
                                project_names(request))
    return render(request, "admin_floating_ips.html", title="Floating IPs", names=names,
                  fips=sorted(items, key=lambda f: f.get("floating_ip_address") or ""))


def instance_action_body(fields: dict[str, str]) -> dict[str, Any]:
    """Migrate (cold; the scheduler picks the host), Live Migrate (a host, or the scheduler's pick; block migration
    when the disks are not shared) and Reset State (active or error)."""
    name = fields.get("action", "")
    host = fields.get("host", "").strip() or None
    if name == "migrate":
        return {"migrate": {"host": host} if host else None}
    if name == "live_migrate":
        block = fields.get("block_migration", "auto")
        if block not in ("auto", "true", "false"):
            raise FormError("Block Migration must be auto, true or false.")
        return {"os-migrateLive": {"host": host, "block_migration": {"true": True, "false": False}.get(block, "auto")}}
    if name == "reset_state":
        state = fields.get("state", "")
        if state not in RESET_STATES:
            raise FormError("Reset State takes the state active or error.")
        return {"os-resetState": {"state": state}}
    raise FormError(f"Unknown action {name!r}.")


async def instance_action(request: web.Request) -> web.StreamResponse:
    fields = await form(request)
    server_id = request.match_info["server_id"]
    body = instance_action_body(fields)
    await api(request).post("compute", f"/servers/{server_id}/action", body)
    session(request).flash("success", f"{fields['action'].replace('_', ' ').capitalize()}: request sent for instance "
                                      f"{server_id}.")
    raise redirect(back(request, "/admin/instances/"))


PAGES = [
    Page("GET", "/admin/", overview, admin=True),
    Page("GET", "/admin/volumes/", volumes, admin=True),
    Page("GET", "/admin/routers/", routers, admin=True),
    Page("GET", "/admin/floating_ips/", floating_ips, admin=True),
    Page("POST", "/admin/instances/{server_id}/action", instance_action, admin=True),
]
