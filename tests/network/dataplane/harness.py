"""A network agent on the real Linux driver, driven with hand-made contract documents on an InProcessBus.

Every namespace it or the test makes carries a random prefix, and ``close`` removes them by exact name.
Guests are test namespaces whose veth takes the place of the port's tap (the agent adopts it).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import secrets
import struct
import subprocess
import uuid
from pathlib import Path
from typing import Any

from tinystack import config
from tinystack.core.bus import InProcessBus
from tinystack.network import agent_settings
from tinystack.network.agent import NetworkAgent
from tinystack.network.dataplane import names, tcbpf
from tinystack.network.drivers.linux import LinuxDriver

Doc = dict[str, Any]

UDHCPC_SCRIPT = """#!/bin/sh
[ "$1" = bound ] || exit 0
ip addr add "$ip/$mask" dev "$interface"
echo "ip=$ip router=$router dns=$dns domain=$domain staticroutes=$staticroutes" > "$LEASE_FILE"
"""


def sh(*argv: str, netns: str | None = None, check: bool = True, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    full = ["ip", "netns", "exec", netns, *argv] if netns else list(argv)
    return subprocess.run(full, capture_output=True, text=True, check=check, timeout=timeout)


def new_id() -> str:
    return str(uuid.uuid4())


def mac() -> str:
    return "fa:16:3e:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(3))


class Harness:
    def __init__(self, tmp: Path, resync: float = 1.0) -> None:
        self.tmp = tmp
        self.prefix = "tsn" + secrets.token_hex(3)
        self.host = self.prefix
        self.ext_ns = f"{self.prefix}-ext"
        self.guests: list[str] = []
        self.netns_made: list[str] = []
        self.statuses: list[Doc] = []
        self.generation = 0
        self.cfg = config.load(None, environ={}, overrides={
            "state_dir": str(tmp / "state"), "host": self.host,
            "network__external_netns": self.ext_ns, "network__resync_interval": str(resync)})
        self.settings = agent_settings.load(self.cfg)
        self.bus = InProcessBus()
        self.agent = self._agent()

    def _agent(self) -> NetworkAgent:
        return NetworkAgent(self.bus, self.settings, LinuxDriver(self.settings))

    async def start(self) -> None:
        sh("ip", "netns", "add", self.ext_ns)
        sh("ip", "-n", self.ext_ns, "link", "set", "lo", "up")

        async def record(message: Doc) -> None:
            self.statuses.append(message)

        self.bus.subscribe("status.network", record)
        await self.agent.start()

    async def restart(self, cleanup: bool) -> None:
        await self.agent.stop(cleanup=cleanup)
        self.agent = self._agent()
        await self.agent.start()

    async def put(self, kind: str, spec: Doc) -> None:
        self.generation += 1
        await self.agent.handle({"op": "put", "type": kind, "id": spec["id"], "generation": self.generation, "spec": spec})

    async def delete(self, kind: str, rid: str) -> None:
        self.generation += 1
        await self.agent.handle({"op": "delete", "type": kind, "id": rid, "generation": self.generation})

    async def settle(self) -> None:
        await self.bus.drain()
        await self.agent.wait_idle()

    async def wait_for(self, predicate: Any, timeout: float = 10.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("condition not reached in time")
            await asyncio.sleep(0.1)

    async def active(self, *items: tuple[str, Doc]) -> None:
        """Wait until the agent reported every ``(kind, doc)`` ACTIVE (NotReady retries run on timers)."""
        await self.settle()
        await self.wait_for(lambda: all((self.status_of(k, d["id"]) or {}).get("status") == "ACTIVE" for k, d in items))
        await self.settle()

    async def wait_for_forwarding(self, device: str, timeout: float = 5.0) -> bool:
        """Wait until the bridge forwards frames from ``device``: the kernel turns a new bridge port on when it
        sees carrier, which its link-state worker may report up to a second after the device came up."""
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            out = sh("bridge", "-j", "link", "show", "dev", device, netns=self.settings.node_netns, check=False).stdout
            if any(link.get("state") == "forwarding" for link in json.loads(out or "[]")):
                return True
            await asyncio.sleep(0.02)
        return False

    def status_of(self, kind: str, rid: str) -> Doc | None:
        for message in reversed(self.statuses):
            if message["type"] == kind and message["id"] == rid:
                return message["status"]
        return None

    # -- guests ------------------------------------------------------------------------------------

    def guest(self, port: Doc, address: str | None = None, gateway: str | None = None) -> str:
        """A namespace whose eth0 is plugged where the port's tap goes (before the port doc arrives)."""
        ns = f"{self.prefix}-g{len(self.guests)}"
        sh("ip", "netns", "add", ns)
        self.guests.append(ns)
        sh("ip", "-n", self.settings.node_netns, "link", "add", names.tap(port["id"]), "type", "veth",
           "peer", "name", "eth0", "netns", ns)
        sh("ip", "-n", ns, "link", "set", "eth0", "address", port["mac_address"])
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        if address:
            sh("ip", "-n", ns, "addr", "add", address, "dev", "eth0")
        if gateway:
            sh("ip", "-n", ns, "route", "add", "default", "via", gateway)
        return ns

    def dhcp_client(self, ns: str) -> str:
        """Run busybox udhcpc once in ``ns`` and return what the server handed out."""
        script = self.tmp / "udhcpc.sh"
        script.write_text(UDHCPC_SCRIPT)
        script.chmod(0o755)
        lease = self.tmp / f"lease-{ns}"
        sh("env", f"LEASE_FILE={lease}", "busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f", "-O", "staticroutes",
           "-t", "5", "-T", "1",
           "-s", str(script), netns=ns)
        return lease.read_text()

    def ping(self, ns: str, address: str, source: str | None = None) -> bool:
        argv = ["busybox", "ping", "-c", "1", "-W", "1", *(["-I", source] if source else []), address]
        return sh(*argv, netns=ns, check=False).returncode == 0

    def ping_eventually(self, ns: str, address: str, tries: int = 4) -> bool:
        return any(self.ping(ns, address) for _ in range(tries))

    async def close(self) -> None:
        try:
            await self.agent.stop(cleanup=True)
        finally:
            await self.bus.close()
            for ns in [*self.guests, self.ext_ns]:
                sh("ip", "netns", "del", ns, check=False)


