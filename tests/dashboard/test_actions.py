"""Instance and volume actions through the dashboard's forms (api tier): each POST reaches the API and the
server or volume ends in the state the action asks for; an action the state forbids shows the API's error."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
import requests

from tests.dashboard.conftest import csrf_of, http_login
from tests.dashboard.test_pages import _image
from tests.livecloud import LiveCloud

pytestmark = pytest.mark.api


def _wait(what: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = what()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def _act(s: requests.Session, base: str, server_id: str, action: str, **fields: str) -> requests.Response:
    page = s.get(f"{base}/project/instances/{server_id}/", timeout=30)
    data = {"csrf_token": csrf_of(page.text), "action": action, "next": f"/project/instances/{server_id}/", **fields}
    return s.post(f"{base}/project/instances/{server_id}/action", data=data, timeout=60)


def test_instance_actions(live: LiveCloud) -> None:
    demo = live.conn("demo")
    base = live.url("dashboard")
    s = http_login(live, "demo")
    flavor = next(f for f in demo.compute.flavors() if f.name == "m1.nano")
    server = demo.compute.create_server(name=f"acts-{uuid.uuid4().hex[:6]}", flavor_id=flavor.id,
                                        image_id=_image(live), networks="auto")
    demo.compute.wait_for_server(server, wait=60)

    def status() -> str:
        return str(demo.compute.get_server(server.id).status)

    for action, expected in (("stop", "SHUTOFF"), ("start", "ACTIVE"), ("pause", "PAUSED"), ("unpause", "ACTIVE"),
                             ("suspend", "SUSPENDED"), ("resume", "ACTIVE"), ("reboot", "ACTIVE")):
        r = _act(s, base, server.id, action)
        assert r.status_code == 200 and "alert-error" not in r.text, (action, r.text[-600:])
        _wait(lambda expected=expected: status() == expected and not demo.compute.get_server(server.id).task_state)
    r = _act(s, base, server.id, "unpause")  # not paused: the API refuses, and says why
    assert "alert-error" in r.text and "unpause" in r.text.lower()
    r = _act(s, base, server.id, "lock")
    assert _wait(lambda: demo.compute.get_server(server.id).is_locked)
    _act(s, base, server.id, "unlock")
    assert _wait(lambda: not demo.compute.get_server(server.id).is_locked)
    r = _act(s, base, server.id, "snapshot", snapshot_name=f"{server.name}-snap")
    snap = _wait(lambda: demo.image.find_image(f"{server.name}-snap"))
    _wait(lambda: demo.compute.get_server(server.id).task_state is None)
    r = _act(s, base, server.id, "delete")
    assert r.url == f"{base}/project/instances/"
    _wait(lambda: demo.compute.find_server(server.id) is None)
    demo.image.delete_image(snap)


def test_volume_extend_and_delete(live: LiveCloud) -> None:
    demo = live.conn("demo")
    base = live.url("dashboard")
    s = http_login(live, "demo")
    name = f"vol-{uuid.uuid4().hex[:6]}"
    token = csrf_of(s.get(f"{base}/project/volumes/", timeout=30).text)
    s.post(f"{base}/project/volumes/create/", data={"csrf_token": token, "name": name, "size": "1"}, timeout=30)
    volume = _wait(lambda: demo.block_storage.find_volume(name))
    _wait(lambda: demo.block_storage.get_volume(volume.id).status == "available")
    page = s.get(f"{base}/project/volumes/{volume.id}/", timeout=30).text
    s.post(f"{base}/project/volumes/{volume.id}/action", data={"csrf_token": csrf_of(page), "action": "extend",
                                                               "new_size": "2"}, timeout=30)
    _wait(lambda: demo.block_storage.get_volume(volume.id).size == 2)
    _wait(lambda: demo.block_storage.get_volume(volume.id).status == "available")
    s.post(f"{base}/project/volumes/{volume.id}/action", data={"csrf_token": csrf_of(page), "action": "delete"},
           timeout=30)
    _wait(lambda: demo.block_storage.find_volume(volume.id) is None)
