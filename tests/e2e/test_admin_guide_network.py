"""The Admin Guide's networking "Scenario 1: one tenant, two networks, one router", typed as an operator
would with openstackclient, then checked on the real dataplane: two ``qdhcp-`` namespaces and one
``qrouter-`` with ``qr-`` 192.168.101.1/24, ``qr-`` 192.168.102.1/24 and a ``qg-`` address on the public
subnet, each wired to the network it claims to be on."""

from __future__ import annotations

import ipaddress
import subprocess
import time
from pathlib import Path

import pytest

from tests.livecloud import LiveCloud

pytestmark = [pytest.mark.dataplane, pytest.mark.e2e, pytest.mark.privileged]


def _addresses(netns: str) -> dict[str, set[str]]:
    """Interface name → its IPv4 addresses with prefix, as ``ip -br addr`` shows them in ``netns``."""
    out = subprocess.run(["ip", "-n", netns, "-4", "-br", "addr"], capture_output=True, text=True, check=True).stdout
    found: dict[str, set[str]] = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 3:
            found[fields[0].split("@")[0]] = set(fields[2:])
    return found


def _netns() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def _ping(netns: str, address: str) -> bool:
    return subprocess.run(["ip", "netns", "exec", netns, "busybox", "ping", "-c", "1", "-W", "2", address],
                          capture_output=True, timeout=30).returncode == 0


def _wait(what: str, check: object, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.5)


def test_one_tenant_two_networks_one_router(tmp_path: Path) -> None:
    cloud = LiveCloud(tmp_path / "state", dataplane=True)
    try:
        run, show = cloud.cli, cloud.cli_json
        # Under the admin ("service" in the guide) project: the router, the public network, the gateway.
        router = show("router", "create", "router01")["id"]
        run("network", "create", "--provider-network-type", "flat", "--provider-physical-network", "physnet1",
            "--external", "public01")
        run("subnet", "create", "--network", "public01", "--subnet-range", "10.64.201.0/24",
            "--gateway", "10.64.201.254", "--no-dhcp", "public01_subnet01")
        run("router", "set", "--external-gateway", "public01", "router01")
        # Under the demo project: net01 and net02 (VLAN 101 and 102 on physnet2), both on router01.
        nets = {}
        for vlan, name in ((101, "net01"), (102, "net02")):
            nets[name] = show("network", "create", "--project", "demo", "--provider-network-type", "vlan",
                              "--provider-physical-network", "physnet2", "--provider-segment", str(vlan), name)["id"]
            run("subnet", "create", "--project", "demo", "--network", name,
                "--subnet-range", f"192.168.{vlan}.0/24", f"{name}_subnet01")
            run("router", "add", "subnet", "router01", f"{name}_subnet01")

        qrouter = f"qrouter-{router}"
        want = {f"qdhcp-{nets['net01']}", f"qdhcp-{nets['net02']}", qrouter}
        _wait(f"namespaces {sorted(want - _netns())} never appeared", lambda: want <= _netns())

        def router_ports() -> dict[str, set[str]]:
            return {name: addrs for name, addrs in _addresses(qrouter).items() if name.startswith(("qr-", "qg-"))}

        public = ipaddress.ip_network("10.64.201.0/24")

        def wired() -> bool:
            ports = router_ports()
            qr = sorted(a for n, addrs in ports.items() if n.startswith("qr-") for a in addrs)
            qg = [a for n, addrs in ports.items() if n.startswith("qg-") for a in addrs]
            return (qr == ["192.168.101.1/24", "192.168.102.1/24"] and len(qg) == 1
                    and ipaddress.ip_interface(qg[0]).network == public)

        _wait(f"router01's ports never matched the guide: {router_ports()}", wired)

        # Each qr- port sits on its own network: the router reaches that network's DHCP server, and the
        # public side (the host's end of the external network, at the subnet's gateway) reaches qg-.
        for vlan, name in ((101, "net01"), (102, "net02")):
            dhcp_ns = f"qdhcp-{nets[name]}"
            dhcp_ips = [a.split("/")[0] for addrs in _addresses(dhcp_ns).values() for a in addrs
                        if not a.startswith(("127.", "169.254."))]  # loopback, the metadata address
            assert len(dhcp_ips) == 1, _addresses(dhcp_ns)
            _wait(f"{qrouter} cannot reach {name}'s DHCP port {dhcp_ips[0]}", lambda ip=dhcp_ips[0]: _ping(qrouter, ip))
            assert ipaddress.ip_address(dhcp_ips[0]) in ipaddress.ip_network(f"192.168.{vlan}.0/24")
        qg_ip = next(a for n, addrs in router_ports().items() if n.startswith("qg-") for a in addrs).split("/")[0]
        _wait(f"the external side cannot reach qg- {qg_ip}", lambda: _ping(cloud.external_netns, qg_ip))

        # Undo in the guide's reverse order: everything of it goes from the host.
        for name in ("net01", "net02"):
            run("router", "remove", "subnet", "router01", f"{name}_subnet01")
            run("network", "delete", name)
        run("router", "delete", "router01")
        _wait(f"namespaces {sorted(want & _netns())} were left behind", lambda: not (want & _netns()))
    finally:
        cloud.stop()
