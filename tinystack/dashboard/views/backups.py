"""Project > Volumes > Backups (create from a volume, restore to a new or an existing volume, delete; rows in a
changing state refresh themselves) and volume transfers (create, showing the authorization key once; accept;
cancel), through the block-storage API."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tinystack.dashboard.views.common import gather, list_all
from tinystack.dashboard.web import FormError, Page, api, back, form, redirect, render, required, session

BASE = "/project/backups/"
VOLUMES = "/project/volumes/"
SETTLED_BACKUP = frozenset({"available", "error", "error_deleting", "error_restoring"})


async def _rows(request: web.Request) -> dict[str, Any]:
    a = api(request)
    backups, volumes = await gather(list_all(a, "volume", "/backups/detail", "backups"),
                                    list_all(a, "volume", "/volumes", "volumes"))
    return {"backups": backups, "volumes": volumes,
            "volume_names": {v["id"]: v.get("name") or v["id"] for v in volumes},
            "busy": any(b.get("status") not in SETTLED_BACKUP for b in backups)}


async def index(request: web.Request) -> web.StreamResponse:
    data = await _rows(request)
    if request.headers.get("X-Partial") or request.query.get("partial"):
        return render(request, "backups_rows.html", partial=True, **data)
    return render(request, "backups.html", title="Volume Backups", **data)


def backup_body(fields: dict[str, str]) -> dict[str, Any]:
    """Create Volume Backup's request: the volume, a name, and Cinder's incremental and force flags."""
    required(fields, "volume_id")
    body: dict[str, Any] = {"volume_id": fields["volume_id"].strip(), "name": fields.get("name", "").strip() or None,
                            "incremental": fields.get("incremental") == "on", "force": fields.get("force") == "on"}
    if fields.get("description", "").strip():
        body["description"] = fields["description"].strip()
    if fields.get("container", "").strip():
        body["container"] = fields["container"].strip()
    return body


async def create(request: web.Request) -> web.StreamResponse:
    fields = await form(request)
    backup = (await api(request).post("volume", "/backups", {"backup": backup_body(fields)}))["backup"]
    session(request).flash("success", f"Creating volume backup {backup.get('name') or backup['id']}.")
    raise redirect(back(request, BASE))


async def restore(request: web.Request) -> web.StreamResponse:
    """Restore Backup: to an existing volume (as big as the backup at least) or, with none chosen, a new one."""
    fields = await form(request)
    body: dict[str, Any] = {}
    if fields.get("volume_id", "").strip():
        body["volume_id"] = fields["volume_id"].strip()
    elif fields.get("name", "").strip():
        body["name"] = fields["name"].strip()
    out = (await api(request).post("volume", f"/backups/{request.match_info['backup_id']}/restore",
                                   {"restore": body}))["restore"]
    session(request).flash("success", f"Restoring backup to volume {out.get('volume_name') or out.get('volume_id')}.")
    raise redirect(back(request, VOLUMES))


async def delete(request: web.Request) -> web.StreamResponse:
    await form(request)
    await api(request).delete("volume", f"/backups/{request.match_info['backup_id']}")
    session(request).flash("success", "Deleting volume backup.")
    raise redirect(back(request, BASE))


# --- volume transfers ---------------------------------------------------------------------------------------

async def create_transfer(request: web.Request) -> web.StreamResponse:
    """Create Transfer: the answer's authorization key is shown on this one page and kept nowhere."""
    fields = await form(request)
    vid = request.match_info["volume_id"]
    required(fields, "name")
    transfer = (await api(request).post("volume", "/volume-transfers",
                                        {"transfer": {"volume_id": vid, "name": fields["name"].strip()}}))["transfer"]
    return render(request, "transfer_created.html", title="Volume Transfer", transfer=transfer)


async def accept_transfer(request: web.Request) -> web.StreamResponse:
    fields = await form(request)
    required(fields, "transfer_id", "auth_key")
    tid = fields["transfer_id"].strip()
    if "/" in tid:
        raise FormError("Transfer ID is not valid.")
    out = (await api(request).post("volume", f"/volume-transfers/{tid}/accept",
                                   {"accept": {"auth_key": fields["auth_key"].strip()}}))["transfer"]
    session(request).flash("success", f"Accepted volume transfer: volume {out.get('volume_id')} is now in this project.")
    raise redirect(VOLUMES)


async def delete_transfer(request: web.Request) -> web.StreamResponse:
    await form(request)
    await api(request).delete("volume", f"/volume-transfers/{request.match_info['transfer_id']}")
    session(request).flash("success", "Cancelled the volume transfer.")
    raise redirect(back(request, VOLUMES))


PAGES = [
    Page("GET", BASE, index),
    Page("POST", BASE + "create/", create),
    Page("POST", BASE + "{backup_id}/restore/", restore),
    Page("POST", BASE + "{backup_id}/delete/", delete),
    Page("POST", VOLUMES + "{volume_id}/transfer/", create_transfer),
    Page("POST", VOLUMES + "accept_transfer/", accept_transfer),
    Page("POST", VOLUMES + "transfers/{transfer_id}/delete/", delete_transfer),
]
