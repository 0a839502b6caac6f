"""Routers: ``qrouter-<id>`` namespaces with qr-/qg- veths, forwarding, routes, floating IPs and NAT.

The NAT table is one iptables-restore document per router (SNAT for the gateway, 1:1 DNAT/SNAT per
floating IP), replaced in one transaction whenever it differs from what the kernel holds.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import shutil
from collections.abc import Awaitable, Callable
from typing import Any

from tinystack.core import host
from tinystack.network.agent_settings import AgentSettings
from tinystack.network.dataplane import ip, names
from tinystack.network.drivers.base import NotReady, Raced

log = logging.getLogger(__name__)

NodeBatch = Callable[..., Awaitable[None]]

Doc = dict[str, Any]


def render_nat(router: Doc) -> str:
    """The ``*nat`` table of ``qrouter-<id>``; without a gateway it is empty (no NAT at all)."""
    lines = ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
             ":POSTROUTING ACCEPT [0:0]"]
    gateway = router.get("gateway")
    if gateway:
        qg = names.qg_dev(gateway["port_id"])
        for fip in sorted(router.get("floating_ips") or (), key=lambda f: f["floating_ip"]):
            outside, inside = fip["floating_ip"], fip["fixed_ip"]
            lines += [
                f"-A PREROUTING -d {outside}/32 -j DNAT --to-destination {inside}",
                # Connections the router itself opens to the floating IP are translated too.
                f"-A OUTPUT -d {outside}/32 -j DNAT --to-destination {inside}",
                f"-A POSTROUTING -s {inside}/32 -o {qg} -j SNAT --to-source {outside}",
            ]
        if gateway.get("enable_snat", True):
            # Replies of DNATed connections keep their addresses; everything else leaving qg- is SNATed.
            lines.append(f"-A POSTROUTING -o {qg} -m conntrack --ctstate DNAT -j ACCEPT")
            lines.append(f"-A POSTROUTING -o {qg} -j SNAT --to-source {gateway['ip']}")
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def rule_count(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.startswith("-A "))


def _prefixed(address: str, cidr: str) -> str:
    return f"{address}/{ipaddress.ip_network(cidr, strict=False).prefixlen}"


def _network_of_subnet(networks: dict[str, Doc], subnet_id: str) -> Doc | None:
    for network in networks.values():
        if any(s["id"] == subnet_id for s in network.get("subnets", ())):
            return network
    return None


class Routers:
    def __init__(self, settings: AgentSettings, node: str, invalidate: Callable[[], None],
                 node_batch: NodeBatch) -> None:
        self.settings = settings
        self.node = node
        self.base = settings.state_dir / "routers"
        self._invalidate = invalidate
        self._node_batch = node_batch  # iproute2 commands in the node namespace, keeping the driver's view fresh

    async def owned(self) -> list[str]:
        return sorted(p.name for p in self.base.iterdir() if p.is_dir()) if self.base.is_dir() else []

    async def ensure(self, router: Doc, networks: dict[str, Doc], node_links: dict[str, ip.Link]) -> None:
        ns = names.qrouter(router["id"])
        (self.base / router["id"]).mkdir(parents=True, exist_ok=True)  # ownership record
        if await ip.ensure_netns(ns):
            await ip.sysctl(ns, "net.ipv4.ip_forward", "1")
            await ip.sysctl(ns, "net.ipv6.conf.all.forwarding", "1")
        # (port_id, device, bridge, mac, addresses) for every port the router should have.
        wanted: list[tuple[str, str, str, str, set[str]]] = []
        for itf in router.get("interfaces") or ():
            network = _network_of_subnet(networks, itf["subnet_id"])
            if network is None:
                raise NotReady(f"network of subnet {itf['subnet_id']} has not arrived")
            wanted.append((itf["port_id"], names.qr_dev(itf["port_id"]), names.bridge(network["id"]),
                           itf["mac_address"], {_prefixed(itf["ip"], itf["cidr"])}))
        gateway = router.get("gateway")
        if gateway:
            if gateway["network_id"] not in networks:
                raise NotReady(f"external network {gateway['network_id']} has not arrived")
            fips = {f"{f['floating_ip']}/32" for f in router.get("floating_ips") or ()}
            wanted.append((gateway["port_id"], names.qg_dev(gateway["port_id"]), names.bridge(gateway["network_id"]),
                           gateway["mac_address"], {_prefixed(gateway["ip"], gateway["cidr"]), *fips}))
        for _, _, br, _, _ in wanted:
            if br not in node_links:
                raise NotReady(f"bridge {br} is not there yet")
        ns_links = await ip.links(ns)
        wanted_devs = {dev for _, dev, _, _, _ in wanted}
        stale = [f"link del {name}" for name in ns_links if name.startswith(("qr-", "qg-")) and name not in wanted_devs]
        await ip.batch(ns, stale)
        new_addresses: list[tuple[str, str]] = []
        for port_id, dev, br, mac, want in wanted:
            tap = names.tap(port_id)
            if dev not in ns_links or tap not in node_links:
                await self._node_batch([f"link del {tap}"], check=False)
                await host.run(["ip", "-n", ns, "link", "del", dev], check=False)
                await self._node_batch([f"link add {tap} type veth peer name {dev} netns {ns}",
                                           f"link set {tap} master {br} up"])
                ns_links = await ip.links(ns)
            elif node_links[tap].master != br or not node_links[tap].up:
                await self._node_batch([f"link set {tap} master {br} up"])
            link = ns_links.get(dev)
            if link is None:
                raise Raced(f"{dev} in {ns} went while it was being made")
            cmds = []
            if link.address != mac or not link.up:
                cmds.append(f"link set {dev} address {mac} up")
            have = await ip.addresses(ns, dev)
            cmds += [f"addr add {a} dev {dev}" for a in sorted(want - have)]
            cmds += [f"addr del {a} dev {dev}" for a in sorted(have - want)]
            new_addresses += [(dev, a.split("/")[0]) for a in sorted(want - have)]
            await ip.batch(ns, cmds)
        await self._ensure_routes(router, ns)
        await self._ensure_nat(router, ns)
        for dev, address in new_addresses:
            if dev.startswith("qg-") and ":" not in address:  # ARP is IPv4's
                # Gratuitous ARP so the external side forgets where a moved floating IP used to live.
                asyncio.get_running_loop().create_task(self._garp(ns, dev, address))

    async def _garp(self, ns: str, dev: str, address: str) -> None:
        if shutil.which("busybox"):
            await host.run(["busybox", "arping", "-U", "-c", "1", "-w", "1", "-I", dev, address], netns=ns, check=False)

    async def _ensure_routes(self, router: Doc, ns: str) -> None:
        gateway = router.get("gateway")
        want: dict[str, str] = {}
        if gateway and gateway.get("gateway_ip"):
            want["default"] = gateway["gateway_ip"]
        for route in router.get("routes") or ():
            want[str(ipaddress.ip_network(route["destination"], strict=False))] = route["nexthop"]
        out = await host.run(["ip", "-n", ns, "-j", "-4", "route", "show", "proto", "static"])
        have = {r["dst"]: r.get("gateway", "") for r in json.loads(out.stdout or "[]")}
        cmds = [f"route replace {dst} via {via} proto static" for dst, via in sorted(want.items()) if have.get(dst) != via]
        cmds += [f"route del {dst} proto static" for dst in sorted(set(have) - set(want))]
        await ip.batch(ns, cmds)

    async def _ensure_nat(self, router: Doc, ns: str) -> None:
        text = render_nat(router)
        saved = self.base / router["id"] / "nat"
        if saved.exists() and saved.read_text() == text:
            out = await host.run(["iptables-save", "-t", "nat"], netns=ns)
            if rule_count(out.stdout) == rule_count(text):
                return
        await host.run(["iptables-restore", "-w", "5"], netns=ns, input=text.encode())
        saved.write_text(text)

    async def delete(self, router_id: str) -> None:
        # Removing the namespace removes qr-/qg- and with them their taps on the bridges.
        await ip.delete_netns(names.qrouter(router_id))
        self._invalidate()
        shutil.rmtree(self.base / router_id, ignore_errors=True)
