"""Trunk rules without a cloud: the subport list's validation, the status derived from the ports, and the
commands the Linux driver plans for a subport's VLAN device."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tinystack import config
from tinystack.core import errors
from tinystack.network import agent_settings, trunks
from tinystack.network.dataplane import ip, names
from tinystack.network.drivers.base import NotReady
from tinystack.network.drivers.linux import LinuxDriver
from tinystack.network.models import Port

pytestmark = pytest.mark.unit


def vlan(port_id: str, seg: Any, kind: Any = "vlan") -> dict[str, Any]:
    return {"port_id": port_id, "segmentation_type": kind, "segmentation_id": seg}


def test_subports_parsed_and_normalised() -> None:
    assert trunks.parse_subports([vlan("a", "100"), vlan("b", 4094), vlan("c", 1)]) == [
        vlan("a", 100), vlan("b", 4094), vlan("c", 1)]
    assert trunks.parse_subports([{"port_id": "a"}], need_segmentation=False) == [{"port_id": "a"}]


@pytest.mark.parametrize("items", [
    "x", [vlan("a", 0)], [vlan("a", 4095)], [vlan("a", "1x")], [vlan("a", True)], [vlan("a", None)],
    [vlan("a", 5, "vxlan")], [vlan("a", 5, "inherit")], [{"port_id": "a", "segmentation_id": 5}],
    [vlan("a", 5), vlan("a", 6)], [vlan("a", 5), vlan("b", 5)], [{"segmentation_id": 5}], ["a"],
    [{**vlan("a", 5), "mac_address": "x"}],
])
def test_bad_subports_are_400(items: Any) -> None:
    with pytest.raises(errors.BadRequest):
        trunks.parse_subports(items)


def port(status: str, host: str = "h1") -> Port:
    return Port(id="p", status=status, host_id=host)


def test_status_as_neutron() -> None:
    assert trunks.status(None, []) == "DOWN"
    assert trunks.status(port("ACTIVE", host=""), [port("ACTIVE")]) == "DOWN"  # parent not bound
    assert trunks.status(port("ACTIVE"), []) == "ACTIVE"
    assert trunks.status(port("ACTIVE"), [port("ACTIVE"), port("ACTIVE")]) == "ACTIVE"
    assert trunks.status(port("DOWN"), [port("ACTIVE")]) == "BUILD"
    assert trunks.status(port("ACTIVE"), [port("ACTIVE"), port("DOWN")]) == "BUILD"
    assert trunks.status(port("ACTIVE"), [port("ACTIVE"), port("ERROR")]) == "DEGRADED"
    assert trunks.status(port("ERROR"), [port("ACTIVE")]) == "ERROR"


class Planned(LinuxDriver):
    """The driver with a made-up node namespace: it records the commands instead of running them."""

    def __init__(self, links: list[ip.Link], tmp: Path) -> None:
        cfg = config.load(None, environ={}, overrides={"state_dir": str(tmp), "host": "unit"})
        super().__init__(agent_settings.load(cfg))
        self.fake_links = {link.name: link for link in links}
        self.commands: list[str] = []

    async def _node_links(self) -> dict[str, ip.Link]:
        return self.fake_links

    async def _batch(self, commands: list[str], check: bool = True) -> None:
        self.commands += commands


PARENT, SUB, NET = "11111111-aaaa", "22222222-bbbb", "33333333-cccc"


def link(name: str, kind: str = "", master: str | None = None, lower: str | None = None,
         vid: int | None = None) -> ip.Link:
    return ip.Link(name=name, kind=kind, master=master, up=True, mtu=1450, address="", lower=lower, vlan_id=vid)


def plan(links: list[ip.Link], tmp: Path, seg: int = 100) -> list[str]:
    driver = Planned([link(names.bridge(NET), "bridge"), *links], tmp)
    doc = {"id": SUB, "network_id": NET, "vlan": {"parent_id": PARENT, "segmentation_id": seg}}
    asyncio.run(driver.ensure_port(doc, {"id": NET, "mtu": 1450}))
    return driver.commands


def test_subport_device_is_a_vlan_of_the_parent_tap(tmp_path: Path) -> None:
    tap, sub, br = names.tap(PARENT), names.tap(SUB), names.bridge(NET)
    assert plan([link(tap, "tun")], tmp_path) == [f"link add link {tap} name {sub} type vlan id 100",
                                                  f"link set {sub} mtu 1450 master {br} up"]
    # Already right: nothing to do.
    assert plan([link(tap, "tun"), link(sub, "vlan", br, tap, 100)], tmp_path) == []
    # On the bridge no longer: only put back.
    assert plan([link(tap, "tun"), link(sub, "vlan", None, tap, 100)], tmp_path) == [
        f"link set {sub} mtu 1450 master {br} up"]
    # A plain tap of that name, or a VLAN of another id: made again.
    for wrong in (link(sub, "tun", br), link(sub, "vlan", br, tap, 200)):
        assert plan([link(tap, "tun"), wrong], tmp_path) == [
            f"link del {sub}", f"link add link {tap} name {sub} type vlan id 100",
            f"link set {sub} mtu 1450 master {br} up"]


def test_subport_waits_for_its_parent_device(tmp_path: Path) -> None:
    with pytest.raises(NotReady):
        plan([], tmp_path)
