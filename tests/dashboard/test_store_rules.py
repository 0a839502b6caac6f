"""Unit tests of the rules behind the Object Store, Backups, static routes, the admin instance actions and the
application credentials: what each form accepts, what it refuses before any API call, and the request it makes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from tinystack.dashboard.views.admin_project import instance_action_body, usage_csv
from tinystack.dashboard.views.backups import backup_body
from tinystack.dashboard.views.containers import container_name, crumbs, folder_prefix, is_public, object_name
from tinystack.dashboard.views.identity_more import app_cred_body, expires_at
from tinystack.dashboard.views.routers import static_route
from tinystack.dashboard.views.volumes import upload_image_body
from tinystack.dashboard.web import FormError

pytestmark = pytest.mark.unit


def test_container_and_object_names() -> None:
    assert container_name("  photos ") == "photos"
    for bad in ("", "  ", "a/b", "x" * 257):
        with pytest.raises(FormError):
            container_name(bad)
    assert container_name("é" * 128) == "é" * 128  # 256 bytes
    with pytest.raises(FormError):
        container_name("é" * 129)
    assert object_name("a/b c.txt") == "a/b c.txt"
    for bad in ("", " ", "/abs", "x" * 1025):
        with pytest.raises(FormError):
            object_name(bad)


def test_folders_by_prefix_and_public_acl() -> None:
    assert folder_prefix("") == "" and folder_prefix("a") == "a/" and folder_prefix("/a/b/") == "a/b/"
    assert crumbs("a/b/") == [("a", "a/"), ("b", "a/b/")] and crumbs("") == []
    assert is_public(".r:*,.rlistings") and is_public(" .rlistings, .r:* ")
    assert not is_public("") and not is_public(".rlistings") and not is_public(".r:example.com")


def test_static_route() -> None:
    assert static_route({"destination": "10.1.2.3/24", "nexthop": "10.0.0.1"}) == {"destination": "10.1.2.0/24",
                                                                                    "nexthop": "10.0.0.1"}
    assert static_route({"destination": "2001:db8::/64", "nexthop": "2001:db8:1::1"})["nexthop"] == "2001:db8:1::1"
    for bad in ({"destination": "10.1.2.0/33", "nexthop": "10.0.0.1"}, {"destination": "x", "nexthop": "10.0.0.1"},
                {"destination": "10.1.2.0/24", "nexthop": "10.0.0"}, {"destination": "10.1.2.0/24", "nexthop": "::1"},
                {"destination": "", "nexthop": "10.0.0.1"}):
        with pytest.raises(FormError):
            static_route(bad)


def test_admin_instance_actions() -> None:
    assert instance_action_body({"action": "migrate"}) == {"migrate": None}
    assert instance_action_body({"action": "migrate", "host": "n2"}) == {"migrate": {"host": "n2"}}
    assert instance_action_body({"action": "live_migrate"}) == {"os-migrateLive": {"host": None,
                                                                                  "block_migration": "auto"}}
    assert instance_action_body({"action": "live_migrate", "host": "n2", "block_migration": "true"}) == {
        "os-migrateLive": {"host": "n2", "block_migration": True}}
    assert instance_action_body({"action": "reset_state", "state": "error"}) == {"os-resetState": {"state": "error"}}
    for bad in ({"action": "reset_state", "state": "deleted"}, {"action": "reset_state"}, {"action": "evacuate"},
                {"action": "live_migrate", "block_migration": "yes"}, {}):
        with pytest.raises(FormError):
            instance_action_body(bad)


def test_backup_and_upload_to_image_requests() -> None:
    assert backup_body({"volume_id": "v", "name": "b", "incremental": "on"}) == {
        "volume_id": "v", "name": "b", "incremental": True, "force": False}
    assert backup_body({"volume_id": "v"})["name"] is None
    with pytest.raises(FormError):
        backup_body({"volume_id": " "})
    assert upload_image_body({"image_name": "img", "disk_format": "qcow2", "force": "on"}) == {
        "image_name": "img", "disk_format": "qcow2", "container_format": "bare", "force": True}
    for bad in ({"image_name": "img", "disk_format": "iso9660"}, {"image_name": ""}):
        with pytest.raises(FormError):
            upload_image_body(bad)


def test_application_credential_request() -> None:
    assert expires_at("") is None
    assert expires_at("2099-01-02") == "2099-01-02T00:00:00.000000"
    assert expires_at("2099-01-02T03:04+02:00") == "2099-01-02T01:04:00.000000"
    soon = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")
    for bad in ("tomorrow", "2001-01-01", soon):
        with pytest.raises(FormError):
            expires_at(bad)
    body = app_cred_body({"name": " ci ", "unrestricted": "on"}, ["member"], ["member", "reader"])
    assert body == {"name": "ci", "description": None, "expires_at": None, "unrestricted": True,
                    "roles": [{"name": "member"}]}
    assert "roles" not in app_cred_body({"name": "ci"}, [], ["member"])
    with pytest.raises(FormError):
        app_cred_body({"name": "ci"}, ["admin"], ["member"])
    with pytest.raises(FormError):
        app_cred_body({"name": ""}, [], ["member"])


def test_admin_usage_csv_writes_names_as_text() -> None:
    rows = [{"project_id": "p1", "vcpu_hours": 1.5, "disk_gb_hours": 2.0, "memory_mb_hours": 512.0, "hours": 1.5}]
    text = usage_csv(rows, {"p1": "=cmd()"}, date(2026, 1, 1), date(2026, 1, 31))
    assert text.splitlines()[-1] == "'=cmd(),1.50,2.00,512.00,1.50"
    assert usage_csv(rows, {}, date(2026, 1, 1), date(2026, 1, 31)).splitlines()[-1].startswith("p1,")
