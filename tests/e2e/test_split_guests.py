"""Issue 15's cluster with real guests (db tier: PostgreSQL, RabbitMQ, root and QEMU/TCG): two ``tinystack api``
behind HAProxy, one ``tinystack conductor`` and three node machines, each its own ``tinystack agent`` process
joined to the others by VXLAN over an underlay (tests/e2e/splitnodes.py says how a node machine is simulated).

- A guest on every node: DHCP leases, user-data from the metadata API through node one's relay over TCP (HAProxy's
  metadata frontend, ``[metadata] upstream``), pings between all three across VXLAN and to the outside (the external
  network's gateway, through the router).
- A volume on node one attached to the guest on node two (NBD over the underlay) and written from inside it; the
  bytes are in the volume file on node one.
- The guest on node three live-migrates to node one while the other two ping it: the pings lost are printed.
- ``tinystack doctor`` on the network host says the cluster is healthy, with other clouds on the machine.
- Node two's agent is killed (``kill -9``, and its guest's QEMU: the machine is gone): ``compute service list``
  shows it down within 60 s (measured); a build scheduled onto it just before is left stuck; an orphan tap is
  added by hand on node three: ``tinystack doctor`` names all three. ``server evacuate`` rebuilds the volume's
  guest on node three, where it boots again and writes the volume over NBD again.

Four TCG boots (three guests and the evacuated one), guests reused across the steps: about two minutes. In the db
tier because it needs the machine's PostgreSQL and RabbitMQ; it also needs root and QEMU, and the guest image
cache (``/var/tmp/tinystack-guest-cache``; built by the conductor if empty).
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openstack.connection
import pytest

from tests.databases import available, scratch_database
from tests.e2e import guests
from tests.e2e import splitcluster as sc
from tests.e2e.splitnodes import NBD_PORT, GuestCluster
from tests.waiting import wait_for
from tinystack.core import sockpath

pytestmark = [pytest.mark.db, pytest.mark.e2e, pytest.mark.slow, pytest.mark.privileged]

# Every half second: ping each target once and say how it went; write a line to a volume's disk (a disk with a
# serial) when there is one, synchronously, and say so.
SCRIPT = """#!/bin/sh
( while :; do
    for t in TARGETS; do
      if ping -c 1 -W 1 $t >/dev/null 2>&1; then r=ok; else r=fail; fi
      echo "ping $t $r"
    done
    for d in /sys/block/vd*; do
      if [ -s "$d/serial" ]; then
        u=$(cut -d' ' -f1 /proc/uptime)
        if echo "nbd-write $u $(cat $d/serial) end" | dd of=/dev/${d##*/} bs=512 count=1 conv=sync,fsync 2>/dev/null
        then echo "wrote $u"; fi
      fi
    done
    sleep 0.5
  done ) >/dev/console 2>&1 </dev/null &
"""


def pings(text: str, target: str) -> list[str]:
    return re.findall(rf"^ping {re.escape(target)} (ok|fail)", text, re.M)


def writes(text: str) -> list[float]:
    return [float(u) for u in re.findall(r"^wrote (\d+\.\d+)", text, re.M)]


def answered(targets: list[str], n: int = 2) -> Callable[[str], bool]:
    """The last ``n`` pings of every target answered."""
    return lambda text: all(pings(text, t)[-n:] == ["ok"] * n for t in targets)


def on_disk(path: Path) -> float | None:
    """The uptime the guest wrote last, read from the volume file on the volume node."""
    found = re.match(rb"nbd-write (\d+\.\d+) \S+ end", path.read_bytes()[:512])
    return float(found.group(1)) if found else None


def qemu_pids(instance_id: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if f"guest=instance-{instance_id}".encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def on_host(conn: openstack.connection.Connection, server: Any, host: str, timeout: float = 240) -> Any:
    def done() -> Any:
        s = conn.compute.get_server(server)
        assert s.status != "ERROR", f"{s.name}: {s.fault}"
        return s if s.status == "ACTIVE" and not s.task_state and s.compute_host == host else None

    return wait_for(done, timeout, f"{server.name} to be ACTIVE on {host}", interval=0.5)


def doctor(c: GuestCluster, host: str, healthy: bool = False) -> list[dict[str, Any]]:
    """``tinystack doctor --json`` as an operator runs it on node ``host`` (its environment, the shared file); it
    exits 0 on a healthy cloud, 1 when it finds a problem."""
    env = {**os.environ, "PYTHONPATH": str(sc.ROOT), "TINYSTACK_HOST": host, "TINYSTACK_STATE_DIR": str(c.base / host),
           "TINYSTACK_DOCTOR_STUCK_AFTER": "5", **c.node_env(host)}
    run = subprocess.run([sys.executable, "-m", "tinystack.cli", "--config", str(c.ini), "doctor", "--json",
                          "--listen", "2"], env=env, capture_output=True, text=True, timeout=180, cwd=sc.ROOT)
    assert run.returncode == (0 if healthy else 1), run.stdout + run.stderr
    found: list[dict[str, Any]] = json.loads(run.stdout)["findings"]
    return found


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[GuestCluster]:
    if not available("postgresql"):
        pytest.fail("no PostgreSQL on loopback: the test command's setup should provide one")
    with scratch_database("postgresql") as db_url:
        c = GuestCluster(tmp_path, db_url)
        try:
            c.start()
            yield c
        finally:
            c.stop()


def test_split_cluster_real_guests_volume_migration_evacuation_doctor(cluster: GuestCluster) -> None:
    c = cluster
    n1, n2, n3 = c.nodes
    conn = c.conn()

    def compute_states() -> dict[str, str]:
        return {s.host: s.state for s in conn.compute.services(binary="nova-compute")}

    # The volume node first: it becomes the network host (DHCP, the router) while it is the only network agent, so
    # both API processes follow the same one; then the other two.
    c.start_agent(n1)
    wait_for(lambda: any(a.host == n1 and a.is_alive for a in conn.network.agents()), 60, "node one's agents",
             interval=0.5)
    c.start_agents([n2, n3])
    wait_for(lambda: all(compute_states().get(h) == "up" for h in c.nodes), 60, "three compute services up",
             interval=0.5)
    private = guests.network(conn, "private")
    c.remember_namespaces([n.id for n in conn.network.networks()], [r.id for r in conn.network.routers()])
    public_subnet = conn.network.get_subnet(guests.network(conn, "public").subnet_ids[0])
    outside = public_subnet.gateway_ip
    wait_for(lambda: outside in subprocess.run(["ip", "-n", c.external_netns, "-br", "addr"], capture_output=True,
                                               text=True).stdout, 60, "the external gateway in the outside namespace")
    wait_for(lambda: conn.image.find_image("cirros-0.6.3-x86_64-uec"), 600, "the default guest image", interval=2)
    image = conn.image.find_image("cirros-0.6.3-x86_64-uec", ignore_missing=False)
    flavor = conn.compute.find_flavor("m1.tiny", ignore_missing=False)

    # --- a guest on every node, its address known before it boots (a port made first) -----------------------------
    ports = [conn.network.create_port(network_id=private.id, name=f"split-guest{i}") for i in (1, 2, 3)]
    ips = [p.fixed_ips[0]["ip_address"] for p in ports]
    servers = []
    for i, (host, port) in enumerate(zip(c.nodes, ports, strict=True)):
        targets = " ".join([*(ip for j, ip in enumerate(ips) if j != i), outside])
        servers.append(conn.compute.create_server(
            name=f"split-vm{i + 1}", image_id=image.id, flavor_id=flavor.id, networks=[{"port": port.id}],
            availability_zone=f"nova:{host}",
            user_data=base64.b64encode(SCRIPT.replace("TARGETS", targets).encode()).decode()))
    vm1, vm2, vm3 = [on_host(conn, s, h) for s, h in zip(servers, c.nodes, strict=True)]
    for i, vm in enumerate((vm1, vm2, vm3)):
        others = [*(ip for j, ip in enumerate(ips) if j != i), outside]
        guests.wait_console(conn, vm, lambda t, ip=ips[i]: ip in t, what=f"the lease of {ips[i]} on {vm.name}")
        guests.wait_console(conn, vm, answered(others), what=f"{vm.name} reaching both other guests and the outside")

    # Every API process followed one network host: DHCP (and the router) stayed on node one.
    dhcp = list(conn.network.ports(network_id=private.id, device_owner="network:dhcp"))
    assert dhcp and {port.binding_host_id for port in dhcp} == {n1}, [port.binding_host_id for port in dhcp]

    # --- a volume on node one, attached to the guest on node two over NBD, written from inside it ------------------
    vol = conn.block_storage.create_volume(size=1, name="split-volume")
    conn.block_storage.wait_for_status(vol, "available", failures=["error"], interval=0.5, wait=60)
    assert conn.block_storage.get_volume(vol).host.split("@")[0] == n1
    path = c.base / n1 / "volumes" / f"volume-{vol.id}"
    assert path.exists()
    conn.compute.create_volume_attachment(vm2, volume=vol)
    conn.block_storage.wait_for_status(vol, "in-use", failures=["error", "available"], interval=0.5, wait=120)
    [attachment] = conn.block_storage.get(f"/attachments/detail?volume_id={vol.id}", microversion="3.27").json()[
        "attachments"]
    info = attachment["connection_info"]
    assert info["driver_volume_type"] == "nbd" and (info["data"]["host"], info["data"]["port"]) == (
        c.ips[n1], NBD_PORT), info
    guests.wait_console(conn, vm2, lambda t: len(writes(t)) >= 2, 120, "writes to the NBD volume")
    wait_for(lambda: on_disk(path), 30, "vm2's write in the volume file on node one", interval=0.5)

    # --- live migration of node three's guest to node one while the other two ping it ------------------------------
    before = {vm.name: len(guests.console(conn, vm)) for vm in (vm1, vm2)}
    started = time.monotonic()
    conn.compute.live_migrate_server(vm3, host=n1)
    on_host(conn, vm3, n1)
    took = time.monotonic() - started
    lost = {}
    for vm in (vm1, vm2):
        text = guests.wait_console(conn, vm, lambda t, b=before[vm.name]: pings(t[b:], ips[2])[-3:] == ["ok"] * 3,
                                   120, f"{vm.name}'s pings of vm3 answered after the move")
        seen = pings(text[before[vm.name]:], ips[2])
        lost[vm.name] = (seen.count("fail"), len(seen))
    assert guests.console(conn, vm3).count("Linux version") == 1  # it moved running: no second boot
    print(f"\nsplit guests: live migration {n3} -> {n1} in {took:.1f}s; pings of it lost (of sent, one about every "
          f"0.5-1 s): {lost}")

    # --- the guests' metadata came through node one's relay over TCP (the balancer), not a unix socket of an API ----
    relay_log = (c.base / n1 / "network" / "metadata-relay.log").read_text()
    for ip in ips:
        assert re.search(rf"{re.escape(ip)} GET /openstack/\S+/user_data -> 200", relay_log), relay_log[-3000:]
    proxy_cmd = json.loads((c.base / n1 / "network" / "dhcp" / private.id / "proxy-cmdline").read_text())
    relay_sock = sockpath.fitting(c.base / n1 / "network" / "metadata-relay.sock")  # a short place if too long
    assert proxy_cmd[proxy_cmd.index("--upstream") + 1] == str(relay_sock)

    # --- doctor on the network host of a healthy cluster says so (the machine holds other clouds' namespaces) --------
    healthy = doctor(c, n1, healthy=True)
    print(f"split guests: doctor on {n1} (healthy): {[(f['check'], f['level'], f['what']) for f in healthy]}")

    # --- node two dies: its agent killed, its guest's QEMU with it ---------------------------------------------------
    t0 = time.monotonic()
    c.procs[n2].kill9()
    for pid in qemu_pids(vm2.id):
        os.kill(pid, signal.SIGKILL)
    # A build scheduled onto node two before it is seen down is published to an agent that is gone: stuck in BUILD.
    stuck = conn.compute.create_server(name="split-stuck", image_id=image.id, flavor_id=flavor.id,
                                       networks="none", availability_zone=f"nova:{n2}")
    down = wait_for(lambda: compute_states().get(n2) == "down" and time.monotonic() - t0, 60,
                    "node two's compute service down", interval=0.5)
    print(f"split guests: {n2}'s agent killed, its compute service down after {down:.1f}s (service_down_time 20 s, "
          "heartbeats every 2 s)")
    assert conn.compute.get_server(stuck).status == "BUILD"

    # --- doctor on node three, with an orphan tap added by hand there ------------------------------------------------
    # Node three's own network agent removes a stray tap at its next garbage collection (any pass may run one): it
    # is paused (SIGSTOP, seconds: well inside service_down_time) while the tap is there and the doctor looks.
    tap = "tapdeadbeef-00"
    c.procs[n3].proc.send_signal(signal.SIGSTOP)
    try:
        subprocess.run(["ip", "-n", f"tsnode-{n3}", "tuntap", "add", "dev", tap, "mode", "tap"], check=True)
        findings = doctor(c, n3)
    finally:
        subprocess.run(["ip", "-n", f"tsnode-{n3}", "link", "delete", tap], check=False, capture_output=True)
        c.procs[n3].proc.send_signal(signal.SIGCONT)
    problems = [f for f in findings if f["level"] in ("warning", "error")]
    print(f"split guests: doctor on {n3}: problems: {[(f['check'], f['subject'], f['what']) for f in problems]}")
    assert any(n2 in f["subject"] + f["what"] and f["check"] == "services" for f in problems), problems
    assert any(f["check"] == "stuck" and f["subject"] == stuck.id for f in problems), problems
    assert any(f["check"] == "orphans" and f["subject"] == tap for f in problems), problems

    # --- evacuate node two's guest to node three: it boots again and writes the volume over NBD from there -----------
    conn.compute.evacuate_server(vm2, host=n3)
    on_host(conn, vm2, n3)
    text = guests.wait_console(conn, vm2, lambda t: t.count("Linux version") == 2, what="the evacuated guest's boot")
    booted = text.rfind("Linux version")
    guests.wait_console(conn, vm2, lambda t: len(writes(t[booted:])) >= 2, 120, "writes after the evacuation")
    since = writes(guests.console(conn, vm2)[booted:])[0]
    wait_for(lambda: (on_disk(path) or 0.0) >= since, 30, "the evacuated guest's writes in the file", interval=0.5)
    guests.wait_console(conn, vm2, lambda t: answered([ips[0], ips[2], outside])(t[booted:]), what="vm2's pings "
                        "from node three")

    # --- node two comes back (its agent drops what was evacuated); everything is deleted ------------------------------
    c.start_agent(n2)
    conn.compute.delete_server(stuck)
    conn.compute.delete_volume_attachment(vm2, vol)
    conn.block_storage.wait_for_status(vol, "available", failures=["error"], interval=0.5, wait=120)
    conn.block_storage.delete_volume(vol)
    for s in (vm1, vm2, vm3, stuck):
        conn.compute.delete_server(s)
    for s in (vm1, vm2, vm3, stuck):
        conn.compute.wait_for_delete(s, interval=0.5, wait=120)
