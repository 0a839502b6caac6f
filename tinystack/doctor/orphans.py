"""Orphans on this host: taps, ``qdhcp-``/``qrouter-`` namespaces, QEMU processes, instance directories and
volume files that no database row owns any more (a crash between the host change and the database write, an
agent that was down while its resource was deleted).

Only what this node's agents made is looked at: the taps in its own node namespace, the namespaces its network
agent keeps an ownership record of (its state dir's ``dhcp/<network>`` and ``routers/<router>``, written before a
namespace is made and removed after it is deleted), the QEMUs and directories of this cloud's instances path. A
machine may hold other clouds' or other nodes' dataplanes (test clouds, several nodes of ``tinystack up``): their
namespaces are counted, never named as this cloud's orphans.

``gather`` reads the host (through core/host.py's runner for ``ip``); ``compare`` is the rule, kept apart so the
unit tests hand it fakes.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from tinystack.core import host
from tinystack.core.db import Database
from tinystack.doctor.findings import Finding, info, ok, warning

CHECK = "orphans"
_UUID = re.compile(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$")


@dataclass
class Known:
    """What the database owns."""

    ports: set[str] = field(default_factory=set)
    networks: set[str] = field(default_factory=set)
    routers: set[str] = field(default_factory=set)
    instances: set[str] = field(default_factory=set)
    volumes: set[str] = field(default_factory=set)  # volume and snapshot ids, volumes' name_ids


def known(db: Database) -> Known:
    from tinystack.compute.models import Instance
    from tinystack.network.models import Network, Port, Router
    from tinystack.volume.models import Snapshot, Volume

    with db.session() as s:
        return Known(ports=set(s.scalars(select(Port.id))), networks=set(s.scalars(select(Network.id))),
                     routers=set(s.scalars(select(Router.id))),
                     instances=set(s.scalars(select(Instance.id).where(Instance.deleted.is_(False)))),
                     # A migrated volume's file is named after its name_id.
                     volumes=set(s.scalars(select(Volume.id))) | set(s.scalars(select(Snapshot.id)))
                     | {n for n in s.scalars(select(Volume.name_id)) if n})


@dataclass
class Seen:
    """What this host holds, for one node."""

    host: str
    node_netns: str
    taps: list[str] = field(default_factory=list)  # in the node namespace
    namespaces: list[str] = field(default_factory=list)  # qdhcp-/qrouter- ones this node's network agent made
    foreign_namespaces: int = 0  # qdhcp-/qrouter- ones on the machine that it did not make (not checked)
    qemu: dict[int, str] = field(default_factory=dict)  # pid -> instance uuid, QEMUs of this instances path
    instance_dirs: list[str] = field(default_factory=list)
    volume_files: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # what could not be looked at, and why


def compare(seen: Seen, db: Known) -> list[Finding]:
    found: list[Finding] = []
    taps = {f"tap{p[:11]}" for p in db.ports}
    for tap in sorted(seen.taps):
        if tap not in taps:
            found.append(warning(CHECK, f"tap {tap} in namespace {seen.node_netns} belongs to no port",
                                 f"if no guest uses it: `ip -n {seen.node_netns} link delete {tap}` (the network agent "
                                 "removes the taps of ports it knows; this one it does not)", tap))
    for ns in sorted(seen.namespaces):
        kind, _, ident = ns.partition("-")
        owners = db.networks if kind == "qdhcp" else db.routers
        if ident not in owners:
            what = "network" if kind == "qdhcp" else "router"
            found.append(warning(CHECK, f"namespace {ns} belongs to no {what}",
                                 f"stop what runs in it (`ip netns pids {ns}`), then `ip netns delete {ns}`", ns))
    for pid, uuid in sorted(seen.qemu.items()):
        if uuid not in db.instances:
            found.append(warning(CHECK, f"QEMU process {pid} runs instance {uuid}, which no server row owns",
                                 f"check that no one needs the guest, then `kill {pid}`", uuid))
    for name in sorted(seen.instance_dirs):
        if name not in db.instances:
            found.append(warning(CHECK, f"instance directory {name} on {seen.host} belongs to no server",
                                 "after a backup if in doubt, remove the directory under the instances path", name))
    for path in sorted(seen.volume_files):
        ident = path.name.split("-", 1)[1]
        if ident not in db.volumes:
            found.append(warning(CHECK, f"volume file {path} belongs to no volume or snapshot",
                                 f"after a backup if in doubt: `rm {path}`", str(path)))
    found += [info(CHECK, why, seen.host) for why in seen.skipped]
    if seen.foreign_namespaces:
        found.append(info(CHECK, f"{seen.foreign_namespaces} qdhcp-/qrouter- namespace(s) on this machine were not made "
                          f"by {seen.host}'s network agent (another node's or another cloud's): not checked",
                          seen.host))
    if not any(f.problem for f in found):
        found.append(ok(CHECK, f"no orphans on {seen.host}", seen.host))
    return found


# --- reading the host ------------------------------------------------------------------------------------


def _link_names(text: str) -> list[str]:
    """Names from ``ip -o link show`` (``2: tapX@if3: <...>`` -> ``tapX``)."""
    names = []
    for line in text.splitlines():
        parts = line.split(": ", 2)
        if len(parts) >= 2:
            names.append(parts[1].split("@", 1)[0].strip())
    return names


async def netns_list() -> list[str] | None:
    res = await host.run(["ip", "netns", "list"], check=False, timeout=15)
    if res.returncode != 0:
        return None
    return [line.split()[0] for line in res.stdout.splitlines() if line.strip()]


async def links(netns: str) -> list[str] | None:
    res = await host.run(["ip", "-n", netns, "-o", "link", "show"], check=False, timeout=15)
    return _link_names(res.stdout) if res.returncode == 0 else None


def qemu_processes(instances_path: Path, proc: Path = Path("/proc")) -> dict[int, str]:
    """QEMUs whose pidfile is under ``instances_path`` (other clouds' guests on the same machine are not ours)."""
    root = str(instances_path.resolve()) + os.sep
    found: dict[int, str] = {}
    for entry in proc.iterdir() if proc.is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in argv]
        if "-pidfile" not in args or "-uuid" not in args:
            continue
        pidfile = args[args.index("-pidfile") + 1] if args.index("-pidfile") + 1 < len(args) else ""
        if pidfile.startswith(root):
            found[int(entry.name)] = args[args.index("-uuid") + 1]
    return found


