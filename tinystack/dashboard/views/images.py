"""Project > Compute > Images and Admin > Compute > Images: the list, creating an image with an uploaded file,
deleting; the admin panel also sees every project's images and may make them public."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from tinystack.dashboard.views.common import forget, list_all, optional
from tinystack.dashboard.web import NEXT, FormError, Page, api, back, form, redirect, render, session

PATCH = "application/openstack-images-v2.1-json-patch"
VISIBILITIES = ["private", "shared", "community", "public"]

DISK_FORMATS = ["qcow2", "raw", "vmdk", "vdi", "iso", "vhd", "ami", "ari", "aki"]


async def index(request: web.Request) -> web.StreamResponse:
    admin = request.path.startswith("/admin/")
    a = api(request)
    images = await list_all(a, "image", "/v2/images", "images")
    projects = await optional(list_all(a, "identity", "/projects", "projects", paged=False), []) if admin else []
    owners = {p["id"]: p["name"] for p in projects}
    images.sort(key=lambda i: (i.get("name") or "", i["id"]))
    return render(request, "images.html", title="Images", images=images, admin=admin, owners=owners,
                  disk_formats=DISK_FORMATS)


async def create(request: web.Request) -> web.StreamResponse:
    """Creates the image record, then uploads the chosen file into it (a form of ``multipart/form-data``)."""
    data = await request.post()
    fields = {k: v for k, v in data.items() if isinstance(v, str)}
    request[NEXT] = fields.get("next", "")
    image = await _create_record(request, fields)
    upload = data.get("image_file")
    if isinstance(upload, web.FileField) and upload.filename:
        await api(request).call("PUT", "image", f"/v2/images/{image['id']}/file", raw=await asyncio.to_thread(upload.file.read),
                                headers={"Content-Type": "application/octet-stream"})
    session(request).flash("success", f"Created image {image.get('name') or image['id']}.")
    raise redirect(back(request, "/project/images/"))


async def _create_record(request: web.Request, fields: dict[str, str]) -> dict[str, Any]:
    if not fields.get("name", "").strip():
        raise FormError("Image Name is required.")
    body: dict[str, Any] = {"name": fields["name"].strip(), "disk_format": fields.get("disk_format") or "raw",
                            "container_format": fields.get("container_format") or "bare",
                            "visibility": fields.get("visibility") or "private"}
    for key in ("min_disk", "min_ram"):
        if fields.get(key, "").strip():
            try:
                body[key] = int(fields[key])
            except ValueError:
                raise FormError(f"{key} must be a whole number.") from None
    if fields.get("protected") == "on":
        body["protected"] = True
    result: dict[str, Any] = await api(request).post("image", "/v2/images", body)
    forget(session(request), "image_names", "active_images")
    return result


async def detail(request: web.Request) -> web.StreamResponse:
    """One image's details with Horizon's Edit Image form."""
    image = await api(request).get("image", f"/v2/images/{request.match_info['image_id']}")
    return render(request, "image_detail.html", title=image.get("name") or image["id"], image=image,
                  visibilities=VISIBILITIES, admin=session(request).is_admin)


def image_patch(image: dict[str, Any], fields: dict[str, str]) -> list[dict[str, Any]]:
    """The JSON patch (Glance's v2.1 media type) that turns ``image`` into what the edit form says: only what
    changed, so an unchanged form patches nothing."""
    want: dict[str, Any] = {"name": fields.get("name", "").strip()}
    if not want["name"]:
        raise FormError("Image Name is required.")
    for key, label in (("min_disk", "Minimum Disk"), ("min_ram", "Minimum RAM")):
        raw = fields.get(key, "").strip() or "0"
        try:
            want[key] = int(raw)
        except ValueError:
            raise FormError(f"{label} must be a whole number.") from None
        if want[key] < 0:
            raise FormError(f"{label} must not be negative.")
    visibility = fields.get("visibility", image.get("visibility", "private"))
    if visibility not in VISIBILITIES:
        raise FormError(f"Unknown visibility {visibility!r}.")
    want["visibility"] = visibility
    want["protected"] = fields.get("protected") == "on"
    return [{"op": "replace", "path": f"/{key}", "value": value} for key, value in want.items()
            if image.get(key) != value]


async def update(request: web.Request) -> web.StreamResponse:
    image_id = request.match_info["image_id"]
    fields = await form(request)
    a = api(request)
    image = await a.get("image", f"/v2/images/{image_id}")
    ops = image_patch(image, fields)
    if ops:
        await a.patch("image", f"/v2/images/{image_id}", ops, PATCH)
    forget(session(request), "image_names", "active_images")
    session(request).flash("success", f"Updated image {fields['name'].strip()}.")
    raise redirect(back(request, f"/project/images/{image_id}/"))


async def delete(request: web.Request) -> web.StreamResponse:
    await request.post()
    await api(request).delete("image", f"/v2/images/{request.match_info['image_id']}")
    forget(session(request), "image_names", "active_images")
    session(request).flash("success", "Deleted image.")
    raise redirect(back(request, "/project/images/"))


PAGES = [
    Page("GET", "/project/images/", index),
    Page("POST", "/project/images/create/", create),
    Page("POST", "/project/images/{image_id}/delete/", delete),
    Page("GET", "/project/images/{image_id}/", detail),
    Page("POST", "/project/images/{image_id}/update/", update),
    Page("GET", "/admin/images/", index, admin=True),
]