def _insn(op: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", op, (src << 4) | dst, off, imm)


def guest_vlan(tmp: Path, ns: str, vid: int) -> None:
    """Every frame ``ns``'s eth0 sends is tagged ``vid``; every tag it receives is removed."""
    tag = b"".join([_insn(0xBF, 6, 1), _insn(0xBF, 1, 6), _insn(0xB7, 2, imm=tcbpf.ETH_P_8021Q_BE),
                    _insn(0xB7, 3, imm=vid), _insn(0x85, imm=tcbpf.SKB_VLAN_PUSH), _insn(0xB7, 0, imm=0),
                    _insn(0x95)])
    untag = b"".join([_insn(0xBF, 1, 1), _insn(0x85, imm=tcbpf.SKB_VLAN_POP), _insn(0xB7, 0, imm=0), _insn(0x95)])
    sh("tc", "qdisc", "add", "dev", "eth0", "clsact", netns=ns)
    for direction, name, code in (("egress", "tag", tag), ("ingress", "untag", untag)):
        path = tmp / f"{ns}-{name}.o"
        path.write_bytes(tcbpf.elf_object(code, name))
        sh("tc", "filter", "add", "dev", "eth0", direction, "bpf", "da", "obj", str(path), "sec", "tc", netns=ns)


# -- contract documents ---------------------------------------------------------------------------


def network_doc(cidr: str, vni: int | None = None, external: bool = False, project: str = "p1") -> Doc:
    net = ipaddress.ip_network(cidr)
    gateway = str(net.network_address + 1)
    return {"id": new_id(), "project_id": project, "network_type": "flat" if external else "vxlan",
            "segmentation_id": vni, "physical_network": "public" if external else None, "mtu": 1450,
            "router_external": external, "external_gateway_ip": gateway if external else None,
            "subnets": [{"id": new_id(), "cidr": cidr, "ip_version": 4, "gateway_ip": gateway, "enable_dhcp": not external,
                         "dns_nameservers": [], "host_routes": [], "allocation_pools": []}]}


def port_doc(network: Doc, ip: str, rules: list[Doc] | None = None, owner: str = "compute:nova") -> Doc:
    return {"id": new_id(), "network_id": network["id"], "mac_address": mac(),
            "fixed_ips": [{"subnet_id": network["subnets"][0]["id"], "ip_address": ip}], "device_owner": owner,
            "device_id": new_id(), "port_security_enabled": True, "allowed_address_pairs": [],
            "security_group_rules": rules if rules is not None else [EGRESS_ALL]}


def dhcp_doc(network: Doc, ip: str, ports: list[Doc]) -> Doc:
    port = {"id": new_id(), "mac_address": mac(), "fixed_ips": [{"subnet_id": network["subnets"][0]["id"], "ip_address": ip}]}
    hosts = [{"mac": p["mac_address"], "ip": p["fixed_ips"][0]["ip_address"], "hostname": f"vm-{p['id'][:6]}"} for p in ports]
    return {"id": network["id"], "network_id": network["id"], "port": port, "hosts": hosts,
            "subnets": network["subnets"], "dns_domain": "openstacklocal",
            "metadata": {"ip": "169.254.169.254", "network_id": network["id"], "upstream": ""}}


EGRESS_ALL: Doc = {"direction": "egress", "ethertype": "IPv4", "protocol": None, "port_range_min": None,
                   "port_range_max": None, "remote_ip_prefix": None}
INGRESS_ICMP: Doc = {"direction": "ingress", "ethertype": "IPv4", "protocol": "icmp", "port_range_min": None,
                     "port_range_max": None, "remote_ip_prefix": None}
