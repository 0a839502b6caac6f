"""Trunk subports on the node: a veth ``tap<subport>`` (on the subport network's bridge, where its security
groups apply as on any port) ↔ ``tvr<subport>``, and two eBPF filters (tcbpf.py) that move frames between the
relay end and the parent's tap: tagged with the subport's VLAN id from the guest, tagged again towards it.

Everything is level-triggered from the devices and filters found: a filter is named after what it does and the
device index it sends to (``pop<vid>x<ifindex>``), so a parent tap or relay made again (a new index) gets its
filter made again."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tinystack.core import host
from tinystack.network.dataplane import ip, names, tcbpf
from tinystack.network.drivers.base import NotReady

log = logging.getLogger(__name__)

Doc = dict[str, Any]
Batch = Callable[[list[str]], Awaitable[None]]
RELAY_PREF = 1


class Subports:
    def __init__(self, netns: str, state: Path, batch: Batch,
                 links: Callable[[], Awaitable[dict[str, ip.Link]]], invalidate: Callable[[], None]) -> None:
        self.netns = netns
        self.objects = state / "subports"
        self._batch = batch
        self._links = links
        self._invalidate = invalidate

    async def ensure(self, port: Doc, network: Doc) -> None:
        """The subport's veth pair on its bridge, and both filters sending to the devices as they are now."""
        vlan = port["vlan"]
        vid = int(vlan["segmentation_id"])
        parent, tap, relay = names.tap(vlan["parent_id"]), names.tap(port["id"]), names.relay(port["id"])
        br, mtu = names.bridge(network["id"]), int(network.get("mtu") or 1500)
        links = await self._links()
        if parent not in links:
            raise NotReady(f"device {parent} of trunk parent {vlan['parent_id']} is not there yet")
        have = links.get(tap)
        cmds: list[str] = []
        if have is not None and (have.kind != "veth" or have.peer != relay):
            cmds.append(f"link del {tap}")  # a plain tap, or a veth of something else: made again
            have = None
        if have is None:
            cmds.append(f"link add {tap} type veth peer name {relay}")
        if cmds or have is None or have.master != br or not have.up:
            cmds.append(f"link set {tap} mtu {mtu} master {br} up")
        if cmds or relay not in links or not links[relay].up:
            cmds.append(f"link set {relay} mtu {mtu} up")
        if cmds:
            await self._batch(cmds)
            links = await self._links()
        if tap not in links or relay not in links or parent not in links:
            raise NotReady(f"devices of subport {port['id']} changed while wiring it")
        await self._filter(parent, vid, f"pop{vid}x{links[relay].ifindex}",
                           tcbpf.pop_program(vid, links[relay].ifindex))
        await self._filter(relay, RELAY_PREF, f"psh{vid}x{links[parent].ifindex}",
                           tcbpf.push_program(vid, links[parent].ifindex))

    async def _filters(self, dev: str) -> dict[int, str]:
        """pref → program name of the ingress filters of ``dev``."""
        out = await host.run(["tc", "-j", "filter", "show", "dev", dev, "ingress"], netns=self.netns, check=False)
        found: dict[int, str] = {}
        if out.returncode != 0:
            return found
        for item in json.loads(out.stdout or "[]"):
            name = ((item.get("options") or {}).get("prog") or {}).get("name")
            if name:
                found[int(item.get("pref", 0))] = str(name)
        return found

    async def _filter(self, dev: str, pref: int, name: str, code: bytes) -> None:
        if (await self._filters(dev)).get(pref) == name:
            return
        # clsact may be there already ("Exclusivity flag on"): that is fine, and its other filters stay.
        await host.run(["tc", "qdisc", "add", "dev", dev, "clsact"], netns=self.netns, check=False)
        self.objects.mkdir(parents=True, exist_ok=True)
        path = self.objects / f"{name}.o"
        path.write_bytes(tcbpf.elf_object(code, name))
        await host.run(["tc", "filter", "replace", "dev", dev, "ingress", "pref", str(pref), "handle", "1", "bpf",
                        "da", "obj", str(path), "sec", tcbpf.SECTION], netns=self.netns)
        path.unlink(missing_ok=True)  # loaded: the kernel holds the program now

    async def collect_garbage(self, keep: set[str]) -> list[str]:
        """Relays of subports not in ``keep`` and the filters on parents' taps that send to no relay."""
        links = await self._links()
        relays = {names.relay(p) for p in keep}
        removed: list[str] = []
        cmds = []
        for link in links.values():
            if link.name.startswith(names.RELAY) and link.name not in relays:
                cmds.append(f"link del {link.name}")
                removed.append(f"device {link.name}")
        if cmds:
            await self._batch(cmds)
            links = await self._links()
        alive = {str(link.ifindex) for link in links.values() if link.name.startswith(names.RELAY)}
        out = await host.run(["tc", "-j", "qdisc", "show"], netns=self.netns, check=False)
        devices = {q.get("dev") for q in json.loads(out.stdout or "[]") if q.get("kind") == "clsact"}
        for dev in sorted(d for d in devices if isinstance(d, str) and d.startswith(names.TAP)):
            for pref, name in (await self._filters(dev)).items():
                if name.startswith("pop") and name.rpartition("x")[2] not in alive:
                    await host.run(["tc", "filter", "del", "dev", dev, "ingress", "pref", str(pref)],
                                   netns=self.netns, check=False)
                    removed.append(f"filter {name} on {dev}")
        return removed

    async def delete(self, port_id: str, parent_id: str | None, vid: int | None) -> None:
        """The subport's veth pair (its relay goes with it) and, when known, its filter on the parent's tap."""
        links = await self._links()
        if names.tap(port_id) in links:
            await self._batch([f"link del {names.tap(port_id)}"])
        if parent_id is not None and vid is not None and names.tap(parent_id) in links:
            await host.run(["tc", "filter", "del", "dev", names.tap(parent_id), "ingress", "pref", str(vid)],
                           netns=self.netns, check=False)
        self._invalidate()
