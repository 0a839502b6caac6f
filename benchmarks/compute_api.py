"""``server list --long`` over N servers (default 1,000) booted through the API and a fake-driver agent:
the median time of ``GET /servers/detail``; the baseline is ``GET /flavors/detail`` in the same run.

Usage: python -m benchmarks.compute_api [servers]
"""

from __future__ import annotations

import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

from tests.livecloud import LiveCloud


def median_ms(session: requests.Session, url: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        r = session.get(url, timeout=60)
        times.append((time.perf_counter() - started) * 1000)
        r.raise_for_status()
    return statistics.median(times)


def main(n: int) -> None:
    from tinystack.compute.agent import ComputeAgent
    from tinystack.compute.drivers.fake import FakeDriver

    state = Path(tempfile.mkdtemp(prefix="tscomputebench-"))
    live = LiveCloud(state)
    try:
        rt = live.cloud.runtime
        assert rt is not None
        host = f"tsbench-{secrets.token_hex(3)}"
        agent = ComputeAgent(rt.bus, host, FakeDriver(vcpus=1024, memory_mb=10**7, local_gb=10**5), state / "agent")
        live.call(agent.start())
        conn = live.conn("admin")
        image = conn.image.create_image(name="bench", data=b"\0" * 1024, disk_format="raw", container_format="bare")
        base = live.url("compute")
        s = requests.Session()
        s.headers.update({"X-Auth-Token": conn.auth_token, "OpenStack-API-Version": "compute 2.96"})
        project = conn.current_project_id
        s.put(f"{base}/os-quota-sets/{project}", json={"quota_set": {"instances": -1, "cores": -1, "ram": -1}},
              timeout=30).raise_for_status()
        started = time.perf_counter()
        for _ in range(0, n, 100):
            s.post(f"{base}/servers", json={"server": {"name": "bench", "imageRef": image.id, "flavorRef": "42",
                                                       "networks": "none", "min_count": 100, "max_count": 100}},
                   timeout=120).raise_for_status()
        while True:
            active = len(s.get(f"{base}/servers?status=ACTIVE&limit={n}", timeout=60).json()["servers"])
            if active >= n:
                break
            time.sleep(0.5)
        boot_s = time.perf_counter() - started
        cold_started = time.perf_counter()
        rows = len(s.get(f"{base}/servers/detail", timeout=60).json()["servers"])
        cold = (time.perf_counter() - cold_started) * 1000
        detail = median_ms(s, f"{base}/servers/detail", 21)
        flavors = median_ms(s, f"{base}/flavors/detail", 21)
        print(f"servers: {rows} ACTIVE (booted through the API + fake agent in {boot_s:.1f}s)")
        print(f"GET /servers/detail first (cold render cache): {cold:.1f} ms")
        print(f"GET /servers/detail median: {detail:.1f} ms (target <= 100 ms)")
        print(f"GET /flavors/detail median (baseline): {flavors:.2f} ms; ratio {detail / flavors:.1f}x")
        live.call(agent.stop(cleanup=True))
    finally:
        live.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
