"""Project > Volumes > Volumes and Snapshots: create, extend, attach and detach, snapshot, delete; rows in a
changing state refresh themselves."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from tinystack.dashboard.views.common import SETTLED_VOLUME, cached, gather, list_all, optional, page_of
from tinystack.dashboard.web import FormError, Page, api, back, form, redirect, render, required, session

BASE = "/project/volumes/"
SNAPS = "/project/snapshots/"


# The reverse of Cinder's default order (newest first, id breaking ties), for paging backwards.
REVERSE = {"sort": "created_at:asc,id:asc"}


async def _data(request: web.Request) -> dict[str, Any]:
    """One page of volumes (newest first), with the names of only the instances they are attached to."""
    a = api(request)
    page = await page_of(a, "volume", "/volumes/detail", "volumes", request, {}, REVERSE)
    attached = sorted({att["server_id"] for v in page.items for att in v.get("attachments") or []})
    found = await gather(*(optional(a.get("compute", f"/servers/{sid}"), {}) for sid in attached))
    names = {sid: (body.get("server") or {}).get("name") or sid for sid, body in zip(attached, found, strict=True)}
    here = urlencode({k: v for k, v in request.query.items() if k in ("marker", "prev_marker")})
    return {"volumes": page.items, "server_names": names, "page": page, "here": here,
            "busy": any(v.get("status") not in SETTLED_VOLUME for v in page.items)}


async def index(request: web.Request) -> web.StreamResponse:
    data = await _data(request)
    if request.headers.get("X-Partial") or request.query.get("partial"):
        return render(request, "volumes_rows.html", partial=True, **data)
    a, sess = api(request), session(request)
    # What the Create Volume form offers: sources that can be used now, and the volume types.
    images, snapshots, sources, types, transfers = await gather(
        cached(sess, "active_images", lambda: optional(list_all(a, "image", "/v2/images", "images",
                                                                 {"status": "active"}), [])),
        list_all(a, "volume", "/snapshots", "snapshots", {"status": "available"}),
        list_all(a, "volume", "/volumes", "volumes", {"status": "available"}),
        cached(sess, "volume_types", lambda: optional(list_all(a, "volume", "/types", "volume_types", paged=False), [])),
        optional(a.get("volume", "/volume-transfers"), {"transfers": []}))
    return render(request, "volumes.html", title="Volumes", images=images, snapshots=snapshots, sources=sources,
                  types=types, transfers=transfers["transfers"], **data)


async def create(request: web.Request) -> web.StreamResponse:
    fields = await form(request)
    required(fields, "size")
    body: dict[str, Any] = {"name": fields.get("name", "").strip(), "size": _int(fields["size"], "Size")}
    if fields.get("description", "").strip():
        body["description"] = fields["description"].strip()
    source = fields.get("source", "")
    for kind, key in (("image", "imageRef"), ("snapshot", "snapshot_id"), ("volume", "source_volid")):
        if source == kind:
            body[key] = fields.get(f"{kind}_id", "").strip() or _missing(kind)
    if fields.get("volume_type", "").strip():
        body["volume_type"] = fields["volume_type"].strip()
    vol = (await api(request).post("volume", "/volumes", {"volume": body}))["volume"]
    session(request).flash("success", f"Creating volume {vol.get('name') or vol['id']}.")
    raise redirect(back(request, BASE))


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise FormError(f"{what} must be a whole number.") from None


def _missing(kind: str) -> str:
    raise FormError(f"Choose a {kind} as the volume source.")


async def detail(request: web.Request) -> web.StreamResponse:
    vid = request.match_info["volume_id"]
    a = api(request)
    vol, servers = await gather(a.get("volume", f"/volumes/{vid}"), list_all(a, "compute", "/servers", "servers"))
    volume = vol["volume"]
    names = {s["id"]: s.get("name") or s["id"] for s in servers}
    context = {"v": volume, "server_names": names, "servers": servers, "settled": volume["status"] in SETTLED_VOLUME,
               "title": volume.get("name") or vid}
    if request.query.get("partial"):
        return render(request, "volume_status.html", partial=True, **context)
    return render(request, "volume_detail.html", **context)


async def action(request: web.Request) -> web.StreamResponse:
    fields = await form(request)
    vid = request.match_info["volume_id"]
    a, name = api(request), fields.get("action", "")
    if name == "extend":
        new_size = _int(fields.get("new_size", ""), "New size")
        await a.post("volume", f"/volumes/{vid}/action", {"os-extend": {"new_size": new_size}})
    elif name == "attach":
        required(fields, "instance")
        await a.post("compute", f"/servers/{fields['instance']}/os-volume_attachments", {"volumeAttachment": {"volumeId": vid}})
    elif name == "detach":
        required(fields, "instance")
        await a.delete("compute", f"/servers/{fields['instance']}/os-volume_attachments/{vid}")
    elif name == "snapshot":
        body = {"snapshot": {"volume_id": vid, "name": fields.get("snapshot_name", "").strip(),
                             "force": fields.get("force") == "on"}}
        await a.post("volume", "/snapshots", body)
    elif name == "upload_image":
        await a.post("volume", f"/volumes/{vid}/action", {"os-volume_upload_image": upload_image_body(fields)})
    elif name == "delete":
        await a.delete("volume", f"/volumes/{vid}")
    elif name == "update":
        # Horizon's Edit Volume: name, description and the bootable flag (an action of its own in Cinder).
        edit = {"name": fields.get("name", "").strip(), "description": fields.get("description", "").strip()}
        await a.put("volume", f"/volumes/{vid}", {"volume": edit})
        if fields.get("bootable") in ("on", "off"):
            await a.post("volume", f"/volumes/{vid}/action", {"os-set_bootable": {"bootable": fields["bootable"] == "on"}})
    else:
        raise FormError(f"Unknown action {name!r}.")
    session(request).flash("success", f"{name.capitalize()}: request sent for volume {vid}.")
    raise redirect(back(request, BASE if name == "delete" else f"{BASE}{vid}/"))


DISK_FORMATS = ("raw", "qcow2", "vmdk", "vdi", "vhd", "vhdx")


def upload_image_body(fields: dict[str, str]) -> dict[str, Any]:
    """Upload to Image: the new image's name and disk format (Horizon's choices), and force for an in-use volume."""
    required(fields, "image_name")
    disk_format = fields.get("disk_format", "raw")
    if disk_format not in DISK_FORMATS:
        raise FormError(f"Unknown disk format {disk_format!r}.")
    return {"image_name": fields["image_name"].strip(), "disk_format": disk_format, "container_format": "bare",
            "force": fields.get("force") == "on"}


async def snapshots(request: web.Request) -> web.StreamResponse:
    a = api(request)
    snaps, volumes = await gather(list_all(a, "volume", "/snapshots/detail", "snapshots"),
                                  list_all(a, "volume", "/volumes", "volumes"))
    names = {v["id"]: v.get("name") or v["id"] for v in volumes}
    busy = any(s.get("status") not in ("available", "error") for s in snaps)
    return render(request, "snapshots.html", title="Volume Snapshots", snapshots=snaps, volume_names=names, busy=busy)


async def delete_snapshot(request: web.Request) -> web.StreamResponse:
    await form(request)
    await api(request).delete("volume", f"/snapshots/{request.match_info['snapshot_id']}")
    session(request).flash("success", "Deleting snapshot.")
    raise redirect(back(request, SNAPS))


PAGES = [
    Page("GET", BASE, index),
    Page("POST", BASE + "create/", create),
    Page("GET", BASE + "{volume_id}/", detail),
    Page("POST", BASE + "{volume_id}/action", action),
    Page("GET", SNAPS, snapshots),
    Page("POST", SNAPS + "{snapshot_id}/delete/", delete_snapshot),
]
