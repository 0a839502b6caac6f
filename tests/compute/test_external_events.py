"""os-server-external-events against a live cloud with the fake compute driver: Nova's per-event codes, 207 and
404, the microversion gate of ``volume-extended``, admin-only policy; and an in-use volume extended with the real
openstackclient (Cinder 3.42) reaching the guest through the event."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from tests.compute.test_servers import Nova, boot
from tests.compute.test_volume_attachments import make_volume, volume_status
from tests.livecloud import LiveCloud
from tinystack.compute.agent import ComputeAgent

pytestmark = pytest.mark.api

PATH = "/os-server-external-events"


@pytest.fixture(scope="module")
def admin(live: LiveCloud) -> Nova:
    return Nova(live, "admin", "2.51")


@pytest.fixture(scope="module")
def attached(live: LiveCloud, image_id: str) -> tuple[Any, Any]:
    """A demo server with one volume attached (in-use)."""
    conn = live.conn("demo")
    server = boot(live, image_id, "events")
    vol = make_volume(live, "events-vol")
    conn.compute.create_volume_attachment(server, volume_id=vol.id)
    volume_status(live, vol.id, "in-use")
    return server, vol


def grown_to(live: LiveCloud, fake_host: str, server_id: str, volume_id: str, size: int, timeout: float = 30) -> None:
    """Wait until the fake guest's disk of the volume has ``size`` GiB (what the agent's extend_volume did)."""
    guest = live.agent(ComputeAgent, fake_host).driver.storage.guests[server_id]
    deadline = time.monotonic() + timeout
    while guest.volume_sizes.get(volume_id) != size:
        assert time.monotonic() < deadline, f"the guest's disk has {guest.volume_sizes.get(volume_id)} GiB, not {size}"
        time.sleep(0.1)


def test_volume_extended_in_use_reaches_the_guest(live: LiveCloud, fake_host: str, attached: tuple[Any, Any]) -> None:
    server, vol = attached
    # What operators type: the volume API accepts an in-use extend from 3.42, the volume agent grows the file,
    # and block storage tells compute (volume-extended), whose agent grows the guest's disk.
    live.cli("--os-volume-api-version", "3.42", "volume", "set", "--size", "2", vol.id, cloud="demo")
    got = volume_status(live, vol.id, "in-use")
    assert got.size == 2
    grown_to(live, fake_host, server.id, vol.id, 2)
    actions = Nova(live, "demo")("GET", f"/servers/{server.id}/os-instance-actions").json()["instanceActions"]
    assert "extend_volume" in [a["action"] for a in actions]
    # Told again (at-least-once): nothing changes, still 200.
    r = Nova(live, "admin", "2.51")("POST", PATH, json={"events": [
        {"name": "volume-extended", "server_uuid": server.id, "tag": vol.id}]})
    assert r.status_code == 200, r.text
    assert r.json()["events"] == [{"name": "volume-extended", "server_uuid": server.id, "tag": vol.id,
                                   "status": "completed", "code": 200}]


def test_mixed_events_are_207_with_codes(admin: Nova, attached: tuple[Any, Any]) -> None:
    server, _ = attached
    unknown = str(uuid.uuid4())
    r = admin("POST", PATH, json={"events": [
        {"name": "network-vif-plugged", "server_uuid": server.id, "tag": str(uuid.uuid4())},
        {"name": "network-changed", "server_uuid": unknown},
        {"name": "volume-extended", "server_uuid": server.id},  # a volume-extended without its volume
    ]})
    assert r.status_code == 207, r.text
    codes = [(e["name"], e["code"], e["status"]) for e in r.json()["events"]]
    assert codes == [("network-vif-plugged", 200, "completed"), ("network-changed", 404, "failed"),
                     ("volume-extended", 400, "failed")]
    assert "x-compute-request-id" in r.headers


def test_none_accepted_is_404(admin: Nova) -> None:
    r = admin("POST", PATH, json={"events": [{"name": "network-changed", "server_uuid": str(uuid.uuid4())}]})
    assert r.status_code == 404
    assert r.json()["itemNotFound"]["message"] == "No instances found for any event"


@pytest.mark.parametrize("body,why", [
    ({}, "events"),
    ({"events": []}, "events"),
    ({"events": [{"name": "network-changed"}]}, "server_uuid"),
    ({"events": [{"name": "network-changed", "server_uuid": "not-a-uuid"}]}, "uuid"),
    ({"events": [{"name": "no-such-event", "server_uuid": str(uuid.uuid4())}]}, "name"),
    ({"events": [{"name": "network-changed", "server_uuid": str(uuid.uuid4()), "status": "done"}]}, "status"),
    ({"events": [{"name": "network-changed", "server_uuid": str(uuid.uuid4()), "extra": 1}]}, "extra"),
    ({"events": [{"name": "network-changed", "server_uuid": str(uuid.uuid4()), "tag": "x" * 256}]}, "x"),
])
def test_bad_bodies_are_400(admin: Nova, body: dict[str, Any], why: str) -> None:
    r = admin("POST", PATH, json=body)
    assert r.status_code == 400, r.text
    assert "badRequest" in r.json()


def test_volume_extended_needs_2_51(live: LiveCloud, attached: tuple[Any, Any]) -> None:
    server, vol = attached
    body = {"events": [{"name": "volume-extended", "server_uuid": server.id, "tag": vol.id}]}
    r = Nova(live, "admin", "2.50")("POST", PATH, json=body)
    assert r.status_code == 400 and "badRequest" in r.json()
    # power-update is 2.76's; at 2.51 it is not an event name yet.
    r = Nova(live, "admin", "2.51")("POST", PATH, json={"events": [
        {"name": "power-update", "server_uuid": server.id, "tag": "POWER_ON"}]})
    assert r.status_code == 400


def test_members_may_not_send_events(live: LiveCloud, attached: tuple[Any, Any]) -> None:
    server, vol = attached
    r = Nova(live, "demo", "2.51")("POST", PATH, json={"events": [
        {"name": "volume-extended", "server_uuid": server.id, "tag": vol.id}]})
    assert r.status_code == 403
    assert "forbidden" in r.json()


def test_server_without_the_volume_is_accepted_and_left(live: LiveCloud, admin: Nova, fake_host: str,
                                                        attached: tuple[Any, Any]) -> None:
    """Nova accepts the event for a server that exists and logs that it has no such volume; nothing moves."""
    server, _ = attached
    other = make_volume(live, "events-unattached")
    before = live.agent(ComputeAgent, fake_host).driver.storage.guests[server.id].volume_sizes.get(other.id)
    r = admin("POST", PATH, json={"events": [{"name": "volume-extended", "server_uuid": server.id, "tag": other.id}]})
    assert r.status_code == 200 and r.json()["events"][0]["code"] == 200
    assert before is None
    assert other.id not in live.agent(ComputeAgent, fake_host).driver.storage.guests[server.id].volume_sizes
