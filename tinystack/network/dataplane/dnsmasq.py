"""dnsmasq per network: its files (static hosts, options, DNS names), its command line and its process.

dnsmasq never picks an address (``--dhcp-range=<net>,static``): every lease is a MAC→IP entry from
tinystack's IPAM, and a SIGHUP re-reads the hosts, options and names files without a restart.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
from pathlib import Path
from typing import Any

from tinystack.network.dataplane import names

Doc = dict[str, Any]
METADATA_IP = "169.254.169.254"


class DhcpFiles:
    """The state-dir files of one network's dnsmasq."""

    def __init__(self, base: Path, network_id: str) -> None:
        self.dir = base / "dhcp" / network_id
        self.hosts = self.dir / "host"
        self.opts = self.dir / "opts"
        self.names = self.dir / "addn_hosts"
        self.leases = self.dir / "leases"
        self.pid = self.dir / "pid"
        self.log = self.dir / "dnsmasq.log"
        self.proxy_pid = self.dir / "metadata-proxy.pid"
        self.proxy_log = self.dir / "metadata-proxy.log"

    def read_pid(self, path: Path | None = None) -> int | None:
        return self.read_pid_file(path or self.pid)

    @staticmethod
    def read_pid_file(path: Path) -> int | None:
        try:
            return int(path.read_text().strip())
        except (OSError, ValueError):
            return None


def _tag(subnet_id: str) -> str:
    return f"subnet-{subnet_id}"


def _v4_subnets(doc: Doc) -> list[Doc]:
    return [s for s in doc.get("subnets", ()) if s.get("enable_dhcp", True) and s.get("ip_version", 4) == 4]


def _dhcp_ip(doc: Doc, subnet: Doc) -> str | None:
    net = ipaddress.ip_network(subnet["cidr"], strict=False)
    for fixed in doc["port"].get("fixed_ips", ()):
        if ipaddress.ip_address(fixed["ip_address"]) in net:
            return str(fixed["ip_address"])
    return None


def _port_tag(port_id: str) -> str:
    return f"port-{port_id}"


def render_hosts(doc: Doc) -> str:
    """``--dhcp-hostsfile``: ``mac,hostname.domain,ip`` per instance port (IPv6 addresses in brackets); a port
    with extra DHCP options also sets its tag, which selects its lines of the options file."""
    domain = doc.get("dns_domain") or "openstacklocal"
    lines = []
    for h in sorted(doc.get("hosts", ()), key=lambda h: (h["mac"], h["ip"])):
        ip = h["ip"] if ipaddress.ip_address(h["ip"]).version == 4 else f"[{h['ip']}]"
        hostname = h.get("hostname") or "host-" + h["ip"].replace(".", "-").replace(":", "-")
        tag = f"set:{_port_tag(h['port_id'])}," if h.get("opts") else ""
        lines.append(f"{h['mac']},{tag}{hostname}.{domain},{ip}")
    return "\n".join(lines) + ("\n" if lines else "")


def render_names(doc: Doc) -> str:
    """``--addn-hosts``: DNS names of the instances, answered by dnsmasq on the DHCP port."""
    domain = doc.get("dns_domain") or "openstacklocal"
    lines = []
    for h in sorted(doc.get("hosts", ()), key=lambda h: h["ip"]):
        hostname = h.get("hostname") or "host-" + h["ip"].replace(".", "-").replace(":", "-")
        lines.append(f"{h['ip']}\t{hostname}.{domain} {hostname}")
    return "\n".join(lines) + ("\n" if lines else "")


