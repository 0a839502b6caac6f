"""Growing a volume's disk in a running QEMU (tinystack/compute/drivers/qemu/volumes.py ``extend``), against a
real ``qemu-system-x86_64`` held at its first instruction (no guest kernel needed: QEMU's block layer and the
virtio disk's capacity are what change): a file resized in place, an NBD export opened again and swapped under
the disk, and a disk whose volume has not grown yet left alone."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from qemu.qmp import QMPClient

from tests.volume.test_nbd_exports import free_port
from tinystack.compute.drivers.base import DriverError
from tinystack.compute.drivers.qemu import volumes as qvol
from tinystack.volume.drivers.nbd import Export, NbdServer, identity_of

pytestmark = [pytest.mark.guest, pytest.mark.privileged]
needs_qemu = pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None or
                                shutil.which("qemu-storage-daemon") is None, reason="QEMU is not installed")
MiB = 1 << 20


@contextlib.asynccontextmanager
async def held_qemu(tmp: Path) -> Any:
    """A QEMU with a PCI bus and no guest running (-S); a QMP call like the driver's."""
    sock = tmp / "qmp"
    proc = subprocess.Popen(["qemu-system-x86_64", "-machine", "pc", "-nodefaults", "-display", "none", "-S",
                             "-qmp", f"unix:{sock},server=on,wait=off"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    client = QMPClient("extend-test")
    try:
        for _ in range(100):
            if sock.exists():
                break
            await asyncio.sleep(0.1)
        await client.connect(str(sock))

        async def qmp(command: str, args: dict[str, Any] | None = None) -> Any:
            try:
                return await client.execute(command, args)
            except Exception as exc:
                raise DriverError(str(exc)) from exc

        yield qmp
    finally:
        with contextlib.suppress(Exception):
            await client.disconnect()
        proc.kill()
        proc.wait()


async def disk_size(qmp: Any, volume: dict[str, Any]) -> int:
    fmt = qvol._nodes(volume)[1]
    nodes = {n["node-name"]: n for n in await qmp("query-named-block-nodes", {"flat": True})}
    return int(nodes[fmt]["image"]["virtual-size"])


def volume_entry(path: Path, **extra: Any) -> dict[str, Any]:
    vid = str(uuid.uuid4())
    return {"volume_id": vid, "serial": vid[:20], "path": str(path), "format": "raw", "read_only": False,
            "slot": 0x10, **extra}


@needs_qemu
def test_a_file_volume_grows_in_place(tmp_path: Path) -> None:
    path = tmp_path / "volume"
    path.write_bytes(b"\0" * MiB)
    v = qvol.localize(volume_entry(path), None, tmp_path)

    async def main() -> None:
        async with held_qemu(tmp_path) as qmp:
            await qvol.attach(qmp, v)
            assert await disk_size(qmp, v) == MiB
            # The volume node has not grown the file yet: refused, so QEMU never grows the file itself.
            with pytest.raises(DriverError, match="does not have"):
                await qvol.extend(qmp, v, 2 * MiB)
            assert path.stat().st_size == MiB
            os.truncate(path, 2 * MiB)
            assert await qvol.extend(qmp, v, 2 * MiB) is True
            assert await disk_size(qmp, v) == 2 * MiB
            assert await qvol.extend(qmp, v, 2 * MiB) is False  # told twice

    asyncio.run(main())


@needs_qemu
def test_an_nbd_volume_is_opened_again_and_swapped(tmp_path: Path) -> None:
    path = tmp_path / "volume"
    path.write_bytes(b"\0" * MiB)
    port = free_port()
    att = str(uuid.uuid4())
    export = Export(att, secrets.token_urlsafe(24), identity_of(att), secrets.token_hex(32))
    nbd = {"host": "127.0.0.1", "port": port, "export": export.name, "tls": "psk", "psk_identity": export.identity,
           "psk_key": export.key}

    async def main() -> None:
        server = NbdServer(tmp_path / "nbd", "127.0.0.1", port)
        try:
            await server.ensure(export, str(path))
            v = qvol.localize(volume_entry(path, nbd=nbd, volume_host="elsewhere"), "here", tmp_path)
            assert v["transport"] == "nbd"
            async with held_qemu(tmp_path) as qmp:
                await qvol.attach(qmp, v)
                assert await disk_size(qmp, v) == MiB
                os.truncate(path, 3 * MiB)
                # The export still announces the old size: refused, and the disk keeps its connection.
                with pytest.raises(DriverError, match="does not have"):
                    await qvol.extend(qmp, v, 3 * MiB)
                await server.ensure(export, str(path))  # the volume agent serves the grown file again
                assert await qvol.extend(qmp, v, 3 * MiB) is True
                assert await disk_size(qmp, v) == 3 * MiB
                names = {n["node-name"] for n in await qmp("query-named-block-nodes", {"flat": True})}
                assert qvol._spare(v) in names and qvol._nodes(v)[0] not in names
                # Again (a later extend): back to the first name.
                os.truncate(path, 4 * MiB)
                await server.ensure(export, str(path))
                assert await qvol.extend(qmp, v, 4 * MiB) is True
                names = {n["node-name"] for n in await qmp("query-named-block-nodes", {"flat": True})}
                assert qvol._nodes(v)[0] in names and qvol._spare(v) not in names
        finally:
            await server.stop()

    asyncio.run(main())
