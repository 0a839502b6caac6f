"""The node console bridge (split deployment): the signing rules of its requests (tinystack/core/consolebridge.py),
and the bridge itself (tinystack/compute/agent_console.py) over TCP on loopback, with a unix server standing in
for QEMU's VNC socket at the path the QEMU driver uses, the proxy's client side in front of it."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tinystack.compute import console_sockets
from tinystack.compute.agent_console import NodeBridge
from tinystack.config import Config
from tinystack.config import load as load_config
from tinystack.core import consolebridge as cb
from tinystack.core.consolebridge import BridgeError, Refused, ReplayGuard
from tinystack.roles import RoleError, bridge_listen, check_console

pytestmark = pytest.mark.unit

KEY = b"k" * 32
IID = "0b7c5f3e-8a2d-4d1e-9f60-2c3b4a5d6e7f"
NOW = 1_800_000_000.0


def line(**kw: object) -> bytes:
    args: dict[str, object] = {"key": KEY, "host": "node1", "instance_id": IID, "kind": "vnc", "now": NOW}
    args.update(kw)
    return cb.request_line(**args)  # type: ignore[arg-type]


# -- signing rules ------------------------------------------------------------------------------------------


def test_a_signed_request_passes_once() -> None:
    guard = ReplayGuard()
    req = cb.verify(KEY, line(), "node1", guard, now=NOW + 2)
    assert (req.host, req.instance_id, req.kind, req.timestamp) == ("node1", IID, "vnc", int(NOW))
    with pytest.raises(Refused, match="replayed"):
        cb.verify(KEY, line(nonce=req.nonce), "node1", guard, now=NOW + 3)
    # A new nonce is a new request.
    assert cb.verify(KEY, line(kind="serial"), "node1", guard, now=NOW + 3).kind == "serial"


def test_each_request_gets_its_own_nonce() -> None:
    nonces = {cb.parse(line(now=None))[0].nonce for _ in range(50)}
    assert len(nonces) == 50


def test_wrong_key_and_any_changed_field_refused() -> None:
    guard = ReplayGuard()
    with pytest.raises(Refused, match="bad signature"):
        cb.verify(b"x" * 32, line(), "node1", guard, now=NOW)
    good = line().decode()
    fields = good.rstrip("\n").split(" ")
    other = str(uuid.uuid4())
    for i, value in ((2, other), (3, "serial"), (4, str(int(NOW) + 1)), (5, "0" * 32), (6, "f" * 64)):
        changed = fields.copy()
        changed[i] = value
        with pytest.raises(Refused, match="bad signature"):
            cb.verify(KEY, (" ".join(changed) + "\n").encode(), "node1", guard, now=NOW)


def test_host_is_signed_and_checked() -> None:
    guard = ReplayGuard()
    # Signed for node2: node1 refuses it (a request for one node cannot be replayed at another).
    with pytest.raises(Refused, match="another node"):
        cb.verify(KEY, line(host="node2"), "node1", guard, now=NOW)
    fields = line(host="node2").decode().split(" ")
    fields[1] = "node1"
    with pytest.raises(Refused, match="bad signature"):
        cb.verify(KEY, " ".join(fields).encode(), "node1", guard, now=NOW)


@pytest.mark.parametrize("offset", [-cb.MAX_SKEW - 1, cb.MAX_SKEW + 1, -3600, 86400])
def test_stale_or_future_timestamp_refused(offset: float) -> None:
    with pytest.raises(Refused, match="stale"):
        cb.verify(KEY, line(now=NOW + offset), "node1", ReplayGuard(), now=NOW)


def test_within_skew_accepted_both_ways() -> None:
    guard = ReplayGuard()
    cb.verify(KEY, line(now=NOW - cb.MAX_SKEW + 1), "node1", guard, now=NOW)
    cb.verify(KEY, line(now=NOW + cb.MAX_SKEW - 1), "node1", guard, now=NOW)


def test_replay_guard_forgets_only_what_is_stale_anyway() -> None:
    guard = ReplayGuard(max_skew=30)
    assert guard.spend("a" * 32, int(NOW), NOW)
    assert not guard.spend("a" * 32, int(NOW), NOW + 30)
    for i in range(1100):  # pruning drops the stale one and keeps those still inside the window
        assert guard.spend(f"{i:032x}", int(NOW) + 40, NOW + 40)
    assert not guard.spend(f"{5:032x}", int(NOW) + 40, NOW + 41)
    assert "a" * 32 not in guard._seen
    assert len(guard._seen) == 1100


@pytest.mark.parametrize("bad", [
    b"", b"\n", b"GET / HTTP/1.1\r\n", "TSCONSOLE/1 n\u00e9ud x vnc 1 2 3\n".encode(),
    b"TSCONSOLE/2 node1 " + IID.encode() + b" vnc 1800000000 " + b"0" * 32 + b" " + b"0" * 64 + b"\n",
    b"TSCONSOLE/1 node1 ../../etc/passwd vnc 1800000000 " + b"0" * 32 + b" " + b"0" * 64 + b"\n",
    b"TSCONSOLE/1 node1 " + IID.encode() + b"/../x vnc 1800000000 " + b"0" * 32 + b" " + b"0" * 64 + b"\n",
    b"TSCONSOLE/1 node1 " + IID.upper().encode() + b" vnc 1800000000 " + b"0" * 32 + b" " + b"0" * 64 + b"\n",
    b"TSCONSOLE/1 node1 " + IID.encode() + b" qmp 1800000000 " + b"0" * 32 + b" " + b"0" * 64 + b"\n",
    b"TSCONSOLE/1 ../node1 " + IID.encode() + b" vnc 1800000000 " + b"0" * 32 + b" " + b"0" * 64 + b"\n",
    b"TSCONSOLE/1 node1 " + IID.encode() + b" vnc -1 " + b"0" * 32 + b" " + b"0" * 64 + b"\n",
    b"TSCONSOLE/1 node1 " + IID.encode() + b" vnc 1800000000 " + b"0" * 32 + b" " + b"0" * 64 + b" extra\n",
])
def test_malformed_requests_refused(bad: bytes) -> None:
    with pytest.raises(Refused, match="malformed"):
        cb.verify(KEY, bad, "node1", ReplayGuard(), now=NOW)


def test_no_key_refuses_everything() -> None:
    with pytest.raises(Refused, match="node_secret"):
        cb.verify(b"", line(), "node1", ReplayGuard(), now=NOW)


@pytest.mark.parametrize(("text", "want"), [
    ("10.0.0.5", ("10.0.0.5", 6081)), ("10.0.0.5:7000", ("10.0.0.5", 7000)), ("[fd00::1]", ("fd00::1", 6081)),
    ("[fd00::1]:0", ("fd00::1", 0)), ("fd00::1", ("fd00::1", 6081)), ("node1.example.org:6081", ("node1.example.org", 6081)),
])
def test_addresses(text: str, want: tuple[str, int]) -> None:
    assert cb.split_address(text) == want
    assert cb.split_address(cb.join_address(*want)) == want


@pytest.mark.parametrize("text", [":6081", "host:port", "host:70000", "[fd00::1]x", "a:b:c"])
def test_bad_addresses(text: str) -> None:
    with pytest.raises(ValueError):
        cb.split_address(text)


def _config(tmp_path: Path, **console: str) -> Config:
    return load_config(environ={}, overrides={"state_dir": str(tmp_path), **{f"console__{k}": v
                                                                            for k, v in console.items()}})


def test_settings_and_split_mode_checks(tmp_path: Path) -> None:
    # tinystack up: no bridge, no secret needed.
    plain = _config(tmp_path)
    assert cb.load(plain) == cb.BridgeSettings("", b"")
    check_console(plain, "conductor")
    check_console(plain, "api", frozenset({"compute"}))  # an API process without the console proxy
    for role in ("api", "agent"):
        with pytest.raises(RoleError, match="node_secret must be set"):
            check_console(plain, role)
    with pytest.raises(RoleError, match="at least 16"):
        check_console(_config(tmp_path, node_secret="short"), "agent")
    with pytest.raises(ValueError, match="not an address"):
        cb.load(_config(tmp_path, node_listen="a:b"))
    good = _config(tmp_path, node_secret="s" * 16)
    check_console(good, "agent")
    check_console(good, "api")
    assert bridge_listen(good) == "127.0.0.1:6081"
    with_addr = load_config(environ={}, overrides={"state_dir": str(tmp_path), "console__node_secret": "s" * 16,
                                                   "compute__live_migration_inbound_addr": "192.0.2.21"})
    assert bridge_listen(with_addr) == "192.0.2.21:6081"
    assert bridge_listen(_config(tmp_path, node_listen="10.1.1.1:7001")) == "10.1.1.1:7001"
    # Several nodes in one agent process: a free port each (the nodes report theirs).
    extras = load_config(environ={}, overrides={"state_dir": str(tmp_path), "nodes__extra": "2"})
    assert bridge_listen(extras) == "127.0.0.1:0"


# -- the bridge over TCP ------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def vnc_standin(instances: Path, instance_id: str, kind: str = "vnc") -> AsyncIterator[Path]:
    """An echo server greeting like VNC at the socket path the QEMU driver gives ``instance_id`` on node1."""
    path = console_sockets.socket_path(instances, instance_id, "node1", kind)
    path.parent.mkdir(parents=True, exist_ok=True)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"RFB 003.008\n")
        while data := await reader.read(4096):
            writer.write(b"echo:" + data)
        writer.close()

    server = await asyncio.start_unix_server(serve, path=str(path))
    try:
        yield path
    finally:
        server.close()
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            path.parent.rmdir()


async def _bridge_scenario(instances: Path) -> None:
    held = {IID, str(uuid.uuid5(uuid.NAMESPACE_URL, "no-socket"))}

    async def holds(instance_id: str) -> bool:
        return instance_id in held

    bridge = NodeBridge("node1", KEY, "127.0.0.1:0", instances, holds)
    await bridge.start()
    addr = bridge.address
    assert addr.startswith("127.0.0.1:") and not addr.endswith(":0")
    try:
        async with vnc_standin(instances, IID):
            # Through the bridge both ways, twice (each connection its own request and nonce).
            for _ in range(2):
                reader, writer = await cb.open_bridge(addr, KEY, "node1", IID, "vnc")
                assert await reader.readexactly(12) == b"RFB 003.008\n"
                writer.write(b"hello")
                assert await reader.readexactly(10) == b"echo:hello"
                writer.close()
            # A wrong key, another node's name, an instance the node does not hold: refused with a reason.
            with pytest.raises(BridgeError, match="bad signature"):
                await cb.open_bridge(addr, b"w" * 32, "node1", IID, "vnc")
            with pytest.raises(BridgeError, match="another node"):
                await cb.open_bridge(addr, KEY, "node2", IID, "vnc")
            with pytest.raises(BridgeError, match="not on this node"):
                await cb.open_bridge(addr, KEY, "node1", str(uuid.uuid4()), "vnc")
            # Held, but no serial socket there (a guest without its drain yet): refused, nothing else opened.
            with pytest.raises(BridgeError, match="not available"):
                await cb.open_bridge(addr, KEY, "node1", IID, "serial")
            # A captured request sent again: refused.
            captured = cb.request_line(KEY, "node1", IID, "vnc")
            for expect in (b"OK\n", b"ERR replayed request\n"):
                reader, writer = await asyncio.open_connection(*cb.split_address(addr))
                writer.write(captured)
                assert await reader.readline() == expect
                writer.close()
            # Garbage, a path in place of the id, a line that never ends: refused.
            for raw in (b"GET / HTTP/1.1\r\n\r\n", captured.replace(IID.encode(), b"../../../../etc/passwd0000000"),
                        b"x" * (cb.MAX_LINE * 4)):
                reader, writer = await asyncio.open_connection(*cb.split_address(addr))
                writer.write(raw)
                assert (await reader.readline()).startswith(b"ERR ")
                writer.close()
        # Once the stand-in is gone the console is not available.
        with pytest.raises(BridgeError, match="not available"):
            await cb.open_bridge(addr, KEY, "node1", IID, "vnc")
        # An open bridge ends when the bridge stops.
        async with vnc_standin(instances, IID):
            reader, writer = await cb.open_bridge(addr, KEY, "node1", IID, "vnc")
            await reader.readexactly(12)
            await bridge.stop()
            assert await asyncio.wait_for(reader.read(), 10) == b""
    finally:
        await bridge.stop()
    with pytest.raises(BridgeError):
        await cb.open_bridge(addr, KEY, "node1", IID, "vnc", timeout=5)


def test_bridge_over_tcp(tmp_path: Path) -> None:
    asyncio.run(_bridge_scenario(tmp_path / "instances"))


def test_bridge_needs_a_key(tmp_path: Path) -> None:
    async def holds(instance_id: str) -> bool:
        return True

    with pytest.raises(ValueError, match="node_secret"):
        NodeBridge("node1", b"", "127.0.0.1:0", tmp_path, holds)
