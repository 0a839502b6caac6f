"""``ip.batch`` under churn: adding what exists and deleting what is gone are done; a step on a device that
vanished is a ``Raced`` (look again), and only other failures are errors."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator

import pytest

from tests.network.dataplane.harness import sh
from tinystack.core.host import CommandFailed
from tinystack.network.dataplane import ip
from tinystack.network.drivers.base import Raced

pytestmark = [pytest.mark.dataplane, pytest.mark.privileged]


@pytest.fixture
def ns() -> Iterator[str]:
    name = f"tsr{secrets.token_hex(4)}"
    sh("ip", "netns", "add", name)
    try:
        yield name
    finally:
        sh("ip", "netns", "del", name, check=False)


def test_add_of_what_exists_and_del_of_what_is_gone_are_done(ns: str) -> None:
    sh("ip", "-n", ns, "link", "add", "br1", "type", "bridge")
    asyncio.run(ip.batch(ns, [
        "link add br1 type bridge",  # exists
        "addr add fd00:5::1/64 dev br1",
        "addr add fd00:5::1/64 dev br1",  # "ipv6: address already assigned"
        "addr add 10.5.0.1/24 dev br1",
        "addr add 10.5.0.1/24 dev br1",
        "link del vxlan-999",  # gone
        "link set br1 up",  # still runs after the failures above
    ]))
    assert "UP" in sh("ip", "-n", ns, "-br", "link", "show", "br1").stdout
    assert asyncio.run(ip.addresses(ns, "br1")) == {"10.5.0.1/24", "fd00:5::1/64"}  # no link-local


def test_a_step_on_a_vanished_device_is_a_race(ns: str) -> None:
    sh("ip", "-n", ns, "link", "add", "br1", "type", "bridge")
    with pytest.raises(Raced):
        asyncio.run(ip.batch(ns, ["link set gone0 up"]))
    with pytest.raises(Raced):  # ip exits on an argument it cannot resolve: no line number, later lines lost
        asyncio.run(ip.batch(ns, ["link set br1 master brqgone", "link set br1 up"]))
    with pytest.raises(Raced):
        asyncio.run(ip.device_command(["bridge", "fdb", "show", "dev", "vxlan-999"], netns=ns))


def test_other_failures_are_errors(ns: str) -> None:
    with pytest.raises(CommandFailed):
        asyncio.run(ip.batch(ns, ["link add br2 type no-such-kind"]))
    with pytest.raises(CommandFailed):
        asyncio.run(ip.batch(ns, ["addr add 300.1.1.1/24 dev lo"]))
    asyncio.run(ip.batch(ns, ["link set gone0 up"], check=False))  # unchecked: nothing raised
