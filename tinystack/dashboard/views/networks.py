"""Project > Network > Networks (with their subnets) and Admin > Network > Networks."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tinystack.dashboard.views.common import by_id, gather, list_all, optional
from tinystack.dashboard.web import FormError, Page, api, back, form, redirect, render, required, session

BASE = "/project/networks/"


async def index(request: web.Request) -> web.StreamResponse:
    a = api(request)
    networks, subnets = await gather(list_all(a, "network", "/v2.0/networks", "networks", paged=False),
                                     list_all(a, "network", "/v2.0/subnets", "subnets", paged=False))
    return render(request, "networks.html", title="Networks", networks=_rows(networks, subnets), admin=False)


def _rows(networks: list[dict[str, Any]], subnets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    subs = by_id(subnets)
    return sorted(({**n, "subnet_list": [subs[s] for s in n.get("subnets", []) if s in subs]} for n in networks),
                  key=lambda n: (n.get("name") or "", n["id"]))


def subnet_body(fields: dict[str, str], network_id: str) -> dict[str, Any]:
    required(fields, "subnet_name", "cidr")
    body: dict[str, Any] = {"network_id": network_id, "name": fields["subnet_name"].strip(),
                            "cidr": fields["cidr"].strip(), "ip_version": int(fields.get("ip_version") or 4),
                            "enable_dhcp": fields.get("enable_dhcp", "on") == "on"}
    if fields.get("gateway_ip", "").strip():
        body["gateway_ip"] = fields["gateway_ip"].strip()
    elif fields.get("no_gateway") == "on":
        body["gateway_ip"] = None
    servers = [s.strip() for s in fields.get("dns_nameservers", "").split() if s.strip()]
    if servers:
        body["dns_nameservers"] = servers
    return body


async def create(request: web.Request) -> web.StreamResponse:
    fields = await form(request)
    required(fields, "name")
    a = api(request)
    net = (await a.post("network", "/v2.0/networks", {"network": {
        "name": fields["name"].strip(), "admin_state_up": fields.get("admin_state", "on") == "on",
        **({"shared": True} if fields.get("shared") == "on" else {})}}))["network"]
    if fields.get("with_subnet", "on") == "on" and fields.get("cidr", "").strip():
        try:
            await a.post("network", "/v2.0/subnets", {"subnet": subnet_body(fields, net["id"])})
        except Exception:
            # Horizon's wizard is one step to the user: no half-made network when the subnet was refused.
            await optional(a.delete("network", f"/v2.0/networks/{net['id']}"), None)
            raise
    session(request).flash("success", f"Created network {net['name']}.")
    raise redirect(f"{BASE}{net['id']}/")


async def detail(request: web.Request) -> web.StreamResponse:
    a = api(request)
    net_id = request.match_info["network_id"]
    net, subnets, ports = await gather(a.get("network", f"/v2.0/networks/{net_id}"),
                                       list_all(a, "network", "/v2.0/subnets", "subnets", {"network_id": net_id}, paged=False),
                                       list_all(a, "network", "/v2.0/ports", "ports", {"network_id": net_id}, paged=False))
    return render(request, "network_detail.html", title=net["network"].get("name") or net_id, net=net["network"],
                  subnets=subnets, ports=ports)


async def add_subnet(request: web.Request) -> web.StreamResponse:
    net_id = request.match_info["network_id"]
    fields = await form(request)
    await api(request).post("network", "/v2.0/subnets", {"subnet": subnet_body(fields, net_id)})
    session(request).flash("success", f"Created subnet {fields['subnet_name'].strip()}.")
    raise redirect(f"{BASE}{net_id}/")


async def delete_subnet(request: web.Request) -> web.StreamResponse:
    await form(request)
    await api(request).delete("network", f"/v2.0/subnets/{request.match_info['subnet_id']}")
    session(request).flash("success", "Deleted subnet.")
    raise redirect(back(request, BASE))


async def delete(request: web.Request) -> web.StreamResponse:
    await form(request)
    net_id = request.match_info["network_id"]
    await api(request).delete("network", f"/v2.0/networks/{net_id}")
    session(request).flash("success", f"Deleted network {net_id}.")
    raise redirect(back(request, BASE))


async def admin_index(request: web.Request) -> web.StreamResponse:
    a = api(request)
    networks, subnets, projects = await gather(
        list_all(a, "network", "/v2.0/networks", "networks", paged=False),
        list_all(a, "network", "/v2.0/subnets", "subnets", paged=False),
        optional(list_all(a, "identity", "/projects", "projects", paged=False), []))
    names = {p["id"]: p["name"] for p in projects}
    rows = _rows(networks, subnets)
    for n in rows:
        n["project_name"] = names.get(n.get("project_id", ""), n.get("project_id", ""))
    return render(request, "networks.html", title="Networks", networks=rows, admin=True)


async def admin_create(request: web.Request) -> web.StreamResponse:
    fields = await form(request)
    required(fields, "name", "project_id")
    body: dict[str, Any] = {"name": fields["name"].strip(), "project_id": fields["project_id"].strip(),
                            "shared": fields.get("shared") == "on", "router:external": fields.get("external") == "on"}
    if fields.get("network_type", "").strip():
        body["provider:network_type"] = fields["network_type"].strip()
        if fields.get("physical_network", "").strip():
            body["provider:physical_network"] = fields["physical_network"].strip()
        if fields.get("segmentation_id", "").strip():
            try:
                body["provider:segmentation_id"] = int(fields["segmentation_id"])
            except ValueError:
                raise FormError("Segmentation ID must be a number.") from None
    net = (await api(request).post("network", "/v2.0/networks", {"network": body}))["network"]
    session(request).flash("success", f"Created network {net['name']}.")
    raise redirect("/admin/networks/")


PAGES = [
    Page("GET", BASE, index),
    Page("POST", BASE + "create/", create),
    Page("GET", BASE + "{network_id}/", detail),
    Page("POST", BASE + "{network_id}/subnets/", add_subnet),
    Page("POST", BASE + "{network_id}/delete/", delete),
    Page("POST", BASE + "subnets/{subnet_id}/delete/", delete_subnet),
    Page("GET", "/admin/networks/", admin_index, admin=True),
    Page("POST", "/admin/networks/create/", admin_create, admin=True),
]
