"""The network agent's settings, read from its keys of the ``[network]`` section (the API reads its own)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tinystack.config import Config

# The agent's keys of ``[network]`` and their defaults; other keys of that section belong to the API.
DEFAULTS: dict[str, str] = {
    "driver": "linux",  # linux | fake (fake: in memory, for tests and benchmarks only)
    "external_netns": "",  # where the external network's veth peer lives; empty = the host itself
    "underlay_ip": "",  # local VXLAN endpoint address (ip or ip/prefix); empty = 127.0.0.1 (one machine)
    "underlay_dev": "",  # device the VXLAN packets leave by; empty = let the kernel route them
    # Several nodes on one machine (tinystack/nodes.py): the namespace holding the underlay bridge. The agent
    # plugs its node namespace into it with a veth named underlay_dev carrying underlay_ip. Empty = none.
    "underlay_netns": "",
    "state_path": "",  # where the agent keeps dnsmasq and router state; empty = <state_dir>/network
    "vxlan_peers": "",  # comma-separated remote VTEP addresses (static flooding list)
    "vxlan_port": "4789",
    "resync_interval": "10",  # seconds between full looks at the host (self-healing, garbage collection)
    "dhcp_lease_time": "86400",
    "dnsmasq": "dnsmasq",
}


@dataclass(frozen=True)
class AgentSettings:
    host: str
    state_dir: Path
    driver: str
    external_netns: str
    underlay_ip: str
    underlay_prefix: int
    underlay_dev: str
    underlay_netns: str
    vxlan_peers: tuple[str, ...]
    vxlan_port: int
    resync_interval: float
    dhcp_lease_time: int
    dnsmasq: str
    # The secret the metadata proxies sign with: ``[metadata] secret_file``, shared with the metadata API.
    metadata_secret: Path
    # ``[metadata] upstream``: the metadata API's URL; when set, the proxies go through this host's relay to it.
    metadata_upstream: str = ""

    @property
    def node_netns(self) -> str:
        return node_netns(self.host)


def node_netns(host: str) -> str:
    return f"tsnode-{host}"


def load(config: Config) -> AgentSettings:
    section = config.values.get("network", {})
    raw = {**DEFAULTS, **{k: v for k, v in section.items() if k in DEFAULTS}}
    driver = raw["driver"].strip().lower()
    if driver not in ("linux", "fake"):
        raise ValueError("[network] driver must be 'linux' or 'fake'")
    host = config.host
    # The node namespace name must stay a valid netns name and leave room in /var/run/netns.
    if not host or "/" in host or len(host) > 200:
        raise ValueError(f"[DEFAULT] host {host!r} cannot name a network namespace")
    underlay_ip, _, prefix = (raw["underlay_ip"].strip() or "127.0.0.1").partition("/")
    underlay_netns = raw["underlay_netns"].strip()
    if underlay_netns and not raw["underlay_dev"].strip():
        raise ValueError("[network] underlay_netns needs underlay_dev (the node's veth into the underlay)")
    upstream = config.values.get("metadata", {}).get("upstream", "").strip()
    if upstream and not upstream.startswith(("http://", "https://")):
        raise ValueError(f"[metadata] upstream must be an http:// or https:// URL, not {upstream!r}")
    return AgentSettings(
        host=host,
        state_dir=Path(raw["state_path"]) if raw["state_path"].strip() else config.state_dir / "network",
        driver=driver,
        external_netns=raw["external_netns"].strip(),
        underlay_ip=underlay_ip,
        underlay_prefix=int(prefix or 24),
        underlay_dev=raw["underlay_dev"].strip(),
        underlay_netns=underlay_netns,
        vxlan_peers=tuple(p.strip() for p in raw["vxlan_peers"].split(",") if p.strip()),
        vxlan_port=int(raw["vxlan_port"]),
        resync_interval=float(raw["resync_interval"]),
        dhcp_lease_time=int(raw["dhcp_lease_time"]),
        dnsmasq=raw["dnsmasq"].strip(),
        metadata_secret=Path(secret) if (secret := config.values.get("metadata", {}).get("secret_file", "").strip())
        else config.state_dir / "metadata-secret",
        metadata_upstream=upstream,
    )
