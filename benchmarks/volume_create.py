"""Block storage overhead: a volume from a qcow2 image, and a clone of a volume, through the API until
``available``, against the same work done by hand in the same run (download + ``qemu-img convert``; ``cp
--sparse``). Prints medians and the ratio API / by hand. A live in-process cloud on loopback (fake compute).
Usage: python benchmarks/volume_create.py [rounds] [image_mib]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.livecloud import LiveCloud

MiB = 1024**2


def wait_available(conn: object, volume_id: str) -> None:
    bs = conn.block_storage  # type: ignore[attr-defined]
    while True:
        status = bs.get_volume(volume_id).status
        if status == "available":
            return
        if status.startswith("error"):
            raise RuntimeError(f"volume {volume_id} went {status}")
        time.sleep(0.01)


def main(rounds: int, image_mib: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="volbench-"))
    raw = work / "data.raw"
    with open(raw, "wb") as f:  # half data, half holes: what a guest disk looks like
        for i in range(image_mib):
            f.write(os.urandom(MiB) if i % 2 == 0 else b"\0" * MiB)
    qcow = work / "data.qcow2"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(qcow)], check=True)
    live = LiveCloud(work / "cloud")
    try:
        conn = live.conn("demo")
        image = conn.image.create_image(name="bench-src", disk_format="qcow2", container_format="bare",
                                        filename=str(qcow), wait=True)
        api_image, hand_image, api_clone, hand_clone = [], [], [], []
        for _ in range(rounds):
            started = time.perf_counter()
            vol = conn.block_storage.create_volume(size=1, image_id=image.id, name="from-image")
            wait_available(conn, vol.id)
            api_image.append(time.perf_counter() - started)

            started = time.perf_counter()
            dl = work / "dl.qcow2"
            with open(dl, "wb") as f:
                for chunk in conn.image.download_image(image.id, stream=True).iter_content(4 * MiB):
                    f.write(chunk)
            out = work / "hand.raw"
            subprocess.run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", str(dl), str(out)], check=True)
            os.truncate(out, 1024**3)
            hand_image.append(time.perf_counter() - started)

            started = time.perf_counter()
            clone = conn.block_storage.create_volume(size=1, source_volume_id=vol.id, name="clone")
            wait_available(conn, clone.id)
            api_clone.append(time.perf_counter() - started)

            started = time.perf_counter()
            subprocess.run(["cp", "--sparse=always", str(out), str(work / "hand-clone.raw")], check=True)
            hand_clone.append(time.perf_counter() - started)
            for v in (clone, vol):
                conn.block_storage.delete_volume(v.id)
            for p in (dl, out, work / "hand-clone.raw"):
                p.unlink()
            time.sleep(0.5)
        for label, api, hand in (("volume from a qcow2 image", api_image, hand_image),
                                 ("clone of a volume", api_clone, hand_clone)):
            a, h = statistics.median(api), statistics.median(hand)
            print(f"{label} ({image_mib} MiB image, {rounds} rounds): API {a * 1000:.0f} ms, by hand "
                  f"{h * 1000:.0f} ms, ratio {a / h:.2f} (API/by hand), overhead {(a - h) * 1000:.0f} ms")
    finally:
        live.stop()
        subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5, int(sys.argv[2]) if len(sys.argv) > 2 else 256)
