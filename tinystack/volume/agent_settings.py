"""The volume agent's settings, read from the ``[volume]`` section with defaults that suit one machine."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tinystack.config import Config

# The keys ``[volume]`` accepts for the node agent, and their defaults. The volume API reads its own keys
# (tinystack/volume/settings.py) from the same section and refuses a key neither knows.
DEFAULTS: dict[str, str] = {
    "driver": "file",  # file | fake (fake: tests and scale simulations only)
    "volumes_path": "",  # default <state_dir>/volumes; compute nodes open the files there
    "heartbeat_interval": "10",
    "resync_interval": "30",
    "image_timeout": "600",  # seconds a download and conversion of an image may take
    "source_timeout": "120",  # seconds to wait for a source volume or snapshot to appear before giving up
    # Cinder's enabled_backends: each a directory of its own (the first is volumes_path, the others a directory
    # of that name inside it) and its own volume_backend_name and pool. Two by default, so volumes can migrate.
    "enabled_backends": "file,file2",
    "backup_chunk_size": "52428800",  # bytes of volume per backup object (Cinder's backup_swift_object_size)
    # Volumes reach compute nodes on other machines over NBD (docs/deployment.md): the address the volume node's
    # NBD server listens on and compute nodes connect to. Empty: no exports, one machine only. The volume API
    # reads it too (it hands the address out in connection info), so it belongs in the shared file.
    "nbd_host": "",
    "nbd_port": "10809",
    "nbd_netns": "",  # the namespace nbd_host lives in, when not the host's own (several nodes on one machine)
}
_BACKEND = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")


def backend_names(section: Mapping[str, str]) -> list[str]:
    """The host's backends, the default first: ``enabled_backends``, or the one ``backend_name`` when only that
    (the older single-backend setting) is given."""
    if "enabled_backends" not in section and section.get("backend_name"):
        names = [section["backend_name"].strip()]
    else:
        names = [n.strip() for n in section.get("enabled_backends", DEFAULTS["enabled_backends"]).split(",")
                 if n.strip()]
    if not names:
        raise ValueError("[volume] enabled_backends names no backend")
    for name in names:
        if not _BACKEND.match(name):
            raise ValueError(f"[volume] enabled_backends: {name!r} is not a usable backend name")
    if len(set(names)) != len(names):
        raise ValueError("[volume] enabled_backends names a backend twice")
    return names


@dataclass(frozen=True)
class AgentSettings:
    host: str
    driver: str
    volumes_path: Path
    state_dir: Path
    heartbeat_interval: float
    resync_interval: float
    image_timeout: float
    source_timeout: float
    backends: dict[str, Path]  # backend name -> its directory, the default first
    backup_chunk_size: int = 52428800
    nbd_host: str = ""
    nbd_port: int = 10809
    nbd_netns: str = ""


def load(config: Config) -> AgentSettings:
    """Settings from ``config``; keys missing from ``[volume]`` take their defaults (the API's keys are its own)."""
    section = config.values.get("volume", {})
    raw = {**DEFAULTS, **{k: v for k, v in section.items() if k in DEFAULTS}}
    driver = raw["driver"].strip().lower()
    if driver not in ("file", "fake"):
        raise ValueError(f"[volume] driver must be 'file' or 'fake', not {driver!r}")
    volumes_path = Path(raw["volumes_path"]) if raw["volumes_path"] else config.state_dir / "volumes"
    names = backend_names(section)
    return AgentSettings(
        host=config.host,
        driver=driver,
        volumes_path=volumes_path,
        state_dir=config.state_dir,
        heartbeat_interval=_seconds(raw, "heartbeat_interval"),
        resync_interval=_seconds(raw, "resync_interval"),
        image_timeout=_seconds(raw, "image_timeout"),
        source_timeout=_seconds(raw, "source_timeout"),
        backends={name: volumes_path if i == 0 else volumes_path / name for i, name in enumerate(names)},
        backup_chunk_size=_chunk_size(raw["backup_chunk_size"]),
        nbd_host=raw["nbd_host"].strip(),
        nbd_port=nbd_port(raw["nbd_port"]),
        nbd_netns=raw["nbd_netns"].strip(),
    )


def _chunk_size(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"[volume] backup_chunk_size must be a number of bytes, not {raw!r}") from None
    if value < 1 << 20 or value % (1 << 20):
        raise ValueError("[volume] backup_chunk_size must be a multiple of 1048576 bytes")
    return value


def nbd_port(raw: str) -> int:
    if not raw.strip().isdigit() or not 0 < int(raw) < 65536:
        raise ValueError(f"[volume] nbd_port must be a TCP port, not {raw!r}")
    return int(raw)


def _seconds(raw: dict[str, str], key: str) -> float:
    try:
        value = float(raw[key])
    except ValueError:
        raise ValueError(f"[volume] {key} must be a number of seconds, not {raw[key]!r}") from None
    if value <= 0:
        raise ValueError(f"[volume] {key} must be more than 0")
    return value
