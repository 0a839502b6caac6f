"""Several nodes in one process: ``[nodes] extra`` (or ``names``) adds compute + network agent pairs beside the
primary node (``[DEFAULT] host``), each with its own host name and node namespace, joined by VXLAN over a bridge
in an underlay namespace that the cloud creates and removes: a multi-node cloud on one machine (design §2).

With no extra nodes nothing here runs: the single node keeps VXLAN on 127.0.0.1 and no underlay namespace.
"""

from __future__ import annotations

import copy
import ipaddress
import re
from dataclasses import dataclass

from tinystack.config import Config

SECTION = "nodes"
# Every node's veth in the underlay gets the next address of this network; VXLAN runs between them.
UNDERLAY_DEV = "ul0"
_HOST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$")


@dataclass(frozen=True)
class Node:
    """One node of this process: its host name, underlay address (``ip/prefix``) and its agents' settings."""

    host: str
    underlay_ip: str
    config: Config
    primary: bool


def underlay_netns(host: str) -> str:
    """The underlay namespace of the cloud whose primary node is ``host`` (test clouds have unique hosts)."""
    return f"tsul-{host}"


def extra_names(config: Config) -> list[str]:
    """The extra nodes' host names: ``[nodes] names``, else ``<host>-2`` ... for ``[nodes] extra``."""
    section = config.values.get(SECTION, {})
    names = [n.strip() for n in section.get("names", "").split(",") if n.strip()]
    extra = int(section.get("extra", "0") or 0)
    if extra < 0:
        raise ValueError("[nodes] extra must be 0 or more")
    if not names:
        names = [f"{config.host}-{i}" for i in range(2, extra + 2)]
    for name in names:
        if not _HOST.match(name):
            raise ValueError(f"[nodes] names: {name!r} is not a usable host name")
    if config.host in names or len(set(names)) != len(names):
        raise ValueError("[nodes] names must differ from each other and from [DEFAULT] host")
    return names


def plan(config: Config) -> list[Node]:
    """Every node this process runs, the primary first; an empty list means one node, configured as it is."""
    names = extra_names(config)
    if not names:
        return []
    network = ipaddress.ip_network(config.values.get(SECTION, {}).get("underlay_cidr", "10.250.0.0/24"))
    hosts = [config.host, *names]
    addresses = list(network.hosts())
    if len(addresses) < len(hosts):
        raise ValueError(f"[nodes] underlay_cidr {network} has too few addresses for {len(hosts)} nodes")
    ips = {h: f"{addresses[i]}/{network.prefixlen}" for i, h in enumerate(hosts)}
    ns = underlay_netns(config.host)
    nodes = []
    for i, host in enumerate(hosts):
        peers = [ips[h].split("/")[0] for h in hosts if h != host]
        nodes.append(Node(host, ips[host], node_config(config, host, ips[host], peers, ns, primary=i == 0), i == 0))
    return nodes


def node_config(config: Config, host: str, underlay_ip: str, peers: list[str], netns: str, primary: bool) -> Config:
    """``config`` as one node's agents read it: its host name, underlay address and VXLAN peers."""
    values = copy.deepcopy(config.values)
    values["DEFAULT"]["host"] = host
    network = values.setdefault("network", {})
    network.update(underlay_netns=netns, underlay_ip=underlay_ip, underlay_dev=UNDERLAY_DEV,
                   vxlan_peers=",".join(peers))
    if not primary:
        # The primary keeps <state_dir>/network; the others' dnsmasq/router state must not mix with it.
        network["state_path"] = str(config.state_dir / f"network-{host}")
    # A volume node's NBD server ([volume] nbd_host: its underlay address) listens in its node namespace.
    values.setdefault("volume", {}).setdefault(
        "nbd_netns", values.get("compute", {}).get("node_netns") or f"tsnode-{host}")
    # Instances stay in the one shared instances_path (shared instance storage, as Nova treats NFS).
    values.setdefault("compute", {})["live_migration_inbound_addr"] = underlay_ip.split("/")[0]
    return Config(values)
