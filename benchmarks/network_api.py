"""A security-group rule change across N ports (default 1,000) on one host: the time from the API call
until the network controller has published every affected port document on the bus; the baseline is
publishing the same number of precomputed documents on the same bus.

Usage: python -m benchmarks.network_api [ports]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tinystack import config
from tinystack.core.auth import RequestContext
from tinystack.core.bus import InProcessBus
from tinystack.core.db import Database
from tinystack.core.policy import PolicyEngine
from tinystack.network.controller import Controller
from tinystack.network.service import MIGRATIONS, NetworkService

HOST = "bench-host"


async def main(n: int) -> None:
    state = Path(tempfile.mkdtemp(prefix="tsnetbench-"))
    cfg = config.load(None, environ={}, overrides={"state_dir": str(state), "network__bootstrap": "false",
                                                                   "network__quota_port": "-1"})
    db = Database(f"sqlite:///{state / 'net.db'}")
    db.migrate("network", MIGRATIONS)
    svc = NetworkService(cfg, db, PolicyEngine())
    bus = InProcessBus()
    ctl = Controller(svc, bus, str(state / "metadata.sock"))
    await ctl.start()
    ctx = RequestContext(user_id="bench", project_id="benchproject", roles=("admin",))
    received: list[dict[str, Any]] = []
    done = asyncio.Event()
    want = {"count": 0}

    async def agent(message: dict[str, Any]) -> None:
        if message.get("type") == "port" and message.get("op") == "put":
            received.append(message)
            if len(received) >= want["count"]:
                done.set()

    bus.subscribe(f"agent.network.{HOST}", agent)

    def setup() -> str:
        net = svc.create(ctx, "networks", {"network": {"name": "bench"}})["network"]
        svc.create(ctx, "subnets", {"subnet": {"network_id": net["id"], "cidr": "10.100.0.0/20", "ip_version": 4,
                                               "enable_dhcp": False}})
        sg = svc.create(ctx, "security_groups", {"security_group": {"name": "bench"}})["security_group"]
        port = {"network_id": net["id"], "security_groups": [sg["id"]], "binding:host_id": HOST,
                "device_owner": "compute:nova"}
        for start in range(0, n, 250):
            svc.create(ctx, "ports", {"ports": [dict(port) for _ in range(min(250, n - start))]})
        return str(sg["id"])

    t = time.perf_counter()
    sg_id = await asyncio.to_thread(setup)
    await ctl.settled(300)
    await bus.drain()
    print(f"setup: {n} ports in {time.perf_counter() - t:.1f}s; {len(received)} port docs published")

    # the figure: one rule added to the group all N ports are in
    received.clear()
    done.clear()
    want["count"] = n
    t0 = time.perf_counter()
    await asyncio.to_thread(svc.create, ctx, "security_group_rules", {"security_group_rule": {
        "security_group_id": sg_id, "direction": "ingress", "protocol": "tcp", "port_range_min": 22,
        "port_range_max": 22, "remote_ip_prefix": "0.0.0.0/0"}})
    await asyncio.wait_for(done.wait(), 120)
    measured = time.perf_counter() - t0
    docs = list(received)
    assert len({m["id"] for m in docs}) == n
    assert all(any(r["port_range_min"] == 22 for r in m["spec"]["security_group_rules"]) for m in docs)

    # baseline: publishing the same N precomputed documents
    received.clear()
    done.clear()
    t1 = time.perf_counter()
    for m in docs:
        await bus.publish(f"agent.network.{HOST}", m)
    await asyncio.wait_for(done.wait(), 120)
    baseline = time.perf_counter() - t1
    print(f"security-group rule change across {n} ports: all docs published in {measured * 1000:.0f} ms "
          f"(target <= 1000 ms)")
    print(f"baseline, publishing {n} precomputed docs: {baseline * 1000:.0f} ms; ratio {measured / baseline:.1f}x")
    await ctl.stop()
    await bus.close()
    db.dispose()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000))
