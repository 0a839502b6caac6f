"""1,000 boots across 100 simulated nodes through two API processes (issue 15), and each role's idle RSS.

One split cloud on a scratch PostgreSQL database and the local RabbitMQ (tests/e2e/splitcluster.py): two
``tinystack api`` processes behind HAProxy, one ``tinystack conductor``, and ``AGENTS`` ``tinystack agent``
processes each running ``NODES // AGENTS`` nodes (``[nodes] extra``) with the fake compute, network and volume
drivers. Before any load it reads each role's RSS. Then ``SERVERS`` boots go through HAProxy from ``CLIENTS``
threads, while a poller records when each server is first seen ACTIVE. It reports:

- boots per second (first request to last ACTIVE) and p50/p99 from a boot's request to its ACTIVE;
- lost: servers neither ACTIVE nor ERROR at the end (``[compute] build_timeout`` is ``BUILD_TIMEOUT``); the servers
  not ACTIVE are printed (at most ten, those still building first) with their row as the database has it
  and the lines of the cluster's logs that name them; duplicated: servers counted on more than one hypervisor, or
  hypervisors' running VMs summing to more than the servers;
- status messages (topic ``status.compute``): published by the agents (``tinystack_bus_published_total``)
  against the message ids the API and conductor processes acked (``TINYSTACK_TRACE_STATUS``): lost, and
  handled twice.

Usage: PYTHONPATH=. python benchmarks/split_boots.py [servers] [nodes]   (needs PostgreSQL, RabbitMQ, haproxy)
"""

from __future__ import annotations

import json
import os
import re
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import create_engine, text

from tests.databases import scratch_database
from tests.e2e import splitcluster as sc
from tests.e2e.test_api_race import token
from tinystack.core.rabbitbus import TRACE_ENV

AGENTS = 4
CLIENTS = 16
POLL = 1.0
# [compute] build_timeout for the cloud: a server still building this long after its request goes to ERROR with a
# fault (issue 15: every boot ends ACTIVE or ERROR), well inside the WAIT the script gives the boots after the last.
BUILD_TIMEOUT = 480
WAIT = 600
FULL_EVERY = 30  # every 30th look lists every server, not only those changed since the last look


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def metric(url: str, name: str, topic: str) -> float:
    """The sum over one counter's series for ``topic`` (every outcome) in one process's /metrics."""
    text = requests.get(url, timeout=10).text
    pattern = re.compile(rf'^{name}{{[^}}]*topic="{re.escape(topic)}"[^}}]*}} ([0-9.e+]+)$', re.M)
    return sum(float(v) for v in pattern.findall(text))


def stragglers(db_url: str, ids: list[str], base: Path) -> None:
    """For each server not ACTIVE in the poller's eyes (those still building first, then ERROR): its row as the
    database has it now (a build's in-hand mark is ``updated_at``, renewed by the process holding it) and the log
    lines naming it."""
    if not ids:
        return
    engine = create_engine(db_url)
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(text(
            "SELECT id, vm_state, task_state, host, generation, published_generation, observed_generation, "
            "created_at, updated_at, fault FROM compute_instance WHERE id = ANY(:ids)"), {"ids": ids})}
    engine.dispose()
    logs = sorted(base.rglob("*.log"))
    for iid in sorted(ids, key=lambda i: getattr(rows.get(i), "vm_state", "") == "error")[:10]:
        r = rows.get(iid)
        print(f"not ACTIVE {iid}: " + (f"{r.vm_state}/{r.task_state} host {r.host} gen {r.generation} "
                                        f"published {r.published_generation} observed {r.observed_generation} "
                                        f"created {r.created_at:%H:%M:%S} updated {r.updated_at:%H:%M:%S} "
                                        f"fault {r.fault}" if r else "no row"))
        for f in logs:
            hits = [line for line in f.read_text(errors="replace").splitlines() if iid in line]
            for line in hits[:3] + (["...", *hits[-2:]] if len(hits) > 5 else hits[3:]):
                print(f"  {f.relative_to(base)}: {line[:300]}")


