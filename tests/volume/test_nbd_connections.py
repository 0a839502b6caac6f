"""Connection info on a cloud whose volume node exports volumes over NBD (``[volume] nbd_host``): every attachment
(compute's, the attachments API's, the legacy ``os-initialize_connection``'s) gets an export of its own, with a
secret name and TLS-PSK key, which the volume agent serves while the attachment lives; other projects see none."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.livecloud import LiveCloud
from tests.waiting import wait_for
from tinystack.volume.agent import VolumeAgent
from tinystack.volume.drivers.fake import FakeExporter

pytestmark = pytest.mark.api

NBD_HOST, NBD_PORT = "192.0.2.21", 10811


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCloud]:
    c = LiveCloud(Path(tmp_path_factory.mktemp("nbd")) / "state", volume__driver="fake",
                  volume__nbd_host=NBD_HOST, volume__nbd_port=str(NBD_PORT))
    try:
        yield c
    finally:
        c.stop()


def served(cloud: LiveCloud) -> set[str]:
    """The attachment ids whose export the volume agent serves now."""
    exporter = cloud.agent(VolumeAgent, cloud.host).exporter
    assert isinstance(exporter, FakeExporter)
    return set(exporter.served)


def wait_served(cloud: LiveCloud, want: set[str], what: str) -> None:
    wait_for(lambda: served(cloud) == want, 20, what, interval=0.05)


def api(cloud: LiveCloud, user: str = "demo") -> tuple[str, dict[str, str]]:
    conn = cloud.conn(user)
    return conn.block_storage.get_endpoint(), {"X-Auth-Token": conn.session.get_token(),
                                               "OpenStack-API-Version": "volume 3.54"}


def volume(cloud: LiveCloud, name: str) -> Any:
    conn = cloud.conn("demo")
    return conn.block_storage.wait_for_status(conn.block_storage.create_volume(name=name, size=1), "available",
                                              wait=30, interval=0.1)


def status(cloud: LiveCloud, volume_id: str, want: str) -> None:
    conn = cloud.conn("demo")
    wait_for(lambda: conn.block_storage.get_volume(volume_id).status == want, 30, f"volume {want}", interval=0.1)


def nbd_data(info: dict[str, Any]) -> dict[str, Any]:
    assert info["driver_volume_type"] == "nbd", info
    data: dict[str, Any] = info["data"]
    assert (data["host"], data["port"], data["tls"]) == (NBD_HOST, NBD_PORT, "psk")
    assert len(data["export"]) >= 32 and len(data["psk_key"]) == 64
    return data


def test_compute_attachment_is_exported_while_it_lives(cloud: LiveCloud) -> None:
    admin, conn = cloud.conn("admin"), cloud.conn("demo")
    image = admin.image.create_image(name="nbd-img", data=b"\0" * 4096, disk_format="raw",
                                     container_format="bare", visibility="public")
    srv = conn.compute.wait_for_server(conn.compute.create_server(name="nbd-srv", image_id=image.id, flavor_id="42",
                                                                  networks="none"), status="ACTIVE", wait=30,
                                       interval=0.1)
    vol, other = volume(cloud, "nbd-a"), volume(cloud, "nbd-b")
    conn.compute.create_volume_attachment(srv, volume=vol)
    conn.compute.create_volume_attachment(srv, volume=other)
    status(cloud, vol.id, "in-use")
    status(cloud, other.id, "in-use")
    url, headers = api(cloud)
    listed = requests.get(f"{url}/attachments/detail", headers=headers, timeout=10).json()["attachments"]
    mine = {a["volume_id"]: a for a in listed if a["volume_id"] in (vol.id, other.id)}
    a, b = (nbd_data(mine[v]["connection_info"]) for v in (vol.id, other.id))
    # Secrets of each attachment's own.
    assert a["export"] != b["export"] and a["psk_key"] != b["psk_key"]
    assert a["psk_identity"] == f"att-{mine[vol.id]['id']}"
    wait_served(cloud, {mine[vol.id]["id"], mine[other.id]["id"]}, "both exports served")

    # Another project sees neither the attachment nor its secrets.
    alt_url, alt = api(cloud, "alt_demo")
    assert requests.get(f"{alt_url}/attachments/{mine[vol.id]['id']}", headers=alt, timeout=10).status_code == 404
    alt_list = requests.get(f"{alt_url}/attachments/detail", headers=alt, timeout=10).json()["attachments"]
    assert not [x for x in alt_list if x["id"] in (mine[vol.id]["id"], mine[other.id]["id"])]

    conn.compute.delete_volume_attachment(srv, vol)
    status(cloud, vol.id, "available")
    wait_served(cloud, {mine[other.id]["id"]}, "the detached volume's export to end")
    conn.compute.delete_server(srv)
    conn.compute.wait_for_delete(srv, wait=30, interval=0.1)
    status(cloud, other.id, "available")
    wait_served(cloud, set(), "no export once the server is gone")
    for v in (vol, other):
        conn.block_storage.delete_volume(v)
    admin.image.delete_image(image)


def test_attachments_api_connect_and_delete(cloud: LiveCloud) -> None:
    vol = volume(cloud, "nbd-api")
    url, headers = api(cloud)
    r = requests.post(f"{url}/attachments", headers=headers, timeout=10, json={"attachment": {
        "volume_uuid": vol.id, "connector": {"host": "compute9", "initiator": "iqn.x"}}})
    assert r.status_code == 200, r.text
    att = r.json()["attachment"]
    data = nbd_data(att["connection_info"])
    assert data["volume_id"] == vol.id and data["access_mode"] == "rw"
    wait_served(cloud, {att["id"]}, "the attachment's export")
    assert requests.delete(f"{url}/attachments/{att['id']}", headers=headers, timeout=10).status_code == 200
    wait_served(cloud, set(), "the export to end with the attachment")
    status(cloud, vol.id, "available")
    cloud.conn("demo").block_storage.delete_volume(vol)


def test_legacy_connection_actions(cloud: LiveCloud) -> None:
    vol = volume(cloud, "nbd-legacy")
    url, headers = api(cloud)

    def action(body: dict[str, Any], url: str = url, headers: dict[str, str] = headers) -> requests.Response:
        return requests.post(f"{url}/volumes/{vol.id}/action", json=body, headers=headers, timeout=10)

    connector = {"host": "compute7", "initiator": "iqn.y"}
    first = action({"os-initialize_connection": {"connector": connector}})
    assert first.status_code == 200, first.text
    data = nbd_data(first.json()["connection_info"])
    # Asked again for the same host: the same export, not a second one.
    again = nbd_data(action({"os-initialize_connection": {"connector": connector}}).json()["connection_info"])
    assert again["export"] == data["export"]
    attachment_id = data["psk_identity"].removeprefix("att-")
    wait_served(cloud, {attachment_id}, "the connection's export")
    # terminate ends what was never attached.
    assert action({"os-terminate_connection": {"connector": connector}}).status_code == 202
    wait_served(cloud, set(), "the export to end with terminate_connection")
    status(cloud, vol.id, "available")

    # reserve, initialize, attach: the connection becomes the attachment (one, with its export); detach ends it.
    assert action({"os-reserve": {}}).status_code == 202
    data = nbd_data(action({"os-initialize_connection": {"connector": connector}}).json()["connection_info"])
    assert action({"os-attach": {"host_name": "compute7", "mountpoint": "/dev/vdb", "mode": "rw"}}).status_code == 202
    shown = cloud.conn("demo").block_storage.get_volume(vol.id)
    assert shown.status == "in-use" and [a["attachment_id"] for a in shown.attachments] == [
        data["psk_identity"].removeprefix("att-")]
    wait_served(cloud, {shown.attachments[0]["attachment_id"]}, "the attached connection's export")
    # Another project: 404, nothing made.
    alt_url, alt = api(cloud, "alt_demo")
    assert action({"os-initialize_connection": {"connector": {"host": "x"}}}, alt_url, alt).status_code == 404
    assert served(cloud) == {shown.attachments[0]["attachment_id"]}
    assert action({"os-detach": {}}).status_code == 202
    wait_served(cloud, set(), "the export to end with the detach")
    status(cloud, vol.id, "available")
    cloud.conn("demo").block_storage.delete_volume(vol)
