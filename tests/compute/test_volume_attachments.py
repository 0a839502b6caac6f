"""os-volume_attachments against a live cloud with the fake compute driver: openstacksdk, the CLI and raw HTTP
for Nova's microversioned bodies; the volume's Cinder status follows every step."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from tests.compute.test_servers import Nova, boot, wait
from tests.livecloud import LiveCloud
from tinystack.compute.agent import ComputeAgent
from tinystack.compute.volumes import device_letters

pytestmark = pytest.mark.api


@pytest.fixture(scope="module")
def demo(live: LiveCloud) -> Nova:
    return Nova(live, "demo")


def make_volume(live: LiveCloud, name: str, cloud: str = "demo", size: int = 1) -> Any:
    conn = live.conn(cloud)
    vol = conn.block_storage.create_volume(name=name, size=size)
    return conn.block_storage.wait_for_status(vol, "available", wait=30, interval=0.2)


def volume_status(live: LiveCloud, volume_id: str, want: str, cloud: str = "demo", timeout: float = 30) -> Any:
    conn = live.conn(cloud)
    deadline = time.monotonic() + timeout
    while True:
        vol = conn.block_storage.get_volume(volume_id)
        if vol.status == want or time.monotonic() > deadline:
            assert vol.status == want, f"volume {volume_id} is {vol.status}, not {want}"
            return vol
        time.sleep(0.1)


def guest_volumes(live: LiveCloud, fake_host: str, server_id: str) -> list[str]:
    driver = live.agent(ComputeAgent, fake_host).driver
    return list(driver.storage.guests[server_id].volumes)


@pytest.mark.parametrize("index,name", [(0, "a"), (1, "b"), (25, "z"), (26, "aa"), (27, "ab"), (701, "zz")])
def test_device_letters(index: int, name: str) -> None:
    assert device_letters(index) == name


def test_attach_list_show_detach(live: LiveCloud, fake_host: str, image_id: str, demo: Nova) -> None:
    conn = live.conn("demo")
    server = boot(live, image_id, "vol-attach")
    vol = make_volume(live, "va1")
    att = conn.compute.create_volume_attachment(server, volume_id=vol.id)
    assert att.volume_id == vol.id and att.device == "/dev/vdb"
    got = volume_status(live, vol.id, "in-use")
    assert [a["server_id"] for a in got.attachments] == [server.id]
    assert guest_volumes(live, fake_host, server.id) == [vol.id]

    listed = demo("GET", f"/servers/{server.id}/os-volume_attachments").json()["volumeAttachments"]
    assert listed == [{"volumeId": vol.id, "serverId": server.id, "device": "/dev/vdb", "tag": None,
                       "delete_on_termination": False, "attachment_id": listed[0]["attachment_id"],
                       "bdm_uuid": listed[0]["bdm_uuid"]}]
    assert listed[0]["attachment_id"] == got.attachments[0]["attachment_id"]
    old = Nova(live, "demo", "2.1")
    shown = old("GET", f"/servers/{server.id}/os-volume_attachments/{vol.id}").json()["volumeAttachment"]
    assert shown == {"id": vol.id, "volumeId": vol.id, "serverId": server.id, "device": "/dev/vdb"}
    view = demo("GET", f"/servers/{server.id}").json()["server"]
    assert view["os-extended-volumes:volumes_attached"] == [{"id": vol.id, "delete_on_termination": False}]
    assert old("GET", f"/servers/{server.id}").json()["server"]["os-extended-volumes:volumes_attached"] == [
        {"id": vol.id}]
    actions = [a["action"] for a in demo("GET", f"/servers/{server.id}/os-instance-actions").json()["instanceActions"]]
    assert actions[0] == "attach_volume"

    # A second volume takes the next name; detaching the first leaves the second where it is.
    vol2 = make_volume(live, "va2")
    r = demo("POST", f"/servers/{server.id}/os-volume_attachments",
             json={"volumeAttachment": {"volumeId": vol2.id, "tag": "data", "delete_on_termination": True}})
    assert r.status_code == 200, r.text
    assert r.json()["volumeAttachment"] == {"id": vol2.id, "serverId": server.id, "volumeId": vol2.id,
                                            "device": "/dev/vdc", "tag": "data", "delete_on_termination": True}
    volume_status(live, vol2.id, "in-use")
    conn.compute.delete_volume_attachment(server, vol.id)
    volume_status(live, vol.id, "available")
    assert guest_volumes(live, fake_host, server.id) == [vol2.id]
    assert [a.volume_id for a in conn.compute.volume_attachments(server)] == [vol2.id]
    assert demo("GET", f"/servers/{server.id}/os-volume_attachments/{vol.id}").status_code == 404
    assert demo("GET", f"/servers/{server.id}").json()["server"]["os-extended-volumes:volumes_attached"] == [
        {"id": vol2.id, "delete_on_termination": True}]

    # 2.85: delete_on_termination can change in place; another volume would be a swap.
    r = demo("PUT", f"/servers/{server.id}/os-volume_attachments/{vol2.id}",
             json={"volumeAttachment": {"volumeId": vol2.id, "delete_on_termination": False}})
    assert r.status_code == 202, r.text
    shown = demo("GET", f"/servers/{server.id}/os-volume_attachments/{vol2.id}").json()["volumeAttachment"]
    assert shown["delete_on_termination"] is False and "id" not in shown
    r = demo("PUT", f"/servers/{server.id}/os-volume_attachments/{vol2.id}",
             json={"volumeAttachment": {"volumeId": vol.id}})
    assert r.status_code == 403  # swapping is admin-only
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=30, interval=0.1)
    volume_status(live, vol2.id, "available")
    conn.block_storage.delete_volume(vol)
    conn.block_storage.delete_volume(vol2)


def test_refusals(live: LiveCloud, fake_host: str, image_id: str, demo: Nova) -> None:
    conn = live.conn("demo")
    server = boot(live, image_id, "vol-refusals")
    other = boot(live, image_id, "vol-refusals-2")
    vol = make_volume(live, "vr1")
    path = f"/servers/{server.id}/os-volume_attachments"

    r = demo("POST", path, json={"volumeAttachment": {"volumeId": str(uuid.uuid4())}})
    assert r.status_code == 404 and "itemNotFound" in r.json(), r.text
    r = demo("POST", path, json={"volumeAttachment": {"volumeId": "not-a-uuid"}})
    assert r.status_code == 400, r.text
    r = demo("POST", path, json={"volumeAttachment": {"volumeId": vol.id, "device": "vdb"}})
    assert r.status_code == 400, r.text
    assert Nova(live, "demo", "2.48")("POST", path, json={"volumeAttachment": {"volumeId": vol.id,
                                                                                "tag": "x"}}).status_code == 400
    assert demo("DELETE", f"{path}/{vol.id}").status_code == 404  # not attached

    assert demo("POST", path, json={"volumeAttachment": {"volumeId": vol.id}}).status_code == 200
    volume_status(live, vol.id, "in-use")
    # In use: on this server again, or on another one.
    r = demo("POST", path, json={"volumeAttachment": {"volumeId": vol.id}})
    assert r.status_code == 400 and "badRequest" in r.json(), r.text
    r = demo("POST", f"/servers/{other.id}/os-volume_attachments", json={"volumeAttachment": {"volumeId": vol.id}})
    assert r.status_code == 400, r.text

    # Another project sees neither the server nor the volume.
    alt = Nova(live, "alt_demo")
    assert alt("GET", path).status_code == 404
    assert alt("DELETE", f"{path}/{vol.id}").status_code == 404
    alt_conn = live.conn("alt_demo")
    alt_server = boot(live, image_id, "vol-alt", cloud="alt_demo")
    spare = make_volume(live, "vr-spare")
    r = alt("POST", f"/servers/{alt_server.id}/os-volume_attachments", json={"volumeAttachment": {"volumeId": spare.id}})
    assert r.status_code == 404, r.text
    assert demo("POST", f"/servers/{alt_server.id}/os-volume_attachments",
                json={"volumeAttachment": {"volumeId": spare.id}}).status_code == 404

    # States Nova refuses: a suspended server; a locked one for its (non-admin) owner.
    conn.compute.suspend_server(other)
    wait(live, other, "SUSPENDED")
    r = demo("POST", f"/servers/{other.id}/os-volume_attachments", json={"volumeAttachment": {"volumeId": spare.id}})
    assert r.status_code == 409 and "conflictingRequest" in r.json(), r.text
    conn.compute.lock_server(server)
    assert demo("DELETE", f"{path}/{vol.id}").status_code == 409
    conn.compute.unlock_server(server)
    volume_status(live, spare.id, "available")  # nothing was reserved by the refusals

    assert demo("DELETE", f"{path}/{vol.id}").status_code == 202
    volume_status(live, vol.id, "available")
    for s in (server, other):
        conn.compute.delete_server(s)
    alt_conn.compute.delete_server(alt_server)
    conn.compute.wait_for_delete(server, wait=30, interval=0.1)
    conn.block_storage.delete_volume(vol)
    conn.block_storage.delete_volume(spare)


def test_stopped_server_boots_with_its_volumes(live: LiveCloud, fake_host: str, image_id: str) -> None:
    conn = live.conn("demo")
    server = boot(live, image_id, "vol-stopped")
    conn.compute.stop_server(server)
    wait(live, server, "SHUTOFF")
    vol = make_volume(live, "vs1")
    conn.compute.create_volume_attachment(server, volume_id=vol.id)
    volume_status(live, vol.id, "in-use")  # nothing to hotplug: the next boot has it
    assert guest_volumes(live, fake_host, server.id) == []
    conn.compute.start_server(server)
    wait(live, server, "ACTIVE")
    assert guest_volumes(live, fake_host, server.id) == [vol.id]
    conn.compute.stop_server(server)
    wait(live, server, "SHUTOFF")
    conn.compute.delete_volume_attachment(server, vol.id)
    volume_status(live, vol.id, "available")
    conn.compute.start_server(server)
    wait(live, server, "ACTIVE")
    assert guest_volumes(live, fake_host, server.id) == []
    conn.compute.delete_server(server)
    conn.block_storage.delete_volume(vol)


def test_failed_hotplug_gives_the_volume_back(live: LiveCloud, fake_host: str, image_id: str, demo: Nova) -> None:
    from tinystack.compute.drivers.base import DriverError

    conn = live.conn("demo")
    server = boot(live, image_id, "vol-fail")
    vol = make_volume(live, "vf1")
    driver = live.agent(ComputeAgent, fake_host).driver
    driver.fail_on["attach_volume"] = DriverError("the hypervisor refused the file")
    try:
        assert demo("POST", f"/servers/{server.id}/os-volume_attachments",
                    json={"volumeAttachment": {"volumeId": vol.id}}).status_code == 200
        volume_status(live, vol.id, "available")
    finally:
        driver.fail_on.pop("attach_volume", None)
    deadline = time.monotonic() + 10
    while demo("GET", f"/servers/{server.id}/os-volume_attachments").json()["volumeAttachments"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert wait(live, server, "ACTIVE").status == "ACTIVE"  # the server itself is fine
    conn.compute.delete_server(server)
    conn.block_storage.delete_volume(vol)


def test_detach_the_guest_never_releases_rolls_back_to_in_use(live: LiveCloud, fake_host: str, image_id: str,
                                                               demo: Nova) -> None:
    """As Nova: once the agent's bounded tries are over the volume is in-use again, still attached, and the
    detach_volume action's event says why (``openstack server event show``)."""
    conn = live.conn("demo")
    server = boot(live, image_id, "vol-stuck")
    vol = make_volume(live, "vstuck")
    conn.compute.create_volume_attachment(server, volume_id=vol.id)
    volume_status(live, vol.id, "in-use")
    driver = live.agent(ComputeAgent, fake_host).driver
    driver.unplug_ignored.add(vol.id)
    try:
        conn.compute.delete_volume_attachment(server, vol.id)  # detaching, then (the fake gives up at once) back
        deadline = time.monotonic() + 30
        while True:  # in-use again, with the mapping settled back to attached
            back = conn.block_storage.get_volume(vol.id)
            listed = demo("GET", f"/servers/{server.id}/os-volume_attachments").json()["volumeAttachments"]
            if back.status == "in-use" and listed:
                break
            assert time.monotonic() < deadline, f"volume {vol.id} is {back.status}, attachments {listed}"
            time.sleep(0.1)
        assert [a["server_id"] for a in back.attachments] == [server.id]
        assert [a["volumeId"] for a in listed] == [vol.id]
        assert guest_volumes(live, fake_host, server.id) == [vol.id]
        admin = Nova(live, "admin", "2.84")
        action = admin("GET", f"/servers/{server.id}/os-instance-actions").json()["instanceActions"][0]
        assert action["action"] == "detach_volume"
        shown = admin("GET", f"/servers/{server.id}/os-instance-actions/{action['request_id']}").json()
        event = shown["instanceAction"]["events"][0]
        assert event["event"] == "compute_detach_volume" and event["result"] == "Error"
        assert vol.id in event["details"] and "did not release" in event["details"]
        events = live.cli_json("server", "event", "show", server.id, action["request_id"])
        assert "could not be detached" in str(events)
        assert wait(live, server, "ACTIVE").status == "ACTIVE"  # the server itself is fine
        # The volume stays wanted: the agent does not keep trying to unplug it.
        tries = driver.calls.count(("detach_volume", server.id))
        assert tries >= 3  # [compute] volume_detach_attempts, each one of the driver's bounded waits
        live.call(live.agent(ComputeAgent, fake_host).reconciler.wait_idle())
        assert driver.calls.count(("detach_volume", server.id)) == tries
    finally:
        driver.unplug_ignored.discard(vol.id)
    conn.compute.delete_volume_attachment(server, vol.id)  # a guest that does let go: detached for real
    volume_status(live, vol.id, "available")
    conn.compute.delete_server(server)
    conn.block_storage.delete_volume(vol)


