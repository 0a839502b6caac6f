"""The metadata service's settings, from the ``[metadata]`` section."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from tinystack.config import Config
from tinystack.core import sockpath

DEFAULTS: dict[str, str] = {
    "secret_file": "",  # default <state_dir>/metadata-secret
    "socket": "",  # default <state_dir>/metadata.sock
    # The metadata API's URL (its port 8775, or a load balancer's) for a network host's relay
    # (tinystack/metadata/relay.py); empty: the proxies open ``socket``, so the network host needs an API process.
    "upstream": "",
    "dhcp_domain": "novalocal",  # appended to hostnames in the documents, as Nova's [api] dhcp_domain
}


@dataclass(frozen=True)
class MetadataSettings:
    secret_file: Path
    socket: Path
    dhcp_domain: str
    upstream: str


def check_upstream(url: str) -> str:
    """``url`` without a trailing slash, when it is an http(s) URL with a host and no path beyond ``/``."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/") or parts.query:
        raise ValueError(f"[metadata] upstream must be http://host[:port] or https://host[:port], not {url!r}")
    return url.strip().rstrip("/")


def load(config: Config) -> MetadataSettings:
    raw = {**DEFAULTS, **config.values.get("metadata", {})}
    unknown = set(raw) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown setting(s) in [metadata]: {', '.join(sorted(unknown))}")
    state = config.state_dir
    return MetadataSettings(
        secret_file=Path(raw["secret_file"]) if raw["secret_file"] else state / "metadata-secret",
        socket=sockpath.fitting(Path(raw["socket"]) if raw["socket"] else state / "metadata.sock"),
        dhcp_domain=raw["dhcp_domain"].strip().strip("."),
        upstream=check_upstream(raw["upstream"]) if raw["upstream"].strip() else "",
    )
