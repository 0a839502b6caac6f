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
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from benchmarks import _cloud

PEER = Path(__file__).resolve().parents[1].parent / "shared" / "peers" / "swift"
if not PEER.is_dir():
    PEER = Path("/work/shared/peers/swift")


def token_and_url(clouds_yaml: Path, cloud: str = "demo") -> tuple[str, str]:
    auth = yaml.safe_load(clouds_yaml.read_text())["clouds"][cloud]["auth"]
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": auth["username"], "password": auth["password"], "domain": {"name": "Default"}}}},
        "scope": {"project": {"name": auth["project_name"], "domain": {"name": "Default"}}}}}
    req = urllib.request.Request(auth["auth_url"].rstrip("/") + "/auth/tokens", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        token = resp.headers["X-Subject-Token"]
        doc = json.loads(resp.read())
    for entry in doc["token"]["catalog"]:
        if entry["type"] == "object-store":
            url = next(e["url"] for e in entry["endpoints"] if e["interface"] == "public")
            return token, url
    raise RuntimeError("no object-store in the catalog")


def bench(python: str, args: list[str]) -> dict[str, Any]:
    out = subprocess.run([python, str(PEER / "bench.py"), *args], capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        raise RuntimeError(f"bench.py failed: {out.stderr[-2000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def run_tinystack(common: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-object-") as tmp:
        state = Path(tmp) / "state"
        proc, _ = _cloud.start(state)
        try:
            token, url = token_and_url(state / "clouds.yaml")
            return bench(sys.executable, ["--storage-url", url, "--token", token, "--server-pids", str(proc.pid),
                                          "--swift-devices", str(state / "object" / "devs"), "--label", "tinystack",
                                          *common])
        finally:
            _cloud.stop(proc)


def run_swift(common: list[str]) -> dict[str, Any]:
    peers = Path(os.environ.get("PEERS", Path.home() / ".cache" / "peers"))
    env = {**os.environ, "PEERS": str(peers)}
    subprocess.run([str(PEER / "setup.sh"), "--reset"], check=True, env=env, capture_output=True, timeout=600)
    subprocess.run([str(PEER / "run.sh")], check=True, env=env, capture_output=True, timeout=300)
    try:
        return bench(str(peers / "swift-venv" / "bin" / "python"), [
            "--auth-url", "http://127.0.0.1:18080/auth/v1.0", "--user", "admin:admin", "--key", "admin",
            "--swift-devices", str(peers / "swift-data" / "devices"), "--pids-dir", str(peers / "swift-pids"),
            "--label", "swift", *common])
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
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--large-mib", type=int, default=256)
    ap.add_argument("--no-swift", action="store_true", help="measure tinystack only")
    args = ap.parse_args()
    common = ["--count", str(args.count), "--large-mib", str(args.large_mib)]
    result: dict[str, Any] = {"tinystack": run_tinystack(common)}
    if not args.no_swift:
        result["swift"] = run_swift(common)
        result["ratio"] = ratios(result["tinystack"], result["swift"])
    print(json.dumps(result))


if __name__ == "__main__":
    main()
