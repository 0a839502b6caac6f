"""Device and namespace names of docs/contracts.md, in one place (Linux caps device names at 15 chars)."""

from __future__ import annotations

import hashlib

BRIDGE = "brq"
TAP = "tap"
RELAY = "tvr"


def bridge(network_id: str) -> str:
    return f"brq{network_id[:11]}"


def vxlan(vni: int) -> str:
    return f"vxlan-{vni}"


def tap(port_id: str) -> str:
    return f"tap{port_id[:11]}"


def relay(port_id: str) -> str:
    """A trunk subport's relay device: the veth peer of its ``tap`` that carries its VLAN to the parent's tap."""
    return f"{RELAY}{port_id[:11]}"


def ns_dev(port_id: str) -> str:
    return f"ns-{port_id[:11]}"


def qr_dev(port_id: str) -> str:
    return f"qr-{port_id[:11]}"


def qg_dev(port_id: str) -> str:
    return f"qg-{port_id[:11]}"


def qdhcp(network_id: str) -> str:
    return f"qdhcp-{network_id}"


def qrouter(router_id: str) -> str:
    return f"qrouter-{router_id}"


def _ext_hash(host: str, network_id: str) -> str:
    # Host and network both enter the hash: several clouds on one machine share the external namespace.
    return hashlib.sha1(f"{host}/{network_id}".encode()).hexdigest()[:10]


def external_bridge_side(host: str, network_id: str) -> str:
    """``tsx<hash>``: the end of the external veth that sits on the external network's bridge."""
    return f"tsx{_ext_hash(host, network_id)}"


def external_host_side(host: str, network_id: str) -> str:
    """``tsh<hash>``: its peer in the external host namespace, carrying the external gateway IP."""
    return f"tsh{_ext_hash(host, network_id)}"
