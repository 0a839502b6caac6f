"""Project > Compute > Instances > Launch Instance: Horizon's wizard steps (Details, Source, Flavor, Networks,
Network Ports, Security Groups, Key Pair, Configuration, Server Groups, Metadata) as one form, turned into one
``POST /servers``."""

from __future__ import annotations

import base64
from typing import Any

from aiohttp import web

from tinystack.dashboard.views.common import gather, list_all, optional
from tinystack.dashboard.web import FormError, Page, api, form, form_all, redirect, render, required, session

STEPS = ["Details", "Source", "Flavor", "Networks", "Network Ports", "Security Groups", "Key Pair", "Configuration",
         "Server Groups", "Metadata"]
# Compute's limits on a metadata item (the key's pattern is checked by the API, which words its own refusal).
META_KEY_MAX = META_VALUE_MAX = 255
# Empty key/value rows the Metadata step offers (a browser without JavaScript cannot add rows).
META_ROWS = 4


async def wizard(request: web.Request) -> web.StreamResponse:
    a, sess = api(request), session(request)
    images, flavors, networks, groups, keys, volumes, limits, server_groups, ports = await gather(
        optional(list_all(a, "image", "/v2/images", "images"), []),
        list_all(a, "compute", "/flavors/detail", "flavors", paged=False),
        list_all(a, "network", "/v2.0/networks", "networks", paged=False),
        list_all(a, "network", "/v2.0/security-groups", "security_groups", {"project_id": sess.project_id}, paged=False),
        list_all(a, "compute", "/os-keypairs", "keypairs", paged=False),
        optional(list_all(a, "volume", "/volumes/detail", "volumes", paged=False), []),
        a.get("compute", "/limits"),
        optional(list_all(a, "compute", "/os-server-groups", "server_groups", paged=False), []),
        optional(list_all(a, "network", "/v2.0/ports", "ports", {"project_id": sess.project_id}, paged=False), []))
    images = sorted((i for i in images if i.get("status") == "active"), key=lambda i: i.get("name") or "")
    snapshots = [i for i in images if i.get("image_type") == "snapshot"]
    networks = [n for n in networks if not n.get("router:external") or n.get("project_id") == sess.project_id]
    net_names = {n["id"]: n.get("name") or n["id"] for n in networks}
    return render(request, "launch.html", title="Launch Instance", steps=STEPS, images=images, snapshots=snapshots,
                  flavors=sorted(flavors, key=lambda f: (f["ram"], f["name"])),
                  networks=sorted(networks, key=lambda n: n.get("name") or ""),
                  groups=sorted(groups, key=lambda g: g["name"]), keys=[k["keypair"] for k in keys],
                  volumes=[v for v in volumes if v.get("status") == "available"],
                  limits=limits["limits"]["absolute"], selected=request.query.get("image", ""),
                  server_groups=sorted(server_groups, key=lambda g: g.get("name") or ""),
                  ports=free_ports(ports), net_names=net_names, meta_rows=META_ROWS)


def free_ports(ports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ports Horizon's Network Ports step offers: the project's own that nothing is bound to yet."""
    free = [p for p in ports if not p.get("device_id") and not p.get("device_owner")]
    return sorted(free, key=lambda p: (p.get("name") or "", p["id"]))


def metadata(keys: list[str], values: list[str]) -> dict[str, str]:
    """The Metadata step's key/value rows as server metadata: empty rows skipped, a value without a key, a key
    twice or one too long refused before any call."""
    out: dict[str, str] = {}
    for key, value in zip(keys, values + [""] * (len(keys) - len(values)), strict=False):
        key, value = key.strip(), value.strip()
        if not key:
            if value:
                raise FormError(f"Metadata value {value!r} has no key.")
            continue
        if key in out:
            raise FormError(f"Metadata key {key!r} is given twice.")
        if len(key) > META_KEY_MAX or len(value) > META_VALUE_MAX:
            raise FormError(f"Metadata keys and values are at most {META_KEY_MAX} characters.")
        out[key] = value
    return out


def server_body(fields: dict[str, str], networks: list[str], groups: list[str], ports: list[str] | None = None,
                meta: dict[str, str] | None = None) -> dict[str, Any]:
    """The ``server`` of ``POST /servers`` from the wizard's fields: the chosen networks (a new port on each) and
    existing ports (``ports``) are the server's NICs in that order, as Horizon sends them."""
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
    nics = [{"uuid": n} for n in networks] + [{"port": p} for p in dict.fromkeys(ports or [])]
    server["networks"] = nics or "auto"
    if groups:
        server["security_groups"] = [{"name": g} for g in groups]
    if fields.get("user_data", "").strip():
        server["user_data"] = base64.b64encode(fields["user_data"].replace("\r\n", "\n").encode()).decode()
    if fields.get("config_drive") == "on":
        server["config_drive"] = True
    if meta:
        server["metadata"] = meta
    return server


async def launch(request: web.Request) -> web.StreamResponse:
    fields = await form(request)
    meta = metadata(await form_all(request, "metadata_key"), await form_all(request, "metadata_value"))
    body: dict[str, Any] = {"server": server_body(fields, await form_all(request, "networks"),
                                                  await form_all(request, "security_groups"),
                                                  await form_all(request, "ports"), meta)}
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
