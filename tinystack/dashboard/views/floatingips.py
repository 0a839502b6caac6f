"""Project > Network > Floating IPs: allocate from an external pool, associate with an instance's port,
disassociate, release."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tinystack.dashboard.views.common import gather, list_all
from tinystack.dashboard.web import Page, api, back, form, redirect, render, required, session

BASE = "/project/floating_ips/"


async def index(request: web.Request) -> web.StreamResponse:
    a = api(request)
    fips, pools, ports, servers = await gather(
        list_all(a, "network", "/v2.0/floatingips", "floatingips", paged=False),
        list_all(a, "network", "/v2.0/networks", "networks", {"router:external": "true"}, paged=False),
        list_all(a, "network", "/v2.0/ports", "ports", {"device_owner": "compute:nova"}, paged=False),
        list_all(a, "compute", "/servers", "servers"))
    server_names = {s["id"]: s.get("name") or s["id"] for s in servers}
    targets: list[dict[str, Any]] = []
    for p in ports:
        for ip in p.get("fixed_ips", []):
            if ":" not in ip["ip_address"]:
                targets.append({"port": p["id"], "label": f"{server_names.get(p.get('device_id', ''), p.get('device_id'))}: "
                                                         f"{ip['ip_address']}"})
    owners = {p["id"]: server_names.get(p.get("device_id", ""), p.get("device_id", "")) for p in ports}
    pool_names = {n["id"]: n.get("name") or n["id"] for n in pools}
    return render(request, "floatingips.html", title="Floating IPs", fips=fips, pools=pools, targets=targets,
                  owners=owners, pool_names=pool_names)


async def allocate(request: web.Request) -> web.StreamResponse:
    fields = await form(request)
    required(fields, "pool")
    body: dict[str, Any] = {"floating_network_id": fields["pool"]}
    if fields.get("description", "").strip():
        body["description"] = fields["description"].strip()
    fip = (await api(request).post("network", "/v2.0/floatingips", {"floatingip": body}))["floatingip"]
    session(request).flash("success", f"Allocated floating IP {fip['floating_ip_address']}.")
    raise redirect(back(request, BASE))


async def associate(request: web.Request) -> web.StreamResponse:
    fields = await form(request)
    required(fields, "port")
    fid = request.match_info["fip_id"]
    await api(request).put("network", f"/v2.0/floatingips/{fid}", {"floatingip": {"port_id": fields["port"]}})
    session(request).flash("success", "Associated floating IP.")
    raise redirect(back(request, BASE))


async def disassociate(request: web.Request) -> web.StreamResponse:
    await form(request)
    fid = request.match_info["fip_id"]
    await api(request).put("network", f"/v2.0/floatingips/{fid}", {"floatingip": {"port_id": None}})
    session(request).flash("success", "Disassociated floating IP.")
    raise redirect(back(request, BASE))


async def release(request: web.Request) -> web.StreamResponse:
    await form(request)
    await api(request).delete("network", f"/v2.0/floatingips/{request.match_info['fip_id']}")
    session(request).flash("success", "Released floating IP.")
    raise redirect(back(request, BASE))


PAGES = [
    Page("GET", BASE, index),
    Page("POST", BASE + "allocate/", allocate),
    Page("POST", BASE + "{fip_id}/associate/", associate),
    Page("POST", BASE + "{fip_id}/disassociate/", disassociate),
    Page("POST", BASE + "{fip_id}/release/", release),
]
