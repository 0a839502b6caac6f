"""Project > Network > Routers: create (with the external gateway), gateway set and clear, interfaces."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tinystack.dashboard.views.common import gather, list_all
from tinystack.dashboard.web import Page, api, back, form, redirect, render, required, session

BASE = "/project/routers/"


async def _external(request: web.Request) -> list[dict[str, Any]]:
    return await list_all(api(request), "network", "/v2.0/networks", "networks", {"router:external": "true"}, paged=False)


async def index(request: web.Request) -> web.StreamResponse:
    routers, external = await gather(list_all(api(request), "network", "/v2.0/routers", "routers", paged=False),
                                     _external(request))
    names = {n["id"]: n.get("name") or n["id"] for n in external}
    return render(request, "routers.html", title="Routers", external=external, names=names,
                  routers=sorted(routers, key=lambda r: (r.get("name") or "", r["id"])))


async def create(request: web.Request) -> web.StreamResponse:
    fields = await form(request)
    required(fields, "name")
    body: dict[str, Any] = {"name": fields["name"].strip(), "admin_state_up": True}
    if fields.get("external_network", "").strip():
        body["external_gateway_info"] = {"network_id": fields["external_network"].strip()}
    router = (await api(request).post("network", "/v2.0/routers", {"router": body}))["router"]
    session(request).flash("success", f"Created router {router['name']}.")
    raise redirect(f"{BASE}{router['id']}/")


async def detail(request: web.Request) -> web.StreamResponse:
    a = api(request)
    rid = request.match_info["router_id"]
    router, ports, subnets, external = await gather(
        a.get("network", f"/v2.0/routers/{rid}"),
        list_all(a, "network", "/v2.0/ports", "ports", {"device_id": rid}, paged=False),
        list_all(a, "network", "/v2.0/subnets", "subnets", paged=False), _external(request))
    names = {s["id"]: f"{s.get('name') or s['id']} ({s['cidr']})" for s in subnets}
    context = {"router": router["router"], "ports": ports, "subnets": subnets, "subnet_names": names,
               "external": external, "title": router["router"].get("name") or rid}
    if request.query.get("partial") == "ports":
        return render(request, "router_ports.html", partial=True, **context)
    return render(request, "router_detail.html", **context)


async def add_interface(request: web.Request) -> web.StreamResponse:
    fields = await form(request)
    rid = request.match_info["router_id"]
    required(fields, "subnet")
    body: dict[str, Any] = {"subnet_id": fields["subnet"]}
    if fields.get("ip_address", "").strip():
        # A chosen address: a port with that address on the subnet, then the port as the interface.
        subnet = (await api(request).get("network", f"/v2.0/subnets/{fields['subnet']}"))["subnet"]
        port = (await api(request).post("network", "/v2.0/ports", {"port": {
            "network_id": subnet["network_id"],
            "fixed_ips": [{"subnet_id": subnet["id"], "ip_address": fields["ip_address"].strip()}]}}))["port"]
        body = {"port_id": port["id"]}
    await api(request).put("network", f"/v2.0/routers/{rid}/add_router_interface", body)
    session(request).flash("success", "Added interface.")
    raise redirect(f"{BASE}{rid}/")


async def remove_interface(request: web.Request) -> web.StreamResponse:
    fields = await form(request)
    rid = request.match_info["router_id"]
    required(fields, "port")
    await api(request).put("network", f"/v2.0/routers/{rid}/remove_router_interface", {"port_id": fields["port"]})
    session(request).flash("success", "Removed interface.")
    raise redirect(f"{BASE}{rid}/")


async def gateway(request: web.Request) -> web.StreamResponse:
    fields = await form(request)
    rid = request.match_info["router_id"]
    info: dict[str, Any] = {"network_id": fields["external_network"]} if fields.get("external_network") else {}
    await api(request).put("network", f"/v2.0/routers/{rid}", {"router": {"external_gateway_info": info}})
    session(request).flash("success", "Set gateway." if info else "Cleared gateway.")
    raise redirect(back(request, f"{BASE}{rid}/"))


async def delete(request: web.Request) -> web.StreamResponse:
    await form(request)
    rid = request.match_info["router_id"]
    await api(request).delete("network", f"/v2.0/routers/{rid}")
    session(request).flash("success", f"Deleted router {rid}.")
    raise redirect(back(request, BASE))


PAGES = [
    Page("GET", BASE, index),
    Page("POST", BASE + "create/", create),
    Page("GET", BASE + "{router_id}/", detail),
    Page("POST", BASE + "{router_id}/interfaces/", add_interface),
    Page("POST", BASE + "{router_id}/interfaces/remove/", remove_interface),
    Page("POST", BASE + "{router_id}/gateway/", gateway),
    Page("POST", BASE + "{router_id}/delete/", delete),
]
