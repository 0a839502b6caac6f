"""``POST /servers/{id}/action`` as a table: unknown actions and bodies failing their action's schema are 400s in
Nova's format that change nothing; microversion-ranged entries (lock's reason from 2.73)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.compute.test_servers import Nova, boot
from tests.livecloud import LiveCloud
from tinystack.compute.api import server_actions
from tinystack.core import errors
from tinystack.core.web import Version


@pytest.mark.unit
def test_every_action_has_one_entry_per_microversion() -> None:
    """At most one entry fits a version; where none does (an action a later version removed, such as
    os-getVNCConsole from 2.6), the action is a 404, as Nova's "version not found"."""
    for name, entries in server_actions.ACTIONS.items():
        for minor in range(1, 97):
            v = Version(2, minor)
            fitting = sum(e.fits(v) for e in entries)
            assert fitting <= 1, (name, v)
            if fitting:
                assert server_actions.lookup(name, v) in entries
            else:
                with pytest.raises(errors.NotFound):
                    server_actions.lookup(name, v)
        assert any(e.fits(Version(2, 1)) or e.fits(Version(2, 96)) for e in entries), name


@pytest.mark.unit
def test_unknown_action_is_bad_request() -> None:
    with pytest.raises(errors.BadRequest, match="no such action: os-explode"):
        server_actions.lookup("os-explode", Version(2, 1))


@pytest.fixture(scope="module")
def server(live: LiveCloud, fake_host: str, image_id: str) -> Any:
    server = boot(live, image_id, "actions-table")
    yield server
    live.conn("demo").compute.delete_server(server)


@pytest.mark.api
@pytest.mark.parametrize("body,fault", [
    ({"os-explode": None}, "There is no such action: os-explode"),
    ({"reboot": {"type": "GENTLE"}}, "reboot/type"),
    ({"reboot": {}}, "'type' is a required property"),
    ({"reboot": "HARD"}, "reboot"),
    ({"pause": "now"}, "pause"),
    ({"changePassword": {"adminPass": 7}}, "changePassword/adminPass"),
    ({"createImage": {"name": "   "}}, "createImage/name"),
    ({"createImage": {"name": "n", "metadata": {"k": 1}}}, "createImage/metadata/k"),
    ({"resize": {}}, "'flavorRef' is a required property"),
    ({"rebuild": {"name": "x"}}, "'imageRef' is a required property"),
    ({"os-getConsoleOutput": {"length": "ten"}}, "os-getConsoleOutput/length"),
    ({"addSecurityGroup": {"name": ""}}, "addSecurityGroup/name"),
    ({"os-stop": None, "os-start": None}, "too many properties"),
    ({}, "should be non-empty"),
])
def test_bad_action_bodies_are_400_and_change_nothing(live: LiveCloud, server: Any, body: dict[str, Any],
                                                       fault: str) -> None:
    demo = Nova(live, "demo")
    before = demo("GET", f"/servers/{server.id}/os-instance-actions").json()["instanceActions"]
    r = demo("POST", f"/servers/{server.id}/action", json=body)
    assert r.status_code == 400, r.text
    assert fault in r.json()["badRequest"]["message"]
    after = demo("GET", f"/servers/{server.id}/os-instance-actions").json()["instanceActions"]
    assert after == before
    assert demo("GET", f"/servers/{server.id}").json()["server"]["status"] == "ACTIVE"


@pytest.mark.api
def test_lock_reason_exists_from_2_73(live: LiveCloud, server: Any) -> None:
    old, new = Nova(live, "demo", "2.72"), Nova(live, "demo", "2.73")
    # Before 2.73 whatever comes with lock is ignored, as Nova did.
    assert old("POST", f"/servers/{server.id}/action", json={"lock": {"locked_reason": 5}}).status_code == 202
    assert new("GET", f"/servers/{server.id}").json()["server"]["locked_reason"] is None
    assert new("POST", f"/servers/{server.id}/action", json={"unlock": None}).status_code == 202
    bad = new("POST", f"/servers/{server.id}/action", json={"lock": {"locked_reason": 5}})
    assert bad.status_code == 400 and "lock/locked_reason" in bad.json()["badRequest"]["message"]
    assert new("POST", f"/servers/{server.id}/action", json={"lock": {"locked_reason": "why"}}).status_code == 202
    assert new("GET", f"/servers/{server.id}").json()["server"]["locked_reason"] == "why"
    assert new("POST", f"/servers/{server.id}/action", json={"unlock": None}).status_code == 202
