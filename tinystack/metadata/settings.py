"""The metadata service's settings, from the ``[metadata]`` section."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tinystack.config import Config

DEFAULTS: dict[str, str] = {
    "secret_file": "",  # default <state_dir>/metadata-secret
    "socket": "",  # default <state_dir>/metadata.sock
    "dhcp_domain": "novalocal",  # appended to hostnames in the documents, as Nova's [api] dhcp_domain
}


@dataclass(frozen=True)
class MetadataSettings:
    secret_file: Path
    socket: Path
    dhcp_domain: str


def load(config: Config) -> MetadataSettings:
    raw = {**DEFAULTS, **config.values.get("metadata", {})}
    unknown = set(raw) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown setting(s) in [metadata]: {', '.join(sorted(unknown))}")
    state = config.state_dir
    return MetadataSettings(
        secret_file=Path(raw["secret_file"]) if raw["secret_file"] else state / "metadata-secret",
        socket=Path(raw["socket"]) if raw["socket"] else state / "metadata.sock",
        dhcp_domain=raw["dhcp_domain"].strip().strip("."),
    )
