"""Server CPU per 4 KiB object operation (PUT, GET, HEAD, DELETE) of a real ``tinystack up``: the figure the
Swift comparison (``object_store.py``) ratios, without running Swift, so a change to the object store's hot path
can be judged in a minute. Each phase runs at concurrency 8 over keep-alive connections; the cloud's CPU is read
from /proc around each phase, so other load on the machine barely moves it; ``loop_ms_per_op`` is the main
thread's (the event loop's) part of it. ``--profile PHASE`` also records that
phase with py-spy (``--py-spy`` names the binary) into a raw flame file. ``--perf`` also counts the cloud's system
calls and context switches per operation with ``perf stat`` (tracepoints): figures a loaded machine does not move
much, unlike time, for judging a change to the number of trips to threads and to the kernel per operation.

Usage: python benchmarks/object_ops_cpu.py [--count N] [--rounds R] [--large-mib M] [--idle S] [--perf]
       [--profile delete --py-spy PATH --out FILE]
A/B against another tree: run it twice, with PYTHONPATH pointing at each tree (``tinystack up`` follows it).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from benchmarks import _cloud
from benchmarks.object_store import idle, token_and_url, wait_for_images

PHASES = ("put", "get", "head", "delete")


def cpu_split(pid: int) -> tuple[float, float]:
    """The process's user and system CPU seconds so far (threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def loop_cpu(pid: int) -> float:
    """CPU seconds of the process's main thread (the event loop that runs the proxy and the storage servers)."""
    fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_phase(url: str, token: str, method: str, names: list[str], concurrency: int) -> float:
    """Seconds to send ``method`` for every name, ``concurrency`` keep-alive connections at once."""
    parts = urlsplit(url)
    body = os.urandom(4096)
    todo = iter(names)
    lock = threading.Lock()
    errors: list[str] = []

    def worker() -> None:
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
        try:
            while True:
                with lock:
                    name = next(todo, None)
                if name is None:
                    return
                conn.request(method, f"{parts.path}/bench/{name}", body=body if method == "PUT" else None,
                             headers={"X-Auth-Token": token})
                resp = conn.getresponse()
                resp.read()
                if resp.status >= 300:
                    errors.append(f"{method} {name}: {resp.status}")
        finally:
            conn.close()

    began = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(errors[:3])
    return time.monotonic() - began


PERF_EVENTS = {"raw_syscalls:sys_enter": "syscalls_per_op", "context-switches": "switches_per_op"}


def perf_start(pid: int) -> subprocess.Popen[str]:
    """``perf stat`` counting the process's system calls and context switches until ``perf_stop``."""
    return subprocess.Popen(["perf", "stat", "-x", ",", "-e", ",".join(PERF_EVENTS), "-p", str(pid)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def perf_stop(proc: subprocess.Popen[str], count: int) -> dict[str, float]:
    proc.send_signal(2)
    _, err = proc.communicate(timeout=60)
    out: dict[str, float] = {}
    for line in err.splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[2] in PERF_EVENTS and fields[0].strip().isdigit():
            out[PERF_EVENTS[fields[2]]] = round(int(fields[0]) / count, 1)
    return out


def large(url: str, token: str, mib: int) -> None:
    """One object of ``mib`` MiB written and read back (what runs before the DELETE phase of the comparison)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=600)
    try:
        conn.request("PUT", f"{parts.path}/bench/large", body=os.urandom(1024 * 1024) * mib,
                     headers={"X-Auth-Token": token})
        conn.getresponse().read()
        conn.request("GET", f"{parts.path}/bench/large", headers={"X-Auth-Token": token})
        resp = conn.getresponse()
        while resp.read(1024 * 1024):
            pass
    finally:
        conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=1, help="repeat the four phases, each round new objects")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--large-mib", type=int, default=0,
                    help="PUT and GET one object this large before the DELETE phase, as object_store.py does")
    ap.add_argument("--idle", type=float, default=0.0, help="first measure the idle cloud's CPU and RSS this long")
    ap.add_argument("--profile", choices=PHASES)
    ap.add_argument("--py-spy", default="py-spy")
    ap.add_argument("--out", default="object_ops.raw")
    ap.add_argument("--perf", action="store_true", help="system calls and context switches per operation")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-object-ops-") as tmp:
        state = Path(tmp) / "state"
        proc, _ = _cloud.start(state)
        try:
            wait_for_images(state / "clouds.yaml")
            token, url = token_and_url(state / "clouds.yaml")
            parts = urlsplit(url)
            conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
            conn.request("PUT", f"{parts.path}/bench", headers={"X-Auth-Token": token})
            conn.getresponse().read()
            conn.close()
            result: dict[str, Any] = {"load_at_start": round(os.getloadavg()[0], 2), "count": args.count}
            if args.idle > 0:
                result["idle"] = idle(proc.pid, args.idle)
            for rnd in range(args.rounds):
                names = [f"r{rnd}-o{i:06d}" for i in range(args.count)]
                for phase in PHASES:
                    if phase == "delete" and args.large_mib:
                        large(url, token, args.large_mib)
                    spy = None
                    if args.profile == phase and rnd == args.rounds - 1:
                        spy = subprocess.Popen([args.py_spy, "record", "--pid", str(proc.pid), "--rate", "500",
                                                "--format", "raw", "--output", args.out, "--nonblocking"],
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                        time.sleep(1.0)
                    perf = perf_start(proc.pid) if args.perf else None
                    user0, sys0 = cpu_split(proc.pid)
                    loop0 = loop_cpu(proc.pid)
                    wall = run_phase(url, token, phase.upper(), names, args.concurrency)
                    user1, sys1 = cpu_split(proc.pid)
                    loop1 = loop_cpu(proc.pid)
                    counted = perf_stop(perf, args.count) if perf is not None else {}
                    if spy is not None:
                        spy.send_signal(2)
                        spy.wait(timeout=60)
                    row = result.setdefault(phase, {"ops_per_s": [], "server_ms_per_op": [], "user_ms_per_op": [],
                                                    "loop_ms_per_op": []})
                    row["ops_per_s"].append(round(args.count / wall, 1))
                    row["server_ms_per_op"].append(round((user1 + sys1 - user0 - sys0) * 1000 / args.count, 3))
                    row["user_ms_per_op"].append(round((user1 - user0) * 1000 / args.count, 3))
                    # The event loop's share: what bounds ops/s when one loop serves them all (GET/HEAD).
                    row["loop_ms_per_op"].append(round((loop1 - loop0) * 1000 / args.count, 3))
                    for key, value in counted.items():
                        row.setdefault(key, []).append(value)
            result["load_at_end"] = round(os.getloadavg()[0], 2)
            print(json.dumps(result))
        finally:
            _cloud.stop(proc)


if __name__ == "__main__":
    main()
