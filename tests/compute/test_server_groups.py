"""Server groups end to end with openstackclient, on the live cloud's single fake-driver host: affinity packs,
anti-affinity refuses a second member on the same host (ERROR with a NoValidHost fault), the soft policies
only weigh, and a deleted server leaves its group."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from tests.livecloud import LiveCloud

pytestmark = pytest.mark.api


def _boot(live: LiveCloud, image_id: str, name: str, group_id: str) -> dict[str, Any]:
    live.cli("server", "create", "--image", image_id, "--flavor", "m1.nano", "--no-network",
             "--hint", f"group={group_id}", name, cloud="demo")
    deadline = time.monotonic() + 30
    while True:
        server: dict[str, Any] = live.cli_json("server", "show", name, cloud="demo")
        if server["status"] in ("ACTIVE", "ERROR"):
            return server
        assert time.monotonic() < deadline, f"{name} stayed {server['status']}"
        time.sleep(0.2)


def _group(live: LiveCloud, name: str, policy: str) -> dict[str, Any]:
    group: dict[str, Any] = live.cli_json("server", "group", "create", "--policy", policy, name, cloud="demo")
    assert group["policy"] == policy
    return group


def _members(live: LiveCloud, group_id: str) -> set[str]:
    return set(live.cli_json("server", "group", "show", group_id, cloud="demo")["members"])


def _delete(live: LiveCloud, *names: str) -> None:
    live.cli("server", "delete", "--wait", *names, cloud="demo")


def test_anti_affinity_refuses_a_second_member_on_the_only_host(live: LiveCloud, fake_host: str,
                                                                 image_id: str) -> None:
    group = _group(live, "apart", "anti-affinity")
    first = _boot(live, image_id, "apart-1", group["id"])
    assert first["status"] == "ACTIVE"
    second = _boot(live, image_id, "apart-2", group["id"])
    assert second["status"] == "ERROR"
    assert "No valid host" in second["fault"]["message"], second["fault"]
    assert first["id"] in _members(live, group["id"])
    _delete(live, "apart-1", "apart-2")
    assert _members(live, group["id"]) == set()
    # Its member gone, the group admits a server on that host again.
    assert _boot(live, image_id, "apart-3", group["id"])["status"] == "ACTIVE"
    _delete(live, "apart-3")
    live.cli("server", "group", "delete", group["id"], cloud="demo")


@pytest.mark.parametrize("policy", ["affinity", "soft-affinity", "soft-anti-affinity"])
def test_packing_and_soft_policies_place_every_member(live: LiveCloud, fake_host: str, image_id: str,
                                                      policy: str) -> None:
    group = _group(live, f"g-{policy}", policy)
    names = [f"{policy}-{n}" for n in range(2)]
    servers = [_boot(live, image_id, name, group["id"]) for name in names]
    assert [s["status"] for s in servers] == ["ACTIVE", "ACTIVE"]
    hosts = {live.cli_json("server", "show", s["id"])["OS-EXT-SRV-ATTR:host"] for s in servers}  # admin view
    assert hosts == {fake_host}
    assert _members(live, group["id"]) == {s["id"] for s in servers}
    _delete(live, *names)
    live.cli("server", "group", "delete", group["id"], cloud="demo")


def test_bad_policies_and_other_projects_groups(live: LiveCloud) -> None:
    # openstackclient refuses an unknown policy itself, so ask the API directly.
    conn = live.conn("demo")
    bad = requests.post(f"{live.url('compute')}/os-server-groups", timeout=10, json={
        "server_group": {"name": "bad", "policy": "scatter"}},
        headers={"X-Auth-Token": conn.auth_token, "OpenStack-API-Version": "compute 2.64"})
    assert bad.status_code == 400 and "badRequest" in bad.json(), bad.text
    mine = _group(live, "mine", "affinity")
    theirs: dict[str, Any] = live.cli_json("server", "group", "create", "--policy", "affinity", "theirs")  # admin's
    listing = {g["ID"] for g in live.cli_json("server", "group", "list", cloud="demo")}
    assert mine["id"] in listing and theirs["id"] not in listing
    hidden = live.cli("server", "group", "show", theirs["id"], cloud="demo", check=False)
    assert hidden.returncode != 0
    refused = live.cli("server", "group", "delete", theirs["id"], cloud="demo", check=False)
    assert refused.returncode != 0
    assert live.cli_json("server", "group", "show", theirs["id"])["id"] == theirs["id"]  # untouched
    for group in (mine, theirs):
        live.cli("server", "group", "delete", group["id"])
