"""Volumes as virtio disks: their command-line devices, and hotplug over QMP (``blockdev-add`` + ``device_add``,
``device_del`` + ``blockdev-del``). QEMU is the record of what a running guest has, so an agent restart finds
its volumes by asking it (``qom-list``), not from memory.

Each volume gets a fixed PCI slot, kept in the instance's ``launch.json`` with the volume: a suspend image or a
live migration only fits a QEMU with the very same devices at the very same addresses.

A volume whose document names an NBD export (``nbd``) and another node as its ``volume_host`` is opened over the
network with QEMU's ``nbd`` block driver and TLS-PSK; the volume node's own guests open the file. ``localize``
decides, per node, every time a command line or a hotplug is made, so a guest that moves decides again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
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


def _spare(volume: dict[str, Any]) -> str:
    """The other name a protocol node may have: growing an NBD volume opens the export again beside the old
    connection and swaps the two, so the node's name alternates between this and ``_nodes``'s."""
    return "vg" + _nodes(volume)[0][2:]


# How long QEMU keeps trying to reach an export when it starts (the volume node may still be adding it), and how
# long a hotplug does.
NBD_OPEN_TIMEOUT = 60
NBD_HOTPLUG_TIMEOUT = 60.0
# How long a guest's I/O waits for a lost NBD connection to come back (the export daemon restarting).
NBD_RECONNECT_DELAY = 30


def localize(volume: dict[str, Any], host: str | None, instance_dir: Path) -> dict[str, Any]:
    """The volume as this node opens it: ``transport`` ``nbd`` (its TLS key in its own key file under
    ``instance_dir``, for QEMU's ``tls-creds-psk`` to read) when it has an export and lives on another node, else
    ``file``. A volume from ``launch.json`` has no key (``without_keys``): the key file it was saved to serves."""
    nbd = volume.get("nbd")
    if not nbd or (host and volume.get("volume_host") == host and volume.get("path")):
        return {**volume, "transport": "file"}
    keys = _key_dir(instance_dir, volume)
    if nbd.get("psk_key"):
        save_key(instance_dir, volume)
    elif not (keys / "keys.psk").exists():
        raise DriverError(f"volume {volume['volume_id']}: no NBD key in the document and no key file "
                          f"{keys / 'keys.psk'}", permanent=True)
    return {**volume, "transport": "nbd", "psk_dir": str(keys)}


def _key_dir(instance_dir: Path, volume: dict[str, Any]) -> Path:
    return instance_dir / f"nbd-{_nodes(volume)[0]}"


def save_key(instance_dir: Path, volume: dict[str, Any]) -> None:
    """Write the volume's TLS-PSK identity and key to its key file (mode 0600, in a 0700 directory), the only
    place on the node that keeps it."""
    nbd = volume["nbd"]
    keys = _key_dir(instance_dir, volume)
    keys.mkdir(mode=0o700, exist_ok=True)
    line = f"{nbd['psk_identity']}:{nbd['psk_key']}\n"
    with contextlib.suppress(FileNotFoundError):
        if (keys / "keys.psk").read_text() == line:
            return
    tmp = keys / "keys.psk.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(line)
    os.replace(tmp, keys / "keys.psk")


def without_keys(spec: dict[str, Any], instance_dir: Path) -> dict[str, Any]:
    """``spec`` as ``launch.json`` keeps it: every NBD key moved to its key file and left out, so the launch
    record (read by whoever may read the instance directory's files) holds no secret."""
    volumes = []
    for v in spec.get("volumes") or []:
        nbd = v.get("nbd")
        if isinstance(nbd, dict) and nbd.get("psk_key"):
            save_key(instance_dir, v)
            v = {**v, "nbd": {k: x for k, x in nbd.items() if k != "psk_key"}}
        volumes.append(v)
    return {**spec, "volumes": volumes} if "volumes" in spec else spec


def forget_keys(instance_dir: Path, volume_id: str, serial: str) -> None:
    """Remove a detached volume's key directory."""
    keys = _key_dir(instance_dir, {"volume_id": volume_id, "serial": serial})
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(keys)


def _tls_id(v: dict[str, Any]) -> str:
    return f"tls-{_nodes(v)[0]}"


def _tls_object(v: dict[str, Any]) -> dict[str, Any]:
    return {"qom-type": "tls-creds-psk", "id": _tls_id(v), "endpoint": "client", "dir": str(v["psk_dir"]),
            "username": str(v["nbd"]["psk_identity"])}


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
    return [*_object_argv(volume), "-blockdev", json.dumps(_protocol_node(volume, proto, NBD_OPEN_TIMEOUT)),
            "-blockdev", json.dumps(_format_node(volume, proto, fmt)), "-device", json.dumps({**device, "bootindex": 1})]


def _object_argv(v: dict[str, Any]) -> list[str]:
    return ["-object", json.dumps(_tls_object(v))] if v.get("transport") == "nbd" else []


def argv(volumes: list[dict[str, Any]]) -> list[str]:
    """The command-line devices of volumes that already have slots (``assign_slots``), in attach order."""
    args: list[str] = []
    for v in volumes:
        proto, fmt = _nodes(v)
        args += [*_object_argv(v), "-blockdev", json.dumps(_protocol_node(v, proto, NBD_OPEN_TIMEOUT)),
                 "-blockdev", json.dumps(_format_node(v, proto, fmt)), "-device", json.dumps(_device(v, fmt))]
    return args


def _protocol_node(v: dict[str, Any], name: str, open_timeout: int = 0) -> dict[str, Any]:
    if v.get("transport") == "nbd":
        nbd = v["nbd"]
        node: dict[str, Any] = {
            "driver": "nbd", "node-name": name, "export": str(nbd["export"]), "tls-creds": _tls_id(v),
            "server": {"type": "inet", "host": str(nbd["host"]), "port": str(nbd["port"])},
            "reconnect-delay": NBD_RECONNECT_DELAY, "read-only": bool(v.get("read_only"))}
        if open_timeout:
            node["open-timeout"] = open_timeout
        return node
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
    await _drop_nodes(qmp, fmt, proto, _spare(volume))
    await _drop_tls(qmp, volume)
    if volume.get("transport") == "nbd":
        await qmp("object-add", _tls_object(volume))
        await _add_nbd(qmp, volume, proto)
    else:
        await qmp("blockdev-add", _protocol_node(volume, proto))
    try:
        await qmp("blockdev-add", _format_node(volume, proto, fmt))
        await qmp("device_add", _device(volume, fmt))
    except DriverError:
        await _drop_nodes(qmp, fmt, proto)
        await _drop_tls(qmp, volume)
        raise


async def _add_nbd(qmp: Qmp, volume: dict[str, Any], proto: str) -> None:
    """Open the export, asking again while the volume node is still adding it (the instance document and the
    volume document go out at the same time, to different agents). One short try per call: QMP must not block."""
    deadline = time.monotonic() + NBD_HOTPLUG_TIMEOUT
    while True:
        try:
            await qmp("blockdev-add", _protocol_node(volume, proto))
            return
        except DriverError:
            if time.monotonic() > deadline:
                await _drop_tls(qmp, volume)
                raise
            await asyncio.sleep(0.5)


async def _drop_tls(qmp: Qmp, volume: dict[str, Any]) -> None:
    objects = {o.get("name") for o in await qmp("qom-list", {"path": "/objects"}) or []}
    if _tls_id(volume) in objects:
        await qmp("object-del", {"id": _tls_id(volume)})


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
    await _drop_nodes(qmp, fmt, proto, _spare({"volume_id": volume_id, "serial": serial}))
    await _drop_tls(qmp, {"volume_id": volume_id, "serial": serial})


async def extend(qmp: Qmp, volume: dict[str, Any], size: int) -> bool:
    """Grow the guest's disk of ``volume`` (localized) to ``size`` bytes; False when it has that size already.

    A file is resized in place (``block_resize`` on the format node: QEMU reads the grown file's length and the
    virtio disk announces its new capacity). An NBD client learns an export's size only when it connects, so
    the export is opened again under the spare node name, the format node is switched to it
    (``blockdev-reopen``), resized, and the old connection closed: the guest's I/O never stops.
    """
    proto, fmt = _nodes(volume)
    nodes = {n.get("node-name"): n for n in await qmp("query-named-block-nodes", {"flat": True}) or []}
    if fmt not in nodes:
        raise DriverError(f"volume {volume['volume_id']} has no disk in the guest")
    if int((nodes[fmt].get("image") or {}).get("virtual-size") or 0) >= size:
        return False
    if volume.get("read_only"):
        raise DriverError(f"volume {volume['volume_id']} is attached read-only: its disk cannot grow in use",
                          permanent=True)
    if volume.get("transport") == "nbd":
        old = proto if proto in nodes else _spare(volume)
        new = _spare(volume) if old == proto else proto
        if new in nodes:  # a swap cut short: that node is not in use
            await qmp("blockdev-del", {"node-name": new})
        await qmp("blockdev-add", _protocol_node(volume, new))
        served = {n.get("node-name"): n for n in await qmp("query-named-block-nodes", {"flat": True}) or []}
        if int((served[new].get("image") or {}).get("virtual-size") or 0) < size:
            await qmp("blockdev-del", {"node-name": new})
            raise DriverError(f"the NBD export of volume {volume['volume_id']} does not have {size} bytes yet")
        await qmp("blockdev-reopen", {"options": [_format_node(volume, new, fmt)]})
        await qmp("block_resize", {"node-name": fmt, "size": size})
        await qmp("blockdev-del", {"node-name": old})
    else:
        # QEMU would grow a short file itself: only a file the volume node has grown already is resized.
        try:
            length = os.stat(str(volume["path"])).st_size
        except OSError as exc:
            raise DriverError(f"volume {volume['volume_id']}: {exc}") from exc
        if length < size:
            raise DriverError(f"the file of volume {volume['volume_id']} does not have {size} bytes yet")
        await qmp("block_resize", {"node-name": fmt, "size": size})
    return True


async def _drop_nodes(qmp: Qmp, *names: str) -> None:
    existing = {n.get("node-name") for n in await qmp("query-named-block-nodes", {"flat": True}) or []}
    for name in names:
        if name in existing:
            await qmp("blockdev-del", {"node-name": name})
