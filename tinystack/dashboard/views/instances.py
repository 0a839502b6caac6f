"""Project > Compute > Instances: the list (refreshing while any instance changes state) and its actions."""

from __future__ import annotations

from typing import Any, NamedTuple
from urllib.parse import urlencode

from aiohttp import web

from tinystack.dashboard.client import ApiError
from tinystack.dashboard.views.common import (
    addresses,
    by_id,
    cached,
    gather,
    image_names,
    list_all,
    optional,
    page_of,
    server_settled,
)
from tinystack.dashboard.web import FormError, Page, api, back, form, redirect, render, session

BASE = "/project/instances/"

class Row(NamedTuple):
    """One instance as the list shows it."""

    id: str
    name: str
    status: str
    css: str
    task: str
    power: str
    image: str
    flavor: str
    key_name: str
    ips: str
    project: str
    host: str
    settled: bool


POWER_STATES = {0: "NOSTATE", 1: "Running", 3: "Paused", 4: "Shut Down", 6: "Crashed", 7: "Suspended"}
# Action name -> the body of POST /servers/{id}/action (or None for those that need a form's value).
SIMPLE_ACTIONS: dict[str, dict[str, Any]] = {
    "start": {"os-start": None}, "stop": {"os-stop": None},
    "reboot": {"reboot": {"type": "SOFT"}}, "hard_reboot": {"reboot": {"type": "HARD"}},
    "pause": {"pause": None}, "unpause": {"unpause": None},
    "suspend": {"suspend": None}, "resume": {"resume": None},
    "lock": {"lock": None}, "unlock": {"unlock": None},
    "confirm_resize": {"confirmResize": None}, "revert_resize": {"revertResize": None},
    "shelve": {"shelve": None}, "unshelve": {"unshelve": None},
    "unrescue": {"unrescue": None},
}


# The reverse of Nova's default order (newest first, id breaking ties), for paging backwards.
REVERSE = {"sort_key": "created_at", "sort_dir": "asc"}


async def _rows(request: web.Request, all_projects: bool = False) -> dict[str, Any]:
    """One page of instances, in the API's order (newest first) as Horizon shows them."""
    a, sess = api(request), session(request)
    params = {"all_tenants": "1"} if all_projects else {}
    page, names = await gather(page_of(a, "compute", "/servers/detail", "servers", request, params, REVERSE),
                               image_names(a, sess))
    rows = []
    for s in page.items:
        # Plain strings, ready to print, in a tuple whose fields the template reads directly.
        image = s.get("image") or {}
        status = s.get("status", "")
        rows.append(Row(s["id"], s.get("name", ""), status, status.lower(), s.get("OS-EXT-STS:task_state") or "None",
                        POWER_STATES.get(s.get("OS-EXT-STS:power_state"), "NOSTATE"),
                        names.get(image.get("id", ""), image.get("id", "")) if image else "(volume)",
                        (s.get("flavor") or {}).get("original_name", ""), s.get("key_name") or "",
                        ", ".join(addresses(s)), s.get("tenant_id", ""), s.get("OS-EXT-SRV-ATTR:host") or "",
                        server_settled(s)))
    # The rows refresh themselves while one changes state: the refresh asks for this same page.
    here = urlencode({k: v for k, v in request.query.items() if k in ("marker", "prev_marker")})
    return {"rows": rows, "busy": not all(r.settled for r in rows), "page": page, "here": here}


async def index(request: web.Request) -> web.StreamResponse:
    data = await _rows(request)
    if request.headers.get("X-Partial") or request.query.get("partial"):
        return render(request, "instances_rows.html", partial=True, **data)
    return render(request, "instances.html", title="Instances", **data)


