"""The files of a config drive (OpenStack layout) for an instance, base64-encoded as the doc carries them."""

from __future__ import annotations

import base64
import json
from typing import Any

from tinystack.compute.models import Instance


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def files(inst: Instance) -> dict[str, str]:
    meta: dict[str, Any] = {
        "uuid": inst.id, "name": inst.name, "hostname": inst.hostname, "launch_index": inst.launch_index,
        "availability_zone": inst.availability_zone, "project_id": inst.project_id, "meta": inst.meta,
        "public_keys": {inst.key_name: inst.key_data} if inst.key_name and inst.key_data else {},
        "keys": [{"name": inst.key_name, "type": "ssh", "data": inst.key_data}] if inst.key_data else [],
        "devices": [],
    }
    if inst.admin_pass:
        meta["admin_pass"] = inst.admin_pass
    links, nets = [], []
    for i, p in enumerate(inst.ports):
        tap = f"tap{p['port_id'][:11]}"
        links.append({"id": tap, "type": "ovs", "ethernet_mac_address": p.get("mac_address"), "mtu": 1450,
                      "vif_id": p["port_id"]})
        for j, ip in enumerate(p.get("fixed_ips", [])):
            nets.append({"id": f"network{i}-{j}", "type": "ipv6_dhcp" if ":" in ip["ip_address"] else "ipv4_dhcp",
                         "link": tap, "network_id": p.get("network_id")})
    out = {"openstack/latest/meta_data.json": _b64(json.dumps(meta).encode()),
           "openstack/latest/network_data.json": _b64(json.dumps({"links": links, "networks": nets,
                                                                   "services": []}).encode()),
           "openstack/latest/vendor_data.json": _b64(b"{}"),
           "ec2/latest/meta-data.json": _b64(json.dumps({"instance-id": inst.id, "hostname": inst.hostname,
                                                         "local-hostname": inst.hostname}).encode())}
    if inst.user_data:
        out["openstack/latest/user_data"] = inst.user_data
    return out
