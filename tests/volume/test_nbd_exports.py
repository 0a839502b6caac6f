"""NBD exports of volumes for other machines: the export daemon itself (a real ``qemu-storage-daemon`` on loopback,
opened with ``qemu-io`` as a compute node's QEMU opens it), and the volume agent keeping exactly the exports its
documents list, across a restart, with no process left for an attachment that is gone."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.volume.test_volume_agent import HOST, VOL, VOL2, Harness, volume_spec
from tinystack.volume.agent import VolumeAgent
from tinystack.volume.drivers.base import DriverError
from tinystack.volume.drivers.fake import FakeExporter, FakeVolumeDriver
from tinystack.volume.drivers.nbd import Export, NbdServer, identity_of

needs_qemu = pytest.mark.skipif(shutil.which("qemu-storage-daemon") is None or shutil.which("qemu-io") is None,
                                reason="qemu-storage-daemon and qemu-io are not installed")


def export(read_only: bool = False) -> Export:
    att = str(uuid.uuid4())
    return Export(att, secrets.token_urlsafe(24), identity_of(att), secrets.token_hex(32), read_only)


def doc(e: Export) -> dict[str, Any]:
    return {"attachment_id": e.attachment_id, "name": e.name, "identity": e.identity, "key": e.key,
            "read_only": e.read_only}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def qemu_io(tmp: Path, port: int, name: str, identity: str | None, key: str | None,
            command: str) -> subprocess.CompletedProcess[str]:
    """``qemu-io`` on the export as a compute node's QEMU opens it: the nbd driver, TLS-PSK with one key."""
    opts = f"driver=nbd,server.type=inet,server.host=127.0.0.1,server.port={port},export={name}"
    argv = ["qemu-io"]
    if identity is not None:
        keys = tmp / f"client-{secrets.token_hex(4)}"
        keys.mkdir()
        (keys / "keys.psk").write_text(f"{identity}:{key}\n")
        argv += ["--object", f"tls-creds-psk,id=tls0,endpoint=client,dir={keys},username={identity}"]
        opts += ",tls-creds=tls0"
    return subprocess.run([*argv, "--image-opts", opts, "-c", command], capture_output=True, text=True, timeout=30)


@needs_qemu
def test_export_needs_its_key_and_its_secret_name(tmp_path: Path) -> None:
    volume = tmp_path / "volume-a"
    volume.write_bytes(b"\0" * (1 << 20))
    port = free_port()
    one, two = export(), export(read_only=True)

    async def main() -> None:
        server = NbdServer(tmp_path / "nbd", "127.0.0.1", port)
        try:
            await server.ensure(one, str(volume))
            await server.ensure(one, str(volume))  # idempotent
            await server.ensure(two, str(volume))
            assert await server.exports() == {one.attachment_id: str(volume), two.attachment_id: str(volume)}
            assert (server.psk_file.stat().st_mode & 0o777) == 0o600

            ok = await asyncio.to_thread(qemu_io, tmp_path, port, one.name, one.identity, one.key,
                                         "write -P 0x5a 4096 512")
            assert ok.returncode == 0 and "wrote 512/512" in ok.stdout, ok.stdout + ok.stderr
            assert volume.read_bytes()[4096:4608] == b"\x5a" * 512
            # A read-only attachment's export refuses writes.
            ro = await asyncio.to_thread(qemu_io, tmp_path, port, two.name, two.identity, two.key,
                                         "write -P 0x11 0 512")
            assert "wrote" not in ro.stdout and volume.read_bytes()[:512] == b"\0" * 512, ro.stdout + ro.stderr
            # No TLS, a key the server does not list, a name it does not export: all refused.
            plain = await asyncio.to_thread(qemu_io, tmp_path, port, one.name, None, None, "read 0 512")
            assert plain.returncode != 0 and "TLS" in plain.stderr, plain.stderr
            wrong = await asyncio.to_thread(qemu_io, tmp_path, port, one.name, one.identity, secrets.token_hex(32),
                                            "read 0 512")
            assert wrong.returncode != 0 and "read 512/512" not in wrong.stdout
            guessed = await asyncio.to_thread(qemu_io, tmp_path, port, secrets.token_urlsafe(24), one.identity,
                                              one.key, "read 0 512")
            assert guessed.returncode != 0 and "read 512/512" not in guessed.stdout

            # Another process (a restarted agent) finds the daemon and its exports.
            again = NbdServer(tmp_path / "nbd", "127.0.0.1", port)
            assert again.pid() == server.pid() is not None
            assert set(await again.exports()) == {one.attachment_id, two.attachment_id}

            await again.remove(one.attachment_id)
            await again.remove(one.attachment_id)  # idempotent
            assert set(await again.exports()) == {two.attachment_id}
            assert one.identity not in server.psk_file.read_text()
            gone = await asyncio.to_thread(qemu_io, tmp_path, port, one.name, one.identity, one.key, "read 0 512")
            assert gone.returncode != 0
            # The last export ends the daemon.
            await again.remove(two.attachment_id)
            assert server.pid() is None and await server.exports() == {}
        finally:
            await server.stop()

    asyncio.run(main())


