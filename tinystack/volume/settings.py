"""The block storage API's settings, read from the ``[volume]`` section, with Cinder's defaults."""

from __future__ import annotations

from dataclasses import dataclass

from tinystack.config import Config

# Cinder's default quotas (cinder.conf [DEFAULT] quota_*); -1 means unlimited.
QUOTA_DEFAULTS: dict[str, int] = {
    "volumes": 10, "snapshots": 10, "gigabytes": 1000, "backups": 10, "backup_gigabytes": 1000,
    "groups": 10, "per_volume_gigabytes": -1,
}

DEFAULTS: dict[str, str] = {
    "default_availability_zone": "nova",
    # Since Train, Cinder always has a type; a volume created without one gets this.
    "default_volume_type": "__DEFAULT__",
    "max_limit": "1000",
    # The one storage node volumes live on; empty = [DEFAULT] host of the API process.
    "volume_host": "",
    # The single backend's name when ``enabled_backends`` (tinystack/volume/agent_settings.py) is not given.
    "backend_name": "file",
    # Cinder's default_group_type: the group type GET /group_types/default answers with; empty = none (404).
    "default_group_type": "",
    "service_down_time": "60",
    # How long a user message lives (Cinder's message_ttl, 30 days).
    "message_ttl": "2592000",
    **{f"quota_{k}": str(v) for k, v in QUOTA_DEFAULTS.items()},
}


@dataclass(frozen=True)
class VolumeSettings:
    default_availability_zone: str
    default_volume_type: str
    max_limit: int
    volume_host: str
    backend_name: str  # the default backend: the first of ``backends``
    backends: tuple[str, ...]
    service_down_time: int
    message_ttl: int
    default_group_type: str
    quotas: dict[str, int]


def load(config: Config) -> VolumeSettings:
    """Settings from ``config``'s ``[volume]`` section; the node agent reads its own keys from the same section."""
    from tinystack.volume import agent_settings

    section = config.values.get("volume", {})
    unknown = set(section) - set(DEFAULTS) - set(agent_settings.DEFAULTS)
    if unknown:
        raise ValueError(f"unknown setting(s) in [volume]: {', '.join(sorted(unknown))}")
    raw = {**DEFAULTS, **{k: v for k, v in section.items() if k in DEFAULTS}}
    backends = tuple(agent_settings.backend_names(section))
    return VolumeSettings(
        default_availability_zone=raw["default_availability_zone"],
        default_volume_type=raw["default_volume_type"],
        max_limit=int(raw["max_limit"]),
        volume_host=raw["volume_host"] or config.host,
        backend_name=backends[0],
        backends=backends,
        service_down_time=int(raw["service_down_time"]),
        message_ttl=int(raw["message_ttl"]),
        default_group_type=raw["default_group_type"],
        quotas={k: int(raw[f"quota_{k}"]) for k in QUOTA_DEFAULTS},
    )
