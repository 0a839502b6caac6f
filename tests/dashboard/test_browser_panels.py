"""In headless Chromium, as a user clicks: the Instances table's next/prev pages, Edit Instance, a server group
made in its panel and picked in the launch wizard, and the Overview's usage CSV downloaded."""

from __future__ import annotations

import csv
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.dashboard.browser import Browser
from tests.dashboard.conftest import ARTIFACTS
from tests.dashboard.test_browser_day6 import login
from tests.livecloud import LiveCloud
from tests.waiting import wait_for

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def web(chrome: Any, live: LiveCloud) -> Iterator[Browser]:
    yield Browser(chrome, live.url("dashboard"), ARTIFACTS)


def test_paging_edit_server_group_and_usage_csv(web: Browser, live: LiveCloud) -> None:
    b = web
    conn = live.project_conn("brpanels")
    cloud = conn.config.name
    admin = live.conn("admin")
    admin.set_compute_quotas(conn.current_project_id, instances=30, cores=60, ram=200000)
    image = admin.image.create_image(name=f"brp-{uuid.uuid4().hex[:6]}", data=b"\0" * 4096, disk_format="raw",
                                     container_format="bare", visibility="public")
    flavor = min(conn.compute.flavors(), key=lambda f: f.ram)
    try:
        conn.compute.post("/servers", json={"server": {"name": "row", "imageRef": image.id, "flavorRef": flavor.id,
                                                       "networks": "none", "min_count": 22, "max_count": 22}},
                          microversion="2.37").raise_for_status()
        login(b, live, cloud)

        # 22 instances: 20 on the first page, the last 2 behind Next, and Prev back again.
        b.go("/project/instances/")
        assert len(b.all("#instances tbody tr[data-id]")) == 20 and not b.all("#prev-page")
        first = [tr.get_attribute("data-id") for tr in b.all("#instances tbody tr[data-id]")]
        b.click(b.css("#next-page"))
        assert len(b.all("#instances tbody tr[data-id]")) == 2 and not b.all("#next-page")
        b.shot("instances-page-2")
        b.click(b.css("#prev-page"))
        assert [tr.get_attribute("data-id") for tr in b.all("#instances tbody tr[data-id]")] == first

        # Edit Instance from its page.
        b.go(f"/project/instances/{first[0]}/")
        b.fill("#form-edit-instance", {"name": "renamed-in-browser", "description": "from the form"})
        b.no_error()
        b.wait_text("h1", "renamed-in-browser")
        assert conn.compute.get_server(first[0]).description == "from the form"

        # A server group, then the wizard's Server Groups step.
        b.go("/project/server_groups/")
        b.fill("#create-server-group", {"name": "web-tier", "policy": "anti-affinity"})
        b.wait_text("#server-groups", "web-tier")
        b.no_error()
        b.go("/project/instances/launch/")
        assert "Server Groups" in b.css("#step-9").text
        b.fill("#launch-form", {"name": "grouped", "source_id": image.name, "server_group": "web-tier (anti-affinity)"})
        b.no_error()
        group = next(g for g in conn.compute.server_groups() if g.name == "web-tier")
        wait_for(lambda: len(conn.compute.get_server_group(group.id).member_ids or []) == 1, 30, "the group's member")

        # The Overview's usage over this month, and its CSV.
        b.go("/project/")
        b.wait_text(".pager", "Page 1 of 2 (23 instances)")
        assert "Active Instances\n23" in b.css("#usage-summary").text
        shown = [tr.text for tr in b.all("#usage tbody tr")]
        b.shot("overview-usage")
        b.click(b.css("#usage-next"))
        shown += [tr.text for tr in b.all("#usage tbody tr")]
        assert len(shown) == 23 and any(t.startswith("grouped ") for t in shown)
        b.click(b.css("#usage-prev"))
        b.click(b.css("#usage-csv"), navigates=False)
        today = datetime.now(UTC).date()
        saved = b.downloaded(f"{cloud}_usage_{today.replace(day=1).isoformat()}_{today.isoformat()}.csv")
        with saved.open(newline="") as f:
            rows = list(csv.reader(f))
        assert rows[0][0] == "Usage Report For Period:"
        names = [r[0] for r in rows[rows.index(["Instance Name", "VCPUs", "RAM (MB)", "Disk (GB)", "Usage (Hours)",
                                                "Time since created (Seconds)", "State"]) + 1:]]
        # Every instance of the period, not only a page's: the 21 left of the batch (named row-N), and the 2 others.
        assert sorted(names)[:2] == ["grouped", "renamed-in-browser"] and len(names) == 23
    finally:
        for server in conn.compute.servers():
            conn.compute.delete_server(server)
        for server in conn.compute.servers():
            conn.compute.wait_for_delete(server, wait=60)
        admin.image.delete_image(image.id)
