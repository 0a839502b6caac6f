"""Settings: an optional INI file with OpenStack-style sections, overridden by environment variables.

``TINYSTACK_<SECTION>_<KEY>`` overrides ``[section] key``; ``[DEFAULT]`` keys are ``TINYSTACK_<KEY>``.
"""

from __future__ import annotations

import configparser
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

# The services' own sections: each service checks its keys when it reads them (not listed in DEFAULTS). Not
# ``guest``: the test harness's TINYSTACK_GUEST_TEST_CACHE would read as a [guest] key and be refused.
SERVICE_SECTIONS = ("compute", "network", "volume", "image", "placement", "metadata", "console", "object",
                    "scheduler")

# Every setting with its default; the INI file and the environment may only set these.
DEFAULTS: dict[str, dict[str, str]] = {
    "DEFAULT": {
        "state_dir": "",
        "bind": "127.0.0.1",
        "public_host": "",
        "region": "RegionOne",
        "debug": "false",
        "max_request_body_size": str(1024 * 1024),
        "host": "",
        # ``tinystack api`` on SIGTERM: seconds its /healthcheck answers 503 while it goes on serving, so that
        # the load balancer takes it out of rotation before it stops (docs/deployment.md).
        "drain_seconds": "3",
    },
    "database": {"connection": ""},
    # ``exchange`` names the cloud on the broker: its topic exchange and the prefix of its shared queues, so
    # several clouds can share one RabbitMQ (every process of one cloud must use the same).
    "bus": {"transport_url": "", "exchange": "tinystack"},
    "ports": {
        "identity": "5000",
        "compute": "8774",
        "placement": "8778",
        "image": "9292",
        "network": "9696",
        "volume": "8776",
        "object": "8080",
        "metadata": "8775",
        "console": "6080",
        "dashboard": "8000",
    },
    # The port each service's catalog URL names, when it is not the port this process binds: API processes
    # behind a load balancer (docs/deployment.md) publish the balancer's. Empty: the bound port.
    "public_ports": {name: "" for name in ("identity", "compute", "placement", "image", "network", "volume",
                                           "object", "metadata", "console", "dashboard")},
    "token": {"expiration": "3600", "cache_size": "10000"},
    "fernet_tokens": {"key_repository": "", "max_active_keys": "3"},
    "identity": {"password_hash_rounds": "12"},
    "security_compliance": {
        "lockout_failure_attempts": "0",
        "lockout_duration": "1800",
        # Keystone's password rules (tinystack/identity/password_rules.py); 0 or empty: off.
        "password_regex": "",
        "password_regex_description": "",
        "unique_last_password_count": "0",
        "password_expires_days": "0",
        "minimum_password_age": "0",
        "change_password_upon_first_use": "false",
    },
    "oslo_policy": {"policy_file": ""},
    # More than one node in this process (tinystack/nodes.py): ``extra`` more compute + network agent pairs,
    # named ``names`` (default <host>-2, <host>-3, ...), joined by VXLAN over an underlay of ``underlay_cidr``.
    "nodes": {"extra": "0", "names": "", "underlay_cidr": "10.250.0.0/24"},
    # Level-triggered publishing of desired state (tinystack/core/desired.py): every ``sync_interval`` seconds
    # each publisher re-reads its work list from the database and re-sends every host its documents.
    "desired": {"sync_interval": "30"},
    # Prometheus ``GET /metrics`` of this process (tinystack/core/metrics.py), served by ``tinystack up`` and
    # ``tinystack agent``; ``port = 0`` turns it off, an empty ``bind`` means ``[DEFAULT] bind``.
    "metrics": {"port": "9464", "bind": ""},
    # ``tinystack doctor`` (tinystack/doctor/): seconds a resource may stay in a transitional state, the free
    # space (MiB) under the state dirs below which it warns, and the seconds an agent's clock may be off.
    "doctor": {"stuck_after": "600", "min_free_mb": "1024", "max_clock_skew": "5"},
}


def default_state_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/tinystack")
    return Path.home() / ".local" / "share" / "tinystack"


@dataclass
class Config:
    """Resolved settings. ``get`` reads a string, the typed helpers convert."""

    values: dict[str, dict[str, str]] = field(default_factory=dict)

    def get(self, section: str, key: str) -> str:
        return self.values[section][key]

    def get_int(self, section: str, key: str) -> int:
        return int(self.get(section, key))

    def get_bool(self, section: str, key: str) -> bool:
        return self.get(section, key).strip().lower() in ("1", "true", "yes", "on")

    def set(self, section: str, key: str, value: str) -> None:
        self.values.setdefault(section, {})[key] = value

    @property
    def sync_interval(self) -> float:
        """Seconds between two passes of the desired-state publishers (``[desired] sync_interval``)."""
        return float(self.get("desired", "sync_interval"))

    @property
    def state_dir(self) -> Path:
        return Path(self.get("DEFAULT", "state_dir"))

    @property
    def bind(self) -> str:
        return self.get("DEFAULT", "bind")

    @property
    def host(self) -> str:
        """This node's name: the compute host and network agent host of the services it runs."""
        return self.get("DEFAULT", "host") or socket.gethostname()

    @property
    def public_host(self) -> str:
        return self.get("DEFAULT", "public_host") or self.bind

    @property
    def database_url(self) -> str:
        return self.get("database", "connection") or f"sqlite:///{self.state_dir / 'tinystack.db'}"

    def port(self, service: str) -> int:
        return self.get_int("ports", service)


def load(path: Path | None = None, environ: Mapping[str, str] | None = None,
         overrides: Mapping[str, str] | None = None) -> Config:
    """Defaults, then the INI file, then the environment, then explicit overrides (``section__key``)."""
    env = os.environ if environ is None else environ
    values = {section: dict(keys) for section, keys in DEFAULTS.items()}
    if path is not None:
        parser = configparser.ConfigParser(interpolation=None)
        if not parser.read(path):
            raise FileNotFoundError(f"config file {path} not found")
        for key, value in parser.defaults().items():
            _set_known(values, "DEFAULT", key, value, path)
        for section in parser.sections():
            for key in parser[section]:
                if key in parser.defaults():
                    continue
                _set_known(values, section, key, parser[section][key], path)
    for section, keys in values.items():
        for key in keys:
            name = f"TINYSTACK_{key.upper()}" if section == "DEFAULT" else f"TINYSTACK_{section.upper()}_{key.upper()}"
            if name in env:
                keys[key] = env[name]
    # A service's own section has no defaults here, so a key the file does not name is set from the environment
    # by the section's prefix (a node's ``TINYSTACK_NETWORK_UNDERLAY_IP`` beside a shared file, docs/deployment.md).
    for name, value in env.items():
        for section in SERVICE_SECTIONS:
            prefix = f"TINYSTACK_{section.upper()}_"
            if name.startswith(prefix) and len(name) > len(prefix):
                values.setdefault(section, {})[name[len(prefix):].lower()] = value
    for name, value in (overrides or {}).items():
        section, _, key = name.rpartition("__")
        _set_known(values, section or "DEFAULT", key, value, "arguments")
    if not values["DEFAULT"]["state_dir"]:
        values["DEFAULT"]["state_dir"] = str(default_state_dir())
    return Config(values)


def _set_known(values: dict[str, dict[str, str]], section: str, key: str, value: str, origin: object) -> None:
    if section not in DEFAULTS:
        # A service's own section (e.g. [image]): the service checks its keys when it reads them.
        values.setdefault(section, {})[key] = value
        return
    if key not in values[section]:
        raise ValueError(f"{origin}: unknown setting [{section}] {key}")
    values[section][key] = value
