"""Volume migration overhead: ``os-migrate_volume`` between the node's two backends until ``migstat`` is
``success``, against copying the same file by hand (``cp --sparse=always``) in the same run. Prints medians and
the ratio API / by hand. A live in-process cloud on loopback (fake compute, real file backends).
Usage: python benchmarks/volume_migration.py [rounds] [data_mib]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.livecloud import LiveCloud
from tinystack.volume.agent import VolumeAgent

MiB = 1024**2


def wait(conn: Any, volume_id: str, done: Any) -> dict[str, Any]:
    while True:
        vol = conn.block_storage.get_volume(volume_id).to_dict(computed=False)
        if done(vol):
            return vol  # type: ignore[no-any-return]
        if str(vol.get("status", "")).startswith("error") or vol.get("migration_status") == "error":
            raise RuntimeError(f"volume {volume_id}: {vol.get('status')} / {vol.get('migration_status')}")
        time.sleep(0.01)


def main(rounds: int, data_mib: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="volmigbench-"))
    live = LiveCloud(work / "cloud")
    try:
        demo, admin = live.conn("demo"), live.conn("admin")
        agent = live.agent(VolumeAgent, live.host)
        api, hand = [], []
        for _ in range(rounds):
            vol = demo.block_storage.create_volume(size=1, name="bench-mig")
            wait(demo, vol.id, lambda v: v["status"] == "available")
            path = Path(agent.drivers["file"].volume_path(vol.id))
            with open(path, "r+b") as f:  # half data, half holes: what a guest disk looks like
                for i in range(data_mib):
                    f.seek(2 * i * MiB)
                    f.write(os.urandom(MiB))
            os.sync()
            started = time.perf_counter()
            admin.block_storage.migrate_volume(vol.id, host=f"{live.host}@file2#file2")
            wait(admin, vol.id, lambda v: v.get("migration_status") == "success")
            api.append(time.perf_counter() - started)

            copy = work / "hand.raw"
            src = Path(agent.drivers["file2"].volume_path(_name_id(live, vol.id)))
            started = time.perf_counter()
            subprocess.run(["cp", "--sparse=always", str(src), str(copy)], check=True)
            fd = os.open(copy, os.O_RDONLY)
            os.fsync(fd)  # the agent syncs the new file before it publishes it
            os.close(fd)
            hand.append(time.perf_counter() - started)
            copy.unlink()
            demo.block_storage.delete_volume(vol.id)
            demo.block_storage.wait_for_delete(vol, wait=30, interval=0.1)
        a, h = statistics.median(api), statistics.median(hand)
        print(f"volume migration between backends ({data_mib} MiB of data in a 1 GiB volume, {rounds} rounds): "
              f"API {a * 1000:.0f} ms, by hand {h * 1000:.0f} ms, ratio {a / h:.2f} (API/by hand), overhead "
              f"{(a - h) * 1000:.0f} ms")
    finally:
        live.stop()
        subprocess.run(["rm", "-rf", str(work)], check=False)


def _name_id(live: LiveCloud, volume_id: str) -> str:
    svc = live.cloud.runtime.services["volume"]  # type: ignore[union-attr]
    from tinystack.volume.models import Volume

    with svc.session() as s:
        row = s.get(Volume, volume_id)
        assert row is not None and row.name_id
        return row.name_id


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5, int(sys.argv[2]) if len(sys.argv) > 2 else 128)
