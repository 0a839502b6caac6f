"""Container listings against real Swift in the same run: N objects PUT into one container, then
the container listed whole, ``--repeats`` times in each format (JSON, XML, plain, and JSON with a delimiter that
rolls nothing up), against a real ``tinystack up`` (proxy and storage node, 3 devices, 3 replicas) and then Swift
2.38 from the peer scripts (``../shared/peers/swift``: proxy 2 workers, memcached). Reports each listing's
median and best milliseconds, the servers' CPU per listing (the figure least disturbed by other load), the
servers' RSS growth over the PUTs and listings, the load average, and the ratios Swift/tinystack.

Swift runs in a network namespace of its own (its ports are fixed: another Swift on this machine does not
collide), with ``$PEERS`` (default ``~/.cache/peers``) as its install; ``setup.sh --reset`` installs it if needed.

The container is filled by --concurrency clients (PUTs answered 503 are tried again: filling is not measured).

Usage (as root, from the repository root): python -m benchmarks.object_listing [--count 10000] [--repeats 10]
                                                                             [--no-swift]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

from benchmarks import _cloud
from benchmarks.object_store import PEER, RssSampler, cpu_s, idle, token_and_url

# (label, query): the listings timed. Names hold no "/", so the delimiter rolls nothing up; it times the path that
# walks the rows in Python.
LISTINGS = (("json", "format=json"), ("xml", "format=xml"), ("plain", "format=plain"),
            ("json_delimiter", "format=json&delimiter=/"))
PAGE = 10000  # both stores' container listing limit


# --- the client (run as a process of its own, in Swift's namespace for Swift) -------------------------------------


class Conn:
    def __init__(self, url: str) -> None:
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 80
        self.c: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        for attempt in (0, 1):
            if self.c is None:
                self.c = http.client.HTTPConnection(self.host, self.port, timeout=120)
            try:
                self.c.request(method, path, body=body, headers=headers or {})
                r = self.c.getresponse()
                data = r.read()
                return r.status, {k.lower(): v for k, v in r.getheaders()}, data
            except (http.client.HTTPException, ConnectionError):
                self.c.close()
                self.c = None
                if attempt:
                    raise
        raise RuntimeError("unreachable")


def _count(label: str, body: bytes) -> tuple[int, str]:
    """Entries in one listing page and the last name (the next page's marker)."""
    if not body:
        return 0, ""
    if label.startswith("json"):
        rows = json.loads(body)
        return len(rows), rows[-1].get("name") or rows[-1].get("subdir") if rows else ""
    if label == "xml":
        text = body.decode()
        last = text.rpartition("<name>")[2].partition("</name>")[0]
        return text.count("<name>"), last
    lines = body.decode().splitlines()
    return len(lines), lines[-1] if lines else ""


def client(args: argparse.Namespace) -> dict[str, Any]:
    if args.auth_url:
        au = urllib.parse.urlsplit(args.auth_url)
        status, h, _ = Conn(args.auth_url).request("GET", au.path, headers={"X-Auth-User": args.user,
                                                                             "X-Auth-Key": args.key})
        if status // 100 != 2:
            raise SystemExit(f"auth failed: HTTP {status}")
        storage_url, token = h["x-storage-url"], h["x-auth-token"]
    else:
        storage_url, token = args.storage_url, args.token
    auth = {"X-Auth-Token": token}
    base = urllib.parse.urlsplit(storage_url).path.rstrip("/")
    cpath = f"{base}/list-{uuid.uuid4().hex[:8]}"
    pids = [int(p) for p in args.server_pids.split(",") if p]
    conn = Conn(storage_url)
    status, _, _ = conn.request("PUT", cpath, headers={**auth, "Content-Length": "0"})
    if status // 100 != 2:
        raise SystemExit(f"container PUT failed: HTTP {status}")
    body = os.urandom(args.size)
    todo = iter(range(args.count))
    lock = threading.Lock()
    failed: list[int] = []

    def put_some() -> None:
        c = Conn(storage_url)
        while True:
            with lock:
                i = next(todo, None)
            if i is None:
                return
            for _ in range(30):
                st, _, _ = c.request("PUT", f"{cpath}/obj-{i:06d}", body, {
                    **auth, "Content-Length": str(args.size), "Content-Type": "application/octet-stream"})
                if st != 503:
                    break
                # Filling the container is not what is measured: on a loaded machine the proxy's 0.5 s connect
                # timeout to a storage server can pass, and the device is then skipped for a while.
                time.sleep(1)
            if st != 201:
                failed.append(st)
                if len(failed) == 1:
                    print(f"PUT obj-{i:06d}: HTTP {st}", file=sys.stderr)

    started = time.perf_counter()
    threads = [threading.Thread(target=put_some) for _ in range(args.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failed:
        raise SystemExit(f"{len(failed)} PUTs failed, e.g. HTTP {failed[0]}")
    result: dict[str, Any] = {"count": args.count, "put_s": round(time.perf_counter() - started, 1),
                              "load_at_listing": round(os.getloadavg()[0], 2)}
    for label, query in LISTINGS:
        times: list[float] = []
        server = 0.0
        for _ in range(args.repeats):
            before = sum(cpu_s(p) for p in pids)
            t0 = time.perf_counter()
            seen, marker = 0, ""
            while True:
                q = f"{query}&limit={PAGE}" + (f"&marker={urllib.parse.quote(marker)}" if marker else "")
                st, _, page = conn.request("GET", f"{cpath}?{q}", headers=auth)
                if st not in (200, 204):
                    raise SystemExit(f"listing failed: HTTP {st}")
                n, marker = _count(label, page)
                seen += n
                if n < PAGE:
                    break
            times.append(time.perf_counter() - t0)
            server += sum(cpu_s(p) for p in pids) - before
            if seen != args.count:
                raise SystemExit(f"{label}: listed {seen} of {args.count}")
        result[label] = {"median_ms": round(statistics.median(times) * 1000, 2),
                         "min_ms": round(min(times) * 1000, 2), "first_ms": round(times[0] * 1000, 2),
                         "server_cpu_ms": round(server / args.repeats * 1000, 2)}
        print(f"{label:15s} median {result[label]['median_ms']:8.1f} ms  best {result[label]['min_ms']:8.1f} ms  "
              f"server CPU {result[label]['server_cpu_ms']:7.1f} ms", file=sys.stderr)
    return result


# --- the two stores ---------------------------------------------------------------------------------------------


def run_client(prefix: list[str], client_args: list[str], pids: list[int]) -> dict[str, Any]:
    load = os.getloadavg()[0]
    sampler = RssSampler(pids)
    try:
        out = subprocess.run([*prefix, sys.executable, "-m", "benchmarks.object_listing", "--client", *client_args,
                              "--server-pids", ",".join(map(str, pids))], capture_output=True, text=True,
                             timeout=3600, cwd=Path(__file__).resolve().parents[1])
    finally:
        rss = sampler.stop()
    sys.stderr.write(out.stderr)
    if out.returncode != 0:
        raise RuntimeError(f"client failed: {out.stderr[-2000:]}")
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "load_at_start": round(load, 2), "server_rss": rss}


def run_tinystack(common: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-listing-") as tmp:
        state = Path(tmp) / "state"
        proc, _ = _cloud.start(state)
        try:
            token, url = token_and_url(state / "clouds.yaml")
            # After the start's own work (the guest image build, first reconciles), as Swift starts idle.
            settled = idle(proc.pid, 1.0)
            return {**run_client([], ["--storage-url", url, "--token", token, *common], [proc.pid]),
                    "settled_after_s": settled["settled_after_s"]}
        finally:
            _cloud.stop(proc)


def run_swift(common: list[str]) -> dict[str, Any]:
    peers = Path(os.environ.get("PEERS", Path.home() / ".cache" / "peers"))
    env = {**os.environ, "PEERS": str(peers)}
    netns = f"tsx-swift-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    inside = ["ip", "netns", "exec", netns]
    try:
        subprocess.run([*inside, "ip", "link", "set", "lo", "up"], check=True)
        subprocess.run([str(PEER / "setup.sh"), "--reset"], check=True, env=env, capture_output=True, timeout=900)
        subprocess.run([*inside, str(PEER / "run.sh")], check=True, env=env, capture_output=True, timeout=300)
        try:
            pids = [int(p) for f in sorted((peers / "swift-pids").iterdir())
                    if f.name.endswith((".pid", ".children")) and not f.name.startswith(("syslog", "."))
                    for p in f.read_text().split()]
            return run_client(inside, ["--auth-url", "http://127.0.0.1:18080/auth/v1.0", *common], pids)
        finally:
            subprocess.run([*inside, str(PEER / "stop.sh")], check=False, env=env, capture_output=True, timeout=120)
    finally:
        subprocess.run(["ip", "netns", "delete", netns], check=False, capture_output=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--concurrency", type=int, default=4, help="of the PUTs that fill the container")
    ap.add_argument("--no-swift", action="store_true", help="measure tinystack only")
    ap.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--storage-url", help=argparse.SUPPRESS)
    ap.add_argument("--token", default="", help=argparse.SUPPRESS)
    ap.add_argument("--auth-url", help=argparse.SUPPRESS)
    ap.add_argument("--user", default="admin:admin", help=argparse.SUPPRESS)
    ap.add_argument("--key", default="admin", help=argparse.SUPPRESS)
    ap.add_argument("--server-pids", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.client:
        print(json.dumps(client(args)))
        return
    common = ["--count", str(args.count), "--repeats", str(args.repeats), "--size", str(args.size),
              "--concurrency", str(args.concurrency)]
    result: dict[str, Any] = {"tinystack": run_tinystack(common)}
    if not args.no_swift:
        result["swift"] = run_swift(common)
        ours, theirs = result["tinystack"], result["swift"]
        result["ratio"] = {label: {"speed": round(theirs[label]["median_ms"] / ours[label]["median_ms"], 2),
                                   "server_cpu": round(ours[label]["server_cpu_ms"] / theirs[label]["server_cpu_ms"], 2)}
                           for label, _ in LISTINGS}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
