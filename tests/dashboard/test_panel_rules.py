"""Unit tests of the rules behind the paged tables and the newer panels: paging forward and back over a list
API (a stand-in that keeps the API's order), the look-up cache, the image edit's JSON patch, the quota form, the
usage period and the CSV's formula guard."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request

from tinystack.dashboard.session import Session
from tinystack.dashboard.views.common import Paged, cached, forget, page_of
from tinystack.dashboard.views.identity import quota_changes
from tinystack.dashboard.views.images import image_patch
from tinystack.dashboard.views.overview import UsageReport, cell, period, usage_csv
from tinystack.dashboard.web import FormError

pytestmark = pytest.mark.unit

IDS = [f"id{i:02d}" for i in range(45)]  # the API's default order


class ListApi:
    """Answers ``GET`` like a list API over ``IDS``: ``marker``, ``limit`` and ``sort_dir=asc`` for the reverse."""

    def __init__(self) -> None:
        self.calls: list[dict[str, str]] = []

    async def get(self, service: str, path: str, params: dict[str, str]) -> dict[str, Any]:
        self.calls.append(dict(params))
        order = list(reversed(IDS)) if params.get("sort_dir") == "asc" else IDS
        start = order.index(params["marker"]) + 1 if "marker" in params else 0
        return {"servers": [{"id": i} for i in order[start:start + int(params["limit"])]]}


def page(query: str) -> tuple[Paged, ListApi]:
    api = ListApi()
    request = make_mocked_request("GET", f"/project/instances/{query}")
    got = asyncio.run(page_of(api, "compute", "/servers/detail", "servers", request, {},  # type: ignore[arg-type]
                              {"sort_dir": "asc"}))
    return got, api


def test_paging_forward_and_back_gives_the_same_pages() -> None:
    first, api = page("")
    assert [s["id"] for s in first.items] == IDS[:20] and first.prev_marker is None and first.next_marker == "id19"
    assert api.calls == [{"limit": "21"}]
    second, _ = page("?marker=id19")
    assert [s["id"] for s in second.items] == IDS[20:40] and (second.prev_marker, second.next_marker) == ("id20", "id39")
    last, _ = page("?marker=id39")
    assert [s["id"] for s in last.items] == IDS[40:] and last.next_marker is None and last.prev_marker == "id40"
    back, api = page("?prev_marker=id40")
    assert [s["id"] for s in back.items] == IDS[20:40] and (back.prev_marker, back.next_marker) == ("id20", "id39")
    assert api.calls == [{"sort_dir": "asc", "marker": "id40", "limit": "21"}]
    home, _ = page("?prev_marker=id20")
    assert [s["id"] for s in home.items] == IDS[:20] and home.prev_marker is None and home.next_marker == "id19"
    assert home.query("id19") == "?marker=id19" and home.query("id20", prev=True) == "?prev_marker=id20"


def test_lookups_are_reused_until_they_expire_or_are_forgotten() -> None:
    sess, fetched = Session("s"), []

    async def fetch() -> int:
        fetched.append(1)
        return len(fetched)

    assert asyncio.run(cached(sess, "k", fetch)) == 1
    assert asyncio.run(cached(sess, "k", fetch)) == 1
    forget(sess, "k")
    assert asyncio.run(cached(sess, "k", fetch)) == 2
    assert asyncio.run(cached(sess, "k", fetch, ttl=0)) == 3


def test_image_patch_changes_only_what_the_form_changed() -> None:
    image = {"name": "a", "min_disk": 0, "min_ram": 0, "visibility": "private", "protected": False}
    assert image_patch(image, {"name": "a", "min_disk": "0", "min_ram": "", "visibility": "private"}) == []
    assert image_patch(image, {"name": " b ", "min_disk": "3", "protected": "on"}) == [
        {"op": "replace", "path": "/name", "value": "b"}, {"op": "replace", "path": "/min_disk", "value": 3},
        {"op": "replace", "path": "/protected", "value": True}]
    for bad in ({"name": ""}, {"name": "a", "min_ram": "x"}, {"name": "a", "min_disk": "-2"},
                {"name": "a", "visibility": "world"}):
        with pytest.raises(FormError):
            image_patch(image, bad)


def test_quota_form_sends_only_changes_and_refuses_bad_values() -> None:
    current = {"compute": {"instances": 10, "cores": 20}, "volume": {"volumes": 10}, "network": {"port": 50}}
    assert quota_changes(current, {"compute.instances": "10", "compute.cores": "-1", "network.port": "60",
                                   "volume.volumes": ""}) == {"compute": {"cores": -1}, "network": {"port": 60}}
    # A quota the service does not have is not sent to it.
    assert quota_changes(current, {"volume.backups": "3"}) == {}
    for bad in ({"compute.instances": "ten"}, {"network.port": "-2"}):
        with pytest.raises(FormError):
            quota_changes(current, bad)


def test_usage_period_and_csv() -> None:
    assert period({"start": "2026-01-01", "end": "2026-01-31"}) == (date(2026, 1, 1), date(2026, 1, 31))
    start, end = period({})
    assert start.day == 1 and start <= end
    for bad in ({"start": "1/1/2026"}, {"start": "2026-02-01", "end": "2026-01-01"}):
        with pytest.raises(FormError):
            period(bad)
    assert cell("=SUM(A1)") == "'=SUM(A1)" and cell("+1") == "'+1" and cell("@x") == "'@x" and cell("web-1") == "web-1"
    report = UsageReport(date(2026, 1, 1), date(2026, 1, 31), vcpu_hours=2.0, servers=[
        {"name": "=cmd", "vcpus": 1, "memory_mb": 64, "local_gb": 1, "hours": 2.0, "uptime": 7200, "state": "active",
         "ended_at": None}])
    text = usage_csv(report, "p")
    assert text.splitlines()[0] == "Usage Report For Period:,2026-01-01,2026-01-31"
    assert "'=cmd,1,64,1,2.00,7200,active" in text and "Active Instances:,1" in text
