"""Volumes as virtio disks: their command-line devices, and hotplug over QMP (``blockdev-add`` + ``device_add``,
``device_del`` + ``blockdev-del``). QEMU is the record of what a running guest has, so an agent restart finds
its volumes by asking it (``qom-list``), not from memory.

Each volume gets a fixed PCI slot, kept in the instance's ``launch.json`` with the volume: a suspend image or a
live migration only fits a QEMU with the very same devices at the very same addresses.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from tinystack.compute.drivers.base import DriverError

# Volume disks sit at slots 0x10-0x1f of pci.0, clear of the devices QEMU places itself (bridge, VGA, the
# instance's own disks and NICs from slot 3 up).
FIRST_SLOT, LAST_SLOT = 0x10, 0x1F
PERIPHERALS = "/machine/peripheral"

Qmp = Callable[[str, dict[str, Any] | None], Awaitable[Any]]


def device_id(volume_id: str) -> str:
    return f"volume-{volume_id}"


def _nodes(volume: dict[str, Any]) -> tuple[str, str]:
    """(protocol node, format node): node names are at most 31 characters, so they use the serial."""
    ser = str(volume.get("serial") or volume["volume_id"][:20])
    return f"vf{ser}", f"vd{ser}"


def assign_slots(volumes: list[dict[str, Any]], taken: set[int] | None = None) -> list[dict[str, Any]]:
    """The volumes with a PCI slot each: the one they have, else the first free one."""
    used = set(taken or ()) | {int(v["slot"]) for v in volumes if v.get("slot") is not None}
    out = []
    for v in volumes:
        if v.get("slot") is None:
            free = next((s for s in range(FIRST_SLOT, LAST_SLOT + 1) if s not in used), None)
            if free is None:
                raise DriverError(f"no free PCI slot for volume {v['volume_id']}: at most "
                                  f"{LAST_SLOT - FIRST_SLOT + 1} volumes per server", permanent=True)
            used.add(free)
            v = {**v, "slot": free}
        out.append(v)
    return out


def split_root(volumes: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """(the volume the guest boots from, if any; the others): the root is the guest's first disk, not a
    hotplugged one, so it has no slot of its own."""
    root = next((v for v in volumes if v.get("boot_index") == 0), None)
    return root, [v for v in volumes if v is not root]


def root_argv(volume: dict[str, Any]) -> list[str]:
    """The boot volume's devices: the first disk QEMU places (so the guest's /dev/vda), booted from, and with
    the volume's device id, so ``present`` finds it like any other volume."""
    proto, fmt = _nodes(volume)
    device = {k: v for k, v in _device({**volume, "slot": 0}, fmt).items() if k not in ("bus", "addr")}
    return ["-blockdev", json.dumps(_protocol_node(volume, proto)), "-blockdev",
            json.dumps(_format_node(volume, proto, fmt)), "-device", json.dumps({**device, "bootindex": 1})]


def argv(volumes: list[dict[str, Any]]) -> list[str]:
    """The command-line devices of volumes that already have slots (``assign_slots``), in attach order."""
    args: list[str] = []
    for v in volumes:
        proto, fmt = _nodes(v)
        args += ["-blockdev", json.dumps(_protocol_node(v, proto)), "-blockdev", json.dumps(_format_node(v, proto, fmt)),
                 "-device", json.dumps(_device(v, fmt))]
    return args


def _protocol_node(v: dict[str, Any], name: str) -> dict[str, Any]:
    if not v.get("path"):
        raise DriverError(f"volume {v['volume_id']} has no path to attach", permanent=True)
    return {"driver": "file", "node-name": name, "filename": str(v["path"]), "cache": {"direct": False},
            "discard": "unmap", "read-only": bool(v.get("read_only"))}


def _format_node(v: dict[str, Any], proto: str, name: str) -> dict[str, Any]:
    fmt = str(v.get("format") or "raw")
    if fmt not in ("raw", "qcow2"):
        raise DriverError(f"volume {v['volume_id']} has format {fmt!r}; raw and qcow2 are supported", permanent=True)
    return {"driver": fmt, "node-name": name, "file": proto, "read-only": bool(v.get("read_only"))}


def _device(v: dict[str, Any], fmt_node: str) -> dict[str, Any]:
    return {"driver": "virtio-blk-pci", "id": device_id(v["volume_id"]), "drive": fmt_node,
            "serial": str(v.get("serial") or v["volume_id"][:20]), "bus": "pci.0", "addr": hex(int(v["slot"]))}


async def present(qmp: Qmp) -> set[str]:
    """The volume ids whose disk device the running QEMU has now."""
    children = await qmp("qom-list", {"path": PERIPHERALS}) or []
    prefix = device_id("")
    return {c["name"][len(prefix):] for c in children if str(c.get("name", "")).startswith(prefix)}


async def attach(qmp: Qmp, volume: dict[str, Any]) -> None:
    """Hotplug one volume that has its slot; nothing when the guest has it already."""
    if volume["volume_id"] in await present(qmp):
        return
    proto, fmt = _nodes(volume)
    # Nodes left by an attach or detach cut short (no device uses them, so deleting them is safe).
    await _drop_nodes(qmp, fmt, proto)
    await qmp("blockdev-add", _protocol_node(volume, proto))
    try:
        await qmp("blockdev-add", _format_node(volume, proto, fmt))
        await qmp("device_add", _device(volume, fmt))
    except DriverError:
        await _drop_nodes(qmp, fmt, proto)
        raise


async def detach(qmp: Qmp, volume_id: str, serial: str, timeout: float) -> None:
    """Ask the guest to release the disk (an ACPI eject it must acknowledge), wait for the device to go (at
    most ``timeout`` seconds, then ``DriverError``: it may still go later), then drop its block nodes."""
    proto, fmt = _nodes({"volume_id": volume_id, "serial": serial})
    if volume_id in await present(qmp):
        try:
            await qmp("device_del", {"id": device_id(volume_id)})
        except DriverError as exc:
            # Asked before and still pending: keep waiting. Gone meanwhile: nothing to wait for.
            if "not found" not in str(exc) and "process of unplug" not in str(exc):
                raise
        deadline = time.monotonic() + timeout
        while volume_id in await present(qmp):
            if time.monotonic() > deadline:
                raise DriverError(f"the guest did not release volume {volume_id} within {timeout:.0f}s "
                                  "(it must acknowledge the PCI unplug)")
            await asyncio.sleep(0.25)
    await _drop_nodes(qmp, fmt, proto)


async def _drop_nodes(qmp: Qmp, *names: str) -> None:
    existing = {n.get("node-name") for n in await qmp("query-named-block-nodes", {"flat": True}) or []}
    for name in names:
        if name in existing:
            await qmp("blockdev-del", {"node-name": name})
