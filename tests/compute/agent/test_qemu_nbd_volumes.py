"""How a node opens a volume with an NBD export (tinystack/compute/drivers/qemu/volumes.py): the volume node's own
guests open the file, every other node the export with TLS-PSK, on the command line (a boot, an incoming live
migration, a boot from volume) as in a hotplug; a detach removes the key it wrote."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from tinystack.compute.drivers.base import DriverError
from tinystack.compute.drivers.qemu import volumes as qvol

VOL = "0b7c5a6e-2f7d-4c39-9d5e-5d0c3e1f0a11"
NBD = {"host": "10.250.0.1", "port": 10809, "export": "S" * 32, "tls": "psk", "psk_identity": "att-x",
       "psk_key": "ab" * 32}


def volume(**extra: Any) -> dict[str, Any]:
    return {"volume_id": VOL, "serial": VOL[:20], "path": f"/srv/volumes/volume-{VOL}", "format": "raw",
            "read_only": False, "device": "/dev/vdb", "boot_index": None, "slot": 0x10, **extra}


def blockdevs(argv: list[str]) -> list[dict[str, Any]]:
    return [json.loads(argv[i + 1]) for i, a in enumerate(argv) if a == "-blockdev"]


def test_the_volume_node_opens_the_file(tmp_path: Path) -> None:
    v = qvol.localize(volume(nbd=NBD, volume_host="one"), "one", tmp_path)
    assert v["transport"] == "file" and not list(tmp_path.iterdir())
    proto = blockdevs(qvol.argv([v]))[0]
    assert proto["driver"] == "file" and proto["filename"] == v["path"]
    # A volume without an export (a one-machine cloud) is the file everywhere.
    assert qvol.localize(volume(), "two", tmp_path)["transport"] == "file"


def test_another_node_opens_the_export_with_its_key(tmp_path: Path) -> None:
    v = qvol.localize(volume(nbd=NBD, volume_host="one"), "two", tmp_path)
    assert v["transport"] == "nbd"
    keys = Path(v["psk_dir"]) / "keys.psk"
    assert keys.read_text() == f"att-x:{'ab' * 32}\n" and keys.stat().st_mode & 0o777 == 0o600
    argv = qvol.argv([v])
    tls = json.loads(argv[argv.index("-object") + 1])
    assert tls == {"qom-type": "tls-creds-psk", "id": tls["id"], "endpoint": "client", "dir": v["psk_dir"],
                   "username": "att-x"}
    proto, fmt = blockdevs(argv)
    assert argv.index("-object") < argv.index("-blockdev")  # the credentials exist before the disk needs them
    assert proto["driver"] == "nbd" and proto["tls-creds"] == tls["id"] and proto["export"] == NBD["export"]
    assert proto["server"] == {"type": "inet", "host": "10.250.0.1", "port": "10809"}
    assert proto["open-timeout"] == qvol.NBD_OPEN_TIMEOUT and proto["reconnect-delay"] == qvol.NBD_RECONNECT_DELAY
    assert fmt["driver"] == "raw" and fmt["file"] == proto["node-name"]
    # A boot from a volume on another node: the root disk over NBD the same way.
    root = qvol.root_argv(qvol.localize(volume(nbd=NBD, volume_host="one", boot_index=0), "two", tmp_path))
    assert "-object" in root and blockdevs(root)[0]["driver"] == "nbd"
    qvol.forget_keys(tmp_path, VOL, VOL[:20])
    assert not Path(v["psk_dir"]).exists()


def test_hotplug_adds_the_credentials_then_asks_until_the_export_is_there(tmp_path: Path) -> None:
    v = qvol.localize(volume(nbd=NBD, volume_host="one"), "two", tmp_path)
    calls: list[tuple[str, Any]] = []
    refusals = [2]

    async def qmp(command: str, args: dict[str, Any] | None) -> Any:
        calls.append((command, args))
        if command in ("qom-list", "query-named-block-nodes"):
            return []
        if command == "blockdev-add" and (args or {}).get("driver") == "nbd" and refusals[0]:
            refusals[0] -= 1
            raise DriverError("Requested export not available")
        return {}

    asyncio.run(qvol.attach(qmp, v))  # two refusals: about a second of asking again
    done = [c for c, _ in calls if c not in ("qom-list", "query-named-block-nodes")]
    assert done == ["object-add", "blockdev-add", "blockdev-add", "blockdev-add", "blockdev-add", "device_add"]


def test_the_launch_record_keeps_no_key_and_a_restart_still_opens_the_export(tmp_path: Path) -> None:
    """launch.json (what a restart, a resume or an adopting agent boots from) has no NBD key: the key lives in
    its own 0600 file, which the command line's credentials read."""
    from tinystack.compute.drivers.qemu.layout import InstanceDir

    idir = InstanceDir(tmp_path)
    idir.write_launch({"id": "i", "volumes": [volume(nbd=NBD, volume_host="one")]})
    saved = idir.launch_file.read_text()
    assert NBD["psk_key"] not in saved
    launch = idir.read_launch()
    assert launch is not None and "psk_key" not in launch["volumes"][0]["nbd"]
    assert launch["volumes"][0]["nbd"]["psk_identity"] == "att-x"
    # A boot from the record (no key in it) opens the export with the key file.
    v = qvol.localize(launch["volumes"][0], "two", tmp_path)
    keys = Path(v["psk_dir"]) / "keys.psk"
    assert keys.read_text() == f"att-x:{'ab' * 32}\n" and keys.stat().st_mode & 0o777 == 0o600
    assert Path(v["psk_dir"]).stat().st_mode & 0o777 == 0o700
    assert blockdevs(qvol.argv([v]))[0]["driver"] == "nbd"
    # Without the key file there is nothing to open it with: a permanent error, not a guess.
    qvol.forget_keys(tmp_path, VOL, VOL[:20])
    try:
        qvol.localize(launch["volumes"][0], "two", tmp_path)
    except DriverError as exc:
        assert exc.permanent and "key" in str(exc)
    else:
        raise AssertionError("a volume without its key was opened")
