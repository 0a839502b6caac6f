"""Live migration between the two nodes of one process, with real QEMU guests (TCG here).

Measured: `os-migrateLive` accepted → `server show` reports the other host with no task (what a user waits
for), over several moves back and forth of one running m1.tiny guest. Baseline in the same run: the bare QEMU
part, one QEMU sending a guest of the same size to another QEMU waiting with ``-incoming`` in a second
namespace (both started beforehand), from QMP ``migrate`` to ``completed``. The ratio is what the cloud adds:
the API, the conductor, plugging the taps on the destination, starting its QEMU, the reports on the bus.
Usage: PYTHONPATH=. python benchmarks/live_migration.py [moves]
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from qemu.qmp import QMPClient

from tests.livecloud import LiveCloud


async def _qmp(sock: Path, command: str, args: dict[str, object] | None = None) -> dict[str, object]:
    client = QMPClient("bench")
    await client.connect(str(sock))
    try:
        return await client.execute(command, args)  # type: ignore[no-any-return]
    finally:
        await client.disconnect()


async def _raw_once(work: Path, memory_mb: int, ns: dict[str, str]) -> float:
    disk = work / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "1G"], check=True)
    common = ["qemu-system-x86_64", "-machine", "pc", "-accel", "tcg", "-cpu", "max", "-m", str(memory_mb),
              "-nodefaults", "-no-user-config", "-display", "none", "-daemonize",
              "-drive", f"file={disk},if=none,id=d0,format=qcow2,cache=writeback", "-device", "virtio-blk-pci,drive=d0"]
    for side, extra in (("a", []), ("b", ["-incoming", "defer"])):
        subprocess.run(["ip", "netns", "exec", ns[side], *common, "-name", f"bench-{side}", "-pidfile",
                        str(work / f"{side}.pid"), "-qmp", f"unix:{work / side}.sock,server=on,wait=off", *extra],
                       check=True)
    try:
        await _qmp(work / "b.sock", "migrate-incoming", {"uri": "tcp:10.252.0.2:0"})
        info = await _qmp(work / "b.sock", "query-migrate")
        port = info["socket-address"][0]["port"]  # type: ignore[index]
        await asyncio.sleep(1)  # let the source's firmware settle, as a guest that has been running would
        started = time.perf_counter()
        await _qmp(work / "a.sock", "migrate", {"uri": f"tcp:10.252.0.2:{port}"})
        while (await _qmp(work / "a.sock", "query-migrate")).get("status") != "completed":
            await asyncio.sleep(0.005)
        return time.perf_counter() - started
    finally:
        for side in ("a", "b"):
            with contextlib.suppress(Exception):
                await _qmp(work / f"{side}.sock", "quit")
        disk.unlink(missing_ok=True)


def raw_migration(memory_mb: int, rounds: int) -> float:
    """Median seconds of a bare QEMU → QEMU migration between two namespaces joined by a veth pair."""
    tag = uuid.uuid4().hex[:6]
    ns = {"a": f"tsbm-{tag}a", "b": f"tsbm-{tag}b"}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for side in ns.values():
                subprocess.run(["ip", "netns", "add", side], check=True)
            subprocess.run(["ip", "-n", ns["a"], "link", "add", "bm0", "type", "veth", "peer", "name", "bm0",
                            "netns", ns["b"]], check=True)
            for n, side in enumerate(("a", "b"), start=1):
                subprocess.run(["ip", "-n", ns[side], "addr", "add", f"10.252.0.{n}/24", "dev", "bm0"], check=True)
                subprocess.run(["ip", "-n", ns[side], "link", "set", "bm0", "up"], check=True)
                subprocess.run(["ip", "-n", ns[side], "link", "set", "lo", "up"], check=True)
            return statistics.median(asyncio.run(_raw_once(Path(tmp), memory_mb, ns)) for _ in range(rounds))
        finally:
            for side in ns.values():
                subprocess.run(["ip", "netns", "del", side], check=False)


def main(moves: int = 6) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cloud = LiveCloud(Path(tmp) / "state", nodes=2, compute__driver="qemu", guest__auto_build="true")
        try:
            cloud.wait_for_default_image()
            one, two = cloud.hosts
            conn = cloud.conn("admin")
            image = conn.image.find_image("cirros-0.6.3-x86_64-uec")
            flavor = conn.compute.find_flavor("m1.tiny")
            net = conn.network.find_network("private")
            assert image and flavor and net
            server = conn.compute.create_server(name="lm", image_id=image.id, flavor_id=flavor.id,
                                                networks=[{"uuid": net.id}], availability_zone=f"nova:{one}")
            server = conn.compute.wait_for_server(server, interval=0.2, wait=300)
            time.sleep(15)  # past its boot, as a guest one moves usually is
            times = []
            for n in range(moves):
                dest = two if n % 2 == 0 else one
                started = time.perf_counter()
                conn.compute.live_migrate_server(server, host=dest, block_migration="auto")
                while True:
                    shown = conn.compute.get_server(server.id)
                    if shown.compute_host == dest and shown.task_state is None:
                        break
                    assert shown.status != "ERROR", shown
                    time.sleep(0.05)
                times.append(time.perf_counter() - started)
            migrations = list(conn.compute.migrations(instance_uuid=server.id))
            assert all(m.status == "completed" for m in migrations) and len(migrations) == moves
            memory = int(flavor.ram)
        finally:
            cloud.stop()
    raw = raw_migration(memory, 3)
    median = statistics.median(times)
    print(f"live migration, API call -> other host reported, {moves} moves of an m1.tiny ({memory} MiB) guest:")
    print(f"  median {median * 1000:.0f} ms, min {min(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms")
    print(f"  bare QEMU -> QEMU migration of {memory} MiB in the same run: {raw * 1000:.0f} ms (median of 3)")
    print(f"  ratio: {median / raw:.1f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 6)
