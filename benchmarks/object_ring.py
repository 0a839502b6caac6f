"""Ring rebalance, 3 replicas, 100 devices in 5 zones: ours against swift-ring-builder, in the same run.

For each part power (default 18 and 20) it times, as separate processes on the same machine:
  ours  - ``tinystack ring <b> create/add/rebalance`` (the rebalance command: load, rebalance, save), twice,
          around the peer's run so that a change in machine load shows;
  swift - the peer script /work/shared/peers/swift/ringbench.sh (Swift's swift-ring-builder, same layout),
          when the peer is installed in $PEERS (or with --install-peer, which runs its setup.sh first).
It prints rebalance seconds, ratios (swift / ours), and both rings' balance and dispersion.
Usage: python benchmarks/object_ring.py [--install-peer] [--no-peer] [part_power ...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PEER_DIR = Path("/work/shared/peers/swift")
PEERS = Path(os.environ.get("PEERS", Path.home() / ".cache" / "peers"))
ROOT = Path(__file__).resolve().parent.parent


def _tinystack(*args: str) -> tuple[float, str, int]:
    """Run `tinystack ...` in a child process: (wall seconds, output, the child's own peak RSS in kB)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with tempfile.TemporaryFile("w+") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "tinystack.cli", *args], env=env, stdout=out,
                                stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"tinystack {' '.join(args)} failed:\n{text}")
    return wall, text, int(usage.ru_maxrss)


def ours(part_power: int, workdir: Path) -> dict[str, object]:
    b = str(workdir / f"object-pp{part_power}.builder")
    Path(b).unlink(missing_ok=True)
    t_create, _, _ = _tinystack("ring", b, "create", str(part_power), "3", "1")
    pairs: list[str] = []
    for i in range(100):
        z = i % 5 + 1
        pairs += [f"r1z{z}-127.0.0.1:62{z}0/d{i}", "100"]
    t_add, _, _ = _tinystack("ring", b, "add", *pairs)
    wall, out, rss = _tinystack("ring", b, "rebalance")
    m = re.search(r"Balance is now (-?[\d.]+)\.\s+Dispersion is now (-?[\d.]+)", out)
    if not m:
        raise RuntimeError(f"unexpected rebalance output:\n{out}")
    # The in-process rebalance alone (no interpreter start, no file I/O), from a fresh builder.
    code = ("import sys, time; from tinystack.object.ring import RingBuilder; "
            "b = RingBuilder.load(sys.argv[1]); b.a2d = None; b.last_moved[:] = 0; "
            "t = time.perf_counter(); b.rebalance(); print(time.perf_counter() - t)")
    inproc = subprocess.run([sys.executable, "-c", code, b], env=dict(os.environ, PYTHONPATH=str(ROOT)),
                            capture_output=True, text=True, check=True)
    return {"create_add_s": round(t_create + t_add, 3), "rebalance_s": round(wall, 3),
            "rebalance_inprocess_s": round(float(inproc.stdout.strip()), 3), "balance": float(m[1]),
            "dispersion": float(m[2]), "rebalance_maxrss_kb": rss}


def peer_ready(install: bool) -> bool:
    rb = PEERS / "swift-venv" / "bin" / "swift-ring-builder"
    if not rb.exists() and install:
        subprocess.run([str(PEER_DIR / "setup.sh")], check=True, env=dict(os.environ, PEERS=str(PEERS)))
    return rb.exists()


def swift(part_power: int) -> dict[str, object]:
    # A busy machine stretches Swift's part power 20 rebalance well past the script's default 300 s limit.
    env = dict(os.environ, PEERS=str(PEERS), RING20_TIMEOUT=os.environ.get("RING20_TIMEOUT", "3600"))
    proc = subprocess.run([str(PEER_DIR / "ringbench.sh"), str(part_power)], capture_output=True, text=True, env=env)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RINGBENCH ")), None)
    if line is None:
        raise RuntimeError(f"ringbench.sh gave no result:\n{proc.stdout}{proc.stderr}")
    data = json.loads(line[len("RINGBENCH "):])
    for key in ("balance", "dispersion"):
        data[key] = float(data[key]) if data.get(key) not in (None, "") else None
    return data


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("part_powers", nargs="*", type=int, default=[18, 20])
    ap.add_argument("--install-peer", action="store_true", help="install Swift via the peer's setup.sh if missing")
    ap.add_argument("--no-peer", action="store_true", help="time ours only")
    args = ap.parse_args()
    with_peer = not args.no_peer and peer_ready(args.install_peer)
    if not with_peer and not args.no_peer:
        print(f"swift-ring-builder not found in {PEERS}/swift-venv (use --install-peer); timing ours only")
    with tempfile.TemporaryDirectory(prefix="ringbench-") as tmp:
        for pp in args.part_powers:
            first = ours(pp, Path(tmp))
            print(f"part_power={pp} ours: rebalance {first['rebalance_s']}s (in-process "
                  f"{first['rebalance_inprocess_s']}s) balance {first['balance']} dispersion {first['dispersion']} "
                  f"maxrss {first['rebalance_maxrss_kb']} kB", flush=True)
            result: dict[str, object] = {"part_power": pp, "replicas": 3, "devices": 100, "zones": 5,
                                         "ours": first, "nproc": os.cpu_count()}
            if with_peer:
                peer = swift(pp)
                second = ours(pp, Path(tmp))
                mean = (float(first["rebalance_s"]) + float(second["rebalance_s"])) / 2  # type: ignore[arg-type]
                result.update(swift=peer, ours_again=second, ours_mean_s=round(mean, 3))
                print(f"part_power={pp} swift: rebalance {peer['rebalance_s']}s status {peer['status']} "
                      f"balance {peer['balance']} dispersion {peer['dispersion']} maxrss {peer['rebalance_maxrss_kb']} kB")
                print(f"part_power={pp} ours again: rebalance {second['rebalance_s']}s")
                if peer["status"] == "ok":
                    ratio = float(peer["rebalance_s"]) / mean
                    result["ratio_swift_over_ours"] = round(ratio, 2)
                    print(f"part_power={pp} ratio swift/ours (whole rebalance command): {ratio:.1f}x", flush=True)
            result["loadavg_after"] = Path("/proc/loadavg").read_text().split()[:3]
            print("OBJECT_RING " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
