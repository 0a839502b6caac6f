"""A ring's storage device, and the two textual forms operators type: the `add` value and the search value."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from typing import Any


class DeviceSpecError(ValueError):
    """A device description that cannot be understood."""


@dataclass(frozen=True)
class Device:
    id: int
    region: int
    zone: int
    ip: str
    port: int
    device: str
    weight: float
    meta: str = ""
    replication_ip: str = ""
    replication_port: int = 0

    def __post_init__(self) -> None:
        # Replication defaults to the serving address, as the contract promises.
        if not self.replication_ip:
            object.__setattr__(self, "replication_ip", self.ip)
        if not self.replication_port:
            object.__setattr__(self, "replication_port", self.port)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Device:
        return cls(id=int(d["id"]), region=int(d.get("region", 1)), zone=int(d.get("zone", 1)), ip=str(d["ip"]),
                   port=int(d["port"]), device=str(d["device"]), weight=float(d.get("weight", 0.0)),
                   meta=str(d.get("meta", "")), replication_ip=str(d.get("replication_ip") or ""),
                   replication_port=int(d.get("replication_port") or 0))

    def with_weight(self, weight: float) -> Device:
        return replace(self, weight=float(weight))

    def describe(self) -> str:
        return f"d{self.id}r{self.region}z{self.zone}-{self.ip}:{self.port}/{self.device}_\"{self.meta}\""


_IP = r"(?:\[[0-9A-Fa-f:.]+\]|[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[A-Za-z0-9][A-Za-z0-9.-]*)"

# r1z1-127.0.0.1:6200R127.0.0.1:6300/sdb1_meta (region optional: z1-...)
_ADD = re.compile(
    rf"^(?:r(?P<region>\d+))?z(?P<zone>\d+)-(?P<ip>{_IP}):(?P<port>\d+)"
    rf"(?:R(?P<rip>{_IP}):(?P<rport>\d+))?/(?P<device>[^_/\s]+)(?:_(?P<meta>.*))?$")


def _strip_brackets(ip: str) -> str:
    return ip[1:-1] if ip.startswith("[") and ip.endswith("]") else ip


def parse_add_value(value: str, weight: float | str) -> dict[str, Any]:
    """`r1z1-127.0.0.1:6200/sdb1` plus a weight -> the fields of a new device (no id yet)."""
    m = _ADD.match(value.strip())
    if not m:
        raise DeviceSpecError(f"invalid device {value!r}: expected r<region>z<zone>-<ip>:<port>/<device>[_<meta>]")
    try:
        w = float(weight)
    except (TypeError, ValueError):
        raise DeviceSpecError(f"invalid weight {weight!r}") from None
    if w < 0 or w != w:
        raise DeviceSpecError(f"invalid weight {weight!r}: must be a number >= 0")
    port = int(m["port"])
    if not 0 < port < 65536:
        raise DeviceSpecError(f"invalid port {port}")
    out: dict[str, Any] = {"region": int(m["region"] or 1), "zone": int(m["zone"]), "ip": _strip_brackets(m["ip"]),
                           "port": port, "device": m["device"], "weight": w, "meta": m["meta"] or ""}
    if m["rip"]:
        out["replication_ip"] = _strip_brackets(m["rip"])
        out["replication_port"] = int(m["rport"])
    return out


# d1r1z1-127.0.0.1:6200R127.0.0.1:6300/sdb1_meta, every part optional, in this order.
_SEARCH = re.compile(
    rf"^(?:d(?P<id>\d+))?(?:r(?P<region>\d+))?(?:z(?P<zone>\d+))?(?:-(?P<ip>{_IP}))?(?::(?P<port>\d+))?"
    rf"(?:R(?P<rip>{_IP}))?(?::(?P<rport>\d+))?(?:/(?P<device>[^_/\s]+))?(?:_(?P<meta>.*))?$")


def parse_search_value(value: str) -> dict[str, Any]:
    """A search value (`d3`, `r1z2`, `-10.0.0.1`, `/sdb1`, `z1-10.0.0.1:6200/sdb1`) -> the fields it fixes."""
    if value.strip() == "":
        raise DeviceSpecError("empty search value")
    m = _SEARCH.match(value.strip())
    if not m:
        raise DeviceSpecError(f"invalid search value {value!r}")
    out: dict[str, Any] = {}
    for key in ("id", "region", "zone", "port", "rport"):
        if m[key] is not None:
            out[key] = int(m[key])
    for key in ("ip", "rip", "device", "meta"):
        if m[key] is not None:
            out[key] = _strip_brackets(m[key]) if key in ("ip", "rip") else m[key]
    if "rport" in out:
        out["replication_port"] = out.pop("rport")
    if "rip" in out:
        out["replication_ip"] = out.pop("rip")
    return out


def matches(dev: Device, criteria: dict[str, Any]) -> bool:
    for key, want in criteria.items():
        have = getattr(dev, key)
        if key == "meta":
            if want not in have:
                return False
        elif have != want:
            return False
    return True
