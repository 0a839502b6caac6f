"""The most 4 KiB object PUTs per second this machine's disk allows through the object server's own write path,
with nothing else: no HTTP, no proxy, no container update. Each PUT is three replicas written by
``servers/object.py``'s ``_store_whole`` (temporary file, fsync, xattr, rename, fsync of the hash dir) on three
device directories of one scratch dir, as `tinystack up` lays them out; ``--clients`` PUTs at once, each with its
replicas in parallel threads, as the proxy does. Run with and without fsync: the difference is what the disk's
synchronous writes cost, and the rate with fsync is the ceiling for ``benchmarks/object_store.py``'s PUT phase.

Usage: PYTHONPATH=. python benchmarks/object_sync_ceiling.py [--count N] [--clients C] [--dir D]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tinystack.object.servers import diskfile
from tinystack.object.servers.object import _store_whole

DEVICES = 3


def run(base: Path, count: int, clients: int, fsync: bool) -> dict[str, float]:
    roots = [base / f"d{i}" for i in range(DEVICES)]
    for root in roots:
        (root / "tmp").mkdir(parents=True, exist_ok=True)
    body = os.urandom(4096)
    io = ThreadPoolExecutor(32)
    counter = iter(range(count))
    lock = threading.Lock()

    def one_put() -> bool:
        with lock:
            n = next(counter, None)
        if n is None:
            return False
        name_hash = hashlib.md5(f"/AUTH_bench/c/{fsync}-{n}".encode()).hexdigest()
        ts = f"{time.time():016.5f}"
        futures = [io.submit(_store_whole, root, diskfile.object_dir(root, int(name_hash[:2], 16), name_hash),
                             fsync, body, ts, "", {"content-type": "application/octet-stream"}) for root in roots]
        for f in futures:
            f.result()
        return True

    def client() -> None:
        while one_put():
            pass

    cpu0, began = os.times(), time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - began
    cpu1 = os.times()
    io.shutdown()
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    return {"puts_per_s": round(count / wall, 1), "cpu_ms_per_put": round(1000 * cpu / count, 2),
            "wall_s": round(wall, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--dir", default="/var/tmp", help="where the scratch devices go (the disk under test)")
    args = ap.parse_args()
    out: dict[str, object] = {"clients": args.clients, "count": args.count, "loadavg_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="tinystack-sync-ceiling-") as tmp:
        for fsync in (True, False):
            out["fsync" if fsync else "no_fsync"] = run(Path(tmp) / str(fsync), args.count, args.clients, fsync)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
