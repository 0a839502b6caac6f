"""Two nodes in one process, real QEMU guests: VXLAN between the node namespaces carries DHCP and a ping between
guests on different nodes; a live migration moves a running guest (it keeps counting, the ping keeps
answering), a failed one leaves it where it was, and a cold migration moves a guest and is confirmed."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openstack.connection
import pytest

from tests.e2e import guests
from tests.livecloud import LiveCloud
from tests.waiting import wait_for
from tinystack.compute.agent import ComputeAgent

pytestmark = [pytest.mark.guest, pytest.mark.e2e, pytest.mark.slow, pytest.mark.privileged]

# Every second on the console: the guest's own uptime (a reboot would start it again from zero).
TICKER = """#!/bin/sh
( while :; do echo "tick $(cut -d' ' -f1 /proc/uptime)"; sleep 1; done ) >/dev/console 2>&1 </dev/null &
"""
# Every second: can the guest reach TARGET?
PINGER = """#!/bin/sh
( while :; do
    if ping -c 1 -W 1 TARGET >/dev/null 2>&1; then r=ok; else r=fail; fi
    echo "ping $(cut -d' ' -f1 /proc/uptime) $r"; sleep 1
  done ) >/dev/console 2>&1 </dev/null &
"""


def console(conn: openstack.connection.Connection, server: Any) -> str:
    return guests.console(conn, server)


def wait_console(conn: openstack.connection.Connection, server: Any, done: Callable[[str], bool], what: str,
                 timeout: float = 180, after: int = 0) -> str:
    """The whole console once ``done`` holds for what it printed past offset ``after``."""
    return guests.wait_console(conn, server, lambda text: done(text[after:]), timeout, f"{what} on {server.name}")


def server(cloud: LiveCloud, name: str) -> dict[str, Any]:
    shown: dict[str, Any] = cloud.cli_json("server", "show", name)
    return shown


def wait_status(conn: openstack.connection.Connection, server: Any, status: str, timeout: float = 120) -> Any:
    """The server once it has ``status`` and no task in progress."""
    last: list[Any] = [server]

    def settled() -> Any:
        last[0] = conn.compute.get_server(server)
        return last[0] if last[0].status == status and not last[0].task_state else None

    try:
        return wait_for(settled, timeout, f"{server.name} to be {status}", interval=0.5)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: it is {last[0].status}/{last[0].task_state}") from None


def ticks(text: str) -> list[float]:
    return [float(t) for t in re.findall(r"^tick (\d+\.\d+)", text, re.M)]


def answered(n: int) -> Callable[[str], bool]:
    """The last ``n`` pings answered."""
    return lambda text: guests.pings(text)[-n:] == ["ok"] * n


def migrations(conn: openstack.connection.Connection, server: Any) -> list[Any]:
    """The server's migrations, newest first (as ``openstack server migration list --server`` shows them)."""
    return list(conn.compute.migrations(instance_uuid=server.id))


