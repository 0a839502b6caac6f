"""CPU an idle node uses: the compute and network agents (with every API in the same process) while one real
QEMU guest runs and nothing is asked of the cloud.

The cloud runs in a thread of this process (tests/livecloud.py); during the window the main thread only
sleeps, so the process's CPU time over the window is the cloud's own: its agents' timers, heartbeats and
resyncs, plus the idle APIs. QEMU is a separate process and is not counted. The figure is CPU seconds per
wall second over the window (a ratio of one core), printed beside the same ratio for the period right
after boot, when the agents are busiest.
Usage: PYTHONPATH=. python benchmarks/agent_idle_cpu.py [window_seconds]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from tests.livecloud import LiveCloud


def cpu_share(seconds: float) -> float:
    """Share of one core this process used over the next ``seconds`` of wall time."""
    cpu, wall = time.process_time(), time.perf_counter()
    time.sleep(seconds)
    return (time.process_time() - cpu) / (time.perf_counter() - wall)


def main(window: float = 60.0) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cloud = LiveCloud(Path(tmp) / "state", compute__driver="qemu", guest__auto_build="true")
        try:
            cloud.wait_for_default_image()
            conn = cloud.conn("demo")
            image = conn.image.find_image("cirros-0.6.3-x86_64-uec")
            flavor = conn.compute.find_flavor("m1.tiny")
            net = conn.network.find_network("private")
            assert image and flavor and net
            server = conn.compute.create_server(name="idle", image_id=image.id, flavor_id=flavor.id,
                                                networks=[{"uuid": net.id}])
            conn.compute.wait_for_server(server, interval=0.5, wait=300)
            busy = cpu_share(5)  # right after ACTIVE: the agents report and the guest's port settles
            time.sleep(10)
            idle = cpu_share(window)
            print(f"first 5 s after ACTIVE:        {busy * 100:6.2f} % of one core")
            print(f"idle, {window:.0f} s window, 1 guest: {idle * 100:6.2f} % of one core (target < 2 %)")
            conn.compute.delete_server(server)
            conn.compute.wait_for_delete(server, wait=120)
        finally:
            cloud.stop()


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 60.0)
