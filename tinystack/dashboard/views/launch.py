"""Project > Compute > Instances > Launch Instance: Horizon's wizard steps (Details, Source, Flavor, Networks,
Security Groups, Key Pair, Configuration) as one form, turned into one ``POST /servers``."""

from __future__ import annotations

import base64
from typing import Any

from aiohttp import web

from tinystack.dashboard.views.common import gather, list_all, optional
from tinystack.dashboard.web import FormError, Page, api, form, form_all, redirect, render, required, session

STEPS = ["Details", "Source", "Flavor", "Networks", "Security Groups", "Key Pair", "Configuration", "Server Groups"]


async def wizard(request: web.Request) -> web.StreamResponse:
    a, sess = api(request), session(request)
    images, flavors, networks, groups, keys, volumes, limits, server_groups = await gather(
        optional(list_all(a, "image", "/v2/images", "images"), []),
        list_all(a, "compute", "/flavors/detail", "flavors", paged=False),
        list_all(a, "network", "/v2.0/networks", "networks", paged=False),
        list_all(a, "network", "/v2.0/security-groups", "security_groups", {"project_id": sess.project_id}, paged=False),
        list_all(a, "compute", "/os-keypairs", "keypairs", paged=False),
        optional(list_all(a, "volume", "/volumes/detail", "volumes", paged=False), []),
        a.get("compute", "/limits"),
        optional(list_all(a, "compute", "/os-server-groups", "server_groups", paged=False), []))
    images = sorted((i for i in images if i.get("status") == "active"), key=lambda i: i.get("name") or "")
    snapshots = [i for i in images if i.get("image_type") == "snapshot"]
    networks = [n for n in networks if not n.get("router:external") or n.get("project_id") == sess.project_id]
    return render(request, "launch.html", title="Launch Instance", steps=STEPS, images=images, snapshots=snapshots,
                  flavors=sorted(flavors, key=lambda f: (f["ram"], f["name"])),
                  networks=sorted(networks, key=lambda n: n.get("name") or ""),
                  groups=sorted(groups, key=lambda g: g["name"]), keys=[k["keypair"] for k in keys],
                  volumes=[v for v in volumes if v.get("status") == "available"],
                  limits=limits["limits"]["absolute"], selected=request.query.get("image", ""),
                  server_groups=sorted(server_groups, key=lambda g: g.get("name") or ""))


def server_body(fields: dict[str, str], networks: list[str], groups: list[str]) -> dict[str, Any]:
    """The ``server`` of ``POST /servers`` from the wizard's fields."""
    required(fields, "name", "flavor")
    try:
        count = int(fields.get("count") or "1")
    except ValueError:
        raise FormError("Count must be a whole number.") from None
    if count < 1:
        raise FormError("Count must be at least 1.")
    server: dict[str, Any] = {"name": fields["name"].strip(), "flavorRef": fields["flavor"], "min_count": count,
                              "max_count": count}
    for key, field in (("description", "description"), ("availability_zone", "availability_zone"),
                       ("key_name", "key_name")):
        if fields.get(field, "").strip():
            server[key] = fields[field].strip()
    source, source_id = fields.get("source_type", "image"), fields.get("source_id", "").strip()
    if not source_id:
        raise FormError("Select a boot source.")
    delete_on_termination = fields.get("delete_on_termination") == "on"
    if source in ("image", "snapshot") and fields.get("create_volume") != "on":
        server["imageRef"] = source_id
    elif source in ("image", "snapshot"):
        try:
            size = int(fields.get("volume_size") or "0")
        except ValueError:
            raise FormError("Volume size must be a whole number of GiB.") from None
        if size < 1:
            raise FormError("Volume size must be at least 1 GiB.")
        server["block_device_mapping_v2"] = [{"boot_index": 0, "uuid": source_id, "source_type": "image",
                                              "destination_type": "volume", "volume_size": size,
                                              "delete_on_termination": delete_on_termination}]
    elif source == "volume":
        server["block_device_mapping_v2"] = [{"boot_index": 0, "uuid": source_id, "source_type": "volume",
                                              "destination_type": "volume",
                                              "delete_on_termination": delete_on_termination}]
    else:
        raise FormError(f"Unknown boot source {source!r}.")
    server["networks"] = [{"uuid": n} for n in networks] if networks else "auto"
    if groups:
        server["security_groups"] = [{"name": g} for g in groups]
    if fields.get("user_data", "").strip():
        server["user_data"] = base64.b64encode(fields["user_data"].replace("\r\n", "\n").encode()).decode()
    if fields.get("config_drive") == "on":
        server["config_drive"] = True
    return server


async def launch(request: web.Request) -> web.StreamResponse:
    fields = await form(request)
    body: dict[str, Any] = {"server": server_body(fields, await form_all(request, "networks"),
                                                  await form_all(request, "security_groups"))}
    if fields.get("server_group", "").strip():
        # The group's policy is the scheduler's to apply: the wizard only names the group.
        body["os:scheduler_hints"] = {"group": fields["server_group"].strip()}
    await api(request).post("compute", "/servers", body)
    session(request).flash("success", f"Launched instance {fields['name'].strip()}.")
    raise redirect("/project/instances/")


PAGES = [
    Page("GET", "/project/instances/launch/", wizard),
    Page("POST", "/project/instances/launch/", launch),
]
