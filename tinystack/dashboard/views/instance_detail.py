"""One instance: the Overview, Interfaces, Log, Console and Action Log tabs, and the forms of its actions."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tinystack.dashboard.client import ApiError
from tinystack.dashboard.views.common import addresses, gather, list_all, optional, server_settled
from tinystack.dashboard.views.launch import free_ports
from tinystack.dashboard.web import Page, api, render

TABS = [("overview", "Overview"), ("interfaces", "Interfaces"), ("log", "Log"), ("console", "Console"),
        ("action_log", "Action Log")]


async def _server(request: web.Request, server_id: str) -> dict[str, Any]:
    server: dict[str, Any] = (await api(request).get("compute", f"/servers/{server_id}"))["server"]
    server["settled"] = server_settled(server)
    server["address_list"] = addresses(server)
    return server


async def detail(request: web.Request) -> web.StreamResponse:
    server_id = request.match_info["server_id"]
    tab = request.query.get("tab", "overview")
    if tab not in dict(TABS):
        tab = "overview"
    a = api(request)
    server = await _server(request, server_id)
    context: dict[str, Any] = {"server": server, "tab": tab, "tabs": TABS, "title": server.get("name") or server_id}
    if request.query.get("partial") == "status":
        return render(request, "instance_status.html", partial=True, **context)
    if tab == "overview":
        context.update(await _overview(request, server))
    elif tab == "interfaces":
        context["interfaces"] = (await a.get("compute", f"/servers/{server_id}/os-interface"))["interfaceAttachments"]
    elif tab == "log":
        try:
            length = int(request.query.get("length", "35"))
        except ValueError:
            length = 35
        try:
            out = await a.post("compute", f"/servers/{server_id}/action", {"os-getConsoleOutput": {"length": length}})
            context["log"] = out.get("output", "")
        except ApiError as exc:
            context["log_error"] = exc.message
    elif tab == "console":
        try:
            body = {"remote_console": {"protocol": "vnc", "type": "novnc"}}
            out = await a.call("POST", "compute", f"/servers/{server_id}/remote-consoles", body=body,
                               headers={"OpenStack-API-Version": "compute 2.6", "X-OpenStack-Nova-API-Version": "2.6"})
            context["console_url"] = out[2]["remote_console"]["url"]
        except ApiError as exc:
            context["console_error"] = exc.message
    elif tab == "action_log":
        context["actions"] = (await a.get("compute", f"/servers/{server_id}/os-instance-actions"))["instanceActions"]
    return render(request, "instance_detail.html", **context)


async def _overview(request: web.Request, server: dict[str, Any]) -> dict[str, Any]:
    a = api(request)
    image_id = (server.get("image") or {}).get("id")
    attached = [v["id"] for v in server.get("os-extended-volumes:volumes_attached", [])]
    volumes, fips, flavors, images, ports, networks, project_ports = await gather(
        optional(list_all(a, "volume", "/volumes/detail", "volumes", paged=False), []),
        optional(list_all(a, "network", "/v2.0/floatingips", "floatingips", paged=False), []),
        optional(list_all(a, "compute", "/flavors/detail", "flavors", paged=False), []),
        optional(list_all(a, "image", "/v2/images", "images"), []),
        optional(list_all(a, "network", "/v2.0/ports", "ports", {"device_id": server["id"]}, paged=False), []),
        optional(list_all(a, "network", "/v2.0/networks", "networks", paged=False), []),
        optional(list_all(a, "network", "/v2.0/ports", "ports", {"project_id": server.get("tenant_id", "")},
                          paged=False), []))
    image_name = next((i.get("name") for i in images if i["id"] == image_id), image_id) if image_id else "(boot volume)"
    port_ids = {p["id"] for p in ports}
    server_fips = [f for f in fips if f.get("port_id") in port_ids]
    # The network API knows an association at once; the server's own addresses follow a moment later.
    shown = {a.split()[0] for a in server["address_list"]}
    server["address_list"] += [f"{f['floating_ip_address']} (floating)" for f in server_fips
                               if f["floating_ip_address"] not in shown]
    return {
        "image_name": image_name,
        "attached": [v for v in volumes if v["id"] in attached] or [{"id": v, "name": v, "size": "?"} for v in attached],
        "free_volumes": [v for v in volumes if v.get("status") == "available"],
        "free_fips": [f for f in fips if not f.get("port_id")],
        "server_fips": server_fips,
        "flavors": flavors,
        "images": [i for i in images if i.get("status") == "active"],
        # Attach / Detach Interface: the networks a port may be made on, the project's unbound ports, and the
        # instance's own ports by name and address.
        "networks": sorted((n for n in networks if not n.get("router:external")), key=lambda n: n.get("name") or ""),
        "free_ports": free_ports(project_ports),
        "ports": sorted(ports, key=lambda p: p.get("name") or p["id"]),
    }


PAGES = [Page("GET", "/project/instances/{server_id}/", detail)]
