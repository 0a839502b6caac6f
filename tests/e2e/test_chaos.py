"""Chaos with real guests: ``kill -9`` of ``tinystack up`` while servers build and while they are deleted.

Design §2 promises no stuck BUILD or deleting: every resource converges or ends in ERROR with a fault, and what
the host has that nothing desired owns is removed. This test kills the whole process (API, conductor and agents
at once) at the two moments where the most is half done, restarts it on the same state dir, and then looks on
the host and in the APIs for anything a deleted server left behind.

QEMU is detached from the agent by design, so guests running at a kill are adopted by the next start, not
leftovers; a second QEMU for one server, or anything at all of a deleted one, is.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openstack
import openstack.connection
import pytest

from tests.livecloud import GUEST_CACHE, isolated_node, remove_netns
from tinystack.compute.drivers.qemu.layout import InstanceDir

pytestmark = [pytest.mark.guest, pytest.mark.e2e, pytest.mark.slow, pytest.mark.privileged]

REPO = Path(__file__).resolve().parents[2]
FLAVOR = "m1.nano"
BUILDING = 3  # servers building at the first kill
DELETING = 2  # of those, deleted at the second kill


def _wait(what: str, check: Callable[[], Any], timeout: float, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def _pids_naming(needle: str) -> list[int]:
    """Processes whose command line contains ``needle`` (zombies have none, so they never count)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in cmdline:
            found.append(int(entry))
    return found


def _qemus(server_id: str) -> list[int]:
    return [p for p in _pids_naming(f"guest=instance-{server_id},") if "qemu" in Path(f"/proc/{p}/comm").read_text()]


