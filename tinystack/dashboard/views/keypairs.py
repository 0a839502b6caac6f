"""Project > Compute > Key Pairs: create (the private key is sent once, as a download, and never kept), import,
delete."""

from __future__ import annotations

from aiohttp import web

from tinystack.dashboard.views.common import list_all
from tinystack.dashboard.web import Page, api, form, redirect, render, required, session

BASE = "/project/key_pairs/"
# Server-side key generation went away in compute 2.92; the dashboard asks at a version that still has it.
GENERATE = {"OpenStack-API-Version": "compute 2.10", "X-OpenStack-Nova-API-Version": "2.10"}


async def index(request: web.Request) -> web.StreamResponse:
    keys = await list_all(api(request), "compute", "/os-keypairs", "keypairs", paged=False)
    return render(request, "keypairs.html", title="Key Pairs", keys=sorted((k["keypair"] for k in keys), key=lambda k: k["name"]))


async def create(request: web.Request) -> web.StreamResponse:
    fields = await form(request)
    required(fields, "name")
    name = fields["name"].strip()
    key = (await api(request).post("compute", "/os-keypairs", {"keypair": {"name": name}}, headers=GENERATE))["keypair"]
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return web.Response(text=key["private_key"], content_type="application/x-pem-file",
                        headers={"Content-Disposition": f'attachment; filename="{safe}.pem"'})


async def import_key(request: web.Request) -> web.StreamResponse:
    fields = await form(request)
    required(fields, "name", "public_key")
    body = {"keypair": {"name": fields["name"].strip(), "public_key": fields["public_key"].strip(),
                        "type": fields.get("key_type") or "ssh"}}
    await api(request).post("compute", "/os-keypairs", body, headers=GENERATE)
    session(request).flash("success", f"Imported key pair {fields['name'].strip()}.")
    raise redirect(BASE)


async def detail(request: web.Request) -> web.StreamResponse:
    key = (await api(request).get("compute", f"/os-keypairs/{request.match_info['name']}"))["keypair"]
    return render(request, "keypair_detail.html", title=key["name"], key=key)


async def delete(request: web.Request) -> web.StreamResponse:
    await form(request)
    name = request.match_info["name"]
    await api(request).delete("compute", f"/os-keypairs/{name}")
    session(request).flash("success", f"Deleted key pair {name}.")
    raise redirect(BASE)


PAGES = [
    Page("GET", BASE, index),
    Page("POST", BASE + "create/", create),
    Page("POST", BASE + "import/", import_key),
    Page("GET", BASE + "{name}/", detail),
    Page("POST", BASE + "{name}/delete/", delete),
]
