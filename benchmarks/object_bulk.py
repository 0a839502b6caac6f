"""Bulk operations against their baseline in the same run, on a real ``tinystack up``: N objects deleted by one
``?bulk-delete`` request versus N DELETEs at concurrency 8, and N small files stored by one
``?extract-archive=tar`` versus N PUTs at concurrency 8. Prints one JSON line with the seconds and the ratios
(baseline / bulk; above 1 means bulk is faster) and the load average.

Usage: python benchmarks/object_bulk.py [--count N]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from benchmarks import _cloud
from benchmarks.object_store import token_and_url

CONCURRENCY = 8


def _tar(names: list[str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in names:
            info = tarfile.TarInfo(name)
            info.size = 4096
            tar.addfile(info, io.BytesIO(b"x" * 4096))
    return buf.getvalue()


def run(count: int) -> dict[str, float]:
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-bulk-") as tmp:
        state = Path(tmp) / "state"
        proc, _ = _cloud.start(state)
        try:
            token, url = token_and_url(state / "clouds.yaml")
            session = requests.Session()
            session.headers["X-Auth-Token"] = token

            def put(path: str) -> None:
                assert session.put(f"{url}/{path}", data=b"x" * 4096, timeout=60).status_code == 201

            def delete(path: str) -> None:
                assert session.delete(f"{url}/{path}", timeout=60).status_code == 204

            names = [f"o{i:05d}" for i in range(count)]
            with ThreadPoolExecutor(CONCURRENCY) as pool:
                for container in ("single", "bulk"):
                    assert session.put(f"{url}/{container}", timeout=60).status_code in (201, 202)
                started = time.perf_counter()
                list(pool.map(put, [f"single/{n}" for n in names]))
                out["put_singles_seconds"] = time.perf_counter() - started
                started = time.perf_counter()
                answer = session.put(f"{url}/bulk?extract-archive=tar", data=_tar(names),
                                     headers={"Accept": "application/json"}, timeout=600).json()
                out["extract_seconds"] = time.perf_counter() - started
                assert answer["Number Files Created"] == count, answer
                started = time.perf_counter()
                list(pool.map(delete, [f"single/{n}" for n in names]))
                out["delete_singles_seconds"] = time.perf_counter() - started
                started = time.perf_counter()
                answer = session.post(f"{url}?bulk-delete", data="".join(f"/bulk/{n}\n" for n in names).encode(),
                                      headers={"Accept": "application/json", "Content-Type": "text/plain"},
                                      timeout=600).json()
                out["bulk_delete_seconds"] = time.perf_counter() - started
                assert answer["Number Deleted"] == count, answer
        finally:
            _cloud.stop(proc)
    out["extract_ratio"] = out["put_singles_seconds"] / out["extract_seconds"]
    out["bulk_delete_ratio"] = out["delete_singles_seconds"] / out["bulk_delete_seconds"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=300)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    figures = run(args.count)
    print(json.dumps({"count": args.count, **{k: round(v, 3) for k, v in figures.items()},
                      "load_1m_before": round(load_before, 2), "load_1m_after": round(os.getloadavg()[0], 2)}))


if __name__ == "__main__":
    main()
