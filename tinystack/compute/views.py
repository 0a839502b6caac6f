"""Compute resources → Nova's JSON, shaped by the request's microversion."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from tinystack.compute import states
from tinystack.compute.models import Flavor, Instance, InstanceAction, KeyPair
from tinystack.core.auth import RequestContext
from tinystack.core.web import Version

V = Version


def iso(dt: datetime | None) -> str | None:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ") if dt else None


def links(base: str, kind: str, ident: str, project: str | None = None) -> list[dict[str, str]]:
    root = base.rsplit("/v2.1", 1)[0]
    return [{"rel": "self", "href": f"{base}/{kind}/{ident}"},
            {"rel": "bookmark", "href": f"{root}/{kind}/{ident}"}]


def host_id(project_id: str, host: str | None) -> str:
    """Nova's hostId: sha224 of project id + host, so tenants see co-location but not host names."""
    return hashlib.sha224((project_id + host).encode()).hexdigest() if host else ""


def server_brief(inst: Any, base: str) -> dict[str, Any]:
    return {"id": inst.id, "name": inst.name, "links": links(base, "servers", inst.id)}


# The keys of Nova's update and rebuild responses before microversion 2.75; 2.75 gave both the full view.
_BASIC_FIELDS = frozenset({"id", "name", "status", "tenant_id", "user_id", "metadata", "hostId", "image", "flavor",
                           "created", "updated", "addresses", "accessIPv4", "accessIPv6", "links", "progress",
                           "fault", "description", "locked", "tags", "trusted_image_certificates",
                           "server_groups", "locked_reason", "OS-DCF:diskConfig"})


def basic_before_275(server: dict[str, Any], v: Version) -> dict[str, Any]:
    """Update and rebuild answer with the basic server view before 2.75 (Tempest's schemas check it)."""
    if v >= V(2, 75):
        return server
    out = {k: val for k, val in server.items() if k in _BASIC_FIELDS}
    # Nor are the addresses extended (no OS-EXT-IPS type or MAC).
    out["addresses"] = {net: [{"version": a["version"], "addr": a["addr"]} for a in addrs]
                        for net, addrs in server.get("addresses", {}).items()}
    return out


_PROGRESS_STATUSES = frozenset({"ACTIVE", "BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE", "MIGRATING"})


def server(inst: Instance, base: str, v: Version, ctx: RequestContext, admin: bool) -> dict[str, Any]:
    f = inst.flavor
    if v >= V(2, 47):
        flavor: dict[str, Any] = {"vcpus": f["vcpus"], "ram": f["memory_mb"], "disk": f["root_gb"],
                                  "ephemeral": f.get("ephemeral_gb", 0), "swap": f.get("swap", 0),
                                  "original_name": f["name"], "extra_specs": f.get("extra_specs", {})}
    else:
        flavor = {"id": f["id"], "links": [{"rel": "bookmark", "href": f"{base.rsplit('/v2.1', 1)[0]}/flavors/{f['id']}"}]}
    image: Any = {"id": inst.image_ref, "links": [
        {"rel": "bookmark", "href": f"{base.rsplit('/v2.1', 1)[0]}/images/{inst.image_ref}"}]} if inst.image_ref else ""
    out: dict[str, Any] = {
        "id": inst.id, "name": inst.name, "status": states.status(inst.vm_state, inst.task_state),
        "tenant_id": inst.project_id, "user_id": inst.user_id, "metadata": inst.meta,
        "hostId": host_id(inst.project_id, inst.host), "image": image, "flavor": flavor,
        "created": iso(inst.created_at), "updated": iso(inst.updated_at), "addresses": inst.addresses,
        "accessIPv4": inst.access_ip_v4, "accessIPv6": inst.access_ip_v6, "links": links(base, "servers", inst.id),
        "OS-DCF:diskConfig": inst.doc.get("disk_config", "MANUAL"),
        "OS-EXT-AZ:availability_zone": inst.availability_zone or "",
        "config_drive": "True" if inst.config_drive else "", "key_name": inst.key_name,
        "OS-SRV-USG:launched_at": inst.launched_at.isoformat() if inst.launched_at else None,
        "OS-SRV-USG:terminated_at": inst.terminated_at.isoformat() if inst.terminated_at else None,
        "OS-EXT-STS:task_state": inst.task_state, "OS-EXT-STS:vm_state": inst.vm_state,
        "OS-EXT-STS:power_state": inst.power_state,
        "os-extended-volumes:volumes_attached": [
            {"id": b.volume_id, **({"delete_on_termination": b.delete_on_termination} if v >= V(2, 3) else {})}
            for b in inst.bdms],
        "security_groups": [{"name": n} for n in dict.fromkeys(inst.security_groups)] if inst.ports else [],
    }
    # Nova shows progress only while a server is running or changing (not SHUTOFF, PAUSED, ERROR ...).
    if out["status"] in _PROGRESS_STATUSES:
        out["progress"] = 100 if inst.vm_state == "active" and inst.task_state is None else 0
    if inst.vm_state == states.ERROR and inst.fault:
        fault = {"code": inst.fault.get("code", 500), "message": inst.fault.get("message", ""),
                 "created": inst.fault.get("created") or iso(inst.updated_at)}
        if admin:
            fault["details"] = inst.fault.get("details", "")
        out["fault"] = fault
    if admin:
        out.update({"OS-EXT-SRV-ATTR:host": inst.host, "OS-EXT-SRV-ATTR:hypervisor_hostname": inst.host,
                    "OS-EXT-SRV-ATTR:instance_name": f"instance-{inst.id[:8]}"})
        if v >= V(2, 3):
            out.update({"OS-EXT-SRV-ATTR:reservation_id": inst.reservation_id,
                        "OS-EXT-SRV-ATTR:launch_index": inst.launch_index,
                        "OS-EXT-SRV-ATTR:hostname": inst.hostname,
                        "OS-EXT-SRV-ATTR:kernel_id": (inst.doc.get("image") or {}).get("properties", {}).get("kernel_id", ""),
                        "OS-EXT-SRV-ATTR:ramdisk_id": (inst.doc.get("image") or {}).get("properties", {}).get("ramdisk_id", ""),
                        "OS-EXT-SRV-ATTR:root_device_name": "/dev/vda", "OS-EXT-SRV-ATTR:user_data": inst.user_data})
    if v >= V(2, 9):
        out["locked"] = inst.locked
    if v >= V(2, 16) and admin:
        out["host_status"] = "UP" if inst.host else ""
    if v >= V(2, 19):
        out["description"] = inst.description
    if v >= V(2, 26):
        out["tags"] = list(inst.tags)
    if v >= V(2, 63):
        out["trusted_image_certificates"] = None
    if v >= V(2, 71):
        out["server_groups"] = [inst.server_group_id] if inst.server_group_id else []
    if v >= V(2, 73):
        out["locked_reason"] = inst.locked_reason
    if v >= V(2, 90):
        out["OS-EXT-SRV-ATTR:hostname"] = inst.hostname
    if v >= V(2, 96):
        out["pinned_availability_zone"] = None
    return out


