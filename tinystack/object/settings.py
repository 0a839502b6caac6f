"""The object storage settings, read from ``[object]``, and the per-cloud hash path prefix/suffix generated once."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from tinystack.config import Config
from tinystack.object.common import status_error
from tinystack.object.policies import Policy, parse

DEFAULTS: dict[str, str] = {
    "storage_node": "true",  # `tinystack up` runs this machine's storage node beside the proxy
    "devices": "",  # where the devices live; default <state_dir>/object/devs
    "device_count": "3",  # devices this storage node makes (one zone each) when it builds the first rings
    "rings_dir": "",  # default <state_dir>/object/rings
    "part_power": "10",
    "replicas": "3",
    # Storage policies, index order: name[:replicas] (policy 0 is the default; no count: `replicas`).
    "policies": "Policy-0,reduced-redundancy:2",
    "min_part_hours": "1",
    "storage_ip": "",  # the address the storage servers listen on and announce in the rings; default [DEFAULT] bind
    # Backend ports; 0 picks free ports at the first start (tests), which the rings then keep.
    "account_port": "6202",
    "container_port": "6201",
    "object_port": "6200",
    "hash_path_prefix": "",
    "hash_path_suffix": "",
    "node_timeout": "10",
    "conn_timeout": "0.5",
    "updater_interval": "5",
    # Seconds between passes of the storage node's background daemons (0 turns one off).
    "replicator_interval": "30",
    "auditor_interval": "300",
    "expirer_interval": "60",
    "account_update_delay": "0.2",  # a container's counts reach its account this long after a change
    "info_cache_seconds": "5",  # how long the proxy trusts what it learnt about an account or container
    "max_file_size": str(5 * 1024**3 + 2),
    "container_listing_limit": "10000",
    "account_listing_limit": "10000",
    "fsync": "true",
    "cors_allow_origin": "",  # comma-separated origins allowed on every container, besides X-Container-Meta-Access-Control
    # Seconds a tombstone and a deleted database row are kept (Swift's reclaim_age): longer than any replica may
    # stay away, or what it still holds comes back when it returns.
    "reclaim_age": str(7 * 86400),
    "auditor_files_per_second": "20",  # objects the auditor reads a second (Swift's default); 0: no limit
    "auditor_bytes_per_second": "10000000",  # bytes the auditor reads a second (Swift's default); 0: no limit
}


@dataclass(frozen=True)
class ObjectSettings:
    storage_node: bool
    devices: Path
    device_count: int
    rings_dir: Path
    part_power: int
    replicas: int
    policies: tuple[Policy, ...]
    min_part_hours: int
    storage_ip: str
    account_port: int
    container_port: int
    object_port: int
    hash_path_prefix: str
    hash_path_suffix: str
    node_timeout: float
    conn_timeout: float
    updater_interval: float
    replicator_interval: float
    auditor_interval: float
    expirer_interval: float
    account_update_delay: float
    info_cache_seconds: float
    max_file_size: int
    container_listing_limit: int
    account_listing_limit: int
    fsync: bool
    cors_allow_origin: tuple[str, ...]
    reclaim_age: float
    auditor_files_per_second: float
    auditor_bytes_per_second: float

    def policy(self, index: int) -> Policy:
        """The policy of that index; 503 when this cloud has no such policy (a container made under a policy
        since removed from the settings: its objects are in a ring the proxy no longer knows)."""
        found = next((p for p in self.policies if p.index == index), None)
        if found is None:
            raise status_error(503, f"Storage policy {index} is not configured here.")
        return found


def _hash_secrets(config: Config, raw: dict[str, str]) -> tuple[str, str]:
    """The configured prefix/suffix, else the pair generated at the first start and kept in the state dir: every
    path's partition depends on them, so they may never change for a cloud."""
    if raw["hash_path_prefix"] or raw["hash_path_suffix"]:
        return raw["hash_path_prefix"], raw["hash_path_suffix"]
    path = config.state_dir / "object" / "hash_path.json"
    if path.exists():
        stored = json.loads(path.read_text())
        return str(stored["prefix"]), str(stored["suffix"])
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix, suffix = secrets.token_hex(8), secrets.token_hex(8)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"prefix": prefix, "suffix": suffix}))
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return prefix, suffix


def load(config: Config) -> ObjectSettings:
    raw = {**DEFAULTS, **config.values.get("object", {})}
    unknown = set(raw) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown setting(s) in [object]: {', '.join(sorted(unknown))}")
    base = config.state_dir / "object"
    prefix, suffix = _hash_secrets(config, raw)
    bind = config.bind if config.bind not in ("0.0.0.0", "::") else "127.0.0.1"
    return ObjectSettings(
        storage_node=raw["storage_node"].strip().lower() in ("1", "true", "yes", "on"),
        devices=Path(raw["devices"]) if raw["devices"] else base / "devs",
        device_count=int(raw["device_count"]),
        rings_dir=Path(raw["rings_dir"]) if raw["rings_dir"] else base / "rings",
        part_power=int(raw["part_power"]),
        replicas=int(raw["replicas"]),
        policies=parse(raw["policies"], int(raw["replicas"])),
        min_part_hours=int(raw["min_part_hours"]),
        storage_ip=raw["storage_ip"] or bind,
        account_port=int(raw["account_port"]),
        container_port=int(raw["container_port"]),
        object_port=int(raw["object_port"]),
        hash_path_prefix=prefix,
        hash_path_suffix=suffix,
        node_timeout=float(raw["node_timeout"]),
        conn_timeout=float(raw["conn_timeout"]),
        updater_interval=float(raw["updater_interval"]),
        replicator_interval=float(raw["replicator_interval"]),
        auditor_interval=float(raw["auditor_interval"]),
        expirer_interval=float(raw["expirer_interval"]),
        account_update_delay=float(raw["account_update_delay"]),
        info_cache_seconds=float(raw["info_cache_seconds"]),
        max_file_size=int(raw["max_file_size"]),
        container_listing_limit=int(raw["container_listing_limit"]),
        account_listing_limit=int(raw["account_listing_limit"]),
        fsync=raw["fsync"].strip().lower() in ("1", "true", "yes", "on"),
        cors_allow_origin=tuple(o.strip() for o in raw["cors_allow_origin"].split(",") if o.strip()),
        reclaim_age=_positive(raw, "reclaim_age"),
        auditor_files_per_second=max(0.0, float(raw["auditor_files_per_second"])),
        auditor_bytes_per_second=max(0.0, float(raw["auditor_bytes_per_second"])),
    )


def _positive(raw: dict[str, str], name: str) -> float:
    try:
        value = float(raw[name])
    except ValueError:
        raise ValueError(f"[object] {name} must be a number of seconds, not {raw[name]!r}") from None
    if not value > 0:
        raise ValueError(f"[object] {name} must be above 0")
    return value