# Its own cloud: two nodes (the shared guest cloud has one).
def test_two_nodes_vxlan_live_and_cold_migration(tmp_path: Path) -> None:
    cloud = LiveCloud(tmp_path / "state", nodes=2, compute__driver="qemu", guest__auto_build="true")
    try:
        conn = cloud.conn("admin")
        one, two = cloud.hosts
        assert {a.host for a in conn.network.agents()} == {one, two}
        assert {s.host for s in conn.compute.services(binary="nova-compute")} == {one, two}
        assert {h.name for h in conn.compute.hypervisors()} == {one, two}
        cloud.wait_for_default_image()

        # One guest on each node, one tenant network: DHCP (on the network host only) and the ping cross VXLAN.
        vm1 = guests.boot_on(conn, "vm1", one, TICKER)
        ip1 = next(iter(vm1.addresses.values()))[0]["addr"]
        vm2 = guests.boot_on(conn, "vm2", two, PINGER.replace("TARGET", ip1))
        ip2 = next(iter(vm2.addresses.values()))[0]["addr"]
        # Each guest configured its address from the DHCP lease (udhcpc on the console names it).
        wait_console(conn, vm1, lambda t: ip1 in t, f"lease of {ip1}")
        wait_console(conn, vm2, lambda t: ip2 in t, f"lease of {ip2}")
        wait_console(conn, vm2, answered(3), "three answered pings from vm2 (node two) to vm1 (node one)")
        private = guests.network(conn, "private").id
        assert Path("/run/netns", f"qdhcp-{private}").exists()  # dnsmasq runs on the network host only

        # Live migration: vm1 moves to vm2's node while it runs.
        before = wait_console(conn, vm1, lambda t: bool(ticks(t)), "ticks")
        uptime_before = ticks(before)[-1]
        offset = len(console(conn, vm2))
        conn.compute.live_migrate_server(vm1, host=two)
        moved = wait_status(conn, vm1, "ACTIVE")
        assert moved.compute_host == two
        listed = migrations(conn, vm1)
        assert listed[0].status == "completed" and listed[0].migration_type == "live-migration", listed
        text = wait_console(conn, vm1, lambda t: len(ticks(t)) >= 2, "ticks after the move", after=len(before))
        after = ticks(text)
        assert after[-1] > uptime_before and after == sorted(after), after[-20:]  # it kept counting: no reboot
        assert text.count("Linux version") == 1
        wait_console(conn, vm2, answered(3), "pings answered after the move", after=offset)

        # Back across VXLAN, to the first node.
        offset = len(console(conn, vm2))
        conn.compute.live_migrate_server(vm1, host=one)
        assert wait_status(conn, vm1, "ACTIVE").compute_host == one
        wait_console(conn, vm2, answered(3), "pings answered across VXLAN again", after=offset)

        # A destination that cannot listen: the migration errs, the guest runs on where it was.
        dest = cloud.agent(ComputeAgent, two)
        dest.migration_address = "192.0.2.1"  # not an address of node two: QEMU cannot listen there
        try:
            conn.compute.live_migrate_server(vm1, host=two)
            wait_for(lambda: migrations(conn, vm1)[0].status == "error", 120, "the failed migration to be 'error'",
                     interval=0.5)
        finally:
            dest.migration_address = "10.250.0.2"
        stayed = wait_status(conn, vm1, "ACTIVE")
        assert stayed.compute_host == one
        wait_console(conn, vm1, lambda t: len(ticks(t)) >= 3, "ticks after the failed move",
                     after=len(console(conn, vm1)))

        # Cold migration of vm2 to the first node (shared instance storage), then confirm.
        conn.compute.migrate_server(vm2)
        cold = wait_status(conn, vm2, "VERIFY_RESIZE", timeout=180)
        assert cold.compute_host == one
        assert migrations(conn, vm2)[0].status == "finished"
        conn.compute.confirm_server_resize(vm2)
        assert wait_status(conn, vm2, "ACTIVE").compute_host == one
        assert migrations(conn, vm2)[0].status == "confirmed"
        # A cold move boots the guest again, on the other node.
        text = wait_console(conn, vm2, lambda t: t.count("Linux version") == 2, "a second boot")
        offset = text.rfind("Linux version")
        wait_console(conn, vm2, answered(2), "pings from vm2's new node", after=offset)

        for vm in (vm1, vm2):
            conn.compute.delete_server(vm)
        for vm in (vm1, vm2):
            conn.compute.wait_for_delete(vm, interval=0.5, wait=120)
    finally:
        cloud.stop()


@pytest.mark.db  # needs the RabbitMQ broker on loopback
@pytest.mark.db
def test_split_agent_joins_over_rabbitmq(tmp_path: Path) -> None:
    """``tinystack agent`` in a process of its own joins a cloud as one more node, over RabbitMQ."""
    url = "amqp://guest:guest@127.0.0.1:5672/"
    state = tmp_path / "state"
    cloud = LiveCloud(state, bus__transport_url=url, network__driver="fake")
    host = f"{cloud.host}-split"
    ini = tmp_path / "agent.ini"
    exchange = cloud.config.get("bus", "exchange")
    ini.write_text(f"[DEFAULT]\nhost = {host}\nstate_dir = {state}\n[bus]\ntransport_url = {url}\nexchange = {exchange}\n"
                   "[compute]\ndriver = fake\n[network]\ndriver = fake\n"
                   "[console]\nnode_secret = split-agent-console-key-0123\nnode_listen = 127.0.0.1:0\n")
    exe = Path(sys.executable).with_name("tinystack")
    agent = subprocess.Popen([str(exe), "agent", "--config", str(ini)], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        assert agent.stdout is not None
        assert agent.stdout.readline().strip() == f"tinystack agent ready: {host}"
        deadline = time.monotonic() + 30
        while host not in {h["Hypervisor Hostname"] for h in cloud.cli_json("hypervisor", "list")}:
            assert time.monotonic() < deadline, "the split agent's node never showed up"
            time.sleep(0.5)
        assert host in {s["Host"] for s in cloud.cli_json("compute", "service", "list", "--service", "nova-compute")}
        assert host in {a["Host"] for a in cloud.cli_json("network", "agent", "list")}
        cloud.conn("admin").image.create_image(name="split-img", data=b"\0" * 4096, disk_format="raw",
                                               container_format="bare", visibility="public")
        cloud.cli("server", "create", "--image", "split-img", "--flavor", "m1.tiny", "--network", "private",
                  "--availability-zone", f"nova:{host}", "--wait", "far")
        assert server(cloud, "far")["OS-EXT-SRV-ATTR:host"] == host
        cloud.cli("server", "delete", "--wait", "far")
    finally:
        agent.send_signal(signal.SIGTERM)
        try:
            assert agent.wait(60) == 0
        finally:
            if agent.poll() is None:
                agent.kill()
            cloud.stop()
