"""The compute service's settings, read from the ``[compute]`` section, with Nova's defaults."""

from __future__ import annotations

from dataclasses import dataclass

from tinystack.config import Config

# Nova's default quotas (nova.conf [quota]); -1 means unlimited.
QUOTA_DEFAULTS: dict[str, int] = {
    "instances": 10, "cores": 20, "ram": 51200, "metadata_items": 128, "key_pairs": 100,
    "server_groups": 10, "server_group_members": 10, "injected_files": 5,
    "injected_file_content_bytes": 10240, "injected_file_path_bytes": 255,
}

DEFAULTS: dict[str, str] = {
    "cpu_allocation_ratio": "16.0",
    "ram_allocation_ratio": "1.5",
    "disk_allocation_ratio": "1.0",
    "service_down_time": "60",
    "default_availability_zone": "nova",
    "console_log_max_bytes": str(1024 * 1024),
    "max_limit": "1000",
    # Seconds a server may stay in BUILD from its creation before it goes to ERROR with a fault (Nova's
    # instance_build_timeout, whose default is 0 = never). An hour by default, so that no build a process lost track
    # of stays in BUILD for good; 0 turns it off.
    "build_timeout": "3600",
    # How long a build waits for a volume it made to become available (Nova: 60 retries, 3 s apart).
    "block_device_allocate_timeout": "180",
    # Seconds after which a build no process moved on (its API process died) is taken over by the conductor.
    "orphan_build_after": "300",
    **{f"quota_{k}": str(v) for k, v in QUOTA_DEFAULTS.items()},
}


@dataclass(frozen=True)
class ComputeSettings:
    cpu_allocation_ratio: float
    ram_allocation_ratio: float
    disk_allocation_ratio: float
    service_down_time: int
    default_availability_zone: str
    console_log_max_bytes: int
    max_limit: int
    build_timeout: int
    block_device_allocate_timeout: float
    orphan_build_after: float
    quotas: dict[str, int]


def load(config: Config) -> ComputeSettings:
    """Settings from ``config``'s ``[compute]`` section; missing keys take their defaults."""
    from tinystack.compute import agent_settings  # the node agent shares [compute]; imports us, so late

    section = config.values.get("compute", {})
    unknown = set(section) - set(DEFAULTS) - set(agent_settings.DEFAULTS)
    if unknown:
        raise ValueError(f"unknown setting(s) in [compute]: {', '.join(sorted(unknown))}")
    raw = {**DEFAULTS, **{k: v for k, v in section.items() if k in DEFAULTS}}
    return ComputeSettings(
        cpu_allocation_ratio=float(raw["cpu_allocation_ratio"]),
        ram_allocation_ratio=float(raw["ram_allocation_ratio"]),
        disk_allocation_ratio=float(raw["disk_allocation_ratio"]),
        service_down_time=int(raw["service_down_time"]),
        default_availability_zone=raw["default_availability_zone"],
        console_log_max_bytes=int(raw["console_log_max_bytes"]),
        max_limit=int(raw["max_limit"]),
        build_timeout=int(raw["build_timeout"]),
        block_device_allocate_timeout=float(raw["block_device_allocate_timeout"]),
        orphan_build_after=float(raw["orphan_build_after"]),
        quotas={k: int(raw[f"quota_{k}"]) for k in QUOTA_DEFAULTS},
    )