def main(servers: int, nodes: int) -> None:
    per_agent = nodes // AGENTS
    with tempfile.TemporaryDirectory() as tmp, scratch_database("postgresql") as db_url:
        base = Path(tmp)
        exchange = f"tinystack-boots-{uuid.uuid4().hex[:8]}"
        backends = {n: {s: sc.free_port() for s in sc.FRONTED} for n in ("api1", "api2")}
        front = {s: sc.free_port() for s in sc.FRONTED}
        metrics_port = {n: sc.free_port() for n in ("api1", "api2", "cond1", *(f"agent{i}" for i in range(AGENTS)))}
        # A thousand servers are a thousand ports: Neutron's default port quota (500) would fail half of them.
        ini = sc.write_config(base, db_url, exchange)
        procs: dict[str, sc.Proc] = {}

        def env(name: str, extra: dict[str, str] | None = None) -> dict[str, str]:
            # The API and conductor processes write each status message they ack (its message id) to a trace.
            # A thousand servers are a thousand ports: Neutron's default port quota (500) would fail half.
            return {"TINYSTACK_METRICS_PORT": str(metrics_port[name]), TRACE_ENV: str(base / f"trace-{name}.jsonl"),
                    "TINYSTACK_NETWORK_QUOTA_PORT": "-1", "TINYSTACK_COMPUTE_BUILD_TIMEOUT": str(BUILD_TIMEOUT),
                    **(extra or {})}

        try:
            procs["api1"] = sc.start("api", "api1", base, ini, env("api1", sc.api_env(backends["api1"], front)))
            procs["api2"] = sc.start("api", "api2", base, ini, env("api2", sc.api_env(backends["api2"], front)),
                                     seed=base / "api1")
            procs["haproxy"] = sc.start_haproxy(base, sc.haproxy_cfg(front, backends))
            procs["cond1"] = sc.start("conductor", "cond1", base, ini, env("cond1"))
            for i in range(AGENTS):
                name = f"agent{i}"
                procs[name] = sc.start("agent", name, base, ini,
                                       env(name, {"TINYSTACK_NODES_EXTRA": str(per_agent - 1)}), seed=base / "api1")
            tok, _ = token(f"http://127.0.0.1:{front['identity']}/v3", base / "api1")
            headers = {"X-Auth-Token": tok, "OpenStack-API-Version": "compute 2.79"}
            compute = f"http://127.0.0.1:{front['compute']}/v2.1"
            session = requests.Session()

            def get(path: str) -> Any:
                r = session.get(f"{compute}{path}", headers=headers, timeout=120)
                r.raise_for_status()
                return r.json()

            deadline = time.monotonic() + 300
            while len([h for h in get("/os-hypervisors")["hypervisors"] if h["state"] == "up"]) < per_agent * AGENTS:
                if time.monotonic() > deadline:
                    listed = get("/os-hypervisors")["hypervisors"]
                    up = [h["hypervisor_hostname"] for h in listed if h["state"] == "up"]
                    # Registered but down (heartbeats late: a loaded machine) is not the same as never registered.
                    down = sorted(h["hypervisor_hostname"] for h in listed if h["state"] != "up")
                    wanted = {f"agent{i}" for i in range(AGENTS)} | {f"agent{i}-{k}" for i in range(AGENTS)
                                                                     for k in range(2, per_agent + 1)}
                    missing = sorted(wanted - set(up))
                    for name in ("api1", "api2", "cond1"):
                        for f in (base / name).rglob("*.log"):
                            hits = [line for line in f.read_text(errors="replace").splitlines()
                                    if any(m in line for m in missing) or "dropped" in line]
                            print(f, hits[-6:])
                    raise SystemExit(f"the nodes did not all come up: {len(up)} of {len(wanted)} up; not up: {missing}; "
                                     f"of those, registered but down: {down}; load average {os.getloadavg()[0]:.1f}")
                time.sleep(1)
            time.sleep(10)  # idle: the start-up work (first reports, resyncs) is over
            rss = {name: rss_mb(p.proc.pid) for name, p in procs.items() if name != "haproxy"}
            print(f"idle RSS (MB): api {rss['api1']:.0f} / {rss['api2']:.0f}, conductor {rss['cond1']:.0f}, "
                  f"agent ({per_agent} fake nodes) {statistics.mean(rss[f'agent{i}'] for i in range(AGENTS)):.0f}; "
                  f"load average {os.getloadavg()[0]:.1f}", flush=True)

            image = requests.post(f"http://127.0.0.1:{front['image']}/v2/images", headers=headers, timeout=30, json={
                "name": "boots", "disk_format": "raw", "container_format": "bare", "visibility": "public"}).json()
            requests.put(f"http://127.0.0.1:{front['image']}/v2/images/{image['id']}/file", data=b"\0" * 4096,
                         headers={**headers, "Content-Type": "application/octet-stream"},
                         timeout=30).raise_for_status()
            flavor = next(f["id"] for f in get("/flavors")["flavors"] if f["name"] == "m1.tiny")
            neutron = f"http://127.0.0.1:{front['network']}/v2.0"
            net = requests.post(f"{neutron}/networks", headers=headers, timeout=30,
                                json={"network": {"name": "boots"}}).json()["network"]["id"]
            requests.post(f"{neutron}/subnets", headers=headers, timeout=30, json={"subnet": {
                "network_id": net, "ip_version": 4, "cidr": "10.200.0.0/16"}}).raise_for_status()

            sent: dict[str, float] = {}
            active: dict[str, float] = {}
            failed: list[str] = []
            refused: list[int] = []  # boots HAProxy answered itself (503) and the client sent again
            done = threading.Event()

            def poll() -> None:
                # Only what changed since the last look (with a margin): the poller must not be the load. The window
                # moves on only after an answer that was a server list: HAProxy's own 503 (no API process passed its
                # health check) once moved it past two servers that settled meanwhile, and they looked lost.
                # Every FULL_EVERY-th look takes every server, so a commit later than the margin is found too.
                s = requests.Session()
                since = datetime.now(UTC) - timedelta(minutes=5)
                looks = 0
                while not done.is_set():
                    try:
                        asked = datetime.now(UTC)
                        params = {"all_tenants": "1", "limit": "2000"}
                        if looks % FULL_EVERY:
                            params["changes-since"] = since.strftime("%Y-%m-%dT%H:%M:%SZ")
                        r = s.get(f"{compute}/servers/detail", headers=headers, timeout=120, params=params)
                        now = time.monotonic()
                        listed = r.json()["servers"] if r.status_code == 200 else None
                    except (requests.RequestException, ValueError, KeyError):
                        listed = None
                    if listed is not None:
                        looks += 1
                        since = asked - timedelta(seconds=3)
                        for x in listed:
                            if x["status"] == "ACTIVE" and x["id"] not in active:
                                active[x["id"]] = now
                            elif x["status"] == "ERROR" and x["id"] not in failed:
                                failed.append(x["id"])
                                if len(failed) <= 3:
                                    print("ERROR:", x["name"], (x.get("fault") or {}).get("message"))
                    done.wait(POLL)

            def boot(i: int) -> None:
                s = requests.Session()
                body = {"server": {"name": f"boot{i}", "imageRef": image["id"], "flavorRef": flavor,
                                   "networks": [{"uuid": net}]}}
                t = time.monotonic()
                r = s.post(f"{compute}/servers", headers=headers, json=body, timeout=300)
                # HAProxy's own 503 (both API processes failed their health checks: a loaded machine's event loops
                # answer late) means no API process saw the request: a client tries again, as this one does.
                for wait in (1, 2, 4, 8, 16):
                    if r.status_code != 503 or "No server is available" not in r.text:
                        break
                    refused.append(i)
                    time.sleep(wait)
                    r = s.post(f"{compute}/servers", headers=headers, json=body, timeout=300)
                if r.status_code != 202:
                    print(f"boot {i}: {r.status_code} {r.text[:200]}")
                    return
                sent[r.json()["server"]["id"]] = t

            poller = threading.Thread(target=poll, daemon=True)
            poller.start()
            t0 = time.monotonic()
            with ThreadPoolExecutor(CLIENTS) as pool:
                list(pool.map(boot, range(servers)))
            accepted = time.monotonic() - t0
            deadline = time.monotonic() + WAIT
            while len(active) + len(failed) < len(sent) and time.monotonic() < deadline:
                time.sleep(1)
            done.set()
            poller.join()
            last = max(active.values(), default=t0)
            lat = sorted(active[i] - sent[i] for i in active if i in sent)
            p50 = lat[len(lat) // 2] if lat else float("nan")
            p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else float("nan")

            hyps = get("/os-hypervisors/detail?with_servers=true")["hypervisors"]
            placed: dict[str, int] = {}
            for h in hyps:
                for x in h.get("servers") or []:
                    if x["uuid"] in active:
                        placed[x["uuid"]] = placed.get(x["uuid"], 0) + 1
            duplicated = sum(1 for n in placed.values() if n > 1)
            on_nodes = sum(placed.values())
            lost = len(sent) - len(active) - len(failed)  # neither ACTIVE nor ERROR with a fault
            stragglers(db_url, [i for i in sent if i not in active], base)

            def counts() -> tuple[float, int, int]:
                published = sum(metric(f"http://127.0.0.1:{metrics_port[f'agent{i}']}/metrics",
                                       "tinystack_bus_published_total", "status.compute") for i in range(AGENTS))
                acked: dict[str, int] = {}
                for trace in base.glob("trace-*.jsonl"):
                    for line in trace.read_text().splitlines():
                        rec = json.loads(line)
                        if rec["topic"] == "status.compute":
                            acked[rec["message_id"]] = acked.get(rec["message_id"], 0) + 1
                return published, len(acked), sum(1 for n in acked.values() if n > 1)

            # The last reports are still on their way: read until two looks 2 s apart agree (at most a minute).
            seen = counts()
            for _ in range(30):
                time.sleep(2)
                now_seen = counts()
                if now_seen == seen and now_seen[0] == now_seen[1]:
                    break
                seen = now_seen
            published, handled, twice = seen
            print(f"{servers} boots over {per_agent * AGENTS} nodes ({AGENTS} agent processes), 2 API processes: "
                  f"{len(sent)} accepted in {accepted:.1f} s, {len(active)} ACTIVE, {len(failed)} ERROR; "
                  f"{len(refused)} sends refused by HAProxy (no API process up) and sent again")
            print(f"boots/s (first request to last ACTIVE): {len(active) / (last - t0):.1f}; "
                  f"request->ACTIVE p50 {p50:.2f} s, p99 {p99:.2f} s (poll every {POLL} s)")
            print(f"servers lost {lost}, on two hypervisors {duplicated} ({on_nodes} placements for {len(active)} "
                  f"ACTIVE)")
            print(f"status.compute messages: {published:.0f} published by the agents, {handled} acked by the API and "
                  f"conductor processes: {published - handled:.0f} lost, {twice} handled twice; load average "
                  f"{os.getloadavg()[0]:.1f}")
        finally:
            for p in reversed(list(procs.values())):
                p.stop()
            sc.remove_queues(exchange)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000, int(sys.argv[2]) if len(sys.argv) > 2 else 100)
