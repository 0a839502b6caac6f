"""The compute agent's records: what it last made true for each instance, one JSON file each, so that a
restarted agent picks up where it was."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tinystack.compute.drivers.base import Spec


@dataclass
class Record:
    """What this agent last made true for one instance; kept on disk so a restarted agent neither redoes a
    reboot or snapshot nor restarts a guest that shut itself down."""

    image_id: str | None = None
    kernel_id: str | None = None
    ramdisk_id: str | None = None
    flavor: dict[str, Any] = field(default_factory=dict)
    rescue: bool = False
    reboot_seq: int = 0
    snapshot_seq: int = 0
    rebuild_seq: int = 0
    power: str | None = None  # the desired power last realised
    realized_gen: int = 0
    guest_stopped_gen: int | None = None  # the guest powered itself off while this generation was realised
    host_stopped: bool = False  # stopped by the agent's cleanup (tinystack up exiting): start again
    failed_gen: int | None = None
    fault: dict[str, Any] | None = None
    volumes: list[str] = field(default_factory=list)  # the volumes the guest has (or boots with)


class Records:
    """One small JSON file per instance, written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, instance_id: str) -> Path:
        return self.root / f"{instance_id}.json"

    def load(self, instance_id: str) -> Record | None:
        try:
            data = json.loads(self._path(instance_id).read_text())
        except (FileNotFoundError, ValueError):
            return None
        known = Record.__dataclass_fields__
        return Record(**{k: v for k, v in data.items() if k in known})

    def save(self, instance_id: str, record: Record) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self._path(instance_id).with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(record)))
        os.replace(tmp, self._path(instance_id))

    def delete(self, instance_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(instance_id).unlink()

    def all(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return [p.stem for p in self.root.glob("*.json")]


def rebuild_seq(spec: Spec) -> int:
    return int((spec.get("rebuild") or {}).get("seq") or 0)


def fresh_record(spec: Spec) -> Record:
    """The record of a guest just built (or just moved in) for ``spec``: nothing of it realised yet."""
    image = spec.get("image") or {}
    return Record(image_id=image.get("id"), kernel_id=spec.get("kernel_image_id"),
                  ramdisk_id=spec.get("ramdisk_image_id"), flavor=flavor_key(spec.get("flavor") or {}),
                  reboot_seq=int((spec.get("reboot") or {}).get("seq") or 0),
                  snapshot_seq=int((spec.get("snapshot") or {}).get("seq") or 0), rebuild_seq=rebuild_seq(spec))


def flavor_key(flavor: dict[str, Any]) -> dict[str, Any]:
    # Only what changes the guest's hardware; extra_specs are scheduling hints here.
    return {k: flavor.get(k, 0) or 0 for k in ("vcpus", "memory_mb", "root_gb", "ephemeral_gb", "swap_mb")}


def guest_states(host: str, records: Records) -> list[tuple[tuple[str, str], float]]:
    """The guests of ``host`` by state, for the metrics: ``error``, the power last realised, or ``building``."""
    counts: dict[str, int] = {}
    for instance_id in records.all():
        record = records.load(instance_id)
        if record is None:
            continue
        state = "error" if record.fault else (record.power or "building")
        counts[state] = counts.get(state, 0) + 1
    return [((host, state), float(n)) for state, n in sorted(counts.items())]
