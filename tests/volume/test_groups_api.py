"""Generic volume groups on the live cloud through unmodified clients: group types and specs (3.11) made by the
admin with openstackclient, groups (3.13) with their volumes, group snapshots (3.14) taken through the snapshot
path, groups made from a group snapshot or another group, deletes with their volumes; and what must change
nothing: a member writing a group type, another project's group, bad bodies, calls below the microversion."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import openstack
import pytest
import requests

from tests.livecloud import LiveCloud
from tests.waiting import wait_for

pytestmark = pytest.mark.api

V13, V14 = ("--os-volume-api-version", "3.13"), ("--os-volume-api-version", "3.14")


def cinder(conn: Any, mv: str = "3.38") -> tuple[str, dict[str, str]]:
    return conn.block_storage.get_endpoint(), {"X-Auth-Token": conn.session.get_token(),
                                               "OpenStack-API-Version": f"volume {mv}"}


def fault(r: requests.Response, status: int, kind: str) -> str:
    """The Cinder fault body: ``{"<kind>": {"code": status, "message": ...}}``."""
    assert r.status_code == status, r.text
    body = r.json()[kind]
    assert body["code"] == status and body["message"]
    return str(body["message"])


def types(live: LiveCloud) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A public group type and two public volume types, made by the admin with openstackclient."""
    tag = uuid.uuid4().hex[:6]
    gtype = live.cli_json(*V13, "volume", "group", "type", "create", "--description", "app group", f"gt-{tag}")
    gtype = {"id": gtype["ID"], "name": gtype["Name"]}
    gold = live.cli_json("volume", "type", "create", f"gold-{tag}")
    bronze = live.cli_json("volume", "type", "create", f"bronze-{tag}")
    return gtype, gold, bronze


def gone(fetch: Any) -> bool:
    try:
        fetch()
    except openstack.exceptions.NotFoundException:
        return True
    return False


