"""Compute agent overhead: an ``instance`` doc on the bus → the guest's first console line, minus the same
guest (same kernel, initrd, disk, NIC on a tap in a namespace, TCG/KVM as the driver picks) started by raw QEMU
in the same run. Root; a namespace with a random name, removed at the end. Images come from a live
in-process cloud's image API, as in production.
Usage: python benchmarks/compute_boot.py [rounds]
"""

from __future__ import annotations

import asyncio
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from tests.compute.agent import testguest
from tests.compute.agent.conftest import _upload, kill_guests
from tests.compute.agent.test_svcauth import service_yaml
from tests.livecloud import LiveCloud
from tinystack.compute.agent import ComputeAgent
from tinystack.compute.drivers.qemu import QemuDriver, process
from tinystack.core.bus import InProcessBus
from tinystack.core.svcauth import ServiceAuth

HOST = "bench"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def first_line_in(path: Path) -> bool:
    try:
        return b"\n" in path.read_bytes()
    except FileNotFoundError:
        return False


async def raw_qemu(work: Path, kernel: Path, initrd: Path, base: Path, netns: str, tap: str, kvm: bool) -> float:
    """Spawn → first console line, QEMU started by hand with the same devices (serial on stdout)."""
    disk = work / f"raw-{secrets.token_hex(3)}.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(base), str(disk), "1G"],
                   check=True)
    argv = ["ip", "netns", "exec", netns, process.QEMU, "-machine", "pc", "-accel", "kvm" if kvm else "tcg",
            "-cpu", "host" if kvm else "max", "-m", "128", "-smp", "1", "-nodefaults", "-no-user-config",
            "-display", "none", "-vga", "std", "-serial", "stdio",
            "-drive", f"file={disk},if=none,id=d0,format=qcow2", "-device", "virtio-blk-pci,drive=d0",
            "-kernel", str(kernel), "-initrd", str(initrd), "-append", "console=ttyS0 root=/dev/vda",
            "-netdev", f"tap,id=n0,ifname={tap},script=no,downscript=no",
            "-device", "virtio-net-pci,netdev=n0,mac=fa:16:3e:00:00:99"]
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL)
    assert proc.stdout is not None
    await proc.stdout.readline()
    elapsed = time.perf_counter() - started
    proc.kill()
    await proc.wait()
    disk.unlink()
    return elapsed


def spec_for(images: dict[str, str], tap: str, port_id: str) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "name": "bench", "hostname": "bench", "project_id": "p", "user_id": "u",
            "flavor": {"vcpus": 1, "memory_mb": 128, "root_gb": 1, "ephemeral_gb": 0, "swap_mb": 0, "extra_specs": {}},
            "image": {"id": images["root"], "disk_format": "qcow2", "container_format": "bare", "size": 0,
                      "checksum": None, "properties": {}},
            "kernel_image_id": images["kernel"], "ramdisk_image_id": images["initrd"],
            "nics": [{"port_id": port_id, "mac_address": "fa:16:3e:00:00:98", "tap": tap, "fixed_ips": []}],
            "power": "running", "rescue": False, "reboot": {"seq": 0, "hard": False}, "snapshot": None,
            "config_drive": None, "admin_pass": None, "console_log_max_bytes": 1 << 20}


async def main(rounds: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="tsbench-boot-"))
    netns = f"tsbb-{secrets.token_hex(4)}"
    live = LiveCloud(work / "cloud")
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        kernel, initrd = testguest.build()
        base = work / "root.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), "64M"], check=True)
        conn = live.conn("admin")
        images = {}
        for key, path, fmt in (("kernel", kernel, "aki"), ("initrd", initrd, "ari"), ("root", base, "qcow2")):
            image = conn.image.create_image(name=f"bench-{key}", disk_format=fmt, container_format="bare")
            images[key] = _upload(live, image.id, path)
        auth = ServiceAuth.from_file(service_yaml(live, work / "service.yaml"))
        driver = QemuDriver(work / "instances", work / "cache", lambda: auth, netns=netns, power_off_timeout=1)
        bus = InProcessBus()
        agent = ComputeAgent(bus, HOST, driver, work / "records", power_off_timeout=1, resync_interval=3600)
        await agent.start()
        kvm = await driver.accel.use_kvm()
        port_id = uuid.uuid4().hex
        tap = f"tap{port_id[:11]}"
        subprocess.run(["ip", "-n", netns, "tuntap", "add", "dev", tap, "mode", "tap"], check=True)
        subprocess.run(["ip", "-n", netns, "link", "set", tap, "up"], check=True)
        raw, ours, cold = [], [], None
        for i in range(rounds + 1):
            raw.append(await raw_qemu(work, kernel, initrd, base, netns, tap, kvm))
            spec = spec_for(images, tap, port_id)
            log = Path(driver.console_log_path(spec["id"]))
            started = time.perf_counter()
            await bus.publish(f"agent.compute.{HOST}", {"op": "put", "type": "instance", "id": spec["id"],
                                                        "generation": 1, "spec": spec})
            while not first_line_in(log):
                await asyncio.sleep(0.002)
            elapsed = time.perf_counter() - started
            if i == 0:
                cold = elapsed  # includes downloading the three images into the cache
            else:
                ours.append(elapsed)
            await bus.publish(f"agent.compute.{HOST}", {"op": "delete", "type": "instance", "id": spec["id"],
                                                        "generation": 2})
            await bus.drain()
            await agent.wait_idle()
            while Path(driver.console_log_path(spec["id"])).parent.exists():
                await asyncio.sleep(0.05)
        await agent.stop(cleanup=True)
        await bus.close()
        raw_med, ours_med = statistics.median(raw[1:]), statistics.median(ours)
        print(f"accelerator: {'kvm' if kvm else 'tcg'}; rounds: {rounds}")
        print(f"raw QEMU spawn → first console line: median {ms(raw_med)} (all: {', '.join(ms(x) for x in raw)})")
        print(f"agent: instance doc → first console line: median {ms(ours_med)} (all: {', '.join(ms(x) for x in ours)})")
        print(f"agent overhead (median difference): {ms(ours_med - raw_med)}  [target ≤ 1000 ms]")
        print(f"first boot with an empty image cache (3 downloads): {ms(cold or 0)}")
    finally:
        kill_guests(work)
        subprocess.run(["ip", "netns", "del", netns], check=False)
        live.stop()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 3))