def render_opts(doc: Doc) -> str:
    """``--dhcp-optsfile``: router, DNS and classless static routes (121) per subnet.

    Option 121 carries the metadata route via the DHCP port and, because a client that receives 121
    ignores option 3, also the default route and the subnet's host routes.
    """
    lines = []
    for subnet in _v4_subnets(doc):
        tag = _tag(subnet["id"])
        dhcp_ip = _dhcp_ip(doc, subnet)
        routes: list[tuple[str, str]] = []
        if dhcp_ip:
            routes.append((f"{METADATA_IP}/32", dhcp_ip))
        for route in subnet.get("host_routes") or ():
            routes.append((route["destination"], route["nexthop"]))
        gateway = subnet.get("gateway_ip")
        if gateway:
            routes.append(("0.0.0.0/0", gateway))
            lines.append(f"tag:{tag},option:router,{gateway}")
        else:
            lines.append(f"tag:{tag},option:router")
        if routes:
            flat = ",".join(f"{dst},{via}" for dst, via in routes)
            lines.append(f"tag:{tag},option:classless-static-route,{flat}")
            lines.append(f"tag:{tag},249,{flat}")  # the same for old Windows clients
        servers = subnet.get("dns_nameservers") or ([dhcp_ip] if dhcp_ip else [])
        if servers:
            lines.append(f"tag:{tag},option:dns-server,{','.join(servers)}")
    lines += _port_opts(doc)
    return "\n".join(lines) + ("\n" if lines else "")


def _port_opts(doc: Doc) -> list[str]:
    """Ports' extra DHCP options, each behind the port's tag; they come after the subnet lines, so a port's own
    value of an option (a router, DNS servers) is the one its client gets."""
    lines = []
    done = set()
    for h in sorted(doc.get("hosts", ()), key=lambda h: h.get("port_id") or ""):
        if not h.get("opts") or h["port_id"] in done:
            continue
        done.add(h["port_id"])
        for opt in h["opts"]:
            name = str(opt["opt_name"])
            # DHCPv4 numbers stand alone; names are dnsmasq's, per protocol.
            prefix = "option6:" if opt.get("ip_version", 4) == 6 else "" if name.isdigit() else "option:"
            key = prefix + name
            lines.append(f"tag:{_port_tag(h['port_id'])},{key},{opt['opt_value']}")
    return lines


def write_if_changed(path: Path, text: str) -> bool:
    try:
        if path.read_text() == text:
            return False
    except OSError:
        pass
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)  # atomic: dnsmasq never reads half a file on SIGHUP
    return True


def command(doc: Doc, files: DhcpFiles, binary: str, lease_time: int) -> list[str]:
    device = names.ns_dev(doc["port"]["id"])
    argv = [
        # Stays root: its files live in the 0700 state dir, out of reach of dnsmasq's default "nobody".
        binary, "--user=root", "--group=root", "--no-hosts", "--no-resolv", "--conf-file=/dev/null", "--bind-interfaces",
        f"--interface={device}", "--except-interface=lo", f"--pid-file={files.pid}",
        f"--dhcp-hostsfile={files.hosts}", f"--addn-hosts={files.names}", f"--dhcp-optsfile={files.opts}",
        f"--dhcp-leasefile={files.leases}", "--dhcp-authoritative",
        f"--domain={doc.get('dns_domain') or 'openstacklocal'}", f"--log-facility={files.log}",
        "--quiet-dhcp",
    ]
    for subnet in _v4_subnets(doc):
        net = ipaddress.ip_network(subnet["cidr"], strict=False)
        argv.append(f"--dhcp-range=set:{_tag(subnet['id'])},{net.network_address},static,{net.netmask},{lease_time}s")
    for subnet in doc.get("subnets", ()):
        if subnet.get("enable_dhcp", True) and subnet.get("ip_version") == 6:
            net = ipaddress.ip_network(subnet["cidr"], strict=False)
            argv.append(f"--dhcp-range=set:{_tag(subnet['id'])},{net.network_address},static,{net.prefixlen},{lease_time}s")
    return argv


def running(pid: int | None, binary_name: str) -> bool:
    """True when ``pid`` is alive and is the expected program (pid files outlive their processes)."""
    if pid is None:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(binary_name.encode() in part for part in cmdline[:3])


def reload(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGHUP)
