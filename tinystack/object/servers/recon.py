"""Health of the storage nodes, as swift-recon reports it. Each storage server answers ``GET /recon/<what>``
from its node's files: ``replication/object|container|account`` (the last pass of each replicator),
``auditor/object``, ``async`` (pending container updates), ``quarantined`` (per policy), ``diskusage`` (per device),
``ringmd5`` (the md5 of each ring file it uses), ``unmounted`` and ``load``. ``tinystack object recon`` asks every
object server of the rings and prints one summary (``gather`` and ``render``)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from tinystack.object.common import status_error
from tinystack.object.policies import index_of_datadir
from tinystack.object.servers.base import Handler, NodeContext
from tinystack.object.settings import ObjectSettings

CHECKS = ("replication/object", "replication/container", "replication/account", "auditor/object", "async",
          "quarantined", "diskusage", "ringmd5", "unmounted", "load")


def ring_md5s(rings_dir: Path) -> dict[str, str]:
    """Blocking. ``{file name: md5}`` of every ring file."""
    out = {}
    for path in sorted(rings_dir.glob("*.ring")):
        out[path.name] = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
    return out


def _record(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _devices(node: NodeContext) -> list[Path]:
    base = node.settings.devices
    try:
        return sorted(p for p in base.iterdir() if p.is_dir())
    except FileNotFoundError:
        return []


def _count_files(base: Path) -> int:
    count = 0
    for _dirpath, _dirs, files in os.walk(base):
        count += len(files)
    return count


def answer(node: NodeContext, what: str) -> Any:
    """Blocking. The answer to ``/recon/<what>``; KeyError for an unknown check."""
    s = node.settings
    if what.startswith("replication/"):
        kind = what.split("/", 1)[1]
        if kind not in ("object", "container", "account"):
            raise KeyError(what)
        record = _record(s.devices / ("replication.json" if kind == "object" else f"{kind}_replication.json"))
        last = record.get("finished") if record else None
        return {f"{kind}_replication_last": last, f"{kind}_replication_time": record.get("seconds") if record else None,
                "replication_stats": record}
    if what == "auditor/object":
        return _record(s.devices / "auditor.json")
    if what == "async":
        return {"async_pending": sum(_count_files(dev / "async_pending") for dev in _devices(node))}
    if what == "quarantined":
        out: dict[str, Any] = {"objects": 0, "containers": 0, "accounts": 0, "policies": {}}
        for dev in _devices(node):
            base = dev / "quarantined"
            if not base.is_dir():
                continue
            for sub in base.iterdir():
                count = sum(1 for _ in sub.iterdir()) if sub.is_dir() else 0
                index = index_of_datadir(sub.name)
                if index is not None:
                    out["objects"] += count
                    policy = out["policies"].setdefault(str(index), {"objects": 0})
                    policy["objects"] += count
                elif sub.name in ("containers", "accounts"):
                    out[sub.name] += count
        return out
    if what == "diskusage":
        disks = []
        for dev in _devices(node):
            st = os.statvfs(dev)
            size, avail = st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
            disks.append({"device": dev.name, "mounted": True, "size": size, "avail": avail,
                          "used": size - st.f_bfree * st.f_frsize})
        return disks
    if what == "ringmd5":
        return ring_md5s(s.rings_dir)
    if what == "unmounted":
        have = {p.name for p in _devices(node)}
        wanted = {d.device for ring in node.rings.values() for d in ring.devs
                  if d is not None and d.ip == s.storage_ip}
        return [{"device": name, "mounted": False} for name in sorted(wanted - have)]
    if what == "load":
        one, five, fifteen = os.getloadavg()
        return {"1m": one, "5m": five, "15m": fifteen}
    raise KeyError(what)


def with_recon(node: NodeContext, handlers: dict[str, Handler]) -> dict[str, Handler]:
    """``handlers`` with ``GET /recon/<what>`` answered by recon (no device is named ``recon``)."""
    get = handlers["GET"]

    async def route_get(request: web.Request) -> web.StreamResponse:
        if not request.path.startswith("/recon/"):
            return await get(request)
        what = request.path[len("/recon/"):]
        try:
            body = await asyncio.to_thread(answer, node, what)
        except KeyError:
            raise status_error(404, f"No recon check {what!r}") from None
        return web.json_response(body)

    return {**handlers, "GET": route_get}


# --- the operator's side: `tinystack object recon` --------------------------------------------------------------

def object_servers(settings: ObjectSettings) -> list[str]:
    """``ip:port`` of every object server in the rings of the storage policies (the recon endpoints)."""
    from tinystack.object.ring import Ring

    found: set[str] = set()
    for policy in settings.policies:
        path = settings.rings_dir / f"{policy.ring}.ring"
        if path.exists():
            ring = Ring.load(path, prefix=settings.hash_path_prefix, suffix=settings.hash_path_suffix)
            found.update(f"{d.ip}:{d.port}" for d in ring.devs if d is not None)
    return sorted(found)


async def gather(settings: ObjectSettings, timeout: float = 5.0) -> dict[str, Any]:
    """Every check from every object server: ``{"hosts": {host: {check: answer | None}}, "ringmd5": local}``."""
    hosts = object_servers(settings)
    local = await asyncio.to_thread(ring_md5s, settings.rings_dir)

    async def one(session: aiohttp.ClientSession, host: str, check: str) -> Any:
        try:
            async with session.get(f"http://{host}/recon/{check}") as resp:
                return await resp.json() if resp.status == 200 else None
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError):
            return None

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        results = await asyncio.gather(*(one(session, h, c) for h in hosts for c in CHECKS))
    it = iter(results)
    return {"hosts": {h: {c: next(it) for c in CHECKS} for h in hosts}, "ringmd5": local, "time": time.time()}


def _age(now: float, last: Any) -> str:
    return "never" if not isinstance(last, (int, float)) else f"{now - last:.0f}s ago"


def render(report: dict[str, Any]) -> str:
    """The summary swift-recon prints, one section per check."""
    now = report["time"]
    hosts: dict[str, dict[str, Any]] = report["hosts"]
    lines = ["=" * 79, f"--> Starting reconnaissance on {len(hosts)} hosts (object)", "=" * 79]
    down = [h for h, r in hosts.items() if all(v is None for v in r.values())]
    lines.append(f"[ring md5] {report_md5(report)}")
    for kind in ("object", "container", "account"):
        lines.append(f"[{kind} replication]")
        for host, r in hosts.items():
            rep = r.get(f"replication/{kind}") or {}
            stats = rep.get("replication_stats") or {}
            took = rep.get(f"{kind}_replication_time")
            detail = ", ".join(f"{k} {v}" for k, v in stats.items() if k not in ("finished", "seconds"))
            lines.append(f"  {host}: last pass {_age(now, rep.get(f'{kind}_replication_last'))}"
                         + (f" (took {took:.2f}s; {detail})" if isinstance(took, (int, float)) else ""))
    total = sum((r.get("async") or {}).get("async_pending", 0) for r in hosts.values())
    lines.append(f"[async pending] {total} in all: "
                 + ", ".join(f"{h} {(r.get('async') or {}).get('async_pending', '?')}" for h, r in hosts.items()))
    quarantined = [r.get("quarantined") or {} for r in hosts.values()]
    lines.append(f"[quarantined] objects {sum(q.get('objects', 0) for q in quarantined)}, containers "
                 f"{sum(q.get('containers', 0) for q in quarantined)}, accounts "
                 f"{sum(q.get('accounts', 0) for q in quarantined)}")
    for host, r in hosts.items():
        for index, q in sorted(((r.get("quarantined") or {}).get("policies") or {}).items()):
            lines.append(f"  {host}: policy {index}: {q.get('objects', 0)} objects")
    lines.append("[disk usage]")
    for host, r in hosts.items():
        for disk in r.get("diskusage") or []:
            size = disk.get("size") or 0
            pct = 100.0 * disk.get("used", 0) / size if size else 0.0
            lines.append(f"  {host} {disk['device']}: {pct:.1f}% used, {disk.get('avail', 0) / 1024**3:.1f} GiB free")
        for gone in r.get("unmounted") or []:
            lines.append(f"  {host} {gone['device']}: NOT MOUNTED")
    if down:
        lines.append(f"[errors] no answer from {', '.join(down)}")
    return "\n".join(lines)


def report_md5(report: dict[str, Any]) -> str:
    """``N/M hosts matched`` against the local ring files, as swift-recon says it."""
    local = report["ringmd5"]
    hosts = report["hosts"]
    matched = sum(1 for r in hosts.values() if r.get("ringmd5") == local)
    errors = sum(1 for r in hosts.values() if r.get("ringmd5") is None)
    return f"{matched}/{len(hosts)} hosts matched, {errors} error[s] while checking hosts."


def healthy(report: dict[str, Any]) -> bool:
    """Every host answered, agrees on the rings and has every device."""
    return all(r.get("ringmd5") == report["ringmd5"] and not r.get("unmounted")
               for r in report["hosts"].values()) and bool(report["hosts"])
