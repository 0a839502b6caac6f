"""`server create` → ssh answers, on a live cloud with the real QEMU driver (TCG here).

Baseline in the same run: the guest's own uptime when ssh first answers (read over that ssh session),
so "overhead" is what the cloud adds around the guest's boot: API, scheduling, ports, disks, QEMU start.
Usage: PYTHONPATH=. python benchmarks/server_to_ssh.py [runs]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.livecloud import LiveCloud


def ssh(netns: str, key: Path, ip: str, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", netns, "ssh", "-i", str(key), "-o", "StrictHostKeyChecking=no",
                           "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=3", "-o", "LogLevel=ERROR",
                           f"cirros@{ip}", command], capture_output=True, text=True, timeout=10)


def main(runs: int = 3) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cloud = LiveCloud(Path(tmp) / "state", compute__driver="qemu", guest__auto_build="true")
        try:
            cloud.wait_for_default_image()
            conn = cloud.conn("demo")
            image = conn.image.find_image("cirros-0.6.3-x86_64-uec")
            flavor = conn.compute.find_flavor("m1.tiny")
            net = conn.network.find_network("private")
            sg = conn.network.find_security_group("default", project_id=conn.current_project_id)
            public = conn.network.find_network("public")
            assert image and flavor and net and sg and public
            conn.network.create_security_group_rule(security_group_id=sg.id, direction="ingress", protocol="tcp",
                                                    port_range_min=22, port_range_max=22)
            key = conn.compute.create_keypair(name="bench")
            key_file = Path(tmp) / "k.pem"
            key_file.write_text(key.private_key)
            key_file.chmod(0o600)
            totals, actives, uptimes = [], [], []
            for n in range(runs):
                started = time.perf_counter()
                server = conn.compute.create_server(name=f"b{n}", image_id=image.id, flavor_id=flavor.id,
                                                    networks=[{"uuid": net.id}], key_name="bench")
                conn.compute.wait_for_server(server, interval=0.2, wait=300)
                actives.append(time.perf_counter() - started)
                port = next(conn.network.ports(device_id=server.id))
                fip = conn.network.create_ip(floating_network_id=public.id,
                                             port_id=port.id)
                while True:
                    res = ssh(cloud.external_netns, key_file, fip.floating_ip_address, "cut -d' ' -f1 /proc/uptime")
                    if res.returncode == 0:
                        break
                    assert time.perf_counter() - started < 300, res.stderr
                    time.sleep(0.5)
                totals.append(time.perf_counter() - started)
                uptimes.append(float(res.stdout.strip()))
                conn.compute.delete_server(server)
                conn.network.delete_ip(fip)
                conn.compute.wait_for_delete(server, interval=0.5, wait=120)
        finally:
            cloud.stop()
    total, active, uptime = statistics.median(totals), statistics.median(actives), statistics.median(uptimes)
    print(f"server create -> ACTIVE:        {active:6.2f} s (median of {runs})")
    print(f"server create -> ssh answers:   {total:6.2f} s (target <= 10 s)")
    print(f"guest uptime when ssh answered: {uptime:6.2f} s (the guest's own boot, same run)")
    print(f"cloud overhead around the boot: {total - uptime:6.2f} s ({total / uptime:.2f}x the guest's boot)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
