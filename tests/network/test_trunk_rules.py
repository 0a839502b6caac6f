"""Trunk rules without a cloud: the subport list's validation, the status derived from the ports, and what the
Linux driver does for a subport (its veth relay, the filters' loading)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tinystack import config
from tinystack.core import errors, host
from tinystack.network import agent_settings, trunks
from tinystack.network.dataplane import ip, names, tcbpf
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
        for command in commands:  # what the kernel would then have
            words = command.split()
            if words[:2] == ["link", "add"]:
                self.fake_links[words[2]] = link(words[2], "veth", peer=words[-1], index=50)
                self.fake_links[words[-1]] = link(words[-1], "veth", peer=words[2], index=51)
            elif words[:2] == ["link", "del"]:
                self.fake_links.pop(words[2], None)


PARENT, SUB, NET = "11111111-aaaa", "22222222-bbbb", "33333333-cccc"


def link(name: str, kind: str = "", master: str | None = None, peer: str | None = None, index: int = 7) -> ip.Link:
    return ip.Link(name=name, kind=kind, master=master, up=True, mtu=1450, address="", peer=peer, ifindex=index)


class FakeTc:
    """``host.run`` for tc: no filters at first, and every command recorded."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    async def __call__(self, argv: list[str], **kw: Any) -> Any:
        self.calls.append(argv)

        class Out:
            returncode, stdout, stderr = 0, "[]", ""
        return Out()


def plan(links: list[ip.Link], tmp: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], list[list[str]]]:
    tc = FakeTc()
    monkeypatch.setattr(host, "run", tc)
    driver = Planned([link(names.bridge(NET), "bridge"), *links], tmp)
    doc = {"id": SUB, "network_id": NET, "vlan": {"parent_id": PARENT, "segmentation_id": 100}}
    asyncio.run(driver.ensure_port(doc, {"id": NET, "mtu": 1450}))
    return driver.commands, [c for c in tc.calls if c[1] in ("filter", "qdisc") and c[2] != "-j"]


def test_subport_is_a_veth_relay_with_filters_both_ways(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tap, sub, relay, br = names.tap(PARENT), names.tap(SUB), names.relay(SUB), names.bridge(NET)
    commands, tc = plan([link(tap, "tun", index=9)], tmp_path, monkeypatch)
    assert commands == [f"link add {sub} type veth peer name {relay}", f"link set {sub} mtu 1450 master {br} up",
                        f"link set {relay} mtu 1450 up"]
    loads = [c for c in tc if c[1] == "filter"]
    assert [(c[4], c[7]) for c in loads] == [(tap, "100"), (relay, "1")]  # the parent's pref is the VLAN id
    assert not list((tmp_path / "subports").glob("*.o"))  # loaded, then removed
    # Devices right already: no device command (the filters are checked by name each time).
    right = [link(tap, "tun", index=9), link(sub, "veth", br, relay, 50), link(relay, "veth", None, sub, 51)]
    assert plan(right, tmp_path, monkeypatch)[0] == []
    # A plain tap of the subport's name: made again as the veth.
    commands, _ = plan([link(tap, "tun", index=9), link(sub, "tun", br)], tmp_path, monkeypatch)
    assert commands[:2] == [f"link del {sub}", f"link add {sub} type veth peer name {relay}"]


def test_subport_waits_for_its_parent_device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(NotReady):
        plan([], tmp_path, monkeypatch)


def test_filter_programs_are_loadable_objects() -> None:
    obj = tcbpf.elf_object(tcbpf.pop_program(100, 7), "pop100x7")
    assert obj[:4] == b"\x7fELF" and obj[18:20] == (247).to_bytes(2, "little")  # EM_BPF
    assert len(tcbpf.pop_program(1, 1)) % 8 == 0 and len(tcbpf.push_program(1, 1)) % 8 == 0
    with pytest.raises(ValueError):
        tcbpf.elf_object(b"", "a-name-far-too-long")