def test_group_types_by_cli(live: LiveCloud) -> None:
    name = f"gt-{uuid.uuid4().hex[:6]}"
    made = live.cli_json(*V13, "volume", "group", "type", "create", "--description", "first", "--private", name)
    assert made["Name"] == name and made["Is Public"] is False and made["Description"] == "first"
    live.cli(*V13, "volume", "group", "type", "set", "--property", "consistent_group_snapshot_enabled=<is> True",
             "--property", "tier=gold", "--public", "--name", f"{name}-2", made["ID"])
    shown = live.cli_json(*V13, "volume", "group", "type", "show", f"{name}-2")
    assert shown["Properties"] == {"consistent_group_snapshot_enabled": "<is> True", "tier": "gold"}
    assert shown["Is Public"] is True and shown["ID"] == made["ID"]
    # One key off (this openstackclient has no "group type unset"), then all but one replaced.
    admin_bs = live.conn("admin").block_storage
    admin_bs.delete_group_type_group_specs_property(made["ID"], "tier")
    assert admin_bs.get_group_type_group_specs_property(made["ID"], "consistent_group_snapshot_enabled") == "<is> True"
    live.cli(*V13, "volume", "group", "type", "set", "--no-property", "--property", "tier=silver", made["ID"])
    assert live.cli_json(*V13, "volume", "group", "type", "show", made["ID"])["Properties"] == {"tier": "silver"}
    assert made["ID"] in {t["ID"] for t in live.cli_json(*V13, "volume", "group", "type", "list")}
    # No [volume] default_group_type: the default is a 404, as in Cinder without one; with one, that type.
    assert live.cli(*V13, "volume", "group", "type", "list", "--default", check=False).returncode != 0
    svc = live.cloud.runtime.services["volume"]  # type: ignore[union-attr]
    saved = svc.settings
    svc.settings = dataclasses.replace(saved, default_group_type=f"{name}-2")
    try:
        listed = live.cli_json(*V13, "volume", "group", "type", "list", "--default")
    finally:
        svc.settings = saved
    assert [t["ID"] for t in listed] == [made["ID"]]

    # Members see public types without their specs, and may not write them.
    member = live.conn("demo")
    seen = member.block_storage.get_group_type(made["ID"])
    assert seen.name == f"{name}-2" and not seen.group_specs
    url, headers = cinder(member)
    for method, path, body in (("POST", "/group_types", {"group_type": {"name": "mine"}}),
                               ("PUT", f"/group_types/{made['ID']}", {"group_type": {"name": "x"}}),
                               ("DELETE", f"/group_types/{made['ID']}", None),
                               ("GET", f"/group_types/{made['ID']}/group_specs", None),
                               ("POST", f"/group_types/{made['ID']}/group_specs", {"group_specs": {"a": "b"}}),
                               ("DELETE", f"/group_types/{made['ID']}/group_specs/tier", None)):
        r = requests.request(method, f"{url}{path}", json=body, headers=headers, timeout=10)
        fault(r, 403, "forbidden")
    with pytest.raises(openstack.exceptions.ForbiddenException):
        member.block_storage.create_group_type(name="by-member")
    # A private type is the admin's alone.
    private = live.conn("admin").block_storage.create_group_type(name=f"{name}-p", is_public=False)
    assert gone(lambda: member.block_storage.get_group_type(private.id))
    assert private.id not in {t.id for t in member.block_storage.group_types(is_public="none")}
    # Admins list public types unless they ask for private ones (or "none": all), as in Cinder.
    assert private.id not in {t.id for t in admin_bs.group_types()}
    assert private.id in {t.id for t in admin_bs.group_types(is_public=False)}
    assert {private.id, made["ID"]} <= {t.id for t in admin_bs.group_types(is_public="none")}

    # Bad input (400), duplicates (409), unknown (404), below 3.11 (404).
    aurl, admin = cinder(live.conn("admin"))
    for body in ({}, {"group_type": {}}, {"group_type": {"name": ""}}, {"group_type": {"name": "x", "bogus": 1}},
                 {"group_type": {"name": "x", "is_public": "maybe"}}):
        fault(requests.post(f"{aurl}/group_types", json=body, headers=admin, timeout=10), 400, "badRequest")
    fault(requests.put(f"{aurl}/group_types/{made['ID']}", json={"group_type": {}}, headers=admin, timeout=10), 400,
          "badRequest")
    fault(requests.post(f"{aurl}/group_types/{made['ID']}/group_specs", json={"group_specs": {"bad key!": "v"}},
                        headers=admin, timeout=10), 400, "badRequest")
    fault(requests.post(f"{aurl}/group_types", json={"group_type": {"name": f"{name}-2"}}, headers=admin,
                        timeout=10), 409, "conflictingRequest")
    fault(requests.get(f"{aurl}/group_types/{uuid.uuid4()}", headers=admin, timeout=10), 404, "itemNotFound")
    fault(requests.get(f"{aurl}/group_types/{made['ID']}/group_specs/nope", headers=admin, timeout=10), 404,
          "itemNotFound")
    old = {**admin, "OpenStack-API-Version": "volume 3.10"}
    assert requests.get(f"{aurl}/group_types", headers=old, timeout=10).status_code == 404
    live.cli(*V13, "volume", "group", "type", "delete", made["ID"])
    live.conn("admin").block_storage.delete_group_type(private)
    assert gone(lambda: live.conn("admin").block_storage.get_group_type(made["ID"]))


