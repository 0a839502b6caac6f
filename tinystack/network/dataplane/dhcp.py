"""DHCP servers: ``qdhcp-<net>`` namespaces with their port, dnsmasq and the metadata proxy, supervised."""

from __future__ import annotations

import asyncio
import importlib.util
import ipaddress
import json
import logging
import shutil
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import tinystack
from tinystack.core import host, sockpath
from tinystack.network.agent_settings import AgentSettings
from tinystack.network.dataplane import dnsmasq, ip, names
from tinystack.network.dataplane.dnsmasq import DhcpFiles, Doc
from tinystack.network.drivers.base import Raced

log = logging.getLogger(__name__)

NodeBatch = Callable[..., Awaitable[None]]

PROXY_MODULE = "tinystack.metadata.proxy"
RELAY_MODULE = "tinystack.metadata.relay"


def proxy_available() -> bool:
    try:
        return importlib.util.find_spec(PROXY_MODULE) is not None
    except ModuleNotFoundError:
        return False


def port_addresses(port: Doc, subnets: list[Doc]) -> set[str]:
    """``ip/prefix`` for each fixed IP of ``port``, the prefix taken from the subnet that holds it."""
    found = set()
    for fixed in port.get("fixed_ips", ()):
        addr = ipaddress.ip_address(fixed["ip_address"])
        for subnet in subnets:
            net = ipaddress.ip_network(subnet["cidr"], strict=False)
            if addr in net:
                found.add(f"{addr}/{net.prefixlen}")
    return found