class Up:
    """``tinystack up`` of this tree as a subprocess, on its own host name, state dir and loopback address."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.state = tmp / "state"
        self.host, self.external_netns = isolated_node()
        self.bind = f"127.0.{random.randint(100, 250)}.{random.randint(2, 250)}"
        self.ini = tmp / "tinystack.ini"
        self.ini.write_text(f"[DEFAULT]\nhost = {self.host}\n[network]\nexternal_netns = {self.external_netns}\n"
                            f"[guest]\ncache_dir = {GUEST_CACHE}\n")
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.namespaces = {f"tsnode-{self.host}"}  # plus qdhcp-/qrouter- of this cloud, once known

    def start(self) -> None:
        self.starts += 1
        out = self.tmp / f"up-{self.starts}.out"
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYTHONPATH": str(REPO),
               "TINYSTACK_IDENTITY_PASSWORD_HASH_ROUNDS": "4"}
        with out.open("wb") as f:
            self.proc = subprocess.Popen([sys.executable, "-m", "tinystack.cli", "--config", str(self.ini), "up",
                                          "--state-dir", str(self.state), "--bind", self.bind],
                                         stdout=f, stderr=subprocess.STDOUT, env=env, cwd=self.tmp)

        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"tinystack up exited with {self.proc.returncode}:\n{out.read_text()[-4000:]}")
            return b"tinystack ready" in out.read_bytes()

        _wait("tinystack ready", ready, 180)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(120)

    def states(self, ids: list[str]) -> dict[str, tuple[str, str | None]]:
        """(vm_state, task_state) of servers as the database holds them: after a kill, what a restart resumes."""
        db = sqlite3.connect(f"file:{self.state / 'tinystack.db'}?mode=ro", uri=True)
        try:
            rows = db.execute(f"SELECT id, vm_state, task_state FROM compute_instance WHERE id IN "
                              f"({','.join('?' * len(ids))})", ids).fetchall()
        finally:
            db.close()
        return {i: (vm, task) for i, vm, task in rows}

    def conn(self, cloud: str) -> openstack.connection.Connection:
        os.environ["OS_CLIENT_CONFIG_FILE"] = str(self.state / "clouds.yaml")
        return openstack.connect(cloud=cloud)

    def links(self) -> str:
        return subprocess.run(["ip", "-n", f"tsnode-{self.host}", "-o", "link"], capture_output=True, text=True).stdout

    def firewall(self) -> str:
        """The node namespace's packet filter (per-port chains and anti-spoofing sets), as text."""
        ns = f"tsnode-{self.host}"
        dumps = [subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True).stdout
                 for argv in (["iptables-save"], ["ip6tables-save"], ["nft", "list", "ruleset"])]
        return "\n".join(dumps).lower()

    def cleanup(self) -> None:
        """Whatever a failed run left: the process, every process naming the state dir (QEMU, dnsmasq, metadata
        proxies), this cloud's namespaces by their exact names, the sockets' run dirs, the state dir."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        for pid in _pids_naming(str(self.state)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        instances = self.state / "instances"
        if instances.is_dir():
            for d in instances.iterdir():
                run = InstanceDir(d).run_dir
                if run != d:
                    shutil.rmtree(run, ignore_errors=True)
        # The logs outlive the state dir, for a failed run's post-mortem.
        if (self.state / "log").is_dir():
            shutil.copytree(self.state / "log", self.tmp / "log", dirs_exist_ok=True)
        for name in [*sorted(self.namespaces), self.external_netns]:
            if Path("/run/netns", name).exists():
                remove_netns(name)
        shutil.rmtree(self.state, ignore_errors=True)


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    cloud = Up(tmp_path)
    try:
        yield cloud
    finally:
        cloud.cleanup()


def _status(conn: openstack.connection.Connection, server_id: str) -> Any:
    return conn.compute.find_server(server_id, ignore_missing=True)


def _settled(conn: openstack.connection.Connection, ids: list[str]) -> dict[str, Any] | None:
    """Every server ACTIVE, or ERROR with a fault; None while any is still on its way."""
    servers = {i: conn.compute.get_server(i) for i in ids}
    for s in servers.values():
        if s.status == "ERROR":
            assert s.fault and s.fault.get("message"), f"server {s.id} in ERROR without a fault"
        elif s.status != "ACTIVE" or s.task_state:
            return None
    return servers


class Leftovers:
    """What a deleted server may leave behind, on the host and in the APIs (each found thing is one line)."""

    def __init__(self, up: Up, admin: openstack.connection.Connection) -> None:
        self.up = up
        self.admin = admin

    def of(self, server_id: str, ports: list[dict[str, Any]]) -> list[str]:
        found = []
        if _qemus(server_id):
            found.append(f"QEMU of {server_id}: {_qemus(server_id)}")
        links, firewall = self.up.links(), self.up.firewall()
        idir = InstanceDir(self.up.state / "instances" / server_id)
        for path in (idir.path, idir.run_dir, self.up.state / "compute-agent" / self.up.host / f"{server_id}.json"):
            if path.exists():
                found.append(f"{path} of {server_id}")
        for port in ports:
            tap = f"tap{port['id'][:11]}"
            if f" {tap}:" in links or f" {tap}@" in links:
                found.append(f"tap {tap} of {server_id}")
            if tap in firewall or port["mac_address"].lower() in firewall:
                found.append(f"firewall rules of port {port['id']} of {server_id}")
            for hosts in (self.up.state / "network" / "dhcp").glob("*/host"):
                if port["mac_address"] in hosts.read_text():
                    found.append(f"DHCP host {port['mac_address']} of {server_id} in {hosts}")
            if self.admin.network.find_port(port["id"], ignore_missing=True) is not None:
                found.append(f"port {port['id']} of {server_id}")
            for ip in port["fixed_ips"]:
                holders = [p.id for p in self.admin.network.ports(fixed_ips=f"ip_address={ip['ip_address']}")
                           if p.device_id == server_id]
                if holders:
                    found.append(f"IP {ip['ip_address']} of {server_id} on {holders}")
        found += [f"port {p.id} with device {server_id}" for p in self.admin.network.ports(device_id=server_id)
                  if p.id not in {q["id"] for q in ports}]
        allocations = self.admin.placement.get(f"/allocations/{server_id}").json().get("allocations")
        if allocations:
            found.append(f"placement allocations of {server_id}: {allocations}")
        return found

    def usages(self) -> dict[str, int]:
        """Resource usage summed over every provider of the cloud."""
        total: dict[str, int] = {}
        for rp in self.admin.placement.get("/resource_providers").json()["resource_providers"]:
            usage = self.admin.placement.get(f"/resource_providers/{rp['uuid']}/usages").json()["usages"]
            for rc, n in usage.items():
                total[rc] = total.get(rc, 0) + int(n)
        return {rc: n for rc, n in total.items() if n}


def _converged(what: str, find: Callable[[], list[str]], timeout: float = 30) -> None:
    """Agents converge after the API says a server is gone: allow them a little while, then nothing may remain."""
    start = time.monotonic()
    first = find()
    found = first
    while found:
        if time.monotonic() > start + timeout:
            raise AssertionError(f"{what}:\n" + "\n".join(found))
        time.sleep(1)
        found = find()
    if first:
        print(f"\n{what}: converged in {time.monotonic() - start:.0f}s from:\n" + "\n".join(first))


def _ports(admin: openstack.connection.Connection, server_id: str) -> list[dict[str, Any]]:
    return [{"id": p.id, "mac_address": p.mac_address, "fixed_ips": list(p.fixed_ips)}
            for p in admin.network.ports(device_id=server_id)]


def test_kill_9_while_building_and_deleting(up: Up) -> None:
    started = time.monotonic()
    up.start()
    admin, demo = up.conn("admin"), up.conn("demo")
    up.namespaces |= {f"qdhcp-{n.id}" for n in admin.network.networks()}
    up.namespaces |= {f"qrouter-{r.id}" for r in admin.network.routers()}
    image = _wait("the default image", lambda: demo.image.find_image("cirros-0.6.3-x86_64-uec"), 120, 1)
    flavor = demo.compute.find_flavor(FLAVOR, ignore_missing=False)
    network = demo.network.find_network("private", ignore_missing=False)
    one_guest = {"VCPU": flavor.vcpus, "MEMORY_MB": flavor.ram, "DISK_GB": flavor.disk}
    kills = 0

    # 1. kill -9 while servers build: as soon as the first QEMU exists, the others are somewhere before it.
    def create(name: str) -> str:
        return str(demo.compute.create_server(name=name, image_id=image.id, flavor_id=flavor.id,
                                              networks=[{"uuid": network.id}]).id)

    ids = [create(f"chaos-{n}") for n in range(BUILDING)]
    # And one deleted while it builds: a delete the conductor defers to the build, cut short by the kill.
    ghost = create("chaos-ghost")
    demo.compute.delete_server(ghost)
    spawned = _wait("a QEMU of a server being built", lambda: [i for i in ids if _qemus(i)], 90, 0.02)
    up.kill9()
    kills += 1
    first = up.states(ids)
    assert any(vm == "building" for vm, _ in first.values()), f"the kill came too late: {first}"

    up.start()
    admin, demo = up.conn("admin"), up.conn("demo")
    servers = _wait("every server ACTIVE or ERROR with a fault", lambda: _settled(demo, ids), 150, 1)
    _wait("the server deleted while it built to go", lambda: _status(demo, ghost) is None, 60, 1)
    active = [i for i, s in servers.items() if s.status == "ACTIVE"]
    for i in ids:
        assert len(_qemus(i)) == (1 if i in active else 0), f"server {i} ({servers[i].status}) has QEMUs {_qemus(i)}"
    leftovers = Leftovers(up, admin)
    _converged("leftovers of the server deleted while it built", lambda: leftovers.of(ghost, []))
    assert leftovers.usages() == {rc: n * len(ids) for rc, n in one_guest.items()}

    # 2. kill -9 while servers are deleted: once the first of their QEMUs has gone, the rest is half done.
    doomed, kept = ids[:DELETING], ids[DELETING:]
    ports = {i: _ports(admin, i) for i in ids}
    assert all(ports[i] for i in ids), ports
    # The leftover checks look for the right names: every live port has its tap and its firewall now.
    links, firewall = up.links(), up.firewall()
    for p in (p for i in active for p in ports[i]):
        assert f"tap{p['id'][:11]}" in links and (f"tap{p['id'][:11]}" in firewall or p["mac_address"] in firewall), p
    for i in doomed:
        demo.compute.delete_server(i)
    stopped = _wait("a deleted server's QEMU to stop", lambda: [i for i in doomed if not _qemus(i)], 60, 0.02)
    up.kill9()
    kills += 1
    second = up.states(doomed)

    up.start()
    admin, demo = up.conn("admin"), up.conn("demo")
    leftovers = Leftovers(up, admin)
    _wait("the deleted servers to go", lambda: all(_status(demo, i) is None for i in doomed), 120, 1)
    servers = _wait("the kept servers ACTIVE or ERROR with a fault", lambda: _settled(demo, kept), 120, 1)
    for i in kept:
        assert len(_qemus(i)) == (1 if servers[i].status == "ACTIVE" else 0), f"server {i} has QEMUs {_qemus(i)}"
    _converged("leftovers of the servers deleted at the kill", lambda: [x for i in doomed for x in leftovers.of(i, ports[i])])
    assert leftovers.usages() == {rc: n * len(kept) for rc, n in one_guest.items()}

    # 3. Delete the rest, then stop cleanly: nothing of any server, and nothing of the cloud, stays.
    for i in kept:
        demo.compute.delete_server(i)
    _wait("every server to go", lambda: all(_status(demo, i) is None for i in kept), 90, 1)
    _converged("leftovers of the servers", lambda: [x for i in ids for x in leftovers.of(i, ports[i])])
    assert leftovers.usages() == {}
    assert list((up.state / "instances").glob("*-*-*-*-*")) == []
    assert up.stop() == 0
    assert _pids_naming(str(up.state)) == [], "processes of the cloud outlived it"
    assert [n for n in up.namespaces if Path("/run/netns", n).exists()] == []
    print(f"\nchaos: {kills} kills survived, 0 leftovers, {time.monotonic() - started:.0f}s; QEMUs of "
          f"{len(spawned)}/{BUILDING} building servers up at the first kill, of {DELETING - len(stopped)}/{DELETING} "
          f"deleted ones at the second; (vm_state, task_state) at the first: {sorted(first.values())}, at the second: "
          f"{sorted(second.values())}")
