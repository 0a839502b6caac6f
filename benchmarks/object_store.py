"""Object storage against real Swift in the same run: 4 KiB PUT/GET/HEAD/DELETE at concurrency 8, listings and
one large object, measured by the Swift peer's client (``../shared/peers/swift/bench.py``, stdlib only) against a
real ``tinystack up`` (its proxy and storage node, 3 devices, 3 replicas) and against Swift 2.38 with its own
proxy and storage servers (``run.sh``/``stop.sh`` there), one after the other. Prints one JSON line: both
results and the ratios tinystack/Swift (ops/s, and server CPU per operation, the figure least disturbed by other
load on the machine).

Usage: python benchmarks/object_store.py [--count N] [--large-mib M] [--no-swift]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from benchmarks import _cloud

PEER = Path(__file__).resolve().parents[1].parent / "shared" / "peers" / "swift"
if not PEER.is_dir():
    PEER = Path("/work/shared/peers/swift")


def token_and_catalog(clouds_yaml: Path, cloud: str = "demo") -> tuple[str, dict[str, str]]:
    """A token of ``cloud`` and the public URL of each service type in its catalog."""
    auth = yaml.safe_load(clouds_yaml.read_text())["clouds"][cloud]["auth"]
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": auth["username"], "password": auth["password"], "domain": {"name": "Default"}}}},
        "scope": {"project": {"name": auth["project_name"], "domain": {"name": "Default"}}}}}
    req = urllib.request.Request(auth["auth_url"].rstrip("/") + "/auth/tokens", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        token = resp.headers["X-Subject-Token"]
        doc = json.loads(resp.read())
    return token, {entry["type"]: next(e["url"] for e in entry["endpoints"] if e["interface"] == "public")
                   for entry in doc["token"]["catalog"] if entry["endpoints"]}


def token_and_url(clouds_yaml: Path, cloud: str = "demo") -> tuple[str, str]:
    token, catalog = token_and_catalog(clouds_yaml, cloud)
    if "object-store" not in catalog:
        raise RuntimeError("no object-store in the catalog")
    return token, catalog["object-store"]


def wait_for_images(clouds_yaml: Path, limit: float = 600.0) -> float:
    """Seconds until the cloud's start-up images (built and uploaded in the background at a first start) are all
    active: their build and upload would otherwise be counted in whichever phase they overlap."""
    began = time.monotonic()
    token, catalog = token_and_catalog(clouds_yaml)
    if "image" not in catalog:
        return 0.0
    seen_none = 0
    while time.monotonic() - began < limit:
        req = urllib.request.Request(catalog["image"].rstrip("/") + "/v2/images?visibility=public",
                                     headers={"X-Auth-Token": token})
        with contextlib.suppress(OSError, ValueError):
            with urllib.request.urlopen(req, timeout=30) as resp:
                images = json.loads(resp.read())["images"]
            if images and all(i["status"] == "active" for i in images) and len(images) >= 3:
                break
            seen_none = seen_none + 1 if not images else 0
            if seen_none >= 30:  # no image build on this cloud
                break
        time.sleep(2)
    return round(time.monotonic() - began, 1)


def rss_mb(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError, RuntimeError):  # a worker gone meanwhile
            total += _cloud.rss_mb(pid)
    return total


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RssSampler:
    """The summed RSS of ``pids`` at the start and at its peak until ``stop``."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.start = self.peak = rss_mb(pids)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(0.2):
            self.peak = max(self.peak, rss_mb(self.pids))

    def stop(self) -> dict[str, float]:
        self._done.set()
        self._thread.join()
        return {"start_mb": round(self.start, 1), "peak_mb": round(self.peak, 1),
                "growth_mb": round(self.peak - self.start, 1)}


def bench(python: str, args: list[str], pids: list[int] | None = None) -> dict[str, Any]:
    load = os.getloadavg()[0]
    sampler = RssSampler(pids) if pids else None
    try:
        out = subprocess.run([python, str(PEER / "bench.py"), *args], capture_output=True, text=True, timeout=3600)
    finally:
        rss = sampler.stop() if sampler else None
    if out.returncode != 0:
        raise RuntimeError(f"bench.py failed: {out.stderr[-2000:]}")
    result = dict(json.loads(out.stdout.strip().splitlines()[-1]))
    result["load_at_start"] = round(load, 2)
    if rss is not None:
        result["server_rss"] = rss
    return result


