"""The console proxy's settings, from the ``[console]`` section."""

from __future__ import annotations

from dataclasses import dataclass

from tinystack.config import Config
from tinystack.core import consolebridge

DEFAULTS: dict[str, str] = {
    "token_ttl": "600",  # seconds a console URL may wait before it is opened (Nova's [consoleauth] token_ttl)
    # The proxy's address as browsers reach it (http://host:6080); empty: the address the proxy is bound to.
    "base_url": "",
    # Host names besides the proxy's own whose pages may open console websockets (a browser sends its page's
    # Origin; another site's page must not use a console URL it got hold of). Comma-separated.
    "allowed_origins": "",
    # The node console bridge (split deployment): node_listen, node_secret (tinystack/core/consolebridge.py).
    **consolebridge.DEFAULTS,
}


@dataclass(frozen=True)
class ConsoleSettings:
    token_ttl: float
    base_url: str
    allowed_origins: frozenset[str] = frozenset()
    node_secret: bytes = b""  # signs the proxy's requests to the nodes' console bridges


def load(config: Config) -> ConsoleSettings:
    raw = {**DEFAULTS, **config.values.get("console", {})}
    unknown = set(raw) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown setting(s) in [console]: {', '.join(sorted(unknown))}")
    ttl = float(raw["token_ttl"])
    if ttl <= 0:
        raise ValueError("[console] token_ttl must be a positive number of seconds")
    origins = frozenset(o.strip().lower() for o in raw["allowed_origins"].split(",") if o.strip())
    return ConsoleSettings(token_ttl=ttl, base_url=raw["base_url"].strip().rstrip("/"), allowed_origins=origins,
                           node_secret=consolebridge.load(config).secret)
