"""Image data in the ``swift`` store against the ``file`` store, measured in the same run: upload (PUT
/v2/images/{id}/file with ``X-Image-Meta-Store``), a first download from each store, and a second download of
the swift image, which the node's image cache now serves from disk. Prints the best of the rounds per case
and the ratios to the file store. A live in-process cloud on loopback (fake compute); the object store keeps
three replicas with fsync on the same disk, so a swift upload writes the data three times.
Usage: python benchmarks/image_stores.py [rounds] [size_mib]
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests

from tests.livecloud import LiveCloud

MiB = 1024**2


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main(rounds: int, size_mib: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="imgstores-"))
    src = work / "data.raw"
    with open(src, "wb") as f:
        for _ in range(size_mib):
            f.write(os.urandom(MiB))
    live = LiveCloud(work / "cloud")
    try:
        conn = live.conn("admin")
        base, token = live.url("image"), conn.auth_token
        session = requests.Session()
        session.headers["X-Auth-Token"] = token
        best: dict[str, float] = {}

        def note(case: str, seconds: float) -> None:
            best[case] = min(best.get(case, seconds), seconds)

        def download(image_id: str) -> None:
            with session.get(f"{base}/v2/images/{image_id}/file", stream=True, timeout=600) as r:
                r.raise_for_status()
                for _ in r.iter_content(4 * MiB):
                    pass

        for _ in range(rounds):
            for store in ("file", "swift"):
                r = session.post(f"{base}/v2/images", json={"name": f"bench-{store}", "disk_format": "raw",
                                                           "container_format": "bare"}, timeout=60)
                image_id = r.json()["id"]

                def put(image_id: str = image_id, store: str = store) -> None:
                    with open(src, "rb") as f:
                        resp = session.put(f"{base}/v2/images/{image_id}/file", data=f, timeout=600, headers={
                            "Content-Type": "application/octet-stream", "X-Image-Meta-Store": store})
                    resp.raise_for_status()

                note(f"upload {store}", timed(put))
                note(f"download {store}" + (" (fills the cache)" if store == "swift" else ""),
                     timed(lambda image_id=image_id: download(image_id)))
                if store == "swift":
                    note("download swift (from the cache)", timed(lambda image_id=image_id: download(image_id)))
                session.delete(f"{base}/v2/images/{image_id}", timeout=60).raise_for_status()
        load = os.getloadavg()
        print(f"{size_mib} MiB image, best of {rounds} rounds; load average {load[0]:.2f} {load[1]:.2f} "
              f"{load[2]:.2f} on {os.cpu_count()} cores")
        for case, seconds in best.items():
            baseline = best["upload file" if case.startswith("upload") else "download file"]
            print(f"  {case:34s} {seconds:7.2f} s  {size_mib / seconds:8.1f} MiB/s  x{seconds / baseline:.2f}")
    finally:
        live.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3, int(sys.argv[2]) if len(sys.argv) > 2 else 256)
