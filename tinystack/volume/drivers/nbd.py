"""Volume files exported to other machines over NBD: one ``qemu-storage-daemon`` per volume node, its NBD server on
``[volume] nbd_host``:``nbd_port`` with TLS-PSK, and one export per attachment under a random name.

The daemon detaches from the agent (its own session, a pidfile), so guests keep their disks while the agent
restarts; the agent finds it again by the pidfile and its command line, and asks it over QMP what it exports
(``query-block-exports``): QEMU, not the agent's memory, is the record. The agent watches it (a pidfd): when it
dies, the agent serves the volume documents' exports again at once. Each attachment's TLS identity and key
are a line of the daemon's PSK file, which GnuTLS reads at every handshake, so keys come and go without a
restart. A client must hold a key the file lists and the export's secret name to open a disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qemu.qmp import QMPClient, QMPError

from tinystack.core import host
from tinystack.core.host import CommandFailed
from tinystack.volume.drivers.base import DriverError

log = logging.getLogger(__name__)

DAEMON = "qemu-storage-daemon"
TLS_ID = "tls0"
# Export ids are ``x<attachment id>``; block node names (at most 31 characters) ``n`` and the id's first 30 hex.
_ATTACHMENT = re.compile(r"^[0-9a-f-]{36}$")
_NAME = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
_KEY = re.compile(r"^[0-9a-f]{32,128}$")


@dataclass(frozen=True)
class Export:
    """One attachment's export as a volume document lists it (docs/contracts.md)."""

    attachment_id: str
    name: str  # the secret export name
    identity: str  # the TLS-PSK identity
    key: str  # the TLS-PSK key, hex
    read_only: bool = False

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Export:
        e = cls(attachment_id=str(raw.get("attachment_id") or ""), name=str(raw.get("name") or ""),
                identity=str(raw.get("identity") or ""), key=str(raw.get("key") or ""),
                read_only=bool(raw.get("read_only")))
        if not (_ATTACHMENT.match(e.attachment_id) and _NAME.match(e.name) and _KEY.match(e.key)
                and e.identity == identity_of(e.attachment_id)):
            raise DriverError(f"unusable export in the volume document: {e.attachment_id!r}", permanent=True)
        return e


def identity_of(attachment_id: str) -> str:
    return f"att-{attachment_id}"


def export_id(attachment_id: str) -> str:
    return f"x{attachment_id}"


def node_name(attachment_id: str) -> str:
    return "n" + attachment_id.replace("-", "")[:30]