def test_export_documents_are_checked() -> None:
    good = doc(export())
    assert Export.parse(good).name == good["name"]
    for bad in ({**good, "identity": "att-someone-else"}, {**good, "key": "zz"}, {**good, "name": "a b"},
                {**good, "attachment_id": "../x"}):
        with pytest.raises(DriverError) as err:
            Export.parse(bad)
        assert err.value.permanent


def _harness(tmp_path: Path, exporter: Any, driver: FakeVolumeDriver | None = None) -> Harness:
    h = Harness(tmp_path, driver=driver)
    h.agent = VolumeAgent(h.bus, HOST, h.driver, tmp_path / "records", heartbeat_interval=0.05,
                          resync_interval=3600, poll_interval=0.02, exporter=exporter)
    return h


def test_agent_serves_the_exports_its_documents_list(tmp_path: Path) -> None:
    a, b = export(), export()

    async def main() -> None:
        exporter = FakeExporter()
        h = _harness(tmp_path, exporter)
        await h.agent.start()
        try:
            await h.put("volume", VOL, {**volume_spec(1), "exports": [doc(a)]})
            assert set(exporter.served) == {a.attachment_id}
            assert exporter.served[a.attachment_id][0] == h.driver.volume_path(VOL)
            await h.put("volume", VOL, {**volume_spec(1), "exports": [doc(a), doc(b)]})
            await h.put("volume", VOL, {**volume_spec(1), "exports": [doc(b)]})
            assert set(exporter.served) == {b.attachment_id}
            assert exporter.calls == [("ensure", a.attachment_id), ("ensure", b.attachment_id),
                                      ("remove", a.attachment_id)]
            assert h.last(VOL)["status"]["state"] == "ready"
            # A document whose export is malformed is an error of that generation; the export served stays.
            await h.put("volume", VOL, {**volume_spec(1), "exports": [{**doc(b), "key": "not-hex"}]})
            assert h.last(VOL)["status"]["state"] == "error" and set(exporter.served) == {b.attachment_id}
            # Deleting the volume ends its exports first.
            await h.delete("volume", VOL)
            assert exporter.served == {} and VOL not in h.driver.volumes
        finally:
            await h.agent.stop(cleanup=True)
            await h.bus.close()

    asyncio.run(main())


def test_agent_without_an_nbd_server_refuses_exports(tmp_path: Path) -> None:
    async def main() -> None:
        h = _harness(tmp_path, None)
        await h.agent.start()
        try:
            await h.put("volume", VOL, {**volume_spec(1), "exports": [doc(export())]})
            status = h.last(VOL)["status"]
            assert status["state"] == "error" and "nbd_host" in status["reason"]
        finally:
            await h.agent.stop(cleanup=True)
            await h.bus.close()

    asyncio.run(main())


@needs_qemu
def test_restarted_agent_keeps_live_exports_and_ends_the_others(tmp_path: Path) -> None:
    """The daemon outlives the agent; the restarted agent's documents decide: the export of an attachment that
    is gone ends, the live one stays, and with the last export the daemon goes (no orphan process)."""
    volumes = tmp_path / "volumes"
    volumes.mkdir()
    for vid in (VOL, VOL2):
        (volumes / f"volume-{vid}").write_bytes(b"\0" * 65536)
    port = free_port()
    kept, dropped = export(), export()

    async def main() -> None:
        driver = FakeVolumeDriver(capacity_gb=100, path=str(volumes))
        first = NbdServer(tmp_path / "nbd", "127.0.0.1", port)
        h = _harness(tmp_path, first, driver)
        await h.agent.start()
        try:
            await h.put("volume", VOL, {**volume_spec(1), "exports": [doc(kept)]})
            await h.put("volume", VOL2, {**volume_spec(1), "exports": [doc(dropped)]})
            assert set(await first.exports()) == {kept.attachment_id, dropped.attachment_id}
        finally:
            await h.agent.stop(cleanup=False)
        pid = first.pid()
        assert pid is not None  # guests keep their disks while the agent is away

        second = NbdServer(tmp_path / "nbd", "127.0.0.1", port)
        h.agent = VolumeAgent(h.bus, HOST, driver, tmp_path / "records", heartbeat_interval=0.05,
                              resync_interval=3600, poll_interval=0.02, exporter=second)
        await h.agent.start()
        try:
            # The controller's answer to the resync: VOL2's attachment is gone (and so is VOL2).
            await h.put("volume", VOL, {**volume_spec(1), "exports": [doc(kept)]})
            await h.sync({"volume": [VOL], "snapshot": []})
            assert set(await second.exports()) == {kept.attachment_id}
            assert second.pid() == pid
            ok = await asyncio.to_thread(qemu_io, tmp_path, port, kept.name, kept.identity, kept.key, "read 0 512")
            assert ok.returncode == 0, ok.stderr
            await h.put("volume", VOL, volume_spec(1))
            assert second.pid() is None
        finally:
            await h.agent.stop(cleanup=True)
            await second.stop()
            await h.bus.close()

    asyncio.run(main())


