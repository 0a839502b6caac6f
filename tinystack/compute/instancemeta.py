"""What an instance's metadata says about it (tinystack/metadata/documents.py's instance dict), built from
the instance row and its ports and subnets; the metadata API and the config drive both use it."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.core.service import acting_for
from tinystack.network.interface import NETWORK

if TYPE_CHECKING:
    from tinystack.compute.models import Instance
    from tinystack.compute.service import ComputeService


def _ctx(inst: Instance) -> RequestContext:
    """Acting for the instance's owner with admin rights: the metadata request carries no token of its own."""
    return acting_for(inst.user_id, inst.project_id)


def _nics(svc: ComputeService, inst: Instance) -> list[dict[str, Any]]:
    if not svc.has("network"):
        return []
    network = svc.service(NETWORK)
    ctx = _ctx(inst)
    subnets: dict[str, dict[str, Any]] = {}
    nics = []
    for port in inst.ports:
        try:
            live = network.show_port(ctx, port["port_id"])
        except errors.NotFound:
            continue
        for ip in live.get("fixed_ips", []):
            sid = ip["subnet_id"]
            if sid not in subnets:
                try:
                    subnets[sid] = network.show(ctx, "subnets", sid)
                except errors.NotFound:
                    continue
        mtu = None
        with contextlib.suppress(errors.NotFound):
            mtu = network.show_network(ctx, live["network_id"]).get("mtu")
        nics.append({
            "port_id": live["id"], "mac_address": live["mac_address"], "network_id": live["network_id"], "mtu": mtu,
            "fixed_ips": [{"ip_address": ip["ip_address"], "subnet_id": ip["subnet_id"]} for ip in live["fixed_ips"]],
            "subnets": [{k: subnets[ip["subnet_id"]].get(k) for k in
                         ("id", "cidr", "ip_version", "gateway_ip", "enable_dhcp", "dns_nameservers", "host_routes")}
                        for ip in live["fixed_ips"] if ip["subnet_id"] in subnets],
        })
    return nics


def _floating_ips(svc: ComputeService, inst: Instance, nics: list[dict[str, Any]]) -> list[str]:
    if not svc.has("network") or not nics:
        return []
    network = svc.service(NETWORK)
    out: list[str] = []
    for nic in nics:
        listing = network.list(_ctx(inst), "floatingips", {"port_id": [nic["port_id"]]}, "")
        out.extend(f["floating_ip_address"] for f in listing.get("floatingips", []))
    return out


def instance_dict(svc: ComputeService, inst: Instance, flavor_name: str | None) -> dict[str, Any]:
    nics = _nics(svc, inst)
    image = inst.doc.get("image") or {} if isinstance(inst.doc, dict) else {}
    return {
        "uuid": inst.id, "name": inst.name, "hostname": inst.hostname, "project_id": inst.project_id,
        "availability_zone": inst.availability_zone or "nova", "launch_index": inst.launch_index,
        "reservation_id": inst.reservation_id, "flavor_name": flavor_name,
        "image_id": inst.image_ref or None,
        "kernel_id": (image.get("properties") or {}).get("kernel_id"),
        "ramdisk_id": (image.get("properties") or {}).get("ramdisk_id"),
        "key_name": inst.key_name,
        "public_keys": {inst.key_name: inst.key_data} if inst.key_name and inst.key_data else {},
        "metadata": dict(inst.meta or {}), "user_data": inst.user_data, "admin_pass": inst.admin_pass,
        "password": (inst.meta or {}).get("password_0"),
        "security_groups": list(inst.security_groups or []),
        "floating_ips": _floating_ips(svc, inst, nics), "nics": nics,
    }