class NbdServer:
    """The node's export daemon. ``netns``: the namespace whose address ``address`` is (a node namespace when
    several nodes share one machine); empty for the host's own."""

    def __init__(self, state: Path, address: str, port: int, netns: str = "", daemon: str = DAEMON) -> None:
        self.state = state
        self.address = address
        self.port = port
        self.netns = netns
        self.daemon = daemon
        self._lock = asyncio.Lock()  # one change of the exports at a time
        self._session = asyncio.Lock()  # the daemon's monitor serves one QMP client at a time
        self._on_exit: Callable[[], None] | None = None
        self._pidfd: tuple[int, int] | None = None  # (pid, its pidfd) of the daemon being watched

    @property
    def qmp_path(self) -> Path:
        return self.state / "qmp"

    @property
    def pidfile(self) -> Path:
        return self.state / "pid"

    @property
    def psk_file(self) -> Path:
        return self.state / "psk" / "keys.psk"

    # -- the daemon -------------------------------------------------------------------------------------

    def pid(self) -> int | None:
        """The daemon's pid if it runs (a recycled pid naming another program is not it)."""
        try:
            pid = int(self.pidfile.read_text().strip())
            cmdline = open(f"/proc/{pid}/cmdline", "rb").read()  # noqa: SIM115 - tiny read
        except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
            return None
        return pid if str(self.qmp_path).encode() in cmdline else None

    async def _ensure_running(self) -> None:
        if self.pid() is not None:
            return
        if not self.address:
            raise DriverError("an attachment needs an NBD export but [volume] nbd_host is not set", permanent=True)
        self.state.mkdir(parents=True, exist_ok=True)
        self.psk_file.parent.mkdir(mode=0o700, exist_ok=True)
        if not self.psk_file.exists():
            self._write_keys({})
        with contextlib.suppress(FileNotFoundError):
            self.qmp_path.unlink()
        argv = [self.daemon,
                "--chardev", f"socket,id=mon,path={self.qmp_path},server=on,wait=off", "--monitor", "chardev=mon",
                "--object", f"tls-creds-psk,id={TLS_ID},endpoint=server,dir={self.psk_file.parent}",
                "--nbd-server", f"addr.type=inet,addr.host={self.address},addr.port={self.port},tls-creds={TLS_ID}",
                "--pidfile", str(self.pidfile), "--daemonize"]
        try:
            await host.run(argv, netns=self.netns or None, timeout=30)
        except CommandFailed as exc:
            raise DriverError(f"the NBD server did not start on {self.address}:{self.port}: {exc}") from exc
        log.info("NBD server started on %s:%d (pid %s)", self.address, self.port, self.pid())

    # -- watching it ------------------------------------------------------------------------------------

    def watch(self, on_exit: Callable[[], None]) -> None:
        """From now on, call ``on_exit`` (on the event loop) as soon as the daemon dies unasked: a pidfd
        becomes readable when its process exits, so a killed daemon is noticed at once, not at the next
        resync. The daemon is not the agent's child (it detaches), hence no SIGCHLD."""
        self._on_exit = on_exit
        self._watch()

    def _watch(self) -> None:
        pid = self.pid()
        if self._on_exit is None or pid is None or (self._pidfd is not None and self._pidfd[0] == pid):
            return
        self._unwatch()
        try:
            fd = os.pidfd_open(pid)
        except (ProcessLookupError, OSError) as exc:
            if self.pid() is not None:
                log.warning("cannot watch the NBD server (pid %d): %s", pid, exc)
            return
        self._pidfd = (pid, fd)
        asyncio.get_running_loop().add_reader(fd, self._exited, pid)

    def _unwatch(self) -> None:
        if self._pidfd is None:
            return
        _, fd = self._pidfd
        self._pidfd = None
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(fd)
        os.close(fd)

    def _exited(self, pid: int) -> None:
        self._unwatch()
        log.warning("the NBD server on %s:%d (pid %d) died; serving its exports again", self.address, self.port, pid)
        if self._on_exit is not None:
            self._on_exit()

    async def stop(self) -> None:
        """Stop the daemon: every export ends (guests using them lose their disks)."""
        self._unwatch()  # asked to: nothing to restore
        pid = self.pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while self.pid() is not None:
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            await asyncio.sleep(0.05)
        log.info("NBD server on %s:%d stopped", self.address, self.port)

    async def _qmp(self, *commands: tuple[str, dict[str, Any] | None]) -> list[Any]:
        async with self._session:
            client = QMPClient("nbd-server")
            try:
                await asyncio.wait_for(client.connect(str(self.qmp_path)), 5)
                return [await asyncio.wait_for(client.execute(cmd, args), 30) for cmd, args in commands]
            except (QMPError, OSError, TimeoutError) as exc:
                raise DriverError(f"NBD server QMP: {exc}") from exc
            finally:
                with contextlib.suppress(Exception):
                    await client.disconnect()

    # -- keys -------------------------------------------------------------------------------------------

    def _read_keys(self) -> dict[str, str]:
        try:
            lines = self.psk_file.read_text().splitlines()
        except FileNotFoundError:
            return {}
        return dict(line.split(":", 1) for line in lines if ":" in line)

    def _write_keys(self, keys: dict[str, str]) -> None:
        tmp = self.psk_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("".join(f"{i}:{k}\n" for i, k in sorted(keys.items())))
        os.replace(tmp, self.psk_file)

    # -- exports ----------------------------------------------------------------------------------------

    async def exports(self) -> dict[str, str]:
        """Attachment id -> volume file of every export the daemon serves (none when it does not run)."""
        return {a: path for a, (path, _) in (await self._served()).items()}

    async def _served(self) -> dict[str, tuple[str, int]]:
        """Attachment id -> (volume file, the size its export announces) of every export served now."""
        if self.pid() is None:
            return {}
        exported, nodes = await self._qmp(("query-block-exports", None), ("query-named-block-nodes", {"flat": True}))
        files = {n.get("node-name"): (str(n.get("file") or ""), int((n.get("image") or {}).get("virtual-size") or 0))
                 for n in nodes}
        return {str(e["id"])[1:]: files.get(e.get("node-name"), ("", 0)) for e in exported
                if str(e.get("id", "")).startswith("x") and not e.get("shutting-down")}

    async def ensure(self, export: Export, path: str) -> None:
        """Serve ``path`` as ``export``; nothing when it is served already at the file's size. An export's size
        is fixed while it is served (QEMU's NBD server refuses to resize a node it exports), so the export of a
        grown file is ended and added again under the same name: its clients reconnect at once (their
        ``reconnect-delay``) and a new connection announces the new size."""
        async with self._lock:
            await self._ensure_running()
            self._watch()
            keys = self._read_keys()
            if keys.get(export.identity) != export.key:
                self._write_keys({**keys, export.identity: export.key})
            served = (await self._served()).get(export.attachment_id)
            if served is not None:
                try:
                    length = os.stat(path).st_size
                except OSError as exc:
                    raise DriverError(f"volume file {path}: {exc}") from exc
                if served[1] >= length:
                    return
                log.info("export of attachment %s: the file grew to %d bytes; serving it again", export.attachment_id,
                         length)
                await self._end_export(export.attachment_id)
            node = node_name(export.attachment_id)
            existing = {n.get("node-name") for n in (await self._qmp(("query-named-block-nodes", {"flat": True})))[0]}
            if node in existing:  # left by an export cut short
                await self._qmp(("blockdev-del", {"node-name": node}))
            # locking off: the volume node's own guests open the same file directly (file transport).
            await self._qmp(
                ("blockdev-add", {"driver": "raw", "node-name": node, "read-only": export.read_only,
                                  "file": {"driver": "file", "filename": path, "locking": "off",
                                           "cache": {"direct": False}}}),
                ("block-export-add", {"type": "nbd", "id": export_id(export.attachment_id), "node-name": node,
                                      "name": export.name, "writable": not export.read_only}))
            log.info("exporting %s for attachment %s", path, export.attachment_id)

    async def _end_export(self, attachment_id: str) -> None:
        """End the export (its clients are cut off) and wait until QEMU has let it go."""
        await self._qmp(("block-export-del", {"id": export_id(attachment_id), "mode": "hard"}))
        deadline = time.monotonic() + 10
        while export_id(attachment_id) in {e.get("id") for e in (await self._qmp(("query-block-exports", None)))[0]}:
            if time.monotonic() > deadline:
                raise DriverError(f"the export of attachment {attachment_id} does not end")
            await asyncio.sleep(0.05)

    async def remove(self, attachment_id: str) -> None:
        """End the attachment's export (its clients are cut off) and forget its key; stop the daemon when it
        serves nothing more."""
        async with self._lock:
            if self.pid() is None:
                return
            if attachment_id in await self.exports():
                await self._end_export(attachment_id)
            node = node_name(attachment_id)
            nodes = (await self._qmp(("query-named-block-nodes", {"flat": True})))[0]
            if node in {n.get("node-name") for n in nodes}:
                await self._qmp(("blockdev-del", {"node-name": node}))
            keys = self._read_keys()
            if keys.pop(identity_of(attachment_id), None) is not None:
                self._write_keys(keys)
            log.info("export of attachment %s ended", attachment_id)
            if not await self.exports():
                await self.stop()