def owned_namespaces(network_state: Path) -> set[str]:
    """The ``qdhcp-``/``qrouter-`` namespaces the network agent with state dir ``network_state`` made: its ownership
    records (tinystack/network/dataplane/dhcp.py and routers.py)."""
    out: set[str] = set()
    for kind, sub in (("qdhcp", "dhcp"), ("qrouter", "routers")):
        root = network_state / sub
        if root.is_dir():
            out |= {f"{kind}-{p.name}" for p in root.iterdir() if p.is_dir()}
    return out


async def gather(host_name: str, node_netns: str, instances_path: Path, volumes_path: Path | None,
                 owned: set[str] | None, all_netns: list[str] | None, backend_dirs: tuple[Path, ...] = ()) -> Seen:
    """What this node holds. ``owned``: the namespaces this node's network agent made (None: it runs no real
    dataplane); ``all_netns``: the namespaces of the machine (None: could not be listed); ``backend_dirs``: the
    volume backends' directories besides ``volumes_path`` (``[volume] enabled_backends``)."""
    seen = Seen(host_name, node_netns)
    if all_netns is None:
        seen.skipped.append("network namespaces could not be listed: run the doctor as root for the tap checks")
    elif node_netns in all_netns:
        taps = await links(node_netns)
        if taps is None:
            seen.skipped.append(f"the links of {node_netns} could not be read: run the doctor as root")
        else:
            seen.taps = [t for t in taps if t.startswith("tap")]
    if owned is not None and all_netns is not None:
        dataplane = [n for n in all_netns if n.startswith(("qdhcp-", "qrouter-"))]
        seen.namespaces = [n for n in dataplane if n in owned]
        seen.foreign_namespaces = len(dataplane) - len(seen.namespaces)
    seen.qemu = qemu_processes(instances_path)
    if instances_path.is_dir():
        seen.instance_dirs = [p.name for p in instances_path.iterdir() if p.is_dir() and _UUID.match(p.name)]
    for path in ([volumes_path, *backend_dirs] if volumes_path is not None else []):
        if path.is_dir():
            seen.volume_files += [p for p in path.iterdir()
                                  if p.is_file() and p.name.startswith(("volume-", "snapshot-"))
                                  and _UUID.match(p.name.split("-", 1)[1])]
    return seen