def idle(pid: int, seconds: float, settle_limit: float = 180.0) -> dict[str, float]:
    """The cloud's CPU (share of one core) and RSS over ``seconds`` of doing nothing, once the work of its start
    (the guest image build, first reconciles) is over: a 5 s window under 5 % of a core, or ``settle_limit``."""
    began = time.monotonic()
    while time.monotonic() - began < settle_limit:
        before = cpu_s(pid)
        time.sleep(5)
        if cpu_s(pid) - before < 0.25:
            break
    settled = time.monotonic() - began
    before, started = cpu_s(pid), time.monotonic()
    time.sleep(seconds)
    used = cpu_s(pid) - before
    return {"seconds": seconds, "settled_after_s": round(settled, 1),
            "cpu_core_share": round(used / (time.monotonic() - started), 4),
            "rss_mb": round(_cloud.rss_mb(pid), 1)}


def run_tinystack(common: list[str], idle_seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-object-") as tmp:
        state = Path(tmp) / "state"
        proc, _ = _cloud.start(state)
        try:
            images_s = wait_for_images(state / "clouds.yaml")
            token, url = token_and_url(state / "clouds.yaml")
            quiet = idle(proc.pid, idle_seconds) if idle_seconds > 0 else None
            result = bench(sys.executable, ["--storage-url", url, "--token", token, "--server-pids", str(proc.pid),
                                            "--swift-devices", str(state / "object" / "devs"), "--label", "tinystack",
                                            *common], [proc.pid])
            if quiet is not None:
                result["idle"] = quiet
            result["waited_for_images_s"] = images_s
            return result
        finally:
            _cloud.stop(proc)


def run_swift(common: list[str]) -> dict[str, Any]:
    peers = Path(os.environ.get("PEERS", Path.home() / ".cache" / "peers"))
    env = {**os.environ, "PEERS": str(peers)}
    subprocess.run([str(PEER / "setup.sh"), "--reset"], check=True, env=env, capture_output=True, timeout=600)
    subprocess.run([str(PEER / "run.sh")], check=True, env=env, capture_output=True, timeout=300)
    pids = [int(p) for f in sorted((peers / "swift-pids").iterdir())
            if f.name.endswith((".pid", ".children")) and not f.name.startswith(("syslog", "."))
            for p in f.read_text().split()]
    try:
        return bench(str(peers / "swift-venv" / "bin" / "python"), [
            "--auth-url", "http://127.0.0.1:18080/auth/v1.0", "--user", "admin:admin", "--key", "admin",
            "--swift-devices", str(peers / "swift-data" / "devices"), "--pids-dir", str(peers / "swift-pids"),
            "--label", "swift", *common], pids)
    finally:
        subprocess.run([str(PEER / "stop.sh")], check=False, env=env, capture_output=True, timeout=120)


def ratios(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for phase in ("put", "get", "head", "delete"):
        a, b = ours.get(phase) or {}, theirs.get(phase) or {}
        if a.get("ops_per_s") and b.get("ops_per_s"):
            out[f"{phase}_ops"] = round(a["ops_per_s"] / b["ops_per_s"], 2)
        ca, cb = (a.get("cpu") or {}).get("server_ms_per_op"), (b.get("cpu") or {}).get("server_ms_per_op")
        if ca and cb:
            out[f"{phase}_server_cpu"] = round(ca / cb, 2)
    la, lb = ours.get("large") or {}, theirs.get("large") or {}
    for key in ("put_mib_s", "get_mib_s"):
        if la.get(key) and lb.get(key):
            out[f"large_{key}"] = round(la[key] / lb[key], 2)
    ta, tb = (ours.get("list") or {}).get("median_ms"), (theirs.get("list") or {}).get("median_ms")
    if ta and tb:
        out["listing_speed"] = round(tb / ta, 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--large-mib", type=int, default=256)
    ap.add_argument("--idle", type=float, default=30.0, help="seconds of tinystack's idle CPU/RSS (0: skip)")
    ap.add_argument("--no-swift", action="store_true", help="measure tinystack only")
    args = ap.parse_args()
    common = ["--count", str(args.count), "--large-mib", str(args.large_mib)]
    result: dict[str, Any] = {"tinystack": run_tinystack(common, args.idle)}
    if not args.no_swift:
        result["swift"] = run_swift(common)
        result["ratio"] = ratios(result["tinystack"], result["swift"])
    print(json.dumps(result))


if __name__ == "__main__":
    main()