def test_groups_and_group_snapshots(live: LiveCloud) -> None:
    gtype, gold, bronze = types(live)
    owner = live.project_conn("groups")
    cloud = owner.config.config["auth"]["project_name"]
    bs = owner.block_storage

    made = live.cli_json(*V13, "volume", "group", "create", "--volume-group-type", gtype["name"], "--volume-type",
                         gold["name"], "--name", "app", "--description", "one app", cloud=cloud)
    group = bs.wait_for_status(bs.get_group(made["ID"]), "available", wait=30, interval=0.1)
    assert group.group_type == gtype["id"] and group.volume_types == [gold["id"]] and group.name == "app"

    # Volumes join at creation (3.13 group_id, of the group's types) or later (add_volumes).
    v1 = bs.create_volume(size=1, name="v1", volume_type=gold["name"], group_id=group.id)
    v2 = bs.create_volume(size=1, name="v2", volume_type=gold["name"])
    odd = bs.create_volume(size=1, name="odd", volume_type=bronze["name"])
    for v in (v1, v2, odd):
        bs.wait_for_status(v, "available", wait=30, interval=0.1)
    assert bs.get_volume(v1.id).group_id == group.id
    live.cli(*V13, "volume", "group", "add", "volume", group.id, v2.id, cloud=cloud)
    # Out and back in again, by name, with openstackclient.
    live.cli(*V13, "volume", "group", "remove", "volume", "app", v2.id, cloud=cloud)
    assert bs.get_volume(v2.id).group_id is None
    live.cli(*V13, "volume", "group", "add", "volume", "app", v2.id, cloud=cloud)
    shown = live.cli_json("--os-volume-api-version", "3.25", "volume", "group", "show", "--volumes", "app",
                          cloud=cloud)
    assert sorted(shown["Volumes"]) == sorted([v1.id, v2.id]) and shown["Status"] == "available"
    assert [g["ID"] for g in live.cli_json(*V13, "volume", "group", "list", cloud=cloud)] == [group.id]
    url, headers = cinder(owner, "3.25")
    shown = requests.get(f"{url}/groups/{group.id}", params={"list_volume": "true"}, headers=headers,
                         timeout=10).json()["group"]
    assert sorted(shown["volumes"]) == sorted([v1.id, v2.id]) and shown["group_snapshot_id"] is None
    msg = fault(requests.put(f"{url}/groups/{group.id}", json={"group": {"add_volumes": odd.id}}, headers=headers,
                             timeout=10), 400, "badRequest")
    assert "not supported by the group" in msg
    r = requests.post(f"{url}/volumes", json={"volume": {"size": 1, "volume_type": bronze["name"],
                                                         "group_id": group.id}}, headers=headers, timeout=10)
    fault(r, 400, "badRequest")
    # A member of a group is not deleted on its own.
    fault(requests.delete(f"{url}/volumes/{v1.id}", headers=headers, timeout=10), 400, "badRequest")
    assert bs.get_volume(v1.id).status == "available"
    # Nor given to another project: the group stays whole in its own.
    fault(requests.post(f"{url}/os-volume-transfer", json={"transfer": {"volume_id": v1.id}}, headers=headers,
                        timeout=10), 400, "badRequest")

    # A group snapshot: one snapshot per member, through the snapshot path.
    made_gs = live.cli_json(*V14, "volume", "group", "snapshot", "create", "--name", "gs1", "app", cloud=cloud)
    gs = bs.wait_for_status(bs.get_group_snapshot(made_gs["ID"]), "available", wait=30, interval=0.1)
    assert gs.group_id == group.id and gs.group_type_id == gtype["id"]
    snaps = [s for s in bs.snapshots(details=True) if s.group_snapshot_id == gs.id]
    assert sorted(s.volume_id for s in snaps) == sorted([v1.id, v2.id])
    assert all(s.status == "available" for s in snaps)
    listed = live.cli_json(*V14, "volume", "group", "snapshot", "list", cloud=cloud)
    assert {"ID": gs.id, "Status": "available", "Name": "gs1"} in listed
    # Its snapshots go with it, and its group cannot go while it exists.
    fault(requests.delete(f"{url}/snapshots/{snaps[0].id}", headers=headers, timeout=10), 400, "badRequest")
    msg = fault(requests.post(f"{url}/groups/{group.id}/action", json={"delete": {"delete-volumes": True}},
                              headers=headers, timeout=10), 400, "badRequest")
    assert "existing snapshots" in msg

    # A group from the group snapshot, and one cloned from the group (3.14 create-from-src).
    from_snap = live.cli_json(*V14, "volume", "group", "create", "--group-snapshot", gs.id, "--name", "restored",
                              cloud=cloud)
    cloned = bs.create_group_from_source(group_snapshot_id=None, source_group_id=group.id, name="clone")
    for gid in (from_snap["ID"], cloned.id):
        got = bs.wait_for_status(bs.get_group(gid), "available", wait=30, interval=0.1)
        assert got.group_type == gtype["id"] and got.volume_types == [gold["id"]]
        members = requests.get(f"{url}/volumes/detail", params={"group_id": got.id}, headers=headers,
                               timeout=10).json()["volumes"]
        assert len(members) == 2 and all(v["status"] == "available" and v["group_id"] == got.id for v in members)
    assert bs.get_group(from_snap["ID"]).group_snapshot_id == gs.id
    assert bs.get_group(cloned.id).source_group_id == group.id

    # A volume type a group uses stays.
    assert live.cli("volume", "type", "delete", gold["id"], check=False).returncode != 0

    # Another project sees none of it.
    other = live.conn("alt_demo")
    assert gone(lambda: other.block_storage.get_group(group.id))
    assert gone(lambda: other.block_storage.get_group_snapshot(gs.id))
    assert group.id not in {g.id for g in other.block_storage.groups()}
    ourl, oheaders = cinder(other)
    fault(requests.put(f"{ourl}/groups/{group.id}", json={"group": {"name": "mine"}}, headers=oheaders, timeout=10),
          404, "itemNotFound")
    fault(requests.post(f"{ourl}/group_snapshots", json={"group_snapshot": {"group_id": group.id}}, headers=oheaders,
                        timeout=10), 404, "itemNotFound")
    fault(requests.post(f"{ourl}/groups/{group.id}/action", json={"delete": {"delete-volumes": True}},
                        headers=oheaders, timeout=10), 404, "itemNotFound")
    fault(requests.post(f"{ourl}/volumes", json={"volume": {"size": 1, "volume_type": gold["id"],
                                                            "group_id": group.id}}, headers=oheaders, timeout=10),
          404, "itemNotFound")
    live.cli(*V13, "volume", "group", "set", "--name", "app2", "--description", "renamed", group.id, cloud=cloud)
    assert (bs.get_group(group.id).name, bs.get_group(group.id).description) == ("app2", "renamed")
    # reset_status is the admin's (3.20 groups, 3.19 group snapshots) and absent below its version.
    fault(requests.post(f"{url}/groups/{group.id}/action", json={"reset_status": {"status": "error"}},
                        headers=headers, timeout=10), 403, "forbidden")
    admin = live.conn("admin").block_storage
    admin.reset_group_status(group.id, "error")
    assert bs.get_group(group.id).status == "error"
    admin.reset_group_status(group.id, "available")
    aurl, aheaders = cinder(live.conn("admin"), "3.18")
    assert requests.post(f"{aurl}/group_snapshots/{gs.id}/action", json={"reset_status": {"status": "error"}},
                         headers=aheaders, timeout=10).status_code == 404
    admin.reset_group_snapshot_status(gs.id, "error")
    assert bs.get_group_snapshot(gs.id).status == "error"

    # Deleting: the group snapshot with its snapshots, then each group with its volumes.
    live.cli(*V14, "volume", "group", "snapshot", "delete", gs.id, cloud=cloud)
    wait_for(lambda: gone(lambda: bs.get_group_snapshot(gs.id)), 30, "the group snapshot to go")
    assert not [s for s in bs.snapshots() if s.id in {x.id for x in snaps}]
    msg = fault(requests.post(f"{url}/groups/{group.id}/action", json={"delete": {"delete-volumes": False}},
                              headers=headers, timeout=10), 400, "badRequest")
    assert "delete-volumes" in msg
    live.cli(*V13, "volume", "group", "delete", "--force", group.id, cloud=cloud)
    bs.delete_group(cloned.id, delete_volumes=True)
    bs.delete_group(from_snap["ID"], delete_volumes=True)
    for gid in (group.id, cloned.id, from_snap["ID"]):
        wait_for(lambda gid=gid: gone(lambda: bs.get_group(gid)), 30, f"group {gid} to go")
    assert [v.name for v in bs.volumes()] == ["odd"]
    bs.delete_volume(odd)
    bs.wait_for_delete(odd, wait=30, interval=0.1)
    live.cli(*V13, "volume", "group", "type", "delete", gtype["id"])
    live.cli("volume", "type", "delete", gold["id"], bronze["id"])