def test_cli_add_list_remove(live: LiveCloud, fake_host: str, image_id: str) -> None:
    boot(live, image_id, "vol-cli")
    make_volume(live, "vol-cli-data")
    live.cli("server", "add", "volume", "vol-cli", "vol-cli-data", cloud="demo")
    vol_id = live.cli_json("volume", "show", "vol-cli-data", cloud="demo")["id"]
    volume_status(live, vol_id, "in-use")
    rows = live.cli_json("server", "volume", "list", "vol-cli", cloud="demo")
    assert [(r["Volume ID"], r["Device"]) for r in rows] == [(vol_id, "/dev/vdb")]
    live.cli("server", "remove", "volume", "vol-cli", "vol-cli-data", cloud="demo")
    volume_status(live, vol_id, "available")
    assert live.cli_json("server", "volume", "list", "vol-cli", cloud="demo") == []
    live.cli("server", "delete", "--wait", "vol-cli", cloud="demo")
    live.cli("volume", "delete", "vol-cli-data", cloud="demo")


def test_server_delete_releases_or_deletes_volumes(live: LiveCloud, fake_host: str, image_id: str,
                                                   demo: Nova) -> None:
    conn = live.conn("demo")
    server = boot(live, image_id, "vol-delete")
    keep, drop = make_volume(live, "vd-keep"), make_volume(live, "vd-drop")
    for vol, dot in ((keep, False), (drop, True)):
        r = demo("POST", f"/servers/{server.id}/os-volume_attachments",
                 json={"volumeAttachment": {"volumeId": vol.id, "delete_on_termination": dot}})
        assert r.status_code == 200, r.text
        volume_status(live, vol.id, "in-use")
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=30, interval=0.1)
    volume_status(live, keep.id, "available")
    deadline = time.monotonic() + 30
    while conn.block_storage.find_volume(drop.id, ignore_missing=True) is not None:
        assert time.monotonic() < deadline, "the delete_on_termination volume was not deleted"
        time.sleep(0.2)
    conn.block_storage.delete_volume(keep)


def test_server_ips(live: LiveCloud, fake_host: str, image_id: str, demo: Nova) -> None:
    """``/servers/{id}/ips`` (Tempest's attach tests read it before they attach): the basic address form."""
    conn = live.conn("demo")
    net = conn.network.find_network("private", ignore_missing=False)
    server = boot(live, image_id, "vol-ips", networks=[{"uuid": net.id}])
    deadline = time.monotonic() + 10
    while not (ips := demo("GET", f"/servers/{server.id}/ips").json()["addresses"]):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    [addr] = ips["private"]
    assert set(addr) == {"version", "addr"} and addr["version"] == 4
    assert demo("GET", f"/servers/{server.id}/ips/private").json() == {"private": [addr]}
    assert demo("GET", f"/servers/{server.id}/ips/nowhere").status_code == 404
    assert Nova(live, "alt_demo")("GET", f"/servers/{server.id}/ips").status_code == 404
    conn.compute.delete_server(server)
