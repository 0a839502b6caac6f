"""API throughput with two ``tinystack api`` processes behind HAProxy against one, in the same run (issue 15).

One split cloud on a scratch PostgreSQL database and the local RabbitMQ (tests/e2e/splitcluster.py): two API
processes, and two HAProxy instances configured alike (one thread, keep-alive to clients and servers,
``http-reuse always``), one fronting only the first process, the other both. ``wrk`` (one thread, ``CONNECTIONS``
keep-alive connections) drives each in turn, alternating, for ``seconds``: token validation
(``GET /v3/auth/tokens``) and ``server list`` (``GET /v2.1/servers``, 20 servers in the project); and each API
process directly, without HAProxy. The throughput figure is the ratio two/one of the best of ``ROUNDS``.

The same cores run the client, HAProxy, PostgreSQL and (here) other work, so the script also reads the CPU
seconds each party spent in a round (``/proc``; wrk's as this process's reaped children) and prints them per
request: what an API process costs per request with one and with two of them (equal costs mean the API scales
with the cores it gets), and what the client, HAProxy and the database add. From those costs it prints the ratio
this machine could reach at best: two processes share ``cores`` with the others' cost per request, one process
is held to one core.

Usage: PYTHONPATH=. python benchmarks/split_api.py [seconds]   (needs PostgreSQL, RabbitMQ, haproxy and wrk)
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import requests
from sqlalchemy import create_engine, text

from benchmarks.image_throughput import cpu_seconds
from tests.databases import scratch_database
from tests.e2e import splitcluster as sc
from tests.e2e.test_api_race import token

CONNECTIONS = 32
ROUNDS = 3
PARTIES = ("api", "haproxy", "client", "database")


@dataclass(frozen=True)
class Round:
    """One wrk run: requests answered 200, its length, and the CPU seconds each party spent meanwhile."""

    requests: int
    seconds: float
    cpu: dict[str, float]
    busy: float  # CPU seconds the whole machine spent, every process

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def per_request_us(self, party: str) -> float:
        return self.cpu[party] / self.requests * 1e6


def machine_busy() -> float:
    """CPU seconds all cores have spent on anything but idle and iowait since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def cpu_of(pids: Iterable[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError):  # a database backend that ended meanwhile
            total += cpu_seconds(pid)
    return total


def idle_rates(pids: list[int], seconds: float = 3.0) -> dict[int, float]:
    """CPU seconds per second each process spends with no requests (heartbeats, syncs, health checks)."""
    before = {pid: cpu_seconds(pid) for pid in pids}
    time.sleep(seconds)
    return {pid: (cpu_seconds(pid) - before[pid]) / seconds for pid in pids}


def wrk(url: str, headers: dict[str, str], seconds: float, watched: dict[str, list[int]]) -> Round:
    """Drive ``url`` with wrk; ``watched``: party -> the pids whose CPU the round is charged with."""
    argv = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{max(1, round(seconds))}s", "--timeout", "60s"]
    for k, v in headers.items():
        argv += ["-H", f"{k}: {v}"]
    before = {party: cpu_of(pids) for party, pids in watched.items()}
    busy = machine_busy()
    started = time.monotonic()
    proc = subprocess.Popen([*argv, url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = proc.communicate()[0]
    elapsed = time.monotonic() - started
    after = {party: cpu_of(pids) for party, pids in watched.items()}
    busy = machine_busy() - busy
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed: {out}")
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    if bad or errors:
        raise RuntimeError(f"{url}: not every answer was a 200:\n{out}")
    done = re.search(r"(\d+) requests in ([0-9.]+)(m?s)", out)
    if done is None:
        raise RuntimeError(f"wrk said: {out}")
    length = float(done.group(2)) / (1000 if done.group(3) == "ms" else 1)
    cpu = {party: after[party] - before[party] for party in watched}
    return Round(int(done.group(1)), length or elapsed, cpu, busy)


def client_cpu() -> float:
    usage = os.times()
    return usage.children_user + usage.children_system


def database_pids(db_url: str) -> list[int]:
    """The PostgreSQL backends serving the scratch database (the API processes' pooled connections)."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return [int(p) for p in conn.scalars(text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"))]
    finally:
        engine.dispose()


def measure(url: str, headers: dict[str, str], seconds: float, watched: dict[str, list[int]],
            idle: dict[int, float]) -> Round:
    """``wrk`` with the client's own CPU (this process's children) charged as ``client``, and the API processes'
    idle work taken off theirs (it is not per request, and would weigh most where the machine is slowest)."""
    before = client_cpu()
    r = wrk(url, headers, seconds, watched)
    background = sum(idle.get(pid, 0.0) for pid in watched["api"]) * r.seconds
    cpu = {**r.cpu, "api": max(0.0, r.cpu["api"] - background), "client": client_cpu() - before}
    return Round(r.requests, r.seconds, cpu, r.busy)


def report(label: str, best: dict[str, Round], cores: int) -> None:
    one, two = best["one"], best["two"]
    print(f"{label}: one API process {one.rate:7.0f}/s, two {two.rate:7.0f}/s: ratio {two.rate / one.rate:.2f}x "
          f"(wrk, {CONNECTIONS} connections, best of {ROUNDS}); directly, without HAProxy: api1 "
          f"{best['api1'].rate:.0f}/s, api2 {best['api2'].rate:.0f}/s", flush=True)
    for name in ("one", "two", "api1"):
        r = best[name]
        costs = ", ".join(f"{party} {r.per_request_us(party):5.1f}" for party in PARTIES if party in r.cpu)
        others = r.busy - sum(r.cpu.values())
        print(f"    {name:>4}: CPU µs per request: {costs}; machine busy {r.busy / r.seconds:.2f} of {cores} "
              f"cores, {others / r.seconds:.2f} of them on other work", flush=True)
    # Two processes get every core but share them with the others' cost per request; one process is held to a core.
    api = two.per_request_us("api")
    rest = sum(two.per_request_us(p) for p in PARTIES if p != "api")
    ceiling = (cores / (api + rest)) / min(1 / one.per_request_us("api"), cores / (one.per_request_us("api") + rest))
    print(f"    API CPU per request with one process {one.per_request_us('api'):.1f} µs, with two {api:.1f} µs "
          f"(ratio {one.per_request_us('api') / api:.2f}: 1.00 is linear scaling); the client, HAProxy and the "
          f"database add {rest:.1f} µs, so on {cores} cores two processes can reach at most {ceiling:.2f}x",
          flush=True)


def main(seconds: float) -> None:
    cores = os.cpu_count() or 1
    print(f"load average {os.getloadavg()[0]:.1f} at the start", flush=True)
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
            api1 = sc.start("api", "api1", base, ini, sc.api_env(backends["api1"], two))
            procs.append(api1)
            api2 = sc.start("api", "api2", base, ini, sc.api_env(backends["api2"], two), seed=base / "api1")
            procs.append(api2)
            (base / "one").mkdir()
            (base / "two").mkdir()
            lb_two = sc.start_haproxy(base / "two", sc.haproxy_cfg(two, backends, lean=True))
            procs.append(lb_two)
            lb_one = sc.start_haproxy(base / "one", sc.haproxy_cfg(one, {"api1": backends["api1"]}, lean=True))
            procs.append(lb_one)
            time.sleep(3)  # the health checks mark the servers up
            tok, _ = token(f"http://127.0.0.1:{two['identity']}/v3", base / "api1")
            headers = {"X-Auth-Token": tok}
            compute = f"http://127.0.0.1:{two['compute']}/v2.1"
            image_url = f"http://127.0.0.1:{backends['api1']['image']}/v2/images"
            image = requests.post(image_url, headers=headers, timeout=30, json={
                "name": "bench", "disk_format": "raw", "container_format": "bare"}).json()["id"]
            requests.put(f"{image_url}/{image}/file", data=b"\0" * 4096, timeout=30,
                         headers={**headers, "Content-Type": "application/octet-stream"}).raise_for_status()
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
            pid = {p.name: p.proc.pid for p in procs if p.name != "haproxy"}
            targets = {
                "one": (one, [pid["api1"]], [lb_one.proc.pid]),
                "two": (two, [pid["api1"], pid["api2"]], [lb_two.proc.pid]),
                "api1": (backends["api1"], [pid["api1"]], []),
                "api2": (backends["api2"], [pid["api2"]], []),
            }
            idle = idle_rates([pid["api1"], pid["api2"]])
            print(f"idle API processes: {', '.join(f'{v * 1000:.0f}' for v in idle.values())} ms CPU per second",
                  flush=True)
            for label, (service, path, hdrs) in cases.items():
                best: dict[str, Round] = {}
                for n in range(ROUNDS):
                    # Alternating which goes first, so that neither always meets the same moment of other load.
                    order = list(targets) if n % 2 == 0 else list(reversed(targets))
                    for name in order:
                        ports, apis, lbs = targets[name]
                        url = f"http://127.0.0.1:{ports[service]}{path}"
                        watched = {"api": apis, "haproxy": lbs, "database": database_pids(db_url)}
                        got = measure(url, hdrs, seconds, watched, idle)
                        if name not in best or got.rate > best[name].rate:
                            best[name] = got
                report(label, best, cores)
            print(f"load average {os.getloadavg()[0]:.1f} at the end", flush=True)
        finally:
            for p in reversed(procs):
                p.stop()
            sc.remove_queues(exchange)


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 8.0)
