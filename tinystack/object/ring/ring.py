"""The read side of a ring: which devices hold a path's partition (primaries) and where to go next (handoffs)."""

from __future__ import annotations

import hashlib
import random
import struct
import sys
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tinystack.object.ring import fileformat
from tinystack.object.ring.device import Device

NONE_DEV = 0xFFFF  # an empty replica slot in replica2part2dev


def _text(value: str | bytes | None) -> bytes:
    if value is None:
        return b""
    return value if isinstance(value, bytes) else value.encode()


def hash_path(account: str | bytes, container: str | bytes | None = None, obj: str | bytes | None = None,
              prefix: str | bytes = b"", suffix: str | bytes = b"") -> bytes:
    """md5(prefix + "/a[/c[/o]]" + suffix): Swift's path hash, which places an object on the ring."""
    if obj is not None and container is None:
        raise ValueError("an object needs a container")
    parts = [_text(p) for p in (account, container, obj) if p is not None]
    path = b"/" + b"/".join(parts)
    return hashlib.md5(_text(prefix) + path + _text(suffix), usedforsecurity=False).digest()


class Ring:
    """A loaded ring: part power, (possibly fractional) replica count, devices and replica2part2dev."""

    def __init__(self, part_power: int, replicas: float, devs: Sequence[Device | None],
                 replica2part2dev: Sequence[array],  # type: ignore[type-arg]
                 prefix: str | bytes = b"", suffix: str | bytes = b"", version: int = 0) -> None:
        if not 0 <= part_power <= 32:
            raise ValueError(f"part power {part_power} out of range 0..32")
        self._part_power = part_power
        self._part_shift = 32 - part_power
        self._replicas = float(replicas)
        self._devs = list(devs)
        self._r2p2d = list(replica2part2dev)
        self.prefix = _text(prefix)
        self.suffix = _text(suffix)
        self.version = version
        self.path: Path | None = None
        self.mtime = 0.0

    @property
    def part_power(self) -> int:
        return self._part_power

    @property
    def partition_count(self) -> int:
        return 1 << self._part_power

    @property
    def replica_count(self) -> float:
        return self._replicas

    @property
    def devs(self) -> list[Device | None]:
        return list(self._devs)

    @property
    def replica2part2dev(self) -> list[array]:  # type: ignore[type-arg]
        return self._r2p2d

    def get_part(self, account: str | bytes, container: str | bytes | None = None,
                 obj: str | bytes | None = None) -> int:
        digest = hash_path(account, container, obj, self.prefix, self.suffix)
        return int(struct.unpack_from(">I", digest)[0] >> self._part_shift)

    def get_part_nodes(self, part: int) -> list[Device]:
        """The primaries of ``part``, each device once, in replica order."""
        if not 0 <= part < self.partition_count:
            raise IndexError(f"partition {part} out of range")
        seen: set[int] = set()
        out: list[Device] = []
        for row in self._r2p2d:
            if part < len(row):
                dev_id = row[part]
                dev = self._devs[dev_id] if dev_id != NONE_DEV and dev_id < len(self._devs) else None
                if dev is not None and dev_id not in seen:
                    seen.add(dev_id)
                    out.append(dev)
        return out

    def get_nodes(self, account: str | bytes, container: str | bytes | None = None,
                  obj: str | bytes | None = None) -> tuple[int, list[Device]]:
        part = self.get_part(account, container, obj)
        return part, self.get_part_nodes(part)

    def get_more_nodes(self, part: int) -> Iterator[Device]:
        """Handoffs for ``part``: devices in regions, then zones, then servers, then devices it does not use yet.

        Deterministic: the candidates are shuffled with a seed taken from the partition number, so every proxy and
        replicator agrees on the order.
        """
        primaries = self.get_part_nodes(part)
        regions = {d.region for d in primaries}
        zones = {(d.region, d.zone) for d in primaries}
        servers = {(d.ip, d.port) for d in primaries}
        used = {d.id for d in primaries}
        candidates = [d for d in self._devs if d is not None and d.weight > 0 and d.id not in used]
        seed = hashlib.md5(struct.pack(">IQ", self._part_power, part), usedforsecurity=False).digest()
        random.Random(seed).shuffle(candidates)
        for level in range(4):
            for dev in candidates:
                if dev.id in used:
                    continue
                fresh = (dev.region not in regions, (dev.region, dev.zone) not in zones,
                         (dev.ip, dev.port) not in servers, True)[level]
                if fresh:
                    used.add(dev.id)
                    regions.add(dev.region)
                    zones.add((dev.region, dev.zone))
                    servers.add((dev.ip, dev.port))
                    yield dev

    # -- file -------------------------------------------------------------------------------------------------------

    def to_header(self) -> dict[str, Any]:
        return {"part_power": self._part_power, "replicas": self._replicas, "version": self.version,
                "devs": [d.to_dict() if d is not None else None for d in self._devs],
                "hash_path_prefix": self.prefix.decode(errors="surrogateescape"),
                "hash_path_suffix": self.suffix.decode(errors="surrogateescape")}

    def save(self, path: str | Path) -> None:
        arrays = []
        for i, row in enumerate(self._r2p2d):
            le = array("H", row)
            if le.itemsize != 2:
                raise ValueError("array('H') is not 16-bit on this platform")
            if sys.byteorder == "big":
                le.byteswap()
            arrays.append((f"r{i}", "uint16", le.tobytes()))
        fileformat.write(path, "ring", self.to_header(), arrays)

    @classmethod
    def load(cls, path: str | Path, prefix: str | bytes | None = None, suffix: str | bytes | None = None) -> Ring:
        """Load a ring file; ``prefix``/``suffix`` (config's hash_path_prefix/suffix) override the file's own."""
        header, arrays = fileformat.read(path, "ring")
        try:
            part_power = int(header["part_power"])
            devs = [Device.from_dict(d) if d is not None else None for d in header["devs"]]
            rows = [fileformat.to_array(arrays[f"r{i}"], "uint16") for i in range(len(arrays))]
            ring = cls(part_power, float(header["replicas"]), devs, rows,
                       header.get("hash_path_prefix", "") if prefix is None else prefix,
                       header.get("hash_path_suffix", "") if suffix is None else suffix,
                       int(header.get("version", 0)))
        except (KeyError, TypeError, ValueError) as exc:
            raise fileformat.RingFileError(f"{path}: damaged ring ({exc})") from None
        for row in rows:
            if len(row) > ring.partition_count:
                raise fileformat.RingFileError(f"{path}: a replica row is longer than the partition count")
        # Plain sets, not numpy: a server reading rings then never loads numpy (some 13 MB) at all.
        known = {i for i, d in enumerate(devs) if d is not None} | {NONE_DEV}
        for row in rows:
            if not set(row) <= known:
                raise fileformat.RingFileError(f"{path}: partitions assigned to an unknown device")
        ring.path = Path(path)
        ring.mtime = ring.path.stat().st_mtime
        return ring

    def is_stale(self) -> bool:
        """Whether the file this ring came from has been replaced since (servers reload it then)."""
        if self.path is None:
            return False
        try:
            return self.path.stat().st_mtime != self.mtime
        except OSError:
            return False
