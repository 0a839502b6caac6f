"""A volume over NBD against the same volume opened as a file, in the same run: ``qemu-io`` (QEMU's block layer,
as a guest's QEMU uses it) writes then reads the whole volume in one request (the block layer splits it), once
through the
``file`` driver and once through the ``nbd`` driver with TLS-PSK to the volume agent's export daemon
(tinystack/volume/drivers/nbd.py) on loopback, alternating, best of N. Prints MiB/s each way and the ratio
NBD / file; loopback leaves out the network, so the ratio is the cost of the NBD protocol, TLS and the extra
process, not of a wire. A plain ``qemu-nbd`` without TLS serves the same file as a third way, to tell the
protocol's cost from TLS's.
Usage: python benchmarks/nbd_volume.py [rounds] [mib]
"""

from __future__ import annotations

import asyncio
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from tinystack.volume.drivers.nbd import Export, NbdServer, identity_of

MiB = 1024**2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def rate(objects: list[str], image: str, mib: int, write: bool) -> float:
    """MiB/s ``qemu-io`` reports for one pass over the volume (its own timing, without its start-up)."""
    command = f"write -P 0x5a 0 {mib}M" if write else f"read 0 {mib}M"
    out = subprocess.run(["qemu-io", *objects, "--image-opts", image, "-c", command], capture_output=True, text=True,
                         check=True).stdout
    found = re.search(r"\(([\d.]+) (KiB|MiB|GiB)/sec", out)
    if not found:
        raise RuntimeError(f"no rate in qemu-io's output: {out}")
    return float(found.group(1)) * {"KiB": 1 / 1024, "MiB": 1.0, "GiB": 1024.0}[found.group(2)]


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    mib = int(sys.argv[2]) if len(sys.argv) > 2 else 256
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        volume = base / "volume-bench"
        with open(volume, "wb") as f:
            f.truncate(mib * MiB)
        att = str(uuid.uuid4())
        export = Export(att, secrets.token_urlsafe(24), identity_of(att), secrets.token_hex(32))
        port = free_port()
        server = NbdServer(base / "nbd", "127.0.0.1", port)
        asyncio.run(server.ensure(export, str(volume)))
        try:
            keys = base / "client"
            keys.mkdir()
            (keys / "keys.psk").write_text(f"{export.identity}:{export.key}\n")
            tls = ["--object", f"tls-creds-psk,id=tls0,endpoint=client,dir={keys},username={export.identity}"]
            nbd = (f"driver=nbd,server.type=inet,server.host=127.0.0.1,server.port={port},export={export.name},"
                   "tls-creds=tls0")
            # The volume node's own guests: the file, with the page cache, as the driver opens it.
            file = f"driver=raw,file.driver=file,file.filename={volume},file.locking=off"
            plain_port = free_port()
            plain = subprocess.Popen(["qemu-nbd", "-t", "-e", "4", "-b", "127.0.0.1", "-p", str(plain_port), "-x",
                                      "plain", "--image-opts", file], stderr=subprocess.DEVNULL)
            listening(plain_port)
            plain_nbd = f"driver=nbd,server.type=inet,server.host=127.0.0.1,server.port={plain_port},export=plain"
            ways = (("file", [], file), ("nbd+tls", tls, nbd), ("nbd", [], plain_nbd))
            results: dict[str, dict[str, list[float]]] = {w: {"write": [], "read": []} for w, _, _ in ways}
            try:
                for _ in range(rounds):
                    for name, objects, image in ways:
                        results[name]["write"].append(rate(objects, image, mib, write=True))
                        results[name]["read"].append(rate(objects, image, mib, write=False))
            finally:
                plain.terminate()
                plain.wait(10)
        finally:
            asyncio.run(server.stop())
    for op in ("write", "read"):
        f, t, n = (max(results[w][op]) for w in ("file", "nbd+tls", "nbd"))
        print(f"{op:5}  file {f:6.0f} MiB/s  nbd {n:6.0f} MiB/s ({n / f:.2f}x)  nbd+tls {t:6.0f} MiB/s ({t / f:.2f}x)"
              f"  ({mib} MiB, best of {rounds})")


if __name__ == "__main__":
    main()
