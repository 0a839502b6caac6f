"""Instance dicts as compute's ``get_instance_metadata`` returns them, for the metadata tests."""

from __future__ import annotations

import base64
from typing import Any


def instance(uuid: str = "1b4f0c3e-8f0e-4b52-a6c3-4a0c1e9d7a11", name: str = "vm1", project: str = "proj-a",
             ip: str = "10.0.0.5", network_id: str = "net-a", port_id: str = "port-a0000000000",
             key: str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample tester", **extra: Any) -> dict[str, Any]:
    inst: dict[str, Any] = {
        "uuid": uuid, "name": name, "hostname": name, "project_id": project, "availability_zone": "nova",
        "launch_index": 0, "flavor_name": "m1.tiny", "image_id": "7a1c2f3e-0000-4000-8000-000000000001",
        "kernel_id": "0b1c2f3e-0000-4000-8000-000000000002", "ramdisk_id": "0c1c2f3e-0000-4000-8000-000000000003",
        "key_name": "k1", "public_keys": {"k1": key}, "metadata": {"role": "web"},
        "user_data": base64.b64encode(b"#!/bin/sh\necho hello\n").decode(),
        "security_groups": ["default"], "floating_ips": ["172.24.4.10"],
        "nics": [{"port_id": port_id, "mac_address": "fa:16:3e:00:00:01", "network_id": network_id, "mtu": 1450,
                  "fixed_ips": [{"ip_address": ip, "subnet_id": "sub-1"}],
                  "subnets": [{"id": "sub-1", "cidr": "10.0.0.0/24", "ip_version": 4, "gateway_ip": "10.0.0.1",
                               "enable_dhcp": True, "dns_nameservers": ["10.0.0.2"], "host_routes": []}]}],
    }
    inst.update(extra)
    return inst
