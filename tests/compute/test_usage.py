"""Simple tenant usage end to end: openstackclient's usage list/show, Nova's shape (Tempest's eight keys),
deleted servers inside the window, paging from 2.40, windows and refusals."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.compute.test_servers import Nova, boot
from tests.livecloud import LiveCloud

pytestmark = pytest.mark.api

SUMMARY_KEYS = {"tenant_id", "server_usages", "total_local_gb_usage", "total_vcpus_usage", "total_memory_mb_usage",
                "total_hours", "start", "stop"}
SERVER_KEYS = {"ended_at", "flavor", "hours", "instance_id", "local_gb", "memory_mb", "name", "started_at", "state",
               "tenant_id", "uptime", "vcpus"}


def _window() -> dict[str, str]:
    now = datetime.now(UTC).replace(tzinfo=None)
    return {"start": (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.%f"),
            "end": (now + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.%f")}


@pytest.fixture(scope="module")
def servers(live: LiveCloud, fake_host: str, image_id: str) -> Any:
    """One running server and one deleted one in a project of their own."""
    conn = live.project_conn("usage")
    cloud = conn.config.name
    running = boot(live, image_id, "usage-running", cloud=cloud)
    gone = boot(live, image_id, "usage-gone", cloud=cloud)
    time.sleep(0.2)  # so the deleted one ran for a measurable time
    conn.compute.delete_server(gone)
    conn.compute.wait_for_delete(gone, wait=30)
    yield conn.current_project_id, running, gone, cloud
    conn.compute.delete_server(running)
    conn.compute.wait_for_delete(running, wait=30)


def test_project_usage_counts_running_and_deleted_servers(live: LiveCloud, servers: Any) -> None:
    project, running, gone, cloud = servers
    r = Nova(live, cloud)("GET", f"/os-simple-tenant-usage/{project}", params=_window())
    assert r.status_code == 200, r.text
    usage = r.json()["tenant_usage"]
    assert set(usage) == SUMMARY_KEYS and usage["tenant_id"] == project
    by_id = {u["instance_id"]: u for u in usage["server_usages"]}
    assert set(by_id) == {running.id, gone.id}
    assert all(set(u) == SERVER_KEYS for u in by_id.values())
    live_one, dead = by_id[running.id], by_id[gone.id]
    assert live_one["state"] == "active" and live_one["ended_at"] is None and live_one["flavor"] == "m1.nano"
    assert dead["state"] == "terminated" and dead["ended_at"] is not None
    assert dead["started_at"] < dead["ended_at"] and dead["hours"] > 0 and dead["uptime"] >= 0
    nano = live.conn("admin").compute.get_flavor("42")
    assert (live_one["vcpus"], live_one["memory_mb"], live_one["local_gb"]) == (nano.vcpus, nano.ram, nano.disk)
    assert usage["total_hours"] == pytest.approx(live_one["hours"] + dead["hours"])
    assert usage["total_memory_mb_usage"] == pytest.approx(nano.ram * usage["total_hours"])
    assert usage["total_vcpus_usage"] == pytest.approx(nano.vcpus * usage["total_hours"])

    # A window before the servers launched has nothing; the project's summary is then an empty object.
    before = Nova(live, cloud)("GET", f"/os-simple-tenant-usage/{project}",
                                    params={"start": "2001-01-01T00:00:00", "end": "2001-01-02T00:00:00"})
    assert before.json() == {"tenant_usage": {}}


def test_paging_from_2_40(live: LiveCloud, servers: Any) -> None:
    project, running, gone, _ = servers
    nova = Nova(live, "admin")
    first = nova("GET", f"/os-simple-tenant-usage/{project}", params={**_window(), "limit": "1"}).json()
    assert len(first["tenant_usage"]["server_usages"]) == 1
    (link,) = first["tenant_usage_links"]
    assert link["rel"] == "next" and f"/os-simple-tenant-usage/{project}?" in link["href"]
    query = {k: v[0] for k, v in parse_qs(urlsplit(link["href"]).query).items()}
    assert query["marker"] == first["tenant_usage"]["server_usages"][0]["instance_id"] and query["limit"] == "1"
    second = nova("GET", f"/os-simple-tenant-usage/{project}", params=query).json()
    ids = [first["tenant_usage"]["server_usages"][0]["instance_id"],
           second["tenant_usage"]["server_usages"][0]["instance_id"]]
    assert sorted(ids) == sorted([running.id, gone.id])
    query["marker"] = ids[1]
    assert nova("GET", f"/os-simple-tenant-usage/{project}", params=query).json()["tenant_usage"] == {}
    query["marker"] = "not-a-server"
    assert nova("GET", f"/os-simple-tenant-usage/{project}", params=query).status_code == 400
    # Before 2.40 there is no paging: limit is not a parameter and no links come back.
    old = Nova(live, "admin", "2.39")("GET", f"/os-simple-tenant-usage/{project}", params={**_window(), "limit": "1"})
    assert len(old.json()["tenant_usage"]["server_usages"]) == 2 and "tenant_usage_links" not in old.json()
    listing = nova("GET", "/os-simple-tenant-usage", params={**_window(), "detailed": "1"}).json()
    mine = next(u for u in listing["tenant_usages"] if u["tenant_id"] == project)
    assert set(mine) == SUMMARY_KEYS and {u["instance_id"] for u in mine["server_usages"]} == {running.id, gone.id}
    brief = nova("GET", "/os-simple-tenant-usage", params=_window()).json()["tenant_usages"]
    assert all("server_usages" not in u for u in brief)


def test_refusals(live: LiveCloud, servers: Any) -> None:
    project = servers[0]
    demo, admin = Nova(live, "demo"), Nova(live, "admin")
    assert demo("GET", "/os-simple-tenant-usage", params=_window()).status_code == 403
    assert demo("GET", f"/os-simple-tenant-usage/{project}", params=_window()).status_code == 403
    backwards = {"start": "2030-01-02T00:00:00", "end": "2030-01-01T00:00:00"}
    assert admin("GET", "/os-simple-tenant-usage", params=backwards).status_code == 400
    assert admin("GET", "/os-simple-tenant-usage", params={"start": "yesterday"}).status_code == 400
    assert admin("GET", "/os-simple-tenant-usage", params={**_window(), "limit": "-1"}).status_code == 400
    assert admin("GET", "/os-simple-tenant-usage", params={**_window(), "colour": "red"}).status_code == 400
    assert Nova(live, "admin", "2.74")("GET", "/os-simple-tenant-usage",
                                       params={**_window(), "colour": "red"}).status_code == 200


def _count(servers: Any) -> int:
    return len(servers) if isinstance(servers, list) else int(servers or 0)  # JSON output keeps the list


def test_usage_commands(live: LiveCloud, servers: Any) -> None:
    project, cloud = servers[0], servers[3]
    shown = live.cli_json("usage", "show", cloud=cloud)
    assert shown["Project"] == project and _count(shown["Servers"]) == 2 and float(shown["RAM MB-Hours"]) > 0
    rows = {r["Project"]: r for r in live.cli_json("usage", "list")}
    assert _count(rows[project]["Servers"]) == 2 and float(rows[project]["CPU Hours"]) > 0
    table = live.cli("usage", "list").stdout  # the table names the project
    assert any(cloud in line and "| 2 " in line for line in table.splitlines()), table
    by_admin = live.cli_json("usage", "show", "--project", cloud)
    assert _count(by_admin["Servers"]) == 2
    assert live.cli("usage", "list", cloud=cloud, check=False).returncode != 0
