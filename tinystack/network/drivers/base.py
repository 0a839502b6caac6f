"""The contract between the network agent and a dataplane: about ten idempotent, level-triggered calls.

Every ``ensure_*`` makes the host match the given contract document (docs/contracts.md) and succeeds
when it already does; every ``delete_*`` succeeds when the thing is already gone. Platform details
(device names, pids, rule syntax) never leave the driver. A call that cannot finish because another
document is missing raises ``NotReady`` (``Raced`` when the host changed under it); any other failure raises
and the agent reports ERROR.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

Doc = dict[str, Any]


class NotReady(RuntimeError):
    """A dependency (e.g. the network document of a port) has not arrived yet: retry later, not ERROR."""


class Raced(NotReady):
    """The host changed under the call (a device another reconcile removed or made at the same moment): the
    expected outcome of churn, so look again soon, quietly; ERROR only if it keeps happening."""


@dataclass
class Keep:
    """What the desired state owns on this host; ``collect_garbage`` removes everything else it made."""

    networks: set[str] = field(default_factory=set)
    ports: set[str] = field(default_factory=set)  # instance ports (taps) only
    dhcp: set[str] = field(default_factory=set)  # network ids with a DHCP server here
    routers: set[str] = field(default_factory=set)
    dhcp_ports: set[str] = field(default_factory=set)
    router_ports: set[str] = field(default_factory=set)


class NetworkDriver(Protocol):
    async def setup(self) -> None:
        """Create the node namespace and the driver's state; adopt whatever an earlier run left."""

    async def teardown(self) -> None:
        """Remove every namespace, device, process and rule this driver made for this host."""

    async def ensure_network(self, network: Doc) -> None:
        """Bridge (and VXLAN device, and for ``router_external`` the veth to the external namespace) exist and are up."""

    async def delete_network(self, network_id: str) -> None:
        """The network's bridge, VXLAN device and external veth are gone (instance taps are ports' business)."""

    async def ensure_port(self, port: Doc, network: Doc) -> None:
        """An instance port's device ``tap<id>`` exists in the node namespace, on its bridge, up.

        A device of that name that already exists (QEMU's, or a test's veth) is adopted, not replaced. A trunk's
        subport (``port['vlan']``: parent id and segmentation id) carries that VLAN of the parent's device to
        its network instead (``NotReady`` until the parent's device exists).
        """

    async def port_wired(self, port: Doc) -> bool:
        """Whether the device of a network-owned port (DHCP, router) is on its bridge."""

    async def delete_port(self, port_id: str) -> None:
        """The instance port's tap is gone."""

    async def ensure_dhcp(self, dhcp: Doc, network: Doc) -> None:
        """``qdhcp-<net>`` with its port, a running dnsmasq serving exactly ``dhcp['hosts']``, and the metadata proxy."""

    async def delete_dhcp(self, network_id: str) -> None:
        """No dnsmasq, proxy or ``qdhcp-<net>`` namespace is left for this network."""

    async def ensure_router(self, router: Doc, networks: dict[str, Doc]) -> None:
        """``qrouter-<id>`` with exactly its qr-/qg- ports, addresses, routes, floating IPs and NAT rules."""

    async def delete_router(self, router_id: str) -> None:
        """The router's namespace, its ports and its rules are gone."""

    async def apply_firewall(self, ports: list[Doc], networks: list[str]) -> None:
        """Bring the security-group ruleset to the one for ``ports``; each port's rules change atomically (no
        moment with half a port's rules), whether the driver replaces everything or only what differs."""

    async def firewall_intact(self) -> bool:
        """Whether the ruleset last applied is still in force (nobody flushed or edited it)."""

    async def collect_garbage(self, keep: Keep) -> list[str]:
        """Remove what this driver made that ``keep`` does not own; return a description of each removal."""
