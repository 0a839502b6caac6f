"""Admin > Compute: Hypervisors (with resource bars) and Flavors. The routes are admin-only in the dashboard,
and the APIs check the same again."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tinystack.dashboard.views.common import gather, list_all
from tinystack.dashboard.web import FormError, Page, api, form, redirect, render, required, session

# Hypervisor details with the usage fields (they left the API at 2.88; placement has them after that).
HYPERVISOR_VERSION = {"OpenStack-API-Version": "compute 2.53", "X-OpenStack-Nova-API-Version": "2.53"}


async def hypervisors(request: web.Request) -> web.StreamResponse:
    a = api(request)
    _, _, body = await a.call("GET", "compute", "/os-hypervisors/detail", headers=HYPERVISOR_VERSION)
    hvs: list[dict[str, Any]] = body["hypervisors"]
    totals = {key: sum(h.get(key) or 0 for h in hvs) for key in
              ("vcpus", "vcpus_used", "memory_mb", "memory_mb_used", "local_gb", "local_gb_used", "running_vms")}
    return render(request, "hypervisors.html", title="All Hypervisors", hypervisors=hvs, totals=totals)


async def flavors(request: web.Request) -> web.StreamResponse:
    items = await list_all(api(request), "compute", "/flavors/detail", "flavors", {"is_public": "None"}, paged=False)
    return render(request, "flavors.html", title="Flavors", flavors=sorted(items, key=lambda f: (f["ram"], f["name"])))


def flavor_body(fields: dict[str, str]) -> dict[str, Any]:
    required(fields, "name", "vcpus", "ram", "disk")
    body: dict[str, Any] = {"name": fields["name"].strip(), "os-flavor-access:is_public": fields.get("public", "on") == "on"}
    if fields.get("flavor_id", "").strip() and fields["flavor_id"].strip().lower() != "auto":
        body["id"] = fields["flavor_id"].strip()
    for key, label in (("vcpus", "VCPUs"), ("ram", "RAM"), ("disk", "Root Disk"), ("OS-FLV-EXT-DATA:ephemeral", "Ephemeral"),
                       ("swap", "Swap")):
        raw = fields.get(key.split(":")[-1], "").strip()
        if raw:
            try:
                body[key] = int(raw)
            except ValueError:
                raise FormError(f"{label} must be a whole number.") from None
    if fields.get("rxtx_factor", "").strip():
        try:
            body["rxtx_factor"] = float(fields["rxtx_factor"])
        except ValueError:
            raise FormError("RX/TX Factor must be a number.") from None
    return body


async def create_flavor(request: web.Request) -> web.StreamResponse:
    fields = await form(request)
    flavor = (await api(request).post("compute", "/flavors", {"flavor": flavor_body(fields)}))["flavor"]
    session(request).flash("success", f"Created flavor {flavor['name']}.")
    raise redirect("/admin/flavors/")


async def delete_flavor(request: web.Request) -> web.StreamResponse:
    await form(request)
    await api(request).delete("compute", f"/flavors/{request.match_info['flavor_id']}")
    session(request).flash("success", "Deleted flavor.")
    raise redirect("/admin/flavors/")


async def services(request: web.Request) -> web.StreamResponse:
    a = api(request)
    compute, network = await gather(a.get("compute", "/os-services"), a.get("network", "/v2.0/agents"))
    return render(request, "services.html", title="System Information", compute=compute["services"],
                  agents=network["agents"])


PAGES = [
    Page("GET", "/admin/hypervisors/", hypervisors, admin=True),
    Page("GET", "/admin/flavors/", flavors, admin=True),
    Page("POST", "/admin/flavors/create/", create_flavor, admin=True),
    Page("POST", "/admin/flavors/{flavor_id}/delete/", delete_flavor, admin=True),
    Page("GET", "/admin/info/", services, admin=True),
]
