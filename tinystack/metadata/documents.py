"""The metadata documents of one instance, from a plain dict (what compute's ``get_instance_metadata`` returns):
the OpenStack layout (``/openstack/<version>/meta_data.json`` ...) and the EC2 layout (``/<version>/meta-data/``),
with Nova's version names and listings. Pure functions: no HTTP, no database.

The instance dict (missing keys take harmless defaults):
``uuid, name, hostname, project_id, availability_zone, launch_index, reservation_id, flavor_name, image_id,
kernel_id, ramdisk_id, key_name, public_keys {name: key}, key_types {name: type}, metadata {k: v},
user_data (base64 or None), admin_pass, password, security_groups [names], floating_ips [ip], files [{path,
contents (base64)}], vendor_data {}, nics [{port_id, mac_address, network_id, mtu, fixed_ips [{ip_address,
subnet_id}], subnets [{id, cidr, ip_version, gateway_ip, enable_dhcp, dns_nameservers, host_routes}]}]``.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import os
from collections.abc import Mapping
from typing import Any

OPENSTACK_VERSIONS = ("2012-08-10", "2013-04-04", "2013-10-17", "2015-10-15", "2016-06-30", "2016-10-06",
                      "2017-02-22", "2018-08-27", "2020-10-14")
EC2_VERSIONS = ("1.0", "2007-01-19", "2007-03-01", "2007-08-29", "2007-10-10", "2007-12-15", "2008-02-01",
                "2008-09-01", "2009-04-04")
GRIZZLY, LIBERTY, NEWTON_ONE, NEWTON_TWO, VICTORIA = "2013-04-04", "2015-10-15", "2016-06-30", "2016-10-06", "2020-10-14"
PASSWORD_MAX = 256  # bytes, as Nova's metadata password


class UnknownPath(LookupError):
    """No such document: the API answers 404."""


def _at_least(version: str, since: str) -> bool:
    return version == "latest" or version >= since


def ec2_id(kind: str, uuid: str | None) -> str:
    """A stable EC2-style id (``i-1a2b3c4d``) from a UUID; Nova numbers them, tinystack has only UUIDs."""
    digits = (uuid or "").replace("-", "")[:8] or "0" * 8
    return f"{kind}-{digits}"


def user_data(inst: Mapping[str, Any]) -> bytes | None:
    raw = inst.get("user_data")
    if raw is None:
        return None
    try:
        return base64.b64decode(raw, validate=False)
    except (binascii.Error, ValueError):
        return None


def hostname(inst: Mapping[str, Any], dhcp_domain: str = "") -> str:
    name = inst.get("hostname") or inst.get("name") or "instance"
    return f"{name}.{dhcp_domain}" if dhcp_domain and "." not in name else name


def meta_data(inst: Mapping[str, Any], version: str = "latest", *, dhcp_domain: str = "",
              config_drive: bool = False) -> dict[str, Any]:
    """``meta_data.json`` as Nova writes it for ``version``; ``admin_pass`` only on a config drive."""
    md: dict[str, Any] = {"uuid": inst["uuid"]}
    if inst.get("metadata"):
        md["meta"] = dict(inst["metadata"])
    files = inst.get("files") or []
    if files:
        md["files"] = [{"path": f["path"], "content_path": f"/content/{i:04d}"} for i, f in enumerate(files)]
    if config_drive and inst.get("admin_pass"):
        md["admin_pass"] = inst["admin_pass"]
    keys: Mapping[str, str] = inst.get("public_keys") or {}
    if keys:
        md["public_keys"] = dict(keys)
        if _at_least(version, LIBERTY):
            types = inst.get("key_types") or {}
            md["keys"] = [{"name": n, "type": types.get(n, "ssh"), "data": k} for n, k in keys.items()]
    md["hostname"] = hostname(inst, dhcp_domain)
    md["name"] = inst.get("name") or ""
    md["launch_index"] = int(inst.get("launch_index") or 0)
    md["availability_zone"] = inst.get("availability_zone") or "nova"
    if _at_least(version, GRIZZLY):
        md["random_seed"] = base64.b64encode(os.urandom(512)).decode()
    if _at_least(version, LIBERTY):
        md["project_id"] = inst.get("project_id")
    if _at_least(version, NEWTON_ONE):
        md["devices"] = list(inst.get("devices") or [])
    if _at_least(version, VICTORIA):
        md["dedicated_cpus"] = list(inst.get("dedicated_cpus") or [])
    return md


def network_data(inst: Mapping[str, Any]) -> dict[str, Any]:
    """``network_data.json``: links (one per NIC), networks (one per fixed IP) and DNS services."""
    links: list[dict[str, Any]] = []
    networks: list[dict[str, Any]] = []
    dns: list[dict[str, str]] = []
    for nic in inst.get("nics") or []:
        link_id = f"tap{str(nic.get('port_id', ''))[:11]}"
        links.append({"id": link_id, "vif_id": nic.get("port_id"), "type": "bridge", "mtu": nic.get("mtu"),
                      "ethernet_mac_address": nic.get("mac_address")})
        subnets = {s.get("id"): s for s in nic.get("subnets") or []}
        for fixed in nic.get("fixed_ips") or []:
            subnet = subnets.get(fixed.get("subnet_id")) or {}
            num = len(networks)
            version = int(subnet.get("ip_version") or ipaddress.ip_address(fixed["ip_address"]).version)
            for server in subnet.get("dns_nameservers") or []:
                if {"type": "dns", "address": server} not in dns:
                    dns.append({"type": "dns", "address": server})
            net: dict[str, Any] = {"id": f"network{num}", "link": link_id, "network_id": nic.get("network_id")}
            if subnet.get("enable_dhcp"):
                net["type"] = f"ipv{version}_dhcp"
                networks.append(net)
                continue
            net["type"] = f"ipv{version}"
            net["ip_address"] = fixed["ip_address"]
            if subnet.get("cidr"):
                net["netmask"] = str(ipaddress.ip_network(subnet["cidr"], strict=False).netmask)
            routes = []
            if subnet.get("gateway_ip"):
                any_net = "0.0.0.0" if version == 4 else "::"
                routes.append({"network": any_net, "netmask": any_net, "gateway": subnet["gateway_ip"]})
            for r in subnet.get("host_routes") or []:
                dest = ipaddress.ip_network(r["destination"], strict=False)
                routes.append({"network": str(dest.network_address), "netmask": str(dest.netmask),
                               "gateway": r["nexthop"]})
            net["routes"] = routes
            net["services"] = [{"type": "dns", "address": s} for s in subnet.get("dns_nameservers") or []]
            networks.append(net)
    return {"links": links, "networks": networks, "services": dns}


def vendor_data(inst: Mapping[str, Any]) -> dict[str, Any]:
    return dict(inst.get("vendor_data") or {})


def ec2_meta_data(inst: Mapping[str, Any], dhcp_domain: str = "") -> dict[str, Any]:
    """The EC2 ``meta-data`` tree (Admin Guide's list); dicts are directories, ``_name`` names a listing entry."""
    fixed = [ip["ip_address"] for nic in inst.get("nics") or [] for ip in nic.get("fixed_ips") or []
             if ipaddress.ip_address(ip["ip_address"]).version == 4]
    host = hostname(inst, dhcp_domain)
    md: dict[str, Any] = {
        "ami-id": ec2_id("ami", inst.get("image_id")),
        "ami-launch-index": str(int(inst.get("launch_index") or 0)),
        "ami-manifest-path": "FIXME",
        "block-device-mapping": {"ami": "vda", "root": "/dev/vda"},
        "hostname": host,
        "instance-action": "none",
        "instance-id": ec2_id("i", inst["uuid"]),
        "instance-type": inst.get("flavor_name") or "",
        "local-hostname": host,
        "local-ipv4": fixed[0] if fixed else "",
        "placement": {"availability-zone": inst.get("availability_zone") or "nova"},
        "public-hostname": host,
        "public-ipv4": (inst.get("floating_ips") or [""])[0],
        "reservation-id": inst.get("reservation_id") or ec2_id("r", inst["uuid"]),
        "security-groups": list(inst.get("security_groups") or []),
    }
    if inst.get("kernel_id"):
        md["kernel-id"] = ec2_id("aki", inst["kernel_id"])
    if inst.get("ramdisk_id"):
        md["ramdisk-id"] = ec2_id("ari", inst["ramdisk_id"])
    keys: Mapping[str, str] = inst.get("public_keys") or {}
    if keys:
        md["public-keys"] = {str(i): {"_name": f"{i}={name}", "openssh-key": key}
                             for i, (name, key) in enumerate(keys.items())}
    return md


def _listing(node: Mapping[str, Any]) -> str:
    lines = []
    for key, value in node.items():
        if key == "_name":
            continue
        if isinstance(value, Mapping) and "_name" in value:
            lines.append(value["_name"])
        elif isinstance(value, Mapping):
            lines.append(f"{key}/")
        else:
            lines.append(key)
    return "\n".join(lines)


def _leaf(value: Any) -> str:
    if isinstance(value, Mapping):
        return _listing(value)
    if isinstance(value, list | tuple):
        return "\n".join(str(v) for v in value)
    return str(value)


def _walk(tree: Any, parts: list[str]) -> str:
    node = tree
    for part in parts:
        if not isinstance(node, Mapping) or part not in node or part == "_name":
            raise UnknownPath("/".join(parts))
        node = node[part]
    return _leaf(node)


JSON = "application/json"
TEXT = "text/plain"


def openstack(inst: Mapping[str, Any], path: list[str], dhcp_domain: str = "") -> tuple[bytes, str]:
    """``/openstack/...`` (``path`` without the ``openstack`` part). ``password`` is the caller's concern."""
    if not path:
        return "\n".join([*OPENSTACK_VERSIONS, "latest"]).encode(), TEXT
    version, rest = path[0], path[1:]
    if version not in OPENSTACK_VERSIONS and version != "latest":
        raise UnknownPath(version)
    ud = user_data(inst)
    docs = ["meta_data.json", "password", "vendor_data.json"]
    if _at_least(version, LIBERTY):
        docs.append("network_data.json")
    if _at_least(version, NEWTON_TWO):
        docs.append("vendor_data2.json")
    if ud is not None:
        docs.append("user_data")
    if not rest:
        return "\n".join(docs).encode(), TEXT
    name = "/".join(rest)
    if name not in docs or name == "password":
        raise UnknownPath(name)
    if name == "user_data":
        return ud or b"", "text/plain"
    builders = {"meta_data.json": lambda: meta_data(inst, version, dhcp_domain=dhcp_domain),
                "vendor_data.json": lambda: vendor_data(inst),
                "network_data.json": lambda: network_data(inst),
                "vendor_data2.json": lambda: {}}
    return json.dumps(builders[name]()).encode(), JSON


def ec2(inst: Mapping[str, Any], path: list[str], dhcp_domain: str = "") -> tuple[bytes, str]:
    """The EC2 layout below the root: ``/`` (versions), ``/<version>/``, ``meta-data/...``, ``user-data``."""
    if not path:
        return "\n".join([*EC2_VERSIONS, "latest"]).encode(), TEXT
    version, rest = path[0], path[1:]
    if version not in EC2_VERSIONS and version != "latest":
        raise UnknownPath(version)
    ud = user_data(inst)
    if not rest:
        return ("meta-data/" + ("\nuser-data" if ud is not None else "")).encode(), TEXT
    if rest == ["user-data"]:
        if ud is None:
            raise UnknownPath("user-data")
        return ud, "text/plain"
    if rest[0] != "meta-data":
        raise UnknownPath(rest[0])
    return _walk(ec2_meta_data(inst, dhcp_domain), rest[1:]).encode(), TEXT


def check_password(body: bytes) -> str:
    """A password a guest POSTs (Nova: at most 256 bytes, stored once)."""
    if len(body) > PASSWORD_MAX:
        raise ValueError(f"Request is too large: the password is limited to {PASSWORD_MAX} bytes.")
    return body.decode("utf-8", errors="replace")
