"""API throughput with two ``tinystack api`` processes behind HAProxy against one, in the same run (issue 15).

One split cloud on a scratch PostgreSQL database and the local RabbitMQ (tests/e2e/splitcluster.py): two API
processes, two HAProxy instances on the same backends, one fronting only the first process, the other both.
Each is driven in turn, alternating, by an aiohttp client with ``CONCURRENCY`` connections for ``seconds``:
token validation (``GET /v3/auth/tokens``) and ``server list`` (``GET /v2.1/servers``, 20 servers in the
project). The figure is the ratio two/one of the best of ``ROUNDS`` per configuration.
Usage: PYTHONPATH=. python benchmarks/split_api.py [seconds]   (needs PostgreSQL, RabbitMQ and haproxy)
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import requests

from tests.databases import scratch_database
from tests.e2e import splitcluster as sc
from tests.e2e.test_api_race import token

CONCURRENCY = 32
ROUNDS = 3


async def drive(url: str, headers: dict[str, str], seconds: float) -> float:
    """Requests per second answered 200 by ``url`` under ``CONCURRENCY`` connections."""
    done = 0
    stop = time.monotonic() + seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as session:

        async def worker() -> None:
            nonlocal done
            while time.monotonic() < stop:
                async with session.get(url, headers=headers) as r:
                    await r.read()
                    if r.status != 200:
                        raise RuntimeError(f"{url}: {r.status}")
                    done += 1

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return done / (time.monotonic() - started)


def main(seconds: float) -> None:
    with tempfile.TemporaryDirectory() as tmp, scratch_database("postgresql") as db_url:
        base = Path(tmp)
        exchange = f"tinystack-bench-{uuid.uuid4().hex[:8]}"
        fronted = ("identity", "compute")
        backends = {n: {s: sc.free_port() for s in sc.FRONTED} for n in ("api1", "api2")}
        two = {s: sc.free_port() for s in sc.FRONTED}
        one = {s: sc.free_port() for s in fronted}
        ini = sc.write_config(base, db_url, exchange, "[token]\ncache_size = 10000\n")
        procs: list[sc.Proc] = []
        try:
            procs.append(sc.start("api", "api1", base, ini, sc.api_env(backends["api1"], two)))
            procs.append(sc.start("api", "api2", base, ini, sc.api_env(backends["api2"], two), seed=base / "api1"))
            (base / "one").mkdir()
            (base / "two").mkdir()
            procs.append(sc.start_haproxy(base / "two", sc.haproxy_cfg(two, backends)))
            procs.append(sc.start_haproxy(base / "one", sc.haproxy_cfg(one, {"api1": backends["api1"]})))
            time.sleep(3)  # the health checks mark the servers up
            tok, _ = token(f"http://127.0.0.1:{two['identity']}/v3", base / "api1")
            headers = {"X-Auth-Token": tok}
            compute = f"http://127.0.0.1:{two['compute']}/v2.1"
            image = requests.post(f"http://127.0.0.1:{backends['api1']['image']}/v2/images", headers=headers,
                                  timeout=30, json={"name": "bench", "disk_format": "raw",
                                                    "container_format": "bare"}).json()["id"]
            requests.put(f"http://127.0.0.1:{backends['api1']['image']}/v2/images/{image}/file", data=b"\0" * 4096,
                         headers={**headers, "Content-Type": "application/octet-stream"}, timeout=30).raise_for_status()
            flavor = requests.get(f"{compute}/flavors", headers=headers, timeout=30).json()["flavors"][0]["id"]
            for i in range(20):  # no agents: they stay BUILD, which is all a list needs
                r = requests.post(f"{compute}/servers", timeout=30,
                                  headers={**headers, "OpenStack-API-Version": "compute 2.37"},
                                  json={"server": {"name": f"b{i}", "imageRef": image, "flavorRef": flavor,
                                                   "networks": "none"}})
                assert r.status_code == 202, r.text
            cases = {
                "token validation": ("identity", "/v3/auth/tokens", {**headers, "X-Subject-Token": tok}),
                "server list": ("compute", "/v2.1/servers", headers),
            }
            for label, (service, path, hdrs) in cases.items():
                best = {"one": 0.0, "two": 0.0, "api1": 0.0, "api2": 0.0}
                for _ in range(ROUNDS):
                    # Each process directly too: whether the two are alike, and what HAProxy costs.
                    for name, ports in (("one", one), ("two", two), ("api1", backends["api1"]),
                                        ("api2", backends["api2"])):
                        rate = asyncio.run(drive(f"http://127.0.0.1:{ports[service]}{path}", hdrs, seconds))
                        best[name] = max(best[name], rate)
                print(f"{label:<17} one API process {best['one']:7.0f}/s   two {best['two']:7.0f}/s   "
                      f"ratio {best['two'] / best['one']:.2f}x   ({CONCURRENCY} connections, {os.cpu_count()} cores, "
                      f"client, HAProxy and PostgreSQL on the same cores); directly: api1 {best['api1']:.0f}/s, "
                      f"api2 {best['api2']:.0f}/s; load average {os.getloadavg()[0]:.1f}", flush=True)
        finally:
            for p in reversed(procs):
                p.stop()
            sc.remove_queues(exchange)


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 8.0)
