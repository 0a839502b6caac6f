"""The dashboard's edit forms and the panels added after the first cut, over plain HTTP (api tier): Edit
Instance / Image / Volume, Server Groups (and the launch wizard's step), the Overview's usage over a period with
its CSV, Identity > Projects > Modify Quotas, Admin > Host Aggregates and Admin > Defaults; for each, the bad
input that changes nothing, another project's resource, and the member who may not."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import pytest
import requests

from tests.dashboard.conftest import csrf_of, http_login
from tests.livecloud import LiveCloud
from tests.waiting import wait_for

pytestmark = pytest.mark.api

HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def proj(live: LiveCloud) -> Any:
    """A project of its own (cloud name in clouds.yaml), a public test image and the smallest flavor."""
    conn = live.conn(live.project_conn("panels").config.name)
    admin = live.conn("admin")
    image = admin.image.create_image(name=f"panels-img-{uuid.uuid4().hex[:6]}", data=b"\0" * 4096, disk_format="raw",
                                     container_format="bare", visibility="public")
    flavor = min(conn.compute.flavors(), key=lambda f: f.ram)
    yield conn, image.id, flavor.id
    for server in conn.compute.servers():
        conn.compute.delete_server(server)
    for server in conn.compute.servers():
        conn.compute.wait_for_delete(server, wait=60)
    admin.image.delete_image(image.id)


def _login(live: LiveCloud, conn: Any) -> tuple[requests.Session, str]:
    return http_login(live, conn.config.name), live.url("dashboard")


def _post(s: requests.Session, url: str, page: str, data: dict[str, str]) -> requests.Response:
    """A form sent as the browser sends it: with the CSRF token of the page it is on."""
    token = csrf_of(s.get(page, timeout=30).text)
    return s.post(url, data={"csrf_token": token, **data}, timeout=30)


def _server(conn: Any, image: str, flavor: str, name: str, **extra: Any) -> Any:
    server = conn.compute.create_server(name=name, image_id=image, flavor_id=flavor, networks="none", **extra)
    return conn.compute.wait_for_server(server, status="ACTIVE", wait=60)


def test_edit_instance_name_and_description(live: LiveCloud, proj: Any) -> None:
    conn, image, flavor = proj
    server = _server(conn, image, flavor, "edit-me")
    s, base = _login(live, conn)
    page = f"{base}/project/instances/{server.id}/"
    assert 'id="form-edit-instance"' in s.get(page, timeout=30).text
    act = f"{page}action"
    r = _post(s, act, page, {"action": "update", "name": HOSTILE, "description": "renamed", "next": page.replace(base, "")})
    assert r.status_code == 200 and "request sent" in r.text
    shown = conn.compute.get_server(server.id)
    assert shown.name == HOSTILE and shown.description == "renamed"
    assert HOSTILE not in r.text and "&lt;img src=x onerror=alert(1)&gt;" in r.text
    # No name: refused before any call, the instance keeps its name.
    r = _post(s, act, page, {"action": "update", "name": "  "})
    assert "Error: Choose a name." in r.text and conn.compute.get_server(server.id).name == HOSTILE
    # Another project's instance: the API's answer, nothing renamed.
    other, _ = _login(live, live.conn("demo"))
    r = _post(other, act, f"{base}/project/", {"action": "update", "name": "stolen"})
    assert "Error:" in r.text and conn.compute.get_server(server.id).name == HOSTILE


def test_edit_image(live: LiveCloud, proj: Any) -> None:
    conn = proj[0]
    image = conn.image.create_image(name="edit-img", data=b"\0" * 1024, disk_format="raw", container_format="bare")
    s, base = _login(live, conn)
    page = f"{base}/project/images/{image.id}/"
    assert 'id="edit-image"' in s.get(page, timeout=30).text
    # A private image's owner may not make it public: the option is not offered to a member.
    assert 'value="public"' not in s.get(page, timeout=30).text
    r = _post(s, f"{page}update/", page, {"name": "edited-img", "visibility": "shared", "min_disk": "2", "min_ram": "64",
                                          "protected": "on"})
    assert r.status_code == 200 and "Updated image edited-img" in r.text
    got = conn.image.get_image(image.id)
    assert (got.name, got.visibility, got.min_disk, got.min_ram, got.is_protected) == ("edited-img", "shared", 2, 64, True)
    for bad, message in (({"name": "x", "min_disk": "two"}, "Minimum Disk must be a whole number."),
                         ({"name": "x", "min_ram": "-1"}, "Minimum RAM must not be negative."),
                         ({"name": ""}, "Image Name is required."),
                         ({"name": "x", "visibility": "everyone"}, "Unknown visibility")):
        r = _post(s, f"{page}update/", page, bad)
        assert message in r.text, bad
    assert conn.image.get_image(image.id).name == "edited-img"
    # Another project cannot see it, so cannot edit it.
    other, _ = _login(live, live.conn("demo"))
    r = _post(other, f"{page}update/", f"{base}/project/", {"name": "stolen"})
    assert "Error:" in r.text and conn.image.get_image(image.id).name == "edited-img"
    assert other.get(page, timeout=30).status_code == 404
    # The form without a CSRF token is refused.
    assert s.post(f"{page}update/", data={"name": "no-token"}, timeout=30).status_code == 403
    _post(s, f"{page}update/", page, {"name": "edited-img", "visibility": "private"})
    assert conn.image.get_image(image.id).is_protected is False
    conn.image.delete_image(image.id)


def test_edit_volume(live: LiveCloud, proj: Any) -> None:
    conn = proj[0]
    volume = conn.block_storage.create_volume(size=1, name="edit-vol")
    conn.block_storage.wait_for_status(volume, "available", wait=60)
    s, base = _login(live, conn)
    page = f"{base}/project/volumes/{volume.id}/"
    r = _post(s, f"{page}action", page, {"action": "update", "name": "edited-vol", "description": "d", "bootable": "on"})
    assert r.status_code == 200 and "request sent" in r.text
    got = conn.block_storage.get_volume(volume.id)
    assert (got.name, got.description, str(got.is_bootable).lower()) == ("edited-vol", "d", "true")
    _post(s, f"{page}action", page, {"action": "update", "name": "edited-vol", "description": "", "bootable": "off"})
    assert str(conn.block_storage.get_volume(volume.id).is_bootable).lower() == "false"
    other, _ = _login(live, live.conn("demo"))
    r = _post(other, f"{page}action", f"{base}/project/", {"action": "update", "name": "stolen"})
    assert "Error:" in r.text and conn.block_storage.get_volume(volume.id).name == "edited-vol"
    conn.block_storage.delete_volume(volume)


def test_server_groups_panel_and_the_launch_wizard_step(live: LiveCloud, proj: Any) -> None:
    conn, image, flavor = proj
    s, base = _login(live, conn)
    panel = f"{base}/project/server_groups/"
    name = f"sg-{uuid.uuid4().hex[:6]}"
    r = _post(s, f"{panel}create/", panel, {"name": name, "policy": "soft-anti-affinity"})
    assert r.status_code == 200 and f"Created server group {name}" in r.text and "soft-anti-affinity" in r.text
    group = next(g for g in conn.compute.server_groups() if g.name == name)
    r = _post(s, f"{panel}create/", panel, {"name": "bad", "policy": "everywhere"})
    assert "Choose a policy" in r.text and not any(g.name == "bad" for g in conn.compute.server_groups())
    wizard = s.get(f"{base}/project/instances/launch/", timeout=30).text
    assert f'<option value="{group.id}">{name}' in wizard
    r = _post(s, f"{base}/project/instances/launch/", f"{base}/project/instances/launch/",
              {"name": "in-group", "flavor": flavor, "source_type": "image", "source_id": image, "count": "1",
               "server_group": group.id})
    assert "Launched instance in-group" in r.text
    server = wait_for(lambda: next((x for x in conn.compute.servers() if x.name == "in-group"), None), 30, "the server")
    wait_for(lambda: server.id in (conn.compute.get_server_group(group.id).member_ids or []), 30, "group membership")
    assert "in-group" in s.get(panel, timeout=30).text
    # Another project's group: not in its panel, and its delete is the API's error.
    other, _ = _login(live, live.conn("demo"))
    assert name not in other.get(panel, timeout=30).text
    r = _post(other, f"{panel}{group.id}/delete/", panel, {})
    assert "Error:" in r.text and conn.compute.get_server_group(group.id) is not None
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=60)
    r = _post(s, f"{panel}{group.id}/delete/", panel, {})
    assert "Deleted server group" in r.text and not any(g.id == group.id for g in conn.compute.server_groups())


def test_overview_usage_over_a_period_with_csv(live: LiveCloud, proj: Any) -> None:
    conn, image, flavor = proj
    _server(conn, image, flavor, "=HYPERLINK(\"x\")")
    s, base = _login(live, conn)
    page = s.get(f"{base}/project/", timeout=30)
    assert page.status_code == 200 and 'id="usage-summary"' in page.text and "=HYPERLINK(&#34;x&#34;)" in page.text
    r = s.get(f"{base}/project/?start=2020-01-01&end=2099-12-31&format=csv", timeout=30)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    assert r.headers["Content-Disposition"].startswith("attachment; filename=") and ".csv" in r.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["Usage Report For Period:", "2020-01-01", "2099-12-31"]
    header = rows.index(["Instance Name", "VCPUs", "RAM (MB)", "Disk (GB)", "Usage (Hours)",
                         "Time since created (Seconds)", "State"])
    names = [row[0] for row in rows[header + 1:]]
    # A name a spreadsheet would run as a formula is written as text.
    assert "'=HYPERLINK(\"x\")" in names
    # A period before the project existed: nothing used.
    old = list(csv.reader(io.StringIO(s.get(f"{base}/project/?start=2001-01-01&end=2001-01-31&format=csv", timeout=30).text)))
    assert old[-1][0] == "Instance Name"
    for query in ("start=yesterday", "start=2026-02-01&end=2026-01-01"):
        r = s.get(f"{base}/project/?{query}", timeout=30)
        assert r.status_code == 400 and ("YYYY-MM-DD" in r.text or "before its start" in r.text)


def test_identity_project_quotas(live: LiveCloud, proj: Any) -> None:
    conn = proj[0]
    pid = conn.current_project_id
    admin, base = _login(live, live.conn("admin"))
    page = f"{base}/identity/projects/{pid}/quotas/"
    text = admin.get(page, timeout=30).text
    assert 'name="compute.instances"' in text and 'name="volume.volumes"' in text and 'name="network.port"' in text
    assert f'href="/identity/projects/{pid}/quotas/"' in admin.get(f"{base}/identity/projects/", timeout=30).text
    r = _post(admin, page, page, {"compute.instances": "17", "volume.volumes": "13", "network.router": "4"})
    assert "Modified the project&#39;s quotas." in r.text
    sdk = live.conn("admin")
    assert sdk.get_compute_quotas(pid).instances == 17
    assert sdk.get_volume_quotas(pid).volumes == 13
    assert sdk.get_network_quotas(pid).routers == 4
    # One bad value: nothing changes, in any service.
    r = _post(admin, page, page, {"compute.instances": "18", "network.router": "-5"})
    assert "must be -1 (unlimited) or more" in r.text
    assert sdk.get_compute_quotas(pid).instances == 17 and sdk.get_network_quotas(pid).routers == 4
    member, _ = _login(live, conn)
    assert member.get(page, timeout=30).status_code == 403
    r = _post(member, page, f"{base}/project/", {"compute.instances": "1000"})
    assert r.status_code == 403 and sdk.get_compute_quotas(pid).instances == 17


def test_admin_host_aggregates(live: LiveCloud) -> None:
    admin, base = _login(live, live.conn("admin"))
    panel = f"{base}/admin/aggregates/"
    name = f"agg-{uuid.uuid4().hex[:6]}"
    r = _post(admin, f"{panel}create/", panel, {"name": name, "availability_zone": f"{name}-az"})
    assert f"Created host aggregate {name}" in r.text
    sdk = live.conn("admin")
    agg = sdk.compute.find_aggregate(name)
    host = live.hosts[0]
    act = f"{panel}{agg.id}/action"
    assert "Add host: done" in _post(admin, act, panel, {"action": "add_host", "host": host}).text
    assert _post(admin, act, panel, {"action": "set_metadata", "metadata": "ssd=true\ngpu=2"}).status_code == 200
    got = sdk.compute.get_aggregate(agg.id)
    assert host in got.hosts and got.metadata.get("ssd") == "true" and got.metadata.get("gpu") == "2"
    r = _post(admin, act, panel, {"action": "set_metadata", "metadata": "no equals sign"})
    assert "Metadata lines are key=value" in r.text
    _post(admin, act, panel, {"action": "set_metadata", "metadata": "gpu="})
    assert "gpu" not in sdk.compute.get_aggregate(agg.id).metadata
    member, _ = _login(live, live.conn("demo"))
    assert member.get(panel, timeout=30).status_code == 403
    r = _post(member, act, f"{base}/project/", {"action": "delete"})
    assert r.status_code == 403 and sdk.compute.find_aggregate(name) is not None
    _post(admin, act, panel, {"action": "remove_host", "host": host})
    assert "Delete: done" in _post(admin, act, panel, {"action": "delete"}).text
    assert sdk.compute.find_aggregate(name) is None


def test_admin_defaults(live: LiveCloud) -> None:
    admin, base = _login(live, live.conn("admin"))
    page = f"{base}/admin/defaults/"
    text = admin.get(page, timeout=30).text
    assert 'id="compute-defaults"' in text and 'id="volume-defaults"' in text and 'id="network-defaults"' in text
    token = live.conn("admin").auth_token
    url = f"{live.url('compute')}/os-quota-class-sets/default"

    def injected_files() -> int:
        return int(requests.get(url, headers={"X-Auth-Token": token}, timeout=30).json()["quota_class_set"]["injected_files"])

    before = injected_files()
    try:
        r = _post(admin, f"{page}update/", page, {"injected_files": str(before + 3)})
        assert "Updated the default quotas." in r.text and injected_files() == before + 3
        r = _post(admin, f"{page}update/", page, {"injected_files": "lots"})
        assert "must be a whole number" in r.text and injected_files() == before + 3
        member, _ = _login(live, live.conn("demo"))
        assert member.get(page, timeout=30).status_code == 403
        r = _post(member, f"{page}update/", f"{base}/project/", {"injected_files": "0"})
        assert r.status_code == 403 and injected_files() == before + 3
    finally:
        _post(admin, f"{page}update/", page, {"injected_files": str(before)})
    assert injected_files() == before


def test_topology_refreshes_follow_renames_and_deletes(live: LiveCloud, proj: Any) -> None:
    """The topology lists the instances whole once, then asks only for changes: a rename, a new instance and a
    deleted one must all show on the next refresh all the same."""
    conn, image, flavor = proj
    kept = _server(conn, image, flavor, "topo-kept")
    doomed = _server(conn, image, flavor, "topo-doomed")
    s, base = _login(live, conn)
    page = f"{base}/project/network_topology/?partial=1"
    first = s.get(page, timeout=30).text
    assert f'data-id="{kept.id}"' in first and f'data-id="{doomed.id}"' in first
    conn.compute.update_server(kept, name="topo-renamed")
    conn.compute.delete_server(doomed)
    conn.compute.wait_for_delete(doomed, wait=60)
    born = _server(conn, image, flavor, "topo-born")
    later = s.get(page, timeout=30).text
    assert "topo-renamed" in later and "topo-kept" not in later
    assert f'data-id="{doomed.id}"' not in later and f'data-id="{born.id}"' in later
    # Another project's instances never show.
    assert "topo-renamed" not in http_login(live, "demo").get(page, timeout=30).text


def test_static_files_are_versioned_and_kept_by_the_browser(live: LiveCloud) -> None:
    base = live.url("dashboard")
    page = requests.get(f"{base}/auth/login/", timeout=30)
    assert page.headers["Cache-Control"] == "no-store"
    for name in ("dashboard.css", "dashboard.js"):
        url = next(part.split('"')[0] for part in page.text.split(f"/static/{name}?v=")[1:])
        r = requests.get(f"{base}/static/{name}?v={url}", timeout=30)
        assert r.status_code == 200 and "immutable" in r.headers["Cache-Control"]
        assert r.headers["X-Content-Type-Options"] == "nosniff"