def flavor(fl: Flavor, base: str, v: Version, detail: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"id": fl.id, "name": fl.name, "links": links(base, "flavors", fl.id)}
    if v >= V(2, 55):
        out["description"] = fl.description
    if not detail:
        return out
    out.update({"ram": fl.memory_mb, "vcpus": fl.vcpus, "disk": fl.root_gb, "OS-FLV-EXT-DATA:ephemeral": fl.ephemeral_gb,
                "swap": fl.swap or "", "rxtx_factor": fl.rxtx_factor, "OS-FLV-DISABLED:disabled": fl.disabled,
                "os-flavor-access:is_public": fl.is_public})
    if v >= V(2, 61):
        out["extra_specs"] = dict(fl.extra_specs or {})
    if v >= V(2, 75) and out["swap"] == "":
        out["swap"] = 0
    return out


def keypair(kp: KeyPair, v: Version, detail: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"name": kp.name, "public_key": kp.public_key, "fingerprint": kp.fingerprint}
    if v >= V(2, 2):
        out["type"] = kp.type
    if detail:
        out.update({"user_id": kp.user_id, "created_at": kp.created_at.isoformat(), "deleted": False,
                    "deleted_at": None, "updated_at": None, "id": abs(hash((kp.user_id, kp.name))) % (10**9)})
    return out


def action(a: InstanceAction, v: Version, with_events: bool, event_details: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"action": a.action, "instance_uuid": a.instance_id, "request_id": a.request_id,
                           "user_id": a.user_id, "project_id": a.project_id, "start_time": a.start_time.isoformat(),
                           "message": a.message}
    if v >= V(2, 58):
        out["updated_at"] = a.updated_at.isoformat()
    if with_events:
        events = []
        for ev in a.events:
            e = {"event": ev["event"], "start_time": ev["start_time"], "finish_time": ev["finish_time"],
                 "result": ev["result"]}
            if event_details:
                e["traceback"] = ev.get("traceback")
                if v >= V(2, 62):
                    e["host"] = ev.get("host") or ""
                    e["hostId"] = host_id(a.project_id, ev.get("host"))
            elif v >= V(2, 62):
                e["hostId"] = host_id(a.project_id, ev.get("host"))
            if v >= V(2, 84) and event_details:
                e["details"] = ev.get("traceback")
            events.append(e)
        out["events"] = events
    return out
