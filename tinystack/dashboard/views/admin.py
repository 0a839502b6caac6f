"""Admin > Compute: Hypervisors (with resource bars) and Flavors. The routes are admin-only in the dashboard,
and the APIs check the same again."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tinystack.dashboard.views import flavor_access
from tinystack.dashboard.views.common import gather, list_all, optional
from tinystack.dashboard.web import FormError, Page, api, form, form_all, redirect, render, required, session

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
    a = api(request)
    items, projects = await gather(
        list_all(a, "compute", "/flavors/detail", "flavors", {"is_public": "None"}, paged=False),
        optional(list_all(a, "identity", "/projects", "projects", paged=False), []))
    return render(request, "flavors.html", title="Flavors", flavors=sorted(items, key=lambda f: (f["ram"], f["name"])),
                  projects=sorted(projects, key=lambda p: (p.get("name") or "", p["id"])))


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
    body = flavor_body(fields)
    if await form_all(request, "projects") and body["os-flavor-access:is_public"]:
        raise FormError("Flavor Access is for private flavors: clear Public or choose no project.")
    granted = await flavor_access.chosen(request)
    flavor = (await api(request).post("compute", "/flavors", {"flavor": body}))["flavor"]
    await flavor_access.grant(request, flavor["id"], granted)
    session(request).flash("success", f"Created flavor {flavor['name']}"
                                      + (f", usable by {len(granted)} project(s)." if granted else "."))
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


# --- Admin > Compute > Host Aggregates ----------------------------------------------------------------------

async def aggregates(request: web.Request) -> web.StreamResponse:
    a = api(request)
    aggs, services = await gather(a.get("compute", "/os-aggregates"),
                                  a.get("compute", "/os-services", {"binary": "nova-compute"}))
    hosts = sorted({s["host"] for s in services["services"]})
    return render(request, "aggregates.html", title="Host Aggregates", hosts=hosts,
                  aggregates=sorted(aggs["aggregates"], key=lambda g: g.get("name") or ""))


async def create_aggregate(request: web.Request) -> web.StreamResponse:
    fields = await form(request)
    required(fields, "name")
    body: dict[str, Any] = {"name": fields["name"].strip()}
    if fields.get("availability_zone", "").strip():
        body["availability_zone"] = fields["availability_zone"].strip()
    agg = (await api(request).post("compute", "/os-aggregates", {"aggregate": body}))["aggregate"]
    session(request).flash("success", f"Created host aggregate {agg['name']}.")
    raise redirect(AGGREGATES)


async def aggregate_action(request: web.Request) -> web.StreamResponse:
    """Manage Hosts (add or remove one) and Update Metadata (``key=value`` lines; an empty value unsets it)."""
    fields = await form(request)
    agg_id, name = request.match_info["aggregate_id"], fields.get("action", "")
    a = api(request)
    if name in ("add_host", "remove_host"):
        required(fields, "host")
        await a.post("compute", f"/os-aggregates/{agg_id}/action", {name: {"host": fields["host"]}})
    elif name == "set_metadata":
        metadata: dict[str, str | None] = {}
        for line in fields.get("metadata", "").splitlines():
            if not line.strip():
                continue
            key, sep, value = line.partition("=")
            if not sep or not key.strip():
                raise FormError(f"Metadata lines are key=value: {line.strip()!r} is not.")
            metadata[key.strip()] = value.strip() or None
        await a.post("compute", f"/os-aggregates/{agg_id}/action", {"set_metadata": {"metadata": metadata}})
    elif name == "delete":
        await a.delete("compute", f"/os-aggregates/{agg_id}")
    else:
        raise FormError(f"Unknown action {name!r}.")
    session(request).flash("success", f"{name.replace('_', ' ').capitalize()}: done for host aggregate {agg_id}.")
    raise redirect(AGGREGATES)


# --- Admin > System > Defaults ------------------------------------------------------------------------------

COMPUTE_DEFAULTS = [("instances", "Instances"), ("cores", "VCPUs"), ("ram", "RAM (MB)"),
                    ("metadata_items", "Metadata Items"), ("key_pairs", "Key Pairs"), ("server_groups", "Server Groups"),
                    ("server_group_members", "Server Group Members"), ("injected_files", "Injected Files"),
                    ("injected_file_content_bytes", "Injected File Content (Bytes)"),
                    ("injected_file_path_bytes", "Length of Injected File Path")]


async def defaults(request: web.Request) -> web.StreamResponse:
    a, sess = api(request), session(request)
    compute, volume, network = await gather(
        a.get("compute", "/os-quota-class-sets/default"),
        optional(a.get("volume", f"/os-quota-sets/{sess.project_id}/defaults"), {"quota_set": {}}),
        optional(a.get("network", f"/v2.0/quotas/{sess.project_id}/default"), {"quota": {}}))
    cq = compute["quota_class_set"]
    return render(request, "defaults.html", title="Defaults",
                  compute=[(key, label, cq[key]) for key, label in COMPUTE_DEFAULTS if key in cq],
                  volume=sorted((k, v) for k, v in volume["quota_set"].items() if k != "id"),
                  network=sorted(network["quota"].items()))


async def update_defaults(request: web.Request) -> web.StreamResponse:
    """Update Defaults: compute's ``default`` quota class (the one default set an API lets an admin change)."""
    fields = await form(request)
    values: dict[str, int] = {}
    for key, label in COMPUTE_DEFAULTS:
        raw = fields.get(key, "").strip()
        if not raw:
            continue
        try:
            values[key] = int(raw)
        except ValueError:
            raise FormError(f"{label} must be a whole number (-1 for unlimited).") from None
        if values[key] < -1:
            raise FormError(f"{label} must be -1 (unlimited) or more.")
    await api(request).put("compute", "/os-quota-class-sets/default", {"quota_class_set": values})
    session(request).flash("success", "Updated the default quotas.")
    raise redirect(DEFAULTS)


AGGREGATES = "/admin/aggregates/"
DEFAULTS = "/admin/defaults/"
PAGES += [
    Page("GET", AGGREGATES, aggregates, admin=True),
    Page("POST", AGGREGATES + "create/", create_aggregate, admin=True),
    Page("POST", AGGREGATES + "{aggregate_id}/action", aggregate_action, admin=True),
    Page("GET", DEFAULTS, defaults, admin=True),
    Page("POST", DEFAULTS + "update/", update_defaults, admin=True),
]
