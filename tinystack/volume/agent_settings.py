"""The volume agent's settings, read from the ``[volume]`` section with defaults that suit one machine."""

from __future__ import annotations

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
    # Volumes reach compute nodes on other machines over NBD (docs/deployment.md): the address the volume node's
    # NBD server listens on and compute nodes connect to. Empty: no exports, one machine only. The volume API
    # reads it too (it hands the address out in connection info), so it belongs in the shared file.
    "nbd_host": "",
    "nbd_port": "10809",
    "nbd_netns": "",  # the namespace nbd_host lives in, when not the host's own (several nodes on one machine)
}


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
    return AgentSettings(
        host=config.host,
        driver=driver,
        volumes_path=Path(raw["volumes_path"]) if raw["volumes_path"] else config.state_dir / "volumes",
        state_dir=config.state_dir,
        heartbeat_interval=_seconds(raw, "heartbeat_interval"),
        resync_interval=_seconds(raw, "resync_interval"),
        image_timeout=_seconds(raw, "image_timeout"),
        source_timeout=_seconds(raw, "source_timeout"),
        nbd_host=raw["nbd_host"].strip(),
        nbd_port=nbd_port(raw["nbd_port"]),
        nbd_netns=raw["nbd_netns"].strip(),
    )


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