@needs_qemu
def test_a_grown_file_is_served_again_at_its_new_size(tmp_path: Path) -> None:
    """QEMU's NBD server fixes an export's size while it serves it: after an extend, ``ensure`` ends the export and
    adds it again under the same name, and a new connection sees the new length and reaches the new bytes."""
    volume = tmp_path / "volume-a"
    volume.write_bytes(b"\0" * (1 << 20))
    port = free_port()
    e = export()

    async def main() -> None:
        server = NbdServer(tmp_path / "nbd", "127.0.0.1", port)
        try:
            await server.ensure(e, str(volume))
            before = await asyncio.to_thread(qemu_io, tmp_path, port, e.name, e.identity, e.key, "length")
            assert "1 MiB" in before.stdout, before.stdout + before.stderr
            os.truncate(volume, 3 << 20)
            await server.ensure(e, str(volume))
            after = await asyncio.to_thread(qemu_io, tmp_path, port, e.name, e.identity, e.key,
                                            "write -P 0x7e 2M 512")
            assert after.returncode == 0 and "wrote 512/512" in after.stdout, after.stdout + after.stderr
            assert volume.read_bytes()[2 << 20:(2 << 20) + 512] == b"\x7e" * 512
            pid = server.pid()
            await server.ensure(e, str(volume))  # at its size already: left alone
            assert server.pid() == pid and set(await server.exports()) == {e.attachment_id}
        finally:
            await server.stop()

    asyncio.run(main())


@needs_qemu
def test_a_killed_daemon_is_noticed_at_once_and_its_exports_come_back(tmp_path: Path) -> None:
    """The agent watches the export daemon: killed, it is started again with the documents' exports well before
    the next resync (an hour here), and the same key and name open the volume again."""
    volumes = tmp_path / "volumes"
    volumes.mkdir()
    (volumes / f"volume-{VOL}").write_bytes(b"\0" * 65536)
    port = free_port()
    e = export()

    async def main() -> None:
        driver = FakeVolumeDriver(capacity_gb=100, path=str(volumes))
        server = NbdServer(tmp_path / "nbd", "127.0.0.1", port)
        h = _harness(tmp_path, server, driver)
        await h.agent.start()
        try:
            await h.put("volume", VOL, {**volume_spec(1), "exports": [doc(e)]})
            pid = server.pid()
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 20
            while server.pid() in (None, pid) or e.attachment_id not in await server.exports():
                assert time.monotonic() < deadline, "the export daemon did not come back"
                await asyncio.sleep(0.1)
            ok = await asyncio.to_thread(qemu_io, tmp_path, port, e.name, e.identity, e.key, "read 0 512")
            assert ok.returncode == 0, ok.stderr
            # Stopped on purpose (the last export ends): nothing brings it back.
            await h.put("volume", VOL, volume_spec(1))
            await asyncio.sleep(0.5)
            assert server.pid() is None
        finally:
            await h.agent.stop(cleanup=True)
            await h.bus.close()

    asyncio.run(main())


def test_the_fake_exporter_dying_brings_the_exports_back(tmp_path: Path) -> None:
    e = export()

    async def main() -> None:
        exporter = FakeExporter()
        h = _harness(tmp_path, exporter)
        await h.agent.start()
        try:
            await h.put("volume", VOL, {**volume_spec(1), "exports": [doc(e)]})
            exporter.die()
            await h.settle()
            assert set(exporter.served) == {e.attachment_id}
            assert exporter.calls == [("ensure", e.attachment_id), ("ensure", e.attachment_id)]
        finally:
            await h.agent.stop(cleanup=True)
            await h.bus.close()

    asyncio.run(main())
