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

import pytest

from tests.livecloud import LiveCloud
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


def console(cloud: LiveCloud, name: str) -> str:
    return str(cloud.cli("console", "log", "show", name).stdout)


def wait_console(cloud: LiveCloud, name: str, done: Callable[[str], bool], what: str, timeout: float = 180,
                 after: int = 0) -> str:
    """The whole console once ``done`` holds for what it printed past offset ``after``."""
    deadline = time.monotonic() + timeout
    while True:
        text = console(cloud, name)
        if done(text[after:]):
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"{name}: no {what} on the console:\n{text[-3000:]}")
        time.sleep(2)


def server(cloud: LiveCloud, name: str) -> dict[str, Any]:
    shown: dict[str, Any] = cloud.cli_json("server", "show", name)
    return shown


def wait_status(cloud: LiveCloud, name: str, status: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        shown = server(cloud, name)
        if shown["status"] == status and not shown.get("OS-EXT-STS:task_state"):
            return shown
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} is {shown['status']}/{shown.get('OS-EXT-STS:task_state')}, not {status}")
        time.sleep(1)


def boot(cloud: LiveCloud, tmp_path: Path, name: str, host: str, user_data: str) -> dict[str, Any]:
    script = tmp_path / f"{name}.sh"
    script.write_text(user_data)
    cloud.cli("server", "create", "--image", "cirros-tiny", "--flavor", "m1.tiny", "--network", "private",
              "--availability-zone", f"nova:{host}", "--user-data", str(script), "--wait", name)
    shown = server(cloud, name)
    assert shown["status"] == "ACTIVE" and shown["OS-EXT-SRV-ATTR:host"] == host
    return shown


def ticks(text: str) -> list[float]:
    return [float(t) for t in re.findall(r"^tick (\d+\.\d+)", text, re.M)]


def pings(text: str) -> list[str]:
    return re.findall(r"^ping \d+\.\d+ (ok|fail)", text, re.M)


def answered(n: int) -> Callable[[str], bool]:
    """The last ``n`` pings answered."""
    return lambda text: pings(text)[-n:] == ["ok"] * n


def migrations(cloud: LiveCloud, name: str) -> list[dict[str, Any]]:
    return list(cloud.cli_json("server", "migration", "list", "--server", name))


def test_two_nodes_vxlan_live_and_cold_migration(tmp_path: Path) -> None:
    cloud = LiveCloud(tmp_path / "state", nodes=2, compute__driver="qemu", guest__auto_build="true")
    try:
        one, two = cloud.hosts
        assert {a["Host"] for a in cloud.cli_json("network", "agent", "list")} == {one, two}
        assert {s["Host"] for s in cloud.cli_json("compute", "service", "list", "--service", "nova-compute")} == {one, two}
        assert {h["Hypervisor Hostname"] for h in cloud.cli_json("hypervisor", "list")} == {one, two}
        cloud.wait_for_default_image()

        # One guest on each node, one tenant network: DHCP (on the network host only) and the ping cross VXLAN.
        vm1 = boot(cloud, tmp_path, "vm1", one, TICKER)
        ip1 = next(iter(vm1["addresses"].values()))[0]
        vm2 = boot(cloud, tmp_path, "vm2", two, PINGER.replace("TARGET", ip1))
        ip2 = next(iter(vm2["addresses"].values()))[0]
        # Each guest configured its address from the DHCP lease (udhcpc on the console names it).
        wait_console(cloud, "vm1", lambda t: ip1 in t, f"lease of {ip1}")
        wait_console(cloud, "vm2", lambda t: ip2 in t, f"lease of {ip2}")
        wait_console(cloud, "vm2", answered(3), "three answered pings from vm2 (node two) to vm1 (node one)")
        private = cloud.cli_json("network", "show", "private")["id"]
        assert Path("/run/netns", f"qdhcp-{private}").exists()  # dnsmasq runs on the network host only

        # Live migration: vm1 moves to vm2's node while it runs.
        before = wait_console(cloud, "vm1", lambda t: bool(ticks(t)), "ticks")
        uptime_before = ticks(before)[-1]
        offset = len(console(cloud, "vm2"))
        cloud.cli("server", "migrate", "--live-migration", "--host", two, "--wait", "vm1")
        moved = wait_status(cloud, "vm1", "ACTIVE")
        assert moved["OS-EXT-SRV-ATTR:host"] == two
        listed = migrations(cloud, "vm1")
        assert listed[0]["Status"] == "completed" and listed[0]["Type"] == "live-migration", listed
        text = wait_console(cloud, "vm1", lambda t: len(ticks(t)) >= 2, "ticks after the move", after=len(before))
        after = ticks(text)
        assert after[-1] > uptime_before and after == sorted(after), after[-20:]  # it kept counting: no reboot
        assert text.count("Linux version") == 1
        wait_console(cloud, "vm2", answered(3), "pings answered after the move", after=offset)

        # Back across VXLAN, to the first node.
        offset = len(console(cloud, "vm2"))
        cloud.cli("server", "migrate", "--live-migration", "--host", one, "--wait", "vm1")
        assert wait_status(cloud, "vm1", "ACTIVE")["OS-EXT-SRV-ATTR:host"] == one
        wait_console(cloud, "vm2", answered(3), "pings answered across VXLAN again", after=offset)

        # A destination that cannot listen: the migration errs, the guest runs on where it was.
        dest = cloud.agent(ComputeAgent, two)
        dest.migration_address = "192.0.2.1"  # not an address of node two: QEMU cannot listen there
        try:
            cloud.cli("server", "migrate", "--live-migration", "--host", two, "vm1")
            deadline = time.monotonic() + 120
            while migrations(cloud, "vm1")[0]["Status"] != "error":
                assert time.monotonic() < deadline, migrations(cloud, "vm1")
                time.sleep(1)
        finally:
            dest.migration_address = "10.250.0.2"
        stayed = wait_status(cloud, "vm1", "ACTIVE")
        assert stayed["OS-EXT-SRV-ATTR:host"] == one
        wait_console(cloud, "vm1", lambda t: len(ticks(t)) >= 3, "ticks after the failed move",
                     after=len(console(cloud, "vm1")))

        # Cold migration of vm2 to the first node (shared instance storage), then confirm.
        cloud.cli("server", "migrate", "--wait", "vm2")
        cold = wait_status(cloud, "vm2", "VERIFY_RESIZE", timeout=180)
        assert cold["OS-EXT-SRV-ATTR:host"] == one
        assert migrations(cloud, "vm2")[0]["Status"] == "finished"
        cloud.cli("server", "resize", "confirm", "vm2")
        assert wait_status(cloud, "vm2", "ACTIVE")["OS-EXT-SRV-ATTR:host"] == one
        assert migrations(cloud, "vm2")[0]["Status"] == "confirmed"
        # A cold move boots the guest again, on the other node.
        text = wait_console(cloud, "vm2", lambda t: t.count("Linux version") == 2, "a second boot")
        offset = text.rfind("Linux version")
        wait_console(cloud, "vm2", answered(2), "pings from vm2's new node", after=offset)

        for name in ("vm1", "vm2"):
            cloud.cli("server", "delete", "--wait", name)
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
                   "[compute]\ndriver = fake\n[network]\ndriver = fake\n")
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
