"""The services and agents: alive (their heartbeats in the database), on the same version, with clocks that agree.

Liveness comes from the rows the heartbeats keep (compute services, network agents). Versions and clocks come
from the heartbeats themselves: the doctor listens on the bus for one heartbeat interval, and each message's
envelope says the sender's version while its ``time`` says the sender's clock.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from tinystack import __version__
from tinystack.core.bus import Bus, current_envelope
from tinystack.core.db import Database
from tinystack.doctor.findings import Finding, ago, error, info, ok, warning

CHECK = "services"
CHECK_SKEW = "skew"


@dataclass(frozen=True)
class Beat:
    """The last time a service or agent reported, on the reporter's clock (seconds since the epoch)."""

    kind: str  # nova-compute, network agent type
    host: str
    last_seen: float
    enabled: bool = True
    forced_down: bool = False


def beats(db: Database) -> list[Beat]:
    from tinystack.compute.models import Service
    from tinystack.network.models import Agent

    with db.session() as s:
        # nova-compute: the compute agents; nova-conductor and nova-scheduler: the API processes (compute's
        # housekeeping reports them).
        out = [Beat(row.binary, row.host, row.last_seen, not row.disabled, row.forced_down)
               for row in s.scalars(select(Service))]
        out += [Beat(row.agent_type, row.host, row.heartbeat_epoch or 0.0, row.admin_state_up)
                for row in s.scalars(select(Agent))]
    return out


API_BINARIES = ("nova-conductor", "nova-scheduler")


def log_hint(kind: str, host: str) -> str:
    if kind in API_BINARIES:
        return (f"start the API process on {host} (`tinystack up`) and read its log (<state dir>/log/tinystack.log); "
                f"if {host} no longer runs one, `openstack compute service delete` its {kind}")
    return (f"start its agent on {host} (`tinystack agent`, or `tinystack up` for a one-machine cloud) and read "
            f"its log (<state dir>/log/agent-{host}.log or tinystack.log); if {host} is gone for good, delete its "
            f"service (`openstack compute service delete`, `openstack network agent delete`)")


def liveness(rows: list[Beat], down_after: dict[str, float], now: float, max_skew: float) -> list[Finding]:
    """``down_after``: seconds without a heartbeat after which a kind counts as down (its service's setting;
    ``*`` for the kinds not named)."""
    found: list[Finding] = []
    up = 0
    for row in sorted(rows, key=lambda r: (r.kind, r.host)):
        subject = f"{row.kind}@{row.host}"
        limit = down_after.get(row.kind, down_after.get("*", 60.0))
        if not row.enabled:
            found.append(info(CHECK, f"{row.kind} on {row.host} is disabled", subject))
            continue
        if row.forced_down:
            found.append(warning(CHECK, f"{row.kind} on {row.host} is forced down",
                                 "once the host is back: `openstack compute service set --up "
                                 f"{row.host} nova-compute`", subject))
            continue
        if row.last_seen > now + max_skew:
            found.append(error(CHECK_SKEW, f"{row.kind} on {row.host} reports heartbeats {row.last_seen - now:.0f} s "
                               "in the future: its clock runs ahead", f"synchronise the clock of {row.host} "
                               "(chrony or systemd-timesyncd) with this one", subject))
            continue
        if now - row.last_seen > limit:
            when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(row.last_seen)) if row.last_seen else "never"
            found.append(error(CHECK, f"{row.kind} on {row.host} is down: last heartbeat {when}"
                               + (f" ({ago(now - row.last_seen)})" if row.last_seen else ""),
                               log_hint(row.kind, row.host), subject))
            continue
        up += 1
    if not rows:
        found.append(warning(CHECK, "no compute service or network agent has ever reported",
                             "start the cloud (`tinystack up`) or the node agents (`tinystack agent`)"))
    elif up:
        found.append(ok(CHECK, f"{up} services and agents up"))
    return found


@dataclass
class Heartbeats:
    """Heartbeats heard on the bus: (agent, host) -> (clock difference in seconds, version)."""

    heard: dict[tuple[str, str], tuple[float, str]] = field(default_factory=dict)
    listening: bool = True

    async def on_heartbeat(self, msg: dict[str, Any]) -> None:
        # A subscription lasts as long as its bus: a doctor run on a live cloud's bus stops counting here.
        if not self.listening:
            return
        envelope = current_envelope.get() or {}
        try:
            sent = float(msg["time"])
        except (KeyError, TypeError, ValueError):
            return
        self.heard[(str(msg.get("agent")), str(msg.get("host")))] = (time.time() - sent,
                                                                      str(envelope.get("version") or "unknown"))

    async def listen(self, bus: Bus, seconds: float) -> None:
        bus.subscribe("heartbeat", self.on_heartbeat)
        try:
            await asyncio.sleep(seconds)
        finally:
            self.listening = False


def skew(heard: dict[tuple[str, str], tuple[float, str]], max_skew: float, version: str = __version__) -> list[Finding]:
    found: list[Finding] = []
    for (agent, host), (diff, theirs) in sorted(heard.items()):
        subject = f"{agent}@{host}"
        if abs(diff) > max_skew:
            side = "behind" if diff > 0 else "ahead of"
            found.append(error(CHECK_SKEW, f"the {agent} agent on {host}: its clock is {abs(diff):.1f} s {side} this "
                               f"host's (more than {max_skew:g} s)", f"synchronise the clocks of {host} and this host "
                               "(chrony or systemd-timesyncd): heartbeats, tokens and timeouts depend on them", subject))
        if theirs != version:
            found.append(warning(CHECK_SKEW, f"the {agent} agent on {host} runs tinystack {theirs}, this host {version}",
                                 f"upgrade {host} (or this host) so that every process runs the same version",
                                 subject))
    if heard and not found:
        found.append(ok(CHECK_SKEW, f"{len(heard)} agents heard: same version {version}, clocks within {max_skew:g} s"))
    return found
