"""The compute agent's settings, read from the ``[compute]`` section with defaults that suit one machine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tinystack.compute import settings as api_settings
from tinystack.config import Config

MiB = 1024**2

# The keys ``[compute]`` accepts for the node agent, and their defaults. The compute API reads its own keys
# (tinystack/compute/settings.py) from the same section; a key neither knows is refused.
DEFAULTS: dict[str, str] = {
    "driver": "qemu",  # qemu | fake (fake: tests and scale simulations only)
    "instances_path": "",  # default <state_dir>/instances
    "image_cache_dir": "",  # default <instances_path>/_base
    "image_cache_max_age": "86400",  # seconds an unused base image is kept
    "console_log_max_bytes": str(MiB),
    "power_off_timeout": "10",  # seconds a guest gets to shut down before a hard stop
    "kvm": "auto",  # auto | on | off; auto boots a Linux kernel under KVM once to decide (drivers/qemu/accel.py)
    "qemu_binary": "qemu-system-x86_64",
    "node_netns": "",  # default tsnode-<host>; QEMU runs in it
    "tap_wait_timeout": "30",  # seconds to wait for the network agent's taps
    "heartbeat_interval": "10",
    "resync_interval": "30",
    # Where this node's QEMU listens for a guest coming in by live migration (Nova's [libvirt] option of the same
    # name); several nodes in one process get their underlay address (tinystack/nodes.py). Empty: this node
    # cannot be a live-migration destination.
    "live_migration_inbound_addr": "",
    "live_migration_timeout": "300",  # seconds a live migration may take before the source gives up
    "volume_detach_timeout": "30",  # seconds a running guest gets to release a volume being detached
    # How often the guest is asked (each time waiting volume_detach_timeout) before the detach is given up and
    # the volume goes back to in-use, as Nova's device_detach_attempts.
    "volume_detach_attempts": "3",
}


@dataclass(frozen=True)
class AgentSettings:
    driver: str
    instances_path: Path
    image_cache_dir: Path
    image_cache_max_age: float
    console_log_max_bytes: int
    power_off_timeout: float
    kvm: str
    node_netns: str
    tap_wait_timeout: float
    heartbeat_interval: float
    resync_interval: float
    live_migration_inbound_addr: str
    live_migration_timeout: float
    state_dir: Path
    host: str
    volume_detach_timeout: float = 30.0
    qemu_binary: str = "qemu-system-x86_64"
    volume_detach_attempts: int = 3


def load(config: Config) -> AgentSettings:
    """Settings from ``config``; keys missing from ``[compute]`` take their defaults."""
    section = config.values.get("compute", {})
    unknown = set(section) - set(DEFAULTS) - set(api_settings.DEFAULTS)
    if unknown:
        raise ValueError(f"unknown setting(s) in [compute]: {', '.join(sorted(unknown))}")
    raw = {**DEFAULTS, **{k: v for k, v in section.items() if k in DEFAULTS}}
    driver = raw["driver"].strip().lower()
    if driver not in ("qemu", "fake"):
        raise ValueError(f"[compute] driver must be 'qemu' or 'fake', not {driver!r}")
    kvm = raw["kvm"].strip().lower()
    if kvm not in ("auto", "on", "off"):
        raise ValueError(f"[compute] kvm must be auto, on or off, not {kvm!r}")
    instances = Path(raw["instances_path"]) if raw["instances_path"] else config.state_dir / "instances"
    host = config.host
    return AgentSettings(
        driver=driver,
        instances_path=instances,
        image_cache_dir=Path(raw["image_cache_dir"]) if raw["image_cache_dir"] else instances / "_base",
        image_cache_max_age=float(raw["image_cache_max_age"]),
        console_log_max_bytes=int(raw["console_log_max_bytes"]),
        power_off_timeout=float(raw["power_off_timeout"]),
        kvm=kvm,
        node_netns=raw["node_netns"] or f"tsnode-{host}",
        tap_wait_timeout=float(raw["tap_wait_timeout"]),
        heartbeat_interval=float(raw["heartbeat_interval"]),
        resync_interval=float(raw["resync_interval"]),
        live_migration_inbound_addr=raw["live_migration_inbound_addr"].strip(),
        live_migration_timeout=float(raw["live_migration_timeout"]),
        state_dir=config.state_dir,
        host=host,
        volume_detach_timeout=float(raw["volume_detach_timeout"]),
        qemu_binary=raw["qemu_binary"].strip() or DEFAULTS["qemu_binary"],
        volume_detach_attempts=max(1, int(raw["volume_detach_attempts"])),
    )
