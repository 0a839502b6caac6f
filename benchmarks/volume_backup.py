"""Volume backups: a full backup, an incremental one after a small change, and a restore into a new volume,
each through the block storage API until ``available``, against the object store moving the same bytes by hand
in the same run (one PUT, one GET of the data through the same proxy). Prints medians and the ratios
backup / PUT and restore / GET. A live in-process cloud on loopback (fake compute, real volume files).
Usage: python benchmarks/volume_backup.py [rounds] [data_mib]
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.livecloud import LiveCloud

MiB = 1024**2


def wait(get: Any, rid: str, want: str) -> None:
    while True:
        status = get(rid).status
        if status == want:
            return
        if status.startswith("error"):
            raise RuntimeError(f"{rid} went {status}")
        time.sleep(0.02)


def main(rounds: int, data_mib: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="backupbench-"))
    live = LiveCloud(work / "cloud")
    try:
        conn = live.conn("demo")
        bs, store = conn.block_storage, conn.object_store
        vol = bs.create_volume(size=1, name="bench-src")
        wait(bs.get_volume, vol.id, "available")
        path = live.config.state_dir / "volumes" / f"volume-{vol.id}"
        with open(path, "r+b") as f:  # what a guest wrote: data at the start, holes after
            for _ in range(data_mib):
                f.write(os.urandom(MiB))
        store.create_container("bench")
        full, inc, restore, put, get = [], [], [], [], []
        for _ in range(rounds):
            started = time.perf_counter()
            b = bs.create_backup(volume_id=vol.id, name="full")
            wait(bs.get_backup, b.id, "available")
            wait(bs.get_volume, vol.id, "available")
            full.append(time.perf_counter() - started)

            with open(path, "r+b") as f:
                f.seek(data_mib * MiB // 2)
                f.write(os.urandom(MiB))
            started = time.perf_counter()
            i = bs.create_backup(volume_id=vol.id, name="inc", is_incremental=True)
            wait(bs.get_backup, i.id, "available")
            wait(bs.get_volume, vol.id, "available")
            inc.append(time.perf_counter() - started)

            started = time.perf_counter()
            r = bs.restore_backup(b.id, name="restored")
            wait(bs.get_backup, b.id, "available")
            wait(bs.get_volume, r.volume_id, "available")
            restore.append(time.perf_counter() - started)

            started = time.perf_counter()
            with open(path, "rb") as f:
                store.upload_object(container="bench", name="raw", data=f.read(data_mib * MiB))
            put.append(time.perf_counter() - started)
            started = time.perf_counter()
            with open(work / "got", "wb") as out:
                for piece in store.stream_object(store.get_object_metadata("raw", container="bench"),
                                                 chunk_size=MiB):
                    out.write(piece)
            get.append(time.perf_counter() - started)

            for bid in (i.id, b.id):
                bs.delete_backup(bid)
                while bs.find_backup(bid) is not None:
                    time.sleep(0.05)
            bs.delete_volume(r.volume_id)
            (work / "got").unlink()
        m = {k: statistics.median(v) for k, v in
             (("full", full), ("inc", inc), ("restore", restore), ("put", put), ("get", get))}
        load = os.getloadavg()[0]
        print(f"{data_mib} MiB of data in a 1 GiB volume, {rounds} rounds, load {load:.1f}:")
        print(f"  full backup   {m['full']:.2f} s ({data_mib / m['full']:.0f} MiB/s); one PUT of the data "
              f"{m['put']:.2f} s: ratio {m['full'] / m['put']:.2f}")
        print(f"  incremental   {m['inc']:.2f} s after a 1 MiB change: {m['inc'] / m['full']:.2f} of the full one")
        print(f"  restore (new) {m['restore']:.2f} s ({data_mib / m['restore']:.0f} MiB/s); one GET of the data "
              f"{m['get']:.2f} s: ratio {m['restore'] / m['get']:.2f}")
    finally:
        live.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3, int(sys.argv[2]) if len(sys.argv) > 2 else 128)