class DhcpServers:
    def __init__(self, settings: AgentSettings, node: str, invalidate: Callable[[], None],
                 node_batch: NodeBatch) -> None:
        self.settings = settings
        self.node = node
        self.base = settings.state_dir
        self._invalidate = invalidate
        self._node_batch = node_batch  # iproute2 commands in the node namespace, keeping the driver's view fresh

    async def owned(self) -> list[str]:
        """Networks whose DHCP server this agent made (its state dir is the ownership record)."""
        root = self.base / "dhcp"
        return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []

    async def ensure(self, doc: Doc, network: Doc, node_links: dict[str, ip.Link]) -> None:
        net_id = network["id"]
        ns = names.qdhcp(net_id)
        files = DhcpFiles(self.base, net_id)
        files.dir.mkdir(parents=True, exist_ok=True)
        if await ip.ensure_netns(ns):
            # A new namespace (first run, or one recreated over a stale file): a dnsmasq or proxy that the pid
            # files still name serves the old one, so it must go before the ones for this namespace start.
            await self._stop_daemons(files)
        port = doc["port"]
        tap, dev, br = names.tap(port["id"]), names.ns_dev(port["id"]), names.bridge(net_id)
        mtu = int(network.get("mtu") or 1500)
        ns_links = await ip.links(ns)
        fresh = dev not in ns_links or tap not in node_links
        if fresh:
            # Either end missing means the pair is broken (namespace recreated, device deleted): rebuild it.
            await self._node_batch([f"link del {tap}"], check=False)
            await host.run(["ip", "-n", ns, "link", "del", dev], check=False)
            await self._node_batch([f"link add {tap} type veth peer name {dev} netns {ns}"])
            ns_links = await ip.links(ns)
        node_link = None if fresh else node_links[tap]
        if node_link is None or node_link.master != br or not node_link.up:
            await self._node_batch([f"link set {tap} mtu {mtu} master {br} up"])
        link = ns_links.get(dev)
        if link is None:
            raise Raced(f"{dev} in {ns} went while it was being made")
        cmds = []
        if link.address != port["mac_address"] or link.mtu != mtu or not link.up:
            cmds.append(f"link set {dev} address {port['mac_address']} mtu {mtu} up")
        want = port_addresses(port, doc.get("subnets") or network.get("subnets", []))
        if doc.get("metadata"):
            want.add(f"{doc['metadata'].get('ip', dnsmasq.METADATA_IP)}/32")
        have = await ip.addresses(ns, dev)
        cmds += [f"addr add {a} dev {dev}" for a in sorted(want - have)]
        cmds += [f"addr del {a} dev {dev}" for a in sorted(have - want)]
        await ip.batch(ns, cmds)
        await self._release_stale_leases(doc, files, ns, dev)
        await self._ensure_dnsmasq(doc, files, ns)
        await self._ensure_proxy(doc, files, ns)

    async def _release_stale_leases(self, doc: Doc, files: DhcpFiles, ns: str, dev: str) -> None:
        """Drop leases whose MAC/IP pair is no longer a host: otherwise dnsmasq keeps an address promised to
        a deleted port and refuses it to the next port that gets the same IP with a new MAC."""
        wanted = {(h["mac"].lower(), h["ip"]) for h in doc.get("hosts") or ()}
        try:
            lines = files.leases.read_text().splitlines()
        except OSError:
            return
        for line in lines:
            fields = line.split()
            if len(fields) < 3 or ":" in fields[2] or (fields[1].lower(), fields[2]) in wanted:
                continue  # malformed, an IPv6 lease (dhcp_release handles v4), or still wanted
            if shutil.which("dhcp_release") is None:
                log.warning("network: dhcp_release is missing; stale lease %s %s stays", fields[1], fields[2])
                return
            await host.run(["dhcp_release", dev, fields[2], fields[1]], netns=ns, check=False)

    async def _ensure_dnsmasq(self, doc: Doc, files: DhcpFiles, ns: str) -> None:
        changed = False
        for path, text in ((files.hosts, dnsmasq.render_hosts(doc)), (files.opts, dnsmasq.render_opts(doc)),
                           (files.names, dnsmasq.render_names(doc))):
            changed |= dnsmasq.write_if_changed(path, text)
        argv = dnsmasq.command(doc, files, self.settings.dnsmasq, self.settings.dhcp_lease_time)
        cmdline = files.dir / "cmdline"
        same_args = cmdline.exists() and json.loads(cmdline.read_text()) == argv
        pid = files.read_pid()
        alive = dnsmasq.running(pid, Path(self.settings.dnsmasq).name)
        if alive and same_args:
            if changed and pid is not None:
                log.info("network: SIGHUP dnsmasq %d of %s (hosts changed)", pid, ns)
                dnsmasq.reload(pid)
            return
        if alive and pid is not None:
            await self._stop_pid(pid, Path(self.settings.dnsmasq).name)
        files.pid.unlink(missing_ok=True)
        files.leases.touch()
        # dnsmasq daemonizes and writes its pid file; host.run returns once the parent has exited.
        await host.run(argv, netns=ns)
        cmdline.write_text(json.dumps(argv))

    async def _ensure_proxy(self, doc: Doc, files: DhcpFiles, ns: str) -> None:
        meta = doc.get("metadata")
        pid = files.read_pid(files.proxy_pid)
        if not meta or not meta.get("upstream") or not proxy_available():
            if meta and not proxy_available():
                log.debug("network: %s is not importable yet, no metadata proxy in %s", PROXY_MODULE, ns)
            if pid is not None and dnsmasq.running(pid, "python"):
                await self._stop_pid(pid, "python")
            return
        # With [metadata] upstream the proxies reach the metadata API through this host's relay: a qdhcp-
        # namespace has no route to the API machines, and this host may run no API process of its own.
        upstream = await self._ensure_relay() if self.settings.metadata_upstream else meta["upstream"]
        argv = self._daemon(files.proxy_pid, files.proxy_log, PROXY_MODULE, "--bind",
                            meta.get("ip", dnsmasq.METADATA_IP), "--port", "80", "--upstream", upstream,
                            "--network-id", meta.get("network_id", doc["network_id"]),
                            "--secret-file", str(self.settings.metadata_secret))
        cmdline = files.dir / "proxy-cmdline"
        if pid is not None and dnsmasq.running(pid, "python"):
            if cmdline.exists() and json.loads(cmdline.read_text()) == argv:
                return
            await self._stop_pid(pid, "python")  # started for another upstream (the relay was set or unset)
        await host.run(argv, netns=ns)
        cmdline.write_text(json.dumps(argv))

    def _daemon(self, pidfile: Path, logfile: Path, module: str, *args: str) -> list[str]:
        return ["start-stop-daemon", "--start", "--background", "--make-pidfile", "--pidfile", str(pidfile),
                # From the directory holding the tinystack package, so ``-m`` finds it even when not installed.
                "--output", str(logfile), "--chdir", str(Path(tinystack.__file__).resolve().parent.parent),
                "--exec", sys.executable, "--", "-m", module, *args]

    async def _ensure_relay(self) -> str:
        """The relay's socket, with one relay (in the host's own namespace) forwarding to ``[metadata] upstream``."""
        pidfile, sock = self.base / "metadata-relay.pid", sockpath.fitting(self.base / "metadata-relay.sock")
        sock.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        argv = self._daemon(pidfile, self.base / "metadata-relay.log", RELAY_MODULE, "--listen", str(sock),
                            "--upstream", self.settings.metadata_upstream)
        cmdline = self.base / "metadata-relay.cmdline"
        pid = DhcpFiles.read_pid_file(pidfile)
        if pid is not None and dnsmasq.running(pid, "python"):
            if cmdline.exists() and json.loads(cmdline.read_text()) == argv:
                return str(sock)
            await self._stop_pid(pid, "python")
        self.base.mkdir(parents=True, exist_ok=True)
        await host.run(argv)
        cmdline.write_text(json.dumps(argv))
        return str(sock)

    async def stop_relay(self) -> None:
        pid = DhcpFiles.read_pid_file(self.base / "metadata-relay.pid")
        if pid is not None and dnsmasq.running(pid, "python"):
            await self._stop_pid(pid, "python")
        sock = sockpath.fitting(self.base / "metadata-relay.sock")
        if sock.parent != self.base:  # a short directory of its own (core/sockpath.py): nothing else is in it
            shutil.rmtree(sock.parent, ignore_errors=True)

    async def _stop_pid(self, pid: int, binary: str) -> None:
        """SIGTERM, then SIGKILL if ``binary`` still runs as ``pid`` after a second. ``dnsmasq.running`` counts a
        zombie as gone: a daemon's parent is init, and where init does not reap (this kind of container) its /proc
        entry outlives it, so waiting for that entry to vanish cost every stop 1 s per daemon."""
        ip.kill(pid, signal.SIGTERM)
        for _ in range(50):
            if not dnsmasq.running(pid, binary):
                return
            await asyncio.sleep(0.02)
        ip.kill(pid, signal.SIGKILL)

    async def _stop_daemons(self, files: DhcpFiles) -> None:
        for path in (files.pid, files.proxy_pid):
            pid = files.read_pid(path)
            binary = "dnsmasq" if path == files.pid else "python"
            if pid is not None and dnsmasq.running(pid, binary):
                await self._stop_pid(pid, binary)

    async def delete(self, network_id: str) -> None:
        files = DhcpFiles(self.base, network_id)
        await self._stop_daemons(files)
        # Removing the namespace removes ns-<port>, and with it its peer tap on the bridge.
        await ip.delete_netns(names.qdhcp(network_id))
        self._invalidate()
        shutil.rmtree(files.dir, ignore_errors=True)