def test_group_bad_input_quota_and_microversions(live: LiveCloud) -> None:
    gtype, gold, _ = types(live)
    owner = live.project_conn("groupbad")
    url, headers = cinder(owner)
    ok = {"group_type": gtype["id"], "volume_types": [gold["id"]]}
    for body in ({}, {"group": {}}, {"group": {"group_type": gtype["id"]}},
                 {"group": {**ok, "volume_types": []}}, {"group": {**ok, "volume_types": "gold"}},
                 {"group": {**ok, "bogus": 1}}, {"group": {**ok, "availability_zone": "elsewhere"}}):
        fault(requests.post(f"{url}/groups", json=body, headers=headers, timeout=10), 400, "badRequest")
    fault(requests.post(f"{url}/groups", json={"group": {**ok, "group_type": "no-such"}}, headers=headers,
                        timeout=10), 404, "itemNotFound")
    fault(requests.post(f"{url}/groups", json={"group": {**ok, "volume_types": ["no-such"]}}, headers=headers,
                        timeout=10), 404, "itemNotFound")
    fault(requests.post(f"{url}/groups/action", json={"create-from-src": {}}, headers=headers, timeout=10), 400,
          "badRequest")
    fault(requests.post(f"{url}/group_snapshots", json={"group_snapshot": {"group_id": str(uuid.uuid4())}},
                        headers=headers, timeout=10), 404, "itemNotFound")
    assert owner.block_storage.groups() is not None and not list(owner.block_storage.groups())

    # Below the microversions the routes do not exist; group_id on a volume is ignored below 3.13.
    for mv, path in (("3.12", "/groups"), ("3.13", "/group_snapshots"), ("3.12", "/groups/detail")):
        r = requests.get(f"{url}{path}", headers={**headers, "OpenStack-API-Version": f"volume {mv}"}, timeout=10)
        fault(r, 404, "itemNotFound")
    r = requests.post(f"{url}/groups/action", json={"create-from-src": {"source_group_id": str(uuid.uuid4())}},
                      headers={**headers, "OpenStack-API-Version": "volume 3.13"}, timeout=10)
    assert r.status_code == 404

    # The groups quota (Cinder's quota_groups) counts this project's groups.
    project = owner.current_project_id
    admin = live.conn("admin")
    admin.block_storage.update_quota_set(project, groups=1)
    first = owner.block_storage.create_group(group_type=gtype["id"], volume_types=[gold["id"]], name="one")
    fault(requests.post(f"{url}/groups", json={"group": ok}, headers=headers, timeout=10), 413, "overLimit")
    usage = requests.get(f"{url}/os-quota-sets/{project}", params={"usage": "true"}, headers=headers,
                         timeout=10).json()["quota_set"]["groups"]
    assert usage["limit"] == 1 and usage["in_use"] == 1
    msg = fault(requests.post(f"{url}/groups/action", json={"create-from-src": {"source_group_id": first.id}},
                              headers=headers, timeout=10), 400, "badRequest")
    assert "empty" in msg
    # A group type in use stays; an empty group goes at once.
    assert live.cli(*V13, "volume", "group", "type", "delete", gtype["id"], check=False).returncode != 0
    owner.block_storage.delete_group(first)
    wait_for(lambda: gone(lambda: owner.block_storage.get_group(first.id)), 30, "the empty group to go")
    live.cli(*V13, "volume", "group", "type", "delete", gtype["id"])


