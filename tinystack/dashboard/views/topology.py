"""Project > Network > Network Topology: networks as vertical bars, routers and instances as boxes joined to the
networks they have ports on; an SVG drawn on the server and refreshed by the page."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from markupsafe import Markup, escape

from tinystack.dashboard.client import Api
from tinystack.dashboard.session import Session
from tinystack.dashboard.views.common import gather, list_all
from tinystack.dashboard.web import Page, api, render, session

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
    for r in routers:
        # A router's gateway port belongs to no project: its place comes from the router itself.
        gw = r.get("external_gateway_info") or {}
        if gw.get("network_id") in xs and not any(x == xs[gw["network_id"]] for x, _, _ in links.get(r["id"], [])):
            ips = " ".join(f["ip_address"] for f in gw.get("external_fixed_ips") or [])
            links.setdefault(r["id"], []).append((xs[gw["network_id"]], ips, r.get("status", "")))
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


def svg(d: Drawing) -> Markup:
    """The drawing as SVG, every name escaped. Built here rather than in a template: with 1,000 instances the
    template's per-element overhead was most of the page's time."""
    mid = BOX_H // 2
    out = [f'<svg class="topology" xmlns="http://www.w3.org/2000/svg" width="{d.width}" height="{d.height}" '
           f'viewBox="0 0 {d.width} {d.height}" role="img" aria-label="network topology">']
    for n in d.networks:
        label = escape(f"{n['name']} {' '.join(n['cidrs'])}")
        x, y = n["x"], d.height - 14
        out.append(f'<g class="network" data-id="{escape(n["id"])}"><title>{label}</title>'
                   f'<rect x="{x - 6}" y="10" width="12" height="{d.height - 20}" rx="4" '
                   f'fill="{"#6b8e23" if n["external"] else "#4682b4"}"/>'
                   f'<text x="{x + 9}" y="{y}" transform="rotate(-90 {x + 9} {y})">{label}</text></g>')
    for dev in d.devices:
        name, status, y = escape(dev["name"]), escape(dev["status"]), dev["y"]
        out.append(f'<g class="device {dev["kind"]}" data-id="{escape(dev["id"])}" data-status="{status}">'
                   f'<title>{dev["kind"]} {name} {status}</title>')
        for x, ip, port_status in dev["links"]:
            colour = "#2a2" if port_status == "ACTIVE" else "#c80"
            out.append(f'<line x1="{x}" y1="{y + mid}" x2="{dev["x"]}" y2="{y + mid}" stroke="{colour}" stroke-width="2"/>'
                       f'<circle cx="{x}" cy="{y + mid}" r="4" fill="#333"/>'
                       f'<text x="{x + 8}" y="{y + mid - 4}">{escape(ip)}</text>')
        kind = "Router" if dev["kind"] == "router" else "Instance"
        out.append(f'<rect x="{dev["x"]}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="5" '
                   f'fill="{"#fde9c9" if dev["kind"] == "router" else "#e8eef7"}" stroke="#555"/>'
                   f'<text x="{dev["x"] + 6}" y="{y + 15}">{kind}: {name}</text>'
                   f'<text x="{dev["x"] + 6}" y="{y + 30}" class="status">{status}</text></g>')
    out.append("</svg>")
    return Markup("".join(out))


def legend(d: Drawing) -> Markup:
    """The devices as links (what the picture shows, for reading without it)."""
    items = "".join(f'<li><a href="/project/{"routers" if dev["kind"] == "router" else "instances"}/{escape(dev["id"])}/">'
                    f'{escape(dev["name"])}</a> ({dev["kind"]}, {escape(dev["status"])})</li>' for dev in d.devices)
    return Markup(f'<ul class="topology-legend">{items}</ul>')


# The instances are listed whole at most this often; in between the page's refreshes ask only for what changed.
FULL_SECONDS = 60.0
# An incremental look starts this long before the previous one: the compute API's clock may differ from ours.
SKEW = timedelta(seconds=5)
CACHE_KEY = "topology_servers"


async def instances(a: Api, sess: Session) -> list[dict[str, Any]]:
    """The project's instances as the picture needs them (id, name, status). The page refreshes itself every few
    seconds: the first look lists every instance, later ones only those changed since the previous look
    (``changes-since``, which also answers the deleted ones, as DELETED), so a refresh costs what changed rather
    than a thousand servers' details; a whole list again every ``FULL_SECONDS`` is the safety net."""
    started = datetime.now(UTC) - SKEW
    hit = sess.cache.get(CACHE_KEY)
    if hit is None or time.monotonic() - hit[0] > FULL_SECONDS:
        full_at, known = time.monotonic(), {}
        changed = await list_all(a, "compute", "/servers/detail", "servers")
    else:
        full_at, (since, previous) = hit[0], hit[1]
        known = dict(previous)
        changed = await list_all(a, "compute", "/servers/detail", "servers",
                                 {"changes-since": since.strftime("%Y-%m-%dT%H:%M:%S.%fZ")})
    for server in changed:
        if server.get("status") == "DELETED":
            known.pop(server["id"], None)
        else:
            known[server["id"]] = {"id": server["id"], "name": server.get("name"), "status": server.get("status", "")}
    sess.cache[CACHE_KEY] = (full_at, (started, known))
    return list(known.values())


async def topology(request: web.Request) -> web.StreamResponse:
    a = api(request)
    # Only the fields the picture draws (Neutron's ``fields``): a port list is most of the network answers.
    # The instances' status is in the picture, as in Horizon's: from their details, fetched whole only now and then.
    networks, subnets, ports, routers, servers = await gather(
        list_all(a, "network", "/v2.0/networks", "networks", {"fields": "id,name,router:external"}, paged=False),
        list_all(a, "network", "/v2.0/subnets", "subnets", {"fields": "network_id,cidr"}, paged=False),
        list_all(a, "network", "/v2.0/ports", "ports", {"fields": "network_id,device_id,fixed_ips,status"}, paged=False),
        list_all(a, "network", "/v2.0/routers", "routers", {"fields": "id,name,status,external_gateway_info"},
                 paged=False),
        instances(a, session(request)))
    drawing = layout(networks, subnets, ports, routers, servers)
    if request.headers.get("X-Partial") or request.query.get("partial"):
        return render(request, "topology_svg.html", partial=True, svg=svg(drawing), legend=legend(drawing))
    return render(request, "topology.html", title="Network Topology", svg=svg(drawing),
                  legend=legend(drawing))


PAGES = [Page("GET", "/project/network_topology/", topology)]
