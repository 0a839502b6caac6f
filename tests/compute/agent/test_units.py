"""Unit rules of the compute agent's parts: the capped console log, its drain, and [compute] settings."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tinystack import config
from tinystack.compute import agent_settings
from tinystack.compute.drivers.qemu.console import CappedLog, ConsoleDrain
from tinystack.compute.drivers.qemu.layout import InstanceDir


def test_capped_log_keeps_the_newest_bytes(tmp_path: Path) -> None:
    log = CappedLog(tmp_path / "console.log", 8192)
    for i in range(2000):
        log.append(f"line {i:04d}\n".encode())
    data = (tmp_path / "console.log").read_bytes()
    assert 6000 <= len(data) <= 8192 and data.endswith(b"line 1999\n")
    assert b"line 0000\n" not in data and b"line 1500\n" in data


def test_drain_copies_the_socket_until_qemu_closes_it(tmp_path: Path) -> None:
    sock, out = tmp_path / "serial.sock", tmp_path / "console.log"

    async def scenario() -> None:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"Linux version 6.1\n" + b"x" * 10000 + b"\nlogin:")
            await writer.drain()
            writer.close()

        server = await asyncio.start_unix_server(serve, str(sock))
        drain = ConsoleDrain(sock, out, 4096)
        await drain.start()
        for _ in range(100):
            if not drain.running:
                break
            await asyncio.sleep(0.01)
        server.close()
        assert drain.first_output is not None and not drain.running

    asyncio.run(scenario())
    data = out.read_bytes()
    assert len(data) <= 4096 and data.endswith(b"login:")


def test_long_instance_paths_get_short_socket_dirs(tmp_path: Path) -> None:
    short = InstanceDir(Path("/var/lib/tinystack/instances/0b7c5a6e-2f7d-4c39-9d5e-5d0c3e1f0a11"))
    assert short.qmp.parent == short.path
    deep = InstanceDir(tmp_path / ("d" * 80) / "0b7c5a6e-2f7d-4c39-9d5e-5d0c3e1f0a11")
    assert len(str(deep.serial)) < 108 and deep.qmp.parent == deep.run_dir != deep.path
    assert InstanceDir(deep.path).run_dir == deep.run_dir  # stable across agent restarts


def test_settings_defaults_and_validation(tmp_path: Path) -> None:
    cfg = config.load(None, environ={}, overrides={"state_dir": str(tmp_path), "host": "n1"})
    s = agent_settings.load(cfg)
    assert s.driver == "qemu" and s.instances_path == tmp_path / "instances"
    assert s.console_log_max_bytes == 1 << 20 and s.power_off_timeout == 10 and s.kvm == "auto"
    assert s.node_netns == "tsnode-n1" and s.image_cache_dir == tmp_path / "instances" / "_base"
    cfg.set("compute", "cpu_allocation_ratio", "4.0")  # the API's key in the same section is fine
    cfg.set("compute", "driver", "fake")
    assert agent_settings.load(cfg).driver == "fake"
    cfg.set("compute", "driver", "xen")
    with pytest.raises(ValueError, match="driver"):
        agent_settings.load(cfg)
    cfg.set("compute", "driver", "fake")
    cfg.set("compute", "no_such_key", "1")
    with pytest.raises(ValueError, match="no_such_key"):
        agent_settings.load(cfg)
