"""Admin > Compute > Instances' Migrate and Live Migrate on a two-node cloud of its own (fake drivers, one
process), clicked over plain HTTP as an administrator: the instance moves to the other node and back; the session
cloud has one node, where both can only be refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.dashboard.conftest import csrf_of, http_login
from tests.livecloud import LiveCloud
from tests.waiting import wait_for

pytestmark = pytest.mark.api

HOST = "OS-EXT-SRV-ATTR:host"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCloud]:
    c = LiveCloud(Path(tmp_path_factory.mktemp("dash-migrate")), nodes=2, network__driver="fake")
    try:
        yield c
    finally:
        c.stop()


def _server(cloud: LiveCloud, server_id: str) -> dict[str, Any]:
    body: dict[str, Any] = cloud.conn("admin").compute.get(f"/servers/{server_id}", microversion="2.79").json()
    return body["server"]


def _settled(cloud: LiveCloud, server_id: str, status: str) -> dict[str, Any]:
    def look() -> dict[str, Any] | None:
        s = _server(cloud, server_id)
        return s if s["status"] == status and not s.get("OS-EXT-STS:task_state") else None

    return wait_for(look, 60, f"{server_id} {status}", interval=0.3)


def test_migrate_and_live_migrate_from_the_admin_panel(cloud: LiveCloud) -> None:
    one, two = cloud.hosts
    sdk = cloud.conn("admin")
    image = sdk.image.create_image(name="mig-img", data=b"\0" * 4096, disk_format="raw", container_format="bare",
                                   visibility="public")
    flavor = min(sdk.compute.flavors(), key=lambda f: f.ram)
    server = sdk.compute.create_server(name="mover", image_id=image.id, flavor_id=flavor.id, networks="none",
                                       availability_zone=f"nova:{one}")
    _settled(cloud, server.id, "ACTIVE")
    assert _server(cloud, server.id)[HOST] == one
    s, base = http_login(cloud, "admin"), cloud.url("dashboard")
    panel = f"{base}/admin/instances/"
    act = f"{panel}{server.id}/action"

    def post(data: dict[str, str]) -> str:
        return s.post(act, data={"csrf_token": csrf_of(s.get(panel, timeout=30).text), **data}, timeout=30).text

    assert "Migrate: request sent" in post({"action": "migrate"})
    assert _settled(cloud, server.id, "VERIFY_RESIZE")[HOST] == two
    sdk.compute.confirm_server_resize(server.id)
    _settled(cloud, server.id, "ACTIVE")
    # Live migration back to the first node, named by the form.
    assert "Live migrate: request sent" in post({"action": "live_migrate", "host": one, "block_migration": "auto"})
    wait_for(lambda: _server(cloud, server.id)[HOST] == one and not _server(cloud, server.id).get(
        "OS-EXT-STS:task_state"), 60, "the live migration back", interval=0.3)
    assert _server(cloud, server.id)["status"] == "ACTIVE"
    # A host that does not exist: the API's refusal on the page, the instance where it was.
    text = post({"action": "live_migrate", "host": "no-such-host"})
    assert "Error:" in text and _server(cloud, server.id)[HOST] == one
    sdk.compute.delete_server(server.id)
    sdk.compute.wait_for_delete(server, wait=60)
    sdk.image.delete_image(image.id)