async def action(request: web.Request) -> web.StreamResponse:
    server_id = request.match_info["server_id"]
    fields = await form(request)
    name = fields.get("action", "")
    a, sess = api(request), session(request)
    path = f"/servers/{server_id}"
    if name in SIMPLE_ACTIONS:
        await a.post("compute", f"{path}/action", SIMPLE_ACTIONS[name])
    elif name == "delete":
        await a.delete("compute", path)
    elif name == "update":
        # Horizon's Edit Instance: the name and description (the description since compute 2.19).
        body = {"name": _need(fields, "name"), "description": fields.get("description", "").strip() or None}
        await a.put("compute", path, {"server": body})
    elif name == "resize":
        await a.post("compute", f"{path}/action", {"resize": {"flavorRef": _need(fields, "flavor")}})
    elif name == "rebuild":
        await a.post("compute", f"{path}/action", {"rebuild": {"imageRef": _need(fields, "image")}})
    elif name == "snapshot":
        await a.post("compute", f"{path}/action", {"createImage": {"name": _need(fields, "snapshot_name")}})
    elif name == "attach_volume":
        await a.post("compute", f"{path}/os-volume_attachments", {"volumeAttachment": {"volumeId": _need(fields, "volume")}})
    elif name == "detach_volume":
        await a.delete("compute", f"{path}/os-volume_attachments/{_need(fields, 'volume')}")
    elif name == "attach_interface":
        await a.post("compute", f"{path}/os-interface", {"interfaceAttachment": interface_body(fields)})
    elif name == "detach_interface":
        await a.delete("compute", f"{path}/os-interface/{_need(fields, 'port')}")
    elif name == "rescue":
        rescue = rescue_body(fields)
        if "rescue_image_ref" in rescue:
            # The image must be one this project sees and may boot: Glance's 404 for another's private image.
            image = await a.get("image", f"/v2/images/{rescue['rescue_image_ref']}")
            if image.get("status") != "active":
                raise FormError(f"Image {image.get('name') or image['id']} is {image.get('status')}, not active.")
        await a.post("compute", f"{path}/action", {"rescue": rescue})
    elif name == "associate_fip":
        await _associate(request, server_id, _need(fields, "floating_ip"), fields.get("port", ""))
    elif name == "disassociate_fip":
        await a.put("network", f"/v2.0/floatingips/{_need(fields, 'floating_ip')}", {"floatingip": {"port_id": None}})
    else:
        raise FormError(f"Unknown action {name!r}.")
    sess.flash("success", f"{name.replace('_', ' ').capitalize()}: request sent for instance {server_id}.")
    # A deleted instance's page is gone: back to the list whatever the form said.
    raise redirect(BASE if name == "delete" else back(request, f"{BASE}{server_id}/"))


def interface_body(fields: dict[str, str]) -> dict[str, Any]:
    """Horizon's Attach Interface: by network (a new port on it, with a fixed IP if one is given) or by an
    existing port, never both."""
    by = fields.get("specification", "network")
    if by == "network":
        body: dict[str, Any] = {"net_id": _need(fields, "network")}
        if fields.get("fixed_ip", "").strip():
            body["fixed_ips"] = [{"ip_address": fields["fixed_ip"].strip()}]
        return body
    if by == "port":
        return {"port_id": _need(fields, "port")}
    raise FormError(f"Unknown interface specification {by!r}.")


def rescue_body(fields: dict[str, str]) -> dict[str, str]:
    """Horizon's Rescue Instance: an image to boot from (else the instance's own) and an optional password."""
    body = {}
    if fields.get("image", "").strip():
        body["rescue_image_ref"] = fields["image"].strip()
    if fields.get("password", ""):
        body["adminPass"] = fields["password"]
    return body


def _need(fields: dict[str, str], name: str) -> str:
    value = fields.get(name, "").strip()
    if not value:
        raise FormError(f"Choose a {name.replace('_', ' ')}.")
    return value


async def _associate(request: web.Request, server_id: str, fip_id: str, port_id: str) -> None:
    a = api(request)
    if not port_id:
        ports = (await a.get("network", "/v2.0/ports", {"device_id": server_id}))["ports"]
        if not ports:
            raise ApiError(409, f"Instance {server_id} has no port to associate a floating IP with.")
        port_id = ports[0]["id"]
    await a.put("network", f"/v2.0/floatingips/{fip_id}", {"floatingip": {"port_id": port_id}})


async def admin_index(request: web.Request) -> web.StreamResponse:
    data, projects = await gather(_rows(request, all_projects=True),
                                  cached(session(request), "project_names", lambda: optional(
                                      list_all(api(request), "identity", "/projects", "projects", paged=False), [])))
    names = {p: v.get("name", p) for p, v in by_id(projects).items()}
    return render(request, "admin_instances.html", title="All Instances", project_names=names, **data)


PAGES = [
    Page("GET", BASE, index),
    Page("POST", BASE + "{server_id}/action", action),
    Page("GET", "/admin/instances/", admin_index, admin=True),
]
