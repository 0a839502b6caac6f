"""Leftover /run/netns files (a plain file, or the file an unmounted namespace leaves) never stop a start."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.network.dataplane.harness import Harness, dhcp_doc, mac, network_doc, new_id, port_doc, sh
from tinystack.network.dataplane import ip, names
from tinystack.network.dataplane.dnsmasq import DhcpFiles

pytestmark = [pytest.mark.dataplane, pytest.mark.privileged, pytest.mark.slow]


def plain_file(name: str) -> None:
    """What a namespace whose mount died leaves behind, as an ordinary file."""
    ip.NETNS_DIR.mkdir(parents=True, exist_ok=True)
    (ip.NETNS_DIR / name).touch()


def unmounted(name: str) -> None:
    """A real namespace made by iproute2, then its mount taken away: the file stays, the namespace is gone."""
    sh("ip", "netns", "add", name)
    sh("umount", str(ip.NETNS_DIR / name))


def usable(name: str) -> bool:
    return sh("ip", "-n", name, "link", "show", "lo", check=False).returncode == 0


@pytest.fixture
def stale_names() -> Iterator[list[str]]:
    """Names a test makes stale; removed by exact name afterwards, whatever became of them."""
    made: list[str] = []
    yield made
    for name in made:
        sh("ip", "netns", "del", name, check=False)
        (ip.NETNS_DIR / name).unlink(missing_ok=True)


@pytest.mark.parametrize("make_stale", [plain_file, unmounted], ids=["plain-file", "after-umount"])
def test_ensure_netns_replaces_a_stale_file(make_stale: object, stale_names: list[str]) -> None:
    name = f"tss{secrets.token_hex(4)}"
    stale_names.append(name)
    assert callable(make_stale)
    make_stale(name)
    assert (ip.NETNS_DIR / name).exists() and not usable(name)
    assert not ip.netns_exists(name) and ip.netns_stale(name)

    assert asyncio.run(ip.ensure_netns(name)) is True  # recreated: the caller sets it up as new
    assert ip.netns_exists(name) and usable(name)
    assert "UP" in sh("ip", "-n", name, "-br", "link", "show", "lo").stdout
    assert asyncio.run(ip.ensure_netns(name)) is False  # and left alone from now on

    asyncio.run(ip.delete_netns(name))
    assert not (ip.NETNS_DIR / name).exists()


def test_delete_netns_removes_a_stale_file(stale_names: list[str]) -> None:
    name = f"tss{secrets.token_hex(4)}"
    stale_names.append(name)
    unmounted(name)
    asyncio.run(ip.delete_netns(name))
    assert not (ip.NETNS_DIR / name).exists()


def test_agent_starts_over_stale_node_dhcp_and_router_namespaces(tmp_path: Path, stale_names: list[str]) -> None:
    """The reported failure: ``tinystack up`` after ``kill -9`` died in the driver's setup on the node namespace."""

    async def scenario() -> None:
        h = Harness(tmp_path)
        net = network_doc("10.0.7.0/24", vni=307)
        vm = port_doc(net, "10.0.7.5")
        dhcp = dhcp_doc(net, "10.0.7.2", [vm])
        router = {"id": new_id(), "project_id": "p1", "admin_state_up": True, "gateway": None, "routes": [],
                  "floating_ips": [], "interfaces": [{"port_id": new_id(), "mac_address": mac(), "ip": "10.0.7.1",
                                                      "cidr": "10.0.7.0/24", "subnet_id": net["subnets"][0]["id"]}]}
        node, qdhcp, qrouter = h.settings.node_netns, names.qdhcp(net["id"]), names.qrouter(router["id"])
        stale_names.extend([node, qdhcp, qrouter])
        plain_file(node)
        unmounted(qdhcp)
        plain_file(qrouter)
        try:
            await h.start()
            assert usable(node)
            guest = h.guest(vm)
            for kind, doc in (("network", net), ("dhcp", dhcp), ("router", router), ("port", vm)):
                await h.put(kind, doc)
            await h.active(("dhcp", dhcp), ("router", router), ("port", vm))
            assert usable(qdhcp) and usable(qrouter)
            assert sh("ip", "netns", "exec", qrouter, "sysctl", "-n", "net.ipv4.ip_forward").stdout.strip() == "1"
            pid = DhcpFiles(h.settings.state_dir, net["id"]).read_pid()
            assert pid is not None
            in_ns = subprocess.run(["ip", "netns", "identify", str(pid)], capture_output=True, text=True).stdout.split()
            assert qdhcp in in_ns  # dnsmasq serves the new namespace
            assert "10.0.7.5" in await asyncio.to_thread(h.dhcp_client, guest)
        finally:
            await h.close()
        for name in (node, qdhcp, qrouter):
            assert not (ip.NETNS_DIR / name).exists()

    asyncio.run(scenario())