def test_group_and_group_snapshot_lists_by_project(live: LiveCloud) -> None:
    """A list shows the caller's project's groups and group snapshots; an admin's ``all_tenants`` shows every
    project's, or one project's with ``project_id``; a member's ``all_tenants`` changes nothing."""
    gtype, gold, _ = types(live)
    owner, other = live.project_conn("glist"), live.project_conn("glist")
    made: dict[str, tuple[str, str]] = {}
    for conn in (owner, other):
        url, headers = cinder(conn, "3.14")
        body = {"group": {"group_type": gtype["id"], "volume_types": [gold["id"]], "name": "listed"}}
        r = requests.post(f"{url}/groups", json=body, headers=headers, timeout=10)
        assert r.status_code == 202, r.text
        gid = r.json()["group"]["id"]
        wait_for(lambda gid=gid, url=url, headers=headers: requests.get(
            f"{url}/groups/{gid}", headers=headers, timeout=10).json()["group"]["status"] == "available", 30,
            f"group {gid} to be available")
        r = requests.post(f"{url}/group_snapshots", json={"group_snapshot": {"group_id": gid}}, headers=headers,
                          timeout=10)
        assert r.status_code == 202, r.text
        made[conn.current_project_id] = (gid, r.json()["group_snapshot"]["id"])
    mine, theirs = made[owner.current_project_id], made[other.current_project_id]

    def ids(conn: Any, kind: str, **params: str) -> set[str]:
        url, headers = cinder(conn, "3.14")
        r = requests.get(f"{url}/{kind}", params=params, headers=headers, timeout=10)
        assert r.status_code == 200, r.text
        return {row["id"] for row in r.json()[kind]}

    admin = live.conn("admin")
    for i, kind in enumerate(("groups", "group_snapshots")):
        assert ids(owner, kind) == {mine[i]}
        assert ids(owner, kind, all_tenants="1") == {mine[i]}
        assert not {mine[i], theirs[i]} & ids(admin, kind)
        assert {mine[i], theirs[i]} <= ids(admin, kind, all_tenants="1")
        assert ids(admin, kind, all_tenants="true", project_id=other.current_project_id) == {theirs[i]}
        assert not {mine[i], theirs[i]} & ids(admin, kind, all_tenants="0")
