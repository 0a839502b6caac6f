"""Project > Compute > Overview: the project's quota usage against its limits, from each service's own API, and
its usage over a chosen period (compute's ``os-simple-tenant-usage``) as a table and a CSV download."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from aiohttp import web

from tinystack.dashboard.client import Api
from tinystack.dashboard.views.common import PAGE_SIZE, gather, optional
from tinystack.dashboard.web import FormError, Page, api, render, session

# Characters that make a spreadsheet read a cell as a formula: such a cell gets a leading quote.
FORMULA = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class UsageReport:
    """One project's usage over ``start``..``end`` (whole days, UTC), every page of the API's answer summed."""

    start: date
    end: date
    servers: list[dict[str, Any]] = field(default_factory=list)
    vcpu_hours: float = 0.0
    memory_mb_hours: float = 0.0
    disk_gb_hours: float = 0.0

    @property
    def active(self) -> list[dict[str, Any]]:
        return [s for s in self.servers if not s.get("ended_at")]


def period(query: Any) -> tuple[date, date]:
    """The period the form asks for (``start``/``end``, YYYY-MM-DD); by default this month so far, as Horizon's."""
    today = datetime.now(UTC).date()
    try:
        start = date.fromisoformat(query.get("start") or today.replace(day=1).isoformat())
        end = date.fromisoformat(query.get("end") or today.isoformat())
    except ValueError:
        raise FormError("Enter dates as YYYY-MM-DD.") from None
    if end < start:
        raise FormError("The end of the period must not be before its start.")
    return start, end


async def usage(a: Api, project_id: str, start: date, end: date) -> UsageReport:
    report = UsageReport(start, end)
    params = {"start": f"{start.isoformat()}T00:00:00", "end": f"{end.isoformat()}T23:59:59.999999", "detailed": "1"}
    while True:
        body = await a.get("compute", f"/os-simple-tenant-usage/{project_id}", params)
        page = body.get("tenant_usage") or {}
        report.servers += page.get("server_usages", [])
        # From compute 2.40 the answer comes in pages, each with the totals of its own servers.
        report.vcpu_hours += page.get("total_vcpus_usage", 0.0)
        report.memory_mb_hours += page.get("total_memory_mb_usage", 0.0)
        report.disk_gb_hours += page.get("total_local_gb_usage", 0.0)
        nxt = [link for link in body.get("tenant_usage_links", []) if link.get("rel") == "next"]
        if not nxt or not page.get("server_usages"):
            return report
        params["marker"] = page["server_usages"][-1]["instance_id"]


def cell(value: Any) -> str:
    text = str(value)
    return "'" + text if text.startswith(FORMULA) else text


def usage_csv(report: UsageReport, project_name: str) -> str:
    """Horizon's CSV summary: the period and totals, then one row per instance."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["Usage Report For Period:", report.start.isoformat(), report.end.isoformat()])
    w.writerow(["Project:", cell(project_name)])
    w.writerow(["Active Instances:", len(report.active)])
    w.writerow(["Total Active VCPUs:", sum(s.get("vcpus", 0) for s in report.active)])
    w.writerow(["Total Active RAM (MB):", sum(s.get("memory_mb", 0) for s in report.active)])
    w.writerow(["This Period's VCPU-Hours:", f"{report.vcpu_hours:.2f}"])
    w.writerow(["This Period's GB-Hours:", f"{report.disk_gb_hours:.2f}"])
    w.writerow(["This Period's RAM-Hours:", f"{report.memory_mb_hours:.2f}"])
    w.writerow([])
    w.writerow(["Instance Name", "VCPUs", "RAM (MB)", "Disk (GB)", "Usage (Hours)", "Time since created (Seconds)",
                "State"])
    for s in report.servers:
        w.writerow([cell(s.get("name", "")), s.get("vcpus", 0), s.get("memory_mb", 0), s.get("local_gb", 0),
                    f"{s.get('hours', 0.0):.2f}", s.get("uptime", 0), s.get("state", "")])
    return out.getvalue()


async def overview(request: web.Request) -> web.StreamResponse:
    a, sess = api(request), session(request)
    start, end = period(request.query)
    if request.query.get("format") == "csv":
        report = await usage(a, sess.project_id, start, end)
        filename = f"{sess.project_name}_usage_{start.isoformat()}_{end.isoformat()}.csv"
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in filename)
        return web.Response(text=usage_csv(report, sess.project_name), content_type="text/csv", charset="utf-8",
                            headers={"Content-Disposition": f'attachment; filename="{safe}"'})
    compute, volume, network, report = await gather(
        a.get("compute", "/limits"), optional(a.get("volume", "/limits"), {"limits": {"absolute": {}}}),
        optional(a.get("network", f"/v2.0/quotas/{sess.project_id}/details"), {"quota": {}}),
        usage(a, sess.project_id, start, end))
    c = compute["limits"]["absolute"]
    v = volume["limits"]["absolute"]
    n: dict[str, Any] = network["quota"]
    bars = [("Compute", [("Instances", c.get("totalInstancesUsed", 0), c.get("maxTotalInstances")),
                         ("VCPUs", c.get("totalCoresUsed", 0), c.get("maxTotalCores")),
                         ("RAM (MB)", c.get("totalRAMUsed", 0), c.get("maxTotalRAMSize"))]),
            ("Volume", [("Volumes", v.get("totalVolumesUsed", 0), v.get("maxTotalVolumes")),
                        ("Volume Snapshots", v.get("totalSnapshotsUsed", 0), v.get("maxTotalSnapshots")),
                        ("Volume Storage (GiB)", v.get("totalGigabytesUsed", 0), v.get("maxTotalVolumeGigabytes"))]),
            ("Network", [(label, n.get(key, {}).get("used", 0), n.get(key, {}).get("limit"))
                         for label, key in (("Floating IPs", "floatingip"), ("Security Groups", "security_group"),
                                            ("Security Group Rules", "security_group_rule"), ("Networks", "network"),
                                            ("Ports", "port"), ("Routers", "router"))])]
    # The table shows the period's instances a page at a time (Horizon's page size); the totals and the CSV
    # cover them all. With 1,000 instances, rendering every row was most of the page's time.
    try:
        number = max(1, int(request.query.get("usage_page", "1")))
    except ValueError:
        number = 1
    pages = max(1, -(-len(report.servers) // PAGE_SIZE))
    number = min(number, pages)
    rows = report.servers[(number - 1) * PAGE_SIZE:number * PAGE_SIZE]
    return render(request, "overview.html", title="Overview", bars=bars, report=report, rows=rows, number=number,
                  pages=pages)


PAGES = [Page("GET", "/project/", overview)]
