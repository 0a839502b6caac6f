"""Project > Network > Routers: create (with the external gateway), gateway set and clear, interfaces, and static
routes."""

from __future__ import annotations

import ipaddress
from typing import Any

from aiohttp import web

from tinystack.dashboard.views.common import gather, list_all
from tinystack.dashboard.web import FormError, Page, api, back, form, redirect, render, required, session

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


def static_route(fields: dict[str, str]) -> dict[str, str]:
    """Add Static Route's fields checked: a destination CIDR and a next hop address of the same IP version."""
    required(fields, "destination", "nexthop")
    try:
        destination = ipaddress.ip_network(fields["destination"].strip(), strict=False)
    except ValueError:
        raise FormError(f"Destination CIDR {fields['destination'].strip()!r} is not a valid network.") from None
    try:
        nexthop = ipaddress.ip_address(fields["nexthop"].strip())
    except ValueError:
        raise FormError(f"Next Hop {fields['nexthop'].strip()!r} is not a valid IP address.") from None
    if destination.version != nexthop.version:
        raise FormError("Destination CIDR and Next Hop must be of the same IP version.")
    return {"destination": str(destination), "nexthop": str(nexthop)}


async def add_route(request: web.Request) -> web.StreamResponse:
    """Static routes are the router's ``routes`` list: read it, add one, write the whole list back (the API checks
    that the next hop sits on an attached subnet)."""
    fields = await form(request)
    rid = request.match_info["router_id"]
    route = static_route(fields)
    a = api(request)
    routes = list((await a.get("network", f"/v2.0/routers/{rid}"))["router"].get("routes") or [])
    if route in routes:
        raise FormError(f"The route to {route['destination']} via {route['nexthop']} is already there.")
    await a.put("network", f"/v2.0/routers/{rid}", {"router": {"routes": [*routes, route]}})
    session(request).flash("success", f"Added static route to {route['destination']} via {route['nexthop']}.")
    raise redirect(f"{BASE}{rid}/")


async def remove_route(request: web.Request) -> web.StreamResponse:
    fields = await form(request)
    rid = request.match_info["router_id"]
    route = {"destination": fields.get("destination", ""), "nexthop": fields.get("nexthop", "")}
    a = api(request)
    routes = list((await a.get("network", f"/v2.0/routers/{rid}"))["router"].get("routes") or [])
    if route not in routes:
        raise FormError(f"The router has no route to {route['destination']} via {route['nexthop']}.")
    await a.put("network", f"/v2.0/routers/{rid}", {"router": {"routes": [r for r in routes if r != route]}})
    session(request).flash("success", f"Removed static route to {route['destination']}.")
    raise redirect(f"{BASE}{rid}/")


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
    Page("POST", BASE + "{router_id}/routes/", add_route),
    Page("POST", BASE + "{router_id}/routes/remove/", remove_route),
]
