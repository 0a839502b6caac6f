"""The real dataplane: node namespace, bridges, VXLAN, taps, qdhcp/qrouter namespaces and the firewall.

Every command goes through ``tinystack.core.host.run`` (``ip -batch`` to keep one fork per step); each
ensure reads the host first and changes only what differs, so calling it again changes nothing.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import shutil
import time
from pathlib import Path

from tinystack.core import host
from tinystack.network.agent_settings import AgentSettings
from tinystack.network.dataplane import ip, names
from tinystack.network.dataplane.dhcp import DhcpServers
from tinystack.network.dataplane.routers import Routers
from tinystack.network.dataplane.secgroups import SecurityGroups
from tinystack.network.dataplane.subports import Subports
from tinystack.network.drivers.base import Doc, Keep, NotReady, Raced

log = logging.getLogger(__name__)

_LINKS_TTL = 1.0  # seconds a snapshot of the node namespace's links is trusted (resyncs of 1,000 ports share one)
UNDERLAY_BRIDGE = "ulbr"
# Room for a full 1500-byte guest frame plus VXLAN's 50 bytes: the underlay is ours, so it need not be 1500.
UNDERLAY_MTU = 1600


async def ensure_underlay(netns: str) -> None:
    """The underlay of several nodes on one machine: namespace ``netns`` holding one bridge, up."""
    await ip.ensure_netns(netns)
    links = await ip.links(netns)
    cmds = [] if UNDERLAY_BRIDGE in links else [f"link add {UNDERLAY_BRIDGE} type bridge forward_delay 0 stp_state 0"]
    await ip.batch(netns, [*cmds, f"link set {UNDERLAY_BRIDGE} up"])


async def remove_underlay(netns: str) -> None:
    """Remove the underlay namespace (the nodes' veth peers in it go with it)."""
    await ip.delete_netns(netns)


def underlay_peer(host: str) -> str:
    """The underlay end of ``host``'s veth (hashed: host names are longer than a device name may be)."""
    return "ul" + hashlib.sha1(host.encode()).hexdigest()[:10]


class LinuxDriver:
    def __init__(self, settings: AgentSettings) -> None:
        self.settings = settings
        self.node = settings.node_netns
        self.state = settings.state_dir
        self._links: dict[str, ip.Link] | None = None
        self._links_at = 0.0
        self._epoch = 0
        self.dhcp = DhcpServers(settings, self.node, self._invalidate, self._batch)
        self.routers = Routers(settings, self.node, self._invalidate, self._batch)
        self.security_groups = SecurityGroups(self.node)
        self.subports = Subports(self.node, self.state, self._batch, self._node_links, self._invalidate)
        self._subports: dict[str, tuple[str, int]] = {}  # subport id → (parent id, VLAN id), as last wired

    # -- node -------------------------------------------------------------------------------------

    async def setup(self) -> None:
        for tool in ("ip", "bridge", "iptables-restore", "nft", self.settings.dnsmasq):
            if shutil.which(tool) is None:
                raise RuntimeError(f"the linux network driver needs {tool!r} on PATH")
        self.state.mkdir(parents=True, exist_ok=True)
        await ip.ensure_netns(self.node)
        # Bridged IP traffic must pass iptables (conntrack, security groups); this sysctl is per namespace.
        for key in ("net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables"):
            if not Path("/proc/sys", *key.split(".")).exists():
                raise RuntimeError("bridge netfilter (br_netfilter) is unavailable: security groups cannot be enforced")
            await ip.sysctl(self.node, key, "1")
        if self.settings.underlay_netns:
            await self._ensure_underlay_link()
        self._invalidate()

    async def _ensure_underlay_link(self) -> None:
        """This node's veth into the underlay bridge, carrying the VXLAN endpoint address."""
        s = self.settings
        if not ip.netns_exists(s.underlay_netns):
            raise RuntimeError(f"underlay namespace {s.underlay_netns} does not exist")
        dev, peer = s.underlay_dev, underlay_peer(s.host)
        if dev not in await ip.links(self.node):
            await host.run(["ip", "-n", s.underlay_netns, "link", "del", peer], check=False)
            await host.run(["ip", "-n", s.underlay_netns, "link", "add", peer, "mtu", str(UNDERLAY_MTU), "type", "veth",
                            "peer", "name", dev, "netns", self.node])
        await ip.batch(s.underlay_netns, [f"link set {peer} mtu {UNDERLAY_MTU} master {UNDERLAY_BRIDGE} up"])
        want = f"{s.underlay_ip}/{s.underlay_prefix}"
        have = await ip.addresses(self.node, dev)
        cmds = [f"addr del {a} dev {dev}" for a in sorted(have - {want})]
        cmds += [f"addr add {want} dev {dev}"] if want not in have else []
        await ip.batch(self.node, [*cmds, f"link set {dev} mtu {UNDERLAY_MTU} up"])

    async def teardown(self) -> None:
        for network_id in await self.dhcp.owned():
            await self.dhcp.delete(network_id)
        await self.dhcp.stop_relay()
        for router_id in await self.routers.owned():
            await self.routers.delete(router_id)
        for network_id in self._external_networks():
            await self._delete_external(network_id)
        await ip.delete_netns(self.node)
        shutil.rmtree(self.state, ignore_errors=True)
        self._invalidate()

    def _invalidate(self) -> None:
        self._links = None
        self._epoch += 1

    async def _node_links(self) -> dict[str, ip.Link]:
        now = time.monotonic()
        if self._links is not None and now - self._links_at <= _LINKS_TTL:
            return self._links
        epoch = self._epoch
        links = await ip.links(self.node)
        if epoch == self._epoch:  # nobody changed the namespace while we listed it: safe to share
            self._links, self._links_at = links, now
        return links

    async def _batch(self, commands: list[str], check: bool = True) -> None:
        if commands:
            self._invalidate()
            try:
                await ip.batch(self.node, commands, check=check)
            finally:
                self._invalidate()

    # -- networks ---------------------------------------------------------------------------------

    async def ensure_network(self, network: Doc) -> None:
        links = await self._node_links()
        br = names.bridge(network["id"])
        mtu = int(network.get("mtu") or 1500)
        cmds: list[str] = []
        if br not in links:
            cmds.append(f"link add {br} type bridge forward_delay 0 stp_state 0")
        if br not in links or not links[br].up:
            cmds.append(f"link set {br} up")
        if network.get("network_type") == "vxlan" and network.get("segmentation_id") is not None:
            vx = names.vxlan(int(network["segmentation_id"]))
            if vx not in links:
                dev = f" dev {self.settings.underlay_dev}" if self.settings.underlay_dev else ""
                cmds.append(f"link add {vx} type vxlan id {network['segmentation_id']} dstport "
                            f"{self.settings.vxlan_port} local {self.settings.underlay_ip}{dev}")
            if vx not in links or links[vx].master != br or not links[vx].up:
                cmds.append(f"link set {vx} mtu {mtu} master {br} up")
        await self._batch(cmds)
        if network.get("network_type") == "vxlan" and network.get("segmentation_id") is not None:
            await self._ensure_flood(names.vxlan(int(network["segmentation_id"])))
        if network.get("router_external"):
            await self._ensure_external(network)

    async def _ensure_flood(self, vx: str) -> None:
        # Static peers: one all-zero FDB entry per remote VTEP floods BUM traffic to it (no multicast needed).
        if not self.settings.vxlan_peers:
            return
        out = await ip.device_command(["bridge", "fdb", "show", "dev", vx], netns=self.node)
        have = {line.split(" dst ")[1].split()[0] for line in out.stdout.splitlines()
                if line.startswith("00:00:00:00:00:00") and " dst " in line}
        for peer in self.settings.vxlan_peers:
            if peer not in have:
                await ip.device_command(["bridge", "fdb", "append", "00:00:00:00:00:00", "dev", vx, "dst", peer],
                                        netns=self.node)

    def _ext_ns_args(self) -> list[str]:
        return ["-n", self.settings.external_netns] if self.settings.external_netns else []

    def _external_networks(self) -> list[str]:
        marker = self.state / "external"
        return sorted(p.name for p in marker.iterdir()) if marker.is_dir() else []

    async def _ensure_external(self, network: Doc) -> None:
        """The one veth pair from the external bridge to the external host namespace, carrying the gateway IP."""
        ext_ns = self.settings.external_netns
        if ext_ns and not ip.netns_exists(ext_ns):
            raise NotReady(f"external namespace {ext_ns} does not exist")
        br = names.bridge(network["id"])
        bridge_side = names.external_bridge_side(self.settings.host, network["id"])
        host_side = names.external_host_side(self.settings.host, network["id"])
        (self.state / "external").mkdir(parents=True, exist_ok=True)
        (self.state / "external" / network["id"]).touch()  # ownership marker: teardown and GC find it
        links = await self._node_links()
        if bridge_side not in links:
            await host.run(["ip", *self._ext_ns_args(), "link", "del", host_side], check=False)
            self._invalidate()
            await ip.device_command(["ip", *self._ext_ns_args(), "link", "add", host_side, "type", "veth", "peer",
                                     "name", bridge_side, "netns", self.node])
            self._invalidate()
            links = await self._node_links()
        if bridge_side not in links:
            raise Raced(f"{bridge_side} went while it was being made")
        if links[bridge_side].master != br or not links[bridge_side].up:
            await self._batch([f"link set {bridge_side} master {br} up"])
        gateway = network.get("external_gateway_ip")
        want: set[str] = set()
        if gateway:
            for subnet in network.get("subnets", ()):
                net = ipaddress.ip_network(subnet["cidr"], strict=False)
                if ipaddress.ip_address(gateway) in net:
                    want.add(f"{gateway}/{net.prefixlen}")
        have = await ip.addresses(ext_ns or None, host_side)
        cmds = [f"addr add {a} dev {host_side}" for a in sorted(want - have)]
        cmds += [f"addr del {a} dev {host_side}" for a in sorted(have - want)]
        cmds.append(f"link set {host_side} up")
        await ip.batch(ext_ns or None, cmds)

    async def _delete_external(self, network_id: str) -> None:
        host_side = names.external_host_side(self.settings.host, network_id)
        await host.run(["ip", *self._ext_ns_args(), "link", "del", host_side], check=False)
        (self.state / "external" / network_id).unlink(missing_ok=True)
        self._invalidate()

    async def delete_network(self, network_id: str) -> None:
        links = await self._node_links()
        br = names.bridge(network_id)
        cmds = [f"link del {link.name}" for link in links.values() if link.master == br and link.kind == "vxlan"]
        if br in links:
            cmds.append(f"link del {br}")
        await self._batch(cmds)
        if network_id in self._external_networks():
            await self._delete_external(network_id)

    # -- ports ------------------------------------------------------------------------------------

    async def ensure_port(self, port: Doc, network: Doc) -> None:
        links = await self._node_links()
        br, tap = names.bridge(network["id"]), names.tap(port["id"])
        if br not in links:
            raise NotReady(f"bridge {br} of network {network['id']} is not there yet")
        if port.get("vlan"):
            # A trunk's subport: its VLAN is carried between the parent's tap and this network (subports.py).
            self._subports[port["id"]] = (port["vlan"]["parent_id"], int(port["vlan"]["segmentation_id"]))
            await self.subports.ensure(port, network)
            return
        mtu = int(network.get("mtu") or 1500)
        cmds: list[str] = []
        if tap not in links:
            cmds.append(f"tuntap add dev {tap} mode tap")
        if cmds or links[tap].master != br or not links[tap].up:
            cmds.append(f"link set {tap} mtu {mtu} master {br} up")
        await self._batch(cmds)

    async def port_wired(self, port: Doc) -> bool:
        link = (await self._node_links()).get(names.tap(port["id"]))
        return link is not None and link.master is not None and link.up

    async def delete_port(self, port_id: str) -> None:
        if port_id in self._subports:
            parent_id, vid = self._subports.pop(port_id)
            await self.subports.delete(port_id, parent_id, vid)
            return
        if names.tap(port_id) in await self._node_links():
            await self._batch([f"link del {names.tap(port_id)}"])

    # -- DHCP and routers (own modules) -----------------------------------------------------------

    async def ensure_dhcp(self, dhcp: Doc, network: Doc) -> None:
        if names.bridge(network["id"]) not in await self._node_links():
            raise NotReady(f"bridge of network {network['id']} is not there yet")
        await self.dhcp.ensure(dhcp, network, await self._node_links())

    async def delete_dhcp(self, network_id: str) -> None:
        await self.dhcp.delete(network_id)

    async def ensure_router(self, router: Doc, networks: dict[str, Doc]) -> None:
        await self.routers.ensure(router, networks, await self._node_links())

    async def delete_router(self, router_id: str) -> None:
        await self.routers.delete(router_id)

    # -- firewall ---------------------------------------------------------------------------------

    async def apply_firewall(self, ports: list[Doc], networks: list[str]) -> None:
        await self.security_groups.apply(ports, networks)

    async def firewall_intact(self) -> bool:
        return await self.security_groups.intact()

    # -- garbage ----------------------------------------------------------------------------------

    async def collect_garbage(self, keep: Keep) -> list[str]:
        removed: list[str] = []
        for network_id in await self.dhcp.owned():
            if network_id not in keep.dhcp:
                await self.dhcp.delete(network_id)
                removed.append(f"dhcp {network_id}")
        for router_id in await self.routers.owned():
            if router_id not in keep.routers:
                await self.routers.delete(router_id)
                removed.append(f"router {router_id}")
        for network_id in self._external_networks():
            if network_id not in keep.networks:
                await self._delete_external(network_id)
                removed.append(f"external veth of {network_id}")
        self._invalidate()
        links = await self._node_links()
        bridges = {names.bridge(n) for n in keep.networks}
        taps = {names.tap(p) for p in keep.ports | keep.dhcp_ports | keep.router_ports}
        cmds = []
        for link in links.values():
            stale_tap = link.name.startswith(names.TAP) and link.name not in taps
            stale_bridge = link.kind == "bridge" and link.name.startswith(names.BRIDGE) and link.name not in bridges
            stale_vxlan = link.kind == "vxlan" and link.master not in bridges
            stale_ext = link.name.startswith("tsx") and link.master not in bridges
            if stale_tap or stale_bridge or stale_vxlan or stale_ext:
                cmds.append(f"link del {link.name}")
                removed.append(f"device {link.name}")
        await self._batch(cmds)
        removed += await self.subports.collect_garbage(keep.ports)
        return removed
