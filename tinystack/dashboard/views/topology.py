"""Project > Network > Network Topology: networks as vertical bars, routers and instances as boxes joined to the
networks they have ports on; an SVG drawn on the server and refreshed by the page."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tinystack.dashboard.views.common import gather, list_all
from tinystack.dashboard.web import Page, api, render

NET_GAP, ROW_GAP, TOP, BOX_W, BOX_H = 70, 54, 30, 190, 36


@dataclass
class Drawing:
    width: int
    height: int
    networks: list[dict[str, Any]] = field(default_factory=list)  # x, name, id, external, cidrs
    devices: list[dict[str, Any]] = field(default_factory=list)  # kind, name, id, status, x, y, links: [(x, ip)]


def layout(networks: list[dict[str, Any]], subnets: list[dict[str, Any]], ports: list[dict[str, Any]],
           routers: list[dict[str, Any]], servers: list[dict[str, Any]]) -> Drawing:
    nets = sorted(networks, key=lambda n: (not n.get("router:external"), n.get("name") or "", n["id"]))
    xs = {n["id"]: 40 + i * NET_GAP for i, n in enumerate(nets)}
    cidrs: dict[str, list[str]] = {}
    for s in subnets:
        cidrs.setdefault(s["network_id"], []).append(s["cidr"])
    links: dict[str, list[tuple[int, str, str]]] = {}
    for p in ports:
        if p.get("network_id") in xs and p.get("device_id"):
            ip = " ".join(f["ip_address"] for f in p.get("fixed_ips", []))
            links.setdefault(p["device_id"], []).append((xs[p["network_id"]], ip, p.get("status", "")))
    box_x = 40 + len(nets) * NET_GAP
    devices = []
    things = [("router", r) for r in sorted(routers, key=lambda r: r.get("name") or "")] + \
             [("instance", s) for s in sorted(servers, key=lambda s: s.get("name") or "")]
    for row, (kind, item) in enumerate(things):
        devices.append({"kind": kind, "id": item["id"], "name": item.get("name") or item["id"][:8],
                        "status": item.get("status", ""), "x": box_x, "y": TOP + 20 + row * ROW_GAP,
                        "links": sorted(links.get(item["id"], []))})
    height = max(TOP + 40 + len(things) * ROW_GAP, 200)
    drawn = [{"id": n["id"], "name": n.get("name") or n["id"][:8], "x": xs[n["id"]],
              "external": bool(n.get("router:external")), "cidrs": cidrs.get(n["id"], [])} for n in nets]
    return Drawing(box_x + BOX_W + 40, height, drawn, devices)


async def topology(request: web.Request) -> web.StreamResponse:
    a = api(request)
    networks, subnets, ports, routers, servers = await gather(
        list_all(a, "network", "/v2.0/networks", "networks", paged=False),
        list_all(a, "network", "/v2.0/subnets", "subnets", paged=False),
        list_all(a, "network", "/v2.0/ports", "ports", paged=False),
        list_all(a, "network", "/v2.0/routers", "routers", paged=False),
        list_all(a, "compute", "/servers/detail", "servers"))
    drawing = layout(networks, subnets, ports, routers, servers)
    if request.headers.get("X-Partial") or request.query.get("partial"):
        return render(request, "topology_svg.html", partial=True, d=drawing, box_w=BOX_W, box_h=BOX_H)
    return render(request, "topology.html", title="Network Topology", d=drawing, box_w=BOX_W, box_h=BOX_H)


PAGES = [Page("GET", "/project/network_topology/", topology)]
