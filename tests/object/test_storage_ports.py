"""A storage node started with port 0 (tests) picks ports its rings keep: below the kernel's ephemeral range, so
that an outgoing connection's source port cannot be holding one when the node starts again on it."""

from __future__ import annotations

import socket
from pathlib import Path

from tinystack.object.servers.node import _lasting_port


def test_a_kept_port_is_free_and_below_the_ephemeral_range() -> None:
    ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = {_lasting_port("127.0.0.1") for _ in range(20)}
    assert all(10000 <= p < ephemeral for p in ports), ports
    assert len(ports) > 1  # spread, so that clouds of parallel tests rarely pick the same
    port = ports.pop()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # still free
