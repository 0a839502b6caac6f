"""Which rings a storage node may build for itself at start, and when it must refuse to start instead.

Rings are shipped, not grown: with several storage machines the operator builds every ring once with
``tinystack ring`` and copies the ``.ring`` files to each machine (docs/object-rings.md, "Shipping rings"). A
node that built a missing ring from its own devices would place that ring's data where no other node looks, so a
node builds missing rings only when it is evidently alone: it was started to be (``tinystack up``) and every ring
already there holds only its own devices. Anything else is a refusal that names the missing files."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from tinystack.object.ring.fileformat import RingFileError
from tinystack.object.ring.ring import Ring


class MissingRings(Exception):
    """A storage node cannot start: rings it needs are not in its rings dir and it may not build them."""


def ring_file(rings_dir: Path, name: str) -> Path:
    return rings_dir / f"{name}.ring"


def _other_nodes(path: Path, own: tuple[str, int]) -> set[str]:
    """``ip:port`` of the ring's devices that are not this node's (``own``: its address and port for that ring)."""
    try:
        ring = Ring.load(path)
    except (OSError, RingFileError) as exc:
        raise MissingRings(f"{path}: cannot read it ({exc})") from None
    return {f"{d.ip}:{d.port}" for d in ring.devs if d is not None and (d.ip, int(d.port)) != own}


def rings_to_build(rings_dir: Path, own: Mapping[str, tuple[str, int]], may_build: bool) -> list[str]:
    """The rings of ``own`` (ring name -> this node's address and port for it) this node builds from its own
    devices: those missing, when ``may_build`` and no ring already there names another node. Raises
    ``MissingRings`` with what to do when a ring is missing and the node may not build it."""
    missing = [name for name in own if not ring_file(rings_dir, name).exists()]
    if not missing:
        return []
    files = ", ".join(ring_file(rings_dir, name).name for name in missing)
    how = (f"Build the rings once with `tinystack ring <name>.builder create/add/rebalance/write_ring` and copy "
           f"every .ring file to {rings_dir} on each storage and proxy machine (docs/object-rings.md).")
    if not may_build:
        raise MissingRings(f"missing ring(s) in {rings_dir}: {files}. A storage node started alone does not build "
                           f"rings from its own devices (they would not match the other nodes'). {how}")
    others: set[str] = set()
    for name, address in own.items():
        if name not in missing:
            others |= _other_nodes(ring_file(rings_dir, name), address)
    if others:
        listed = ", ".join(sorted(others)[:5]) + (" ..." if len(others) > 5 else "")
        raise MissingRings(f"missing ring(s) in {rings_dir}: {files}. The other rings there hold other storage "
                           f"nodes' devices ({listed}), so a ring built from this node's devices alone would place "
                           f"data where they never look. {how}")
    return missing
