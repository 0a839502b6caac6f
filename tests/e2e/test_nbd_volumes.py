"""A volume across machines over NBD, with real guests on two nodes (node namespaces joined by VXLAN over an
underlay, as tests/e2e/test_multinode.py): the volume lives on node one, whose volume agent exports it with
``qemu-storage-daemon`` on its underlay address (TLS-PSK, a secret export name per attachment); a guest on node
two gets it hotplugged over NBD and writes to it from inside, and the bytes are in the volume file on node one.
The volume agent restarts (the export stays) and the export daemon is killed (the agent starts it again, the
guest's NBD client reconnects); the guest's writes go on through both. Finally node two dies and the guest is
evacuated to node one, where it boots again and writes the volume as a file.

The guest then live-migrates to node one while a guest there pings it (the lost pings are counted and printed),
where it opens the same volume as a local file, and back, over NBD again; its writes go on throughout. A detach
ends the export and the daemon: no process is left behind.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import openstack.connection
import pytest

from tests.e2e import guests
from tests.livecloud import LiveCloud
from tests.waiting import wait_for
from tinystack import nodes
from tinystack.compute.agent import ComputeAgent
from tinystack.volume import agent as volume_agent
from tinystack.volume.agent import VolumeAgent
from tinystack.volume.drivers.base import DriverError
from tinystack.volume.drivers.nbd import NbdServer

pytestmark = [pytest.mark.guest, pytest.mark.e2e, pytest.mark.slow, pytest.mark.privileged]

NBD_PORT = 10809
# Every second, once the volume (the disk with a serial) is there: write a line with the guest's uptime at its
# start, synchronously, and say so on the console.
WRITER = """#!/bin/sh
( while :; do
    for d in /sys/block/vd*; do
      if [ -s "$d/serial" ]; then
        u=$(cut -d' ' -f1 /proc/uptime)
        if echo "nbd-write $u $(cat $d/serial) end" | dd of=/dev/${d##*/} bs=512 count=1 conv=sync,fsync 2>/dev/null
        then echo "wrote $u"; fi
      fi
    done
    sleep 1
  done ) >/dev/console 2>&1 </dev/null &
"""
# Every half second: can the guest reach TARGET?
PINGER = """#!/bin/sh
( while :; do
    if ping -c 1 -W 1 TARGET >/dev/null 2>&1; then r=ok; else r=fail; fi
    echo "ping $(cut -d' ' -f1 /proc/uptime) $r"; sleep 0.5
  done ) >/dev/console 2>&1 </dev/null &
"""


def writes(text: str) -> list[float]:
    return [float(u) for u in re.findall(r"^wrote (\d+\.\d+)", text, re.M)]


def on_disk(path: Path) -> tuple[float, str] | None:
    """The uptime and serial the guest wrote last, read from the volume file on the volume node."""
    head = path.read_bytes()[:512]
    found = re.match(rb"nbd-write (\d+\.\d+) (\S+) end", head)
    return (float(found.group(1)), found.group(2).decode()) if found else None


def sockets(netns: str, listening: bool = False) -> str:
    argv = ["ip", "netns", "exec", netns, "ss", "-tn" + ("l" if listening else "")]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def wait_migrated(conn: openstack.connection.Connection, server: Any, host: str) -> Any:
    def done() -> Any:
        s = conn.compute.get_server(server)
        return s if s.status == "ACTIVE" and not s.task_state and s.compute_host == host else None

    return wait_for(done, 180, f"{server.name} to be ACTIVE on {host}", interval=0.5)


def qemu_pids(instance_id: str) -> list[int]:
    """The QEMU processes of this one instance (by its own uuid on their command line)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if f"guest=instance-{instance_id}".encode() in cmdline:
                found.append(int(entry.name))
    return found


def exported(cloud: LiveCloud, server: NbdServer) -> set[str] | None:
    """The attachments the daemon exports now; None while it cannot say (starting)."""
    try:
        return set(cloud.call(server.exports()))
    except DriverError:
        return None


def restart_volume_agent(cloud: LiveCloud, host: str) -> VolumeAgent:
    """Stop the node's volume agent as a crash or an upgrade would (no cleanup) and start a new one in its place."""
    node_agents = cloud.cloud.node_agents
    assert node_agents is not None and cloud.cloud.runtime is not None
    old = cloud.agent(VolumeAgent, host)
    cloud.call(old.stop(False))
    config = next(n.config for n in nodes.plan(cloud.config) if n.host == host)
    new = volume_agent.build(config, cloud.cloud.runtime.bus)
    cloud.call(new.start())
    node_agents.running[node_agents.running.index(old)] = new
    return new


def test_volume_on_one_node_written_by_a_guest_on_another(tmp_path: Path) -> None:
    # A short resync interval: a dead export daemon is noticed at the agent's next full pass.
    # Heartbeats every 2 s and a node down after 12 s without one: the evacuation waits seconds, not a minute.
    cloud = LiveCloud(tmp_path / "state", nodes=2, compute__driver="qemu", guest__auto_build="true",
                      volume__nbd_host="10.250.0.1", volume__nbd_port=str(NBD_PORT), volume__resync_interval="5",
                      compute__heartbeat_interval="2", compute__service_down_time="12")
    try:
        conn = cloud.conn("admin")
        one, two = cloud.hosts
        cloud.wait_for_default_image()
        server = cloud.agent(VolumeAgent, one).exporter
        assert isinstance(server, NbdServer) and server.netns == f"tsnode-{one}"

        vm = guests.boot_on(conn, "nbd-writer", two, WRITER)
        ip = next(iter(vm.addresses.values()))[0]["addr"]
        pinger = guests.boot_on(conn, "nbd-pinger", one, PINGER.replace("TARGET", ip))
        guests.wait_console(conn, pinger, lambda t: guests.pings(t)[-3:] == ["ok"] * 3, 180, "pings across VXLAN")

        vol = conn.block_storage.create_volume(size=1, name="far-volume")
        conn.block_storage.wait_for_status(vol, "available", failures=["error"], interval=0.5, wait=60)
        assert conn.block_storage.get_volume(vol).host.split("@")[0] == one
        path = Path(cloud.config.state_dir, "volumes", f"volume-{vol.id}")
        assert path.exists()

        # Attached to the guest on node two: the connection is NBD, with a secret of this attachment's own.
        conn.compute.create_volume_attachment(vm, volume=vol)
        conn.block_storage.wait_for_status(vol, "in-use", failures=["error", "available"], interval=0.5, wait=120)
        listed = conn.block_storage.get(f"/attachments/detail?volume_id={vol.id}", microversion="3.27").json()
        [attachment] = listed["attachments"]
        info = attachment["connection_info"]
        assert info["driver_volume_type"] == "nbd", info
        assert (info["data"]["host"], info["data"]["port"]) == ("10.250.0.1", NBD_PORT), info
        assert len(info["data"]["export"]) >= 32 and info["data"]["psk_identity"] == f"att-{attachment['id']}"
        assert server.pid() is not None
        assert re.search(rf"10\.250\.0\.1:{NBD_PORT}\s", sockets(f"tsnode-{two}")), sockets(f"tsnode-{two}")

        # The guest writes; the bytes are in the volume's file on node one.
        text = guests.wait_console(conn, vm, lambda t: len(writes(t)) >= 2, 120, "writes to the NBD volume")
        found = wait_for(lambda: on_disk(path), 30, "the guest's write in the volume file", interval=0.5)
        assert found[1] == vol.id[:20]

        # The volume agent restarts: the export daemon (and the guest's disk) stays, and the new agent keeps the
        # export its documents still list.
        pid = server.pid()
        restarted = restart_volume_agent(cloud, one)
        server = restarted.exporter
        assert isinstance(server, NbdServer) and server.pid() == pid
        last = writes(guests.console(conn, vm))[-1]
        guests.wait_console(conn, vm, lambda t, u=last: writes(t)[-1] > u + 2, 60, "writes across the agent restart")
        assert exported(cloud, server) == {attachment["id"]}

        # The daemon dies: the agent's next pass starts it again with the export, and the guest's NBD client
        # reconnects (its writes wait meanwhile, then go on).
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: server.pid() not in (None, pid) and exported(cloud, server) == {attachment["id"]},
                 60, "the export daemon to be started again with the export", interval=0.5)
        last = writes(guests.console(conn, vm))[-1]
        guests.wait_console(conn, vm, lambda t, u=last: writes(t)[-1] > u + 2, 90, "writes after the daemon's restart")

        # Live migration to the volume's own node (where the guest opens the file) while the other guest pings
        # it, then back over NBD: the writes go on, and the pings lost are counted.
        lost: list[int] = []
        for dest in (one, two):
            before = len(guests.console(conn, pinger))
            started = time.monotonic()
            conn.compute.live_migrate_server(vm, host=dest)
            wait_migrated(conn, vm, dest)
            took = time.monotonic() - started
            after = guests.wait_console(conn, pinger, lambda t, b=before: guests.pings(t[b:])[-3:] == ["ok"] * 3, 120,
                                        f"pings answered after the move to {dest}")
            lost.append(guests.pings(after[before:]).count("fail"))
            print(f"live migration to {dest}: {took:.1f}s, {lost[-1]} of {len(guests.pings(after[before:]))} pings "
                  "(every 0.5 s) lost")
            last = writes(guests.console(conn, vm))[-1]
            guests.wait_console(conn, vm, lambda t, u=last: writes(t)[-1] > u + 1, 60, f"writes on {dest}")
            wait_for(lambda u=last: (on_disk(path) or (0.0, ""))[0] > u, 30, f"writes on {dest} in the file",
                     interval=0.5)
        text = guests.console(conn, vm)
        assert text.count("Linux version") == 1  # no reboot
        assert re.search(rf"10\.250\.0\.1:{NBD_PORT}\s", sockets(f"tsnode-{two}"))

        # Node two dies (its compute agent and the guest's QEMU killed): once its service is down, the guest is
        # evacuated to node one, boots again there (shared instance storage keeps its disk) and writes the volume,
        # now as the local file.
        cloud.call(cloud.agent(ComputeAgent, two).stop(False))
        for pid in qemu_pids(vm.id):
            os.kill(pid, signal.SIGKILL)
        wait_for(lambda: [x.state for x in conn.compute.services(binary="nova-compute") if x.host == two] == ["down"],
                 60, "node two's compute service to be down", interval=0.5)
        conn.compute.evacuate_server(vm, host=one)
        wait_migrated(conn, vm, one)
        text = guests.wait_console(conn, vm, lambda t: t.count("Linux version") == 2, 180, "the evacuated guest's boot")
        booted = text.rfind("Linux version")
        guests.wait_console(conn, vm, lambda t: len(writes(t[booted:])) >= 2, 120, "writes after the evacuation")
        since = writes(guests.console(conn, vm)[booted:])[0]
        wait_for(lambda: (on_disk(path) or (0.0, ""))[0] >= since, 30, "the evacuated guest's writes in the file",
                 interval=0.5)

        # Detach: the guest lets the disk go, the export ends and with the last one the daemon.
        conn.compute.delete_volume_attachment(vm, vol)
        conn.block_storage.wait_for_status(vol, "available", failures=["error"], interval=0.5, wait=120)
        wait_for(lambda: server.pid() is None, 30, "the NBD server to stop with its last export", interval=0.2)
        assert f":{NBD_PORT}" not in sockets(f"tsnode-{one}", listening=True)
        assert not (server.psk_file.read_text().strip() if server.psk_file.exists() else "")

        conn.block_storage.delete_volume(vol)
        for s in (vm, pinger):
            conn.compute.delete_server(s)
        for s in (vm, pinger):
            conn.compute.wait_for_delete(s, interval=0.5, wait=120)
    finally:
        cloud.stop()
    assert server.pid() is None
