"""The networking service's settings, read from the ``[network]`` section with DevStack-like defaults."""

from __future__ import annotations

from dataclasses import dataclass

from tinystack.config import Config

# The keys ``[network]`` accepts (others, e.g. the agent's, are read by their own modules).
DEFAULTS: dict[str, str] = {
    "tenant_network_type": "vxlan",
    "vni_ranges": "1:1000",
    "vlan_ranges": "",  # ``physnet:min:max,...``
    "flat_networks": "*",  # physical networks a flat network may use; ``*`` = any
    "global_physnet_mtu": "1500",
    "agent_down_time": "75",
    "dns_domain": "openstacklocal",
    "public_physnet": "public",
    "bootstrap": "true",
    "quota_network": "100",
    "quota_subnet": "100",
    "quota_subnetpool": "-1",
    "quota_port": "500",
    "quota_router": "10",
    "quota_floatingip": "50",
    "quota_security_group": "10",
    "quota_security_group_rule": "100",
    "default_page_limit": "0",  # 0: lists are not paged unless the client asks
}

QUOTA_RESOURCES = ("network", "subnet", "subnetpool", "port", "router", "floatingip", "security_group",
                   "security_group_rule")


@dataclass(frozen=True)
class NetworkSettings:
    tenant_network_type: str
    vni_ranges: tuple[tuple[int, int], ...]
    vlan_ranges: dict[str, tuple[int, int]]
    flat_networks: tuple[str, ...]
    global_physnet_mtu: int
    agent_down_time: float
    dns_domain: str
    public_physnet: str
    bootstrap: bool
    quotas: dict[str, int]
    default_page_limit: int


def _ranges(text: str) -> tuple[tuple[int, int], ...]:
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        low, _, high = part.partition(":")
        out.append((int(low), int(high or low)))
    return tuple(out)


def load(config: Config) -> NetworkSettings:
    raw = {**DEFAULTS, **{k: v for k, v in config.values.get("network", {}).items() if k in DEFAULTS}}
    vlans = {}
    for part in filter(None, (p.strip() for p in raw["vlan_ranges"].split(","))):
        physnet, low, high = part.split(":")
        vlans[physnet] = (int(low), int(high))
    if raw["tenant_network_type"] not in ("local", "vxlan", "vlan", "flat"):
        raise ValueError("[network] tenant_network_type must be local, vxlan, vlan or flat")
    return NetworkSettings(
        tenant_network_type=raw["tenant_network_type"],
        vni_ranges=_ranges(raw["vni_ranges"]),
        vlan_ranges=vlans,
        flat_networks=tuple(p.strip() for p in raw["flat_networks"].split(",") if p.strip()),
        global_physnet_mtu=int(raw["global_physnet_mtu"]),
        agent_down_time=float(raw["agent_down_time"]),
        dns_domain=raw["dns_domain"],
        public_physnet=raw["public_physnet"],
        bootstrap=raw["bootstrap"].strip().lower() in ("1", "true", "yes", "on"),
        quotas={name: int(raw[f"quota_{name}"]) for name in QUOTA_RESOURCES},
        default_page_limit=int(raw["default_page_limit"]),
    )
