"""Project > Compute > Overview: the project's quota usage against its limits, from each service's own API."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tinystack.dashboard.views.common import gather, optional
from tinystack.dashboard.web import Page, api, render, session


async def overview(request: web.Request) -> web.StreamResponse:
    a, sess = api(request), session(request)
    compute, volume, network = await gather(
        a.get("compute", "/limits"), optional(a.get("volume", "/limits"), {"limits": {"absolute": {}}}),
        optional(a.get("network", f"/v2.0/quotas/{sess.project_id}/details"), {"quota": {}}))
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
    return render(request, "overview.html", title="Overview", bars=bars)


PAGES = [Page("GET", "/project/", overview)]
