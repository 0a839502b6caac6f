"""An in-memory dataplane with the linux driver's contracts, for fast agent tests and scale benchmarks.

It renders the real firewall documents (so a benchmark pays the real rendering cost) but keeps
everything in dictionaries; ``tamper_*`` helpers let tests break "host" state to check self-healing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tinystack.network.dataplane import firewall, routers
from tinystack.network.drivers.base import Doc, Keep, NotReady


@dataclass
class FakeHost:
    node: bool = False
    bridges: set[str] = field(default_factory=set)  # network ids
    taps: dict[str, str] = field(default_factory=dict)  # port id -> network id
    dhcp: dict[str, list[Doc]] = field(default_factory=dict)  # network id -> hosts served
    dnsmasq_alive: dict[str, bool] = field(default_factory=dict)
    routers: dict[str, str] = field(default_factory=dict)  # router id -> NAT document
    firewall: tuple[str, str] | None = None
    applies: int = 0


class FakeDriver:
    def __init__(self) -> None:
        self.host = FakeHost()

    async def setup(self) -> None:
        self.host.node = True

    async def teardown(self) -> None:
        self.host = FakeHost()

    async def ensure_network(self, network: Doc) -> None:
        self.host.bridges.add(network["id"])

    async def delete_network(self, network_id: str) -> None:
        self.host.bridges.discard(network_id)

    async def ensure_port(self, port: Doc, network: Doc) -> None:
        if network["id"] not in self.host.bridges:
            raise NotReady(f"bridge of {network['id']} is not there yet")
        vlan = port.get("vlan")
        if vlan and vlan["parent_id"] not in self.host.taps:  # a subport is a VLAN of its parent's device
            raise NotReady(f"device of trunk parent {vlan['parent_id']} is not there yet")
        self.host.taps[port["id"]] = network["id"]

    async def port_wired(self, port: Doc) -> bool:
        return port["id"] in self.host.taps

    async def delete_port(self, port_id: str) -> None:
        self.host.taps.pop(port_id, None)

    async def ensure_dhcp(self, dhcp: Doc, network: Doc) -> None:
        if network["id"] not in self.host.bridges:
            raise NotReady(f"bridge of {network['id']} is not there yet")
        self.host.dhcp[network["id"]] = list(dhcp.get("hosts", ()))
        self.host.dnsmasq_alive[network["id"]] = True
        self.host.taps[dhcp["port"]["id"]] = network["id"]

    async def delete_dhcp(self, network_id: str) -> None:
        self.host.dhcp.pop(network_id, None)
        self.host.dnsmasq_alive.pop(network_id, None)

    async def ensure_router(self, router: Doc, networks: dict[str, Doc]) -> None:
        self.host.routers[router["id"]] = routers.render_nat(router)

    async def delete_router(self, router_id: str) -> None:
        self.host.routers.pop(router_id, None)

    async def apply_firewall(self, ports: list[Doc], networks: list[str]) -> None:
        self.host.firewall = (firewall.render_iptables(ports, networks), firewall.render_nft(ports))
        self.host.applies += 1

    async def firewall_intact(self) -> bool:
        return self.host.firewall is not None

    async def collect_garbage(self, keep: Keep) -> list[str]:
        removed = [f"bridge {n}" for n in self.host.bridges - keep.networks]
        self.host.bridges &= keep.networks
        owned = keep.ports | keep.dhcp_ports | keep.router_ports
        for port_id in [p for p in self.host.taps if p not in owned]:
            del self.host.taps[port_id]
            removed.append(f"tap {port_id}")
        for network_id in [n for n in self.host.dhcp if n not in keep.dhcp]:
            await self.delete_dhcp(network_id)
            removed.append(f"dhcp {network_id}")
        for router_id in [r for r in self.host.routers if r not in keep.routers]:
            del self.host.routers[router_id]
            removed.append(f"router {router_id}")
        return removed
