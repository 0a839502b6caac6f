"""os-retype and volume migration refusals: a retype between types the volume's backend serves changes the
volume's type; one that needs a backend no host has, and a migration to the same or an unknown host, are refused
with Cinder's 400; migration is admin-only (403 for a member) and another project's volume is 404. Migrations
that happen: tests/volume/test_migration_api.py."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

from tests.livecloud import LiveCloud

pytestmark = pytest.mark.api


def cinder(live: LiveCloud, cloud: str) -> tuple[str, dict[str, str]]:
    conn = live.conn(cloud)
    url = conn.block_storage.get_endpoint().rsplit("/", 1)[0] + f"/{conn.current_project_id}"
    return url, {"X-Auth-Token": conn.session.get_token(), "OpenStack-API-Version": "volume 3.62"}


def action(live: LiveCloud, cloud: str, volume_id: str, body: dict[str, Any]) -> requests.Response:
    url, headers = cinder(live, cloud)
    return requests.post(f"{url}/volumes/{volume_id}/action", json=body, headers=headers, timeout=10)


def test_retype_within_the_backend_and_refusals(live: LiveCloud) -> None:
    suffix = uuid.uuid4().hex[:6]
    gold = live.cli_json("volume", "type", "create", "--property", "volume_backend_name=file", f"gold-{suffix}")
    far = live.cli_json("volume", "type", "create", "--property", "volume_backend_name=elsewhere", f"far-{suffix}")
    demo = live.conn("demo")
    vol = demo.block_storage.wait_for_status(demo.block_storage.create_volume(name="rt", size=1), "available",
                                             wait=30, interval=0.2)
    live.cli("volume", "set", "--type", gold["name"], "--retype-policy", "never", vol.id, cloud="demo")
    assert demo.block_storage.get_volume(vol.id).volume_type == gold["name"]
    for body in ({"os-retype": {"new_type": gold["name"]}},  # the type it has
                 {"os-retype": {"new_type": far["name"], "migration_policy": "never"}},
                 {"os-retype": {"new_type": far["name"], "migration_policy": "on-demand"}},
                 {"os-retype": {"new_type": far["name"], "migration_policy": "sometimes"}},
                 {"os-retype": {}}):
        r = action(live, "demo", vol.id, body)
        assert r.status_code == 400 and r.json()["badRequest"]["message"], (body, r.text)
    assert action(live, "demo", vol.id, {"os-retype": {"new_type": "no-such-type"}}).status_code == 404
    assert action(live, "alt_demo", vol.id, {"os-retype": {"new_type": "__DEFAULT__"}}).status_code == 404
    assert demo.block_storage.get_volume(vol.id).volume_type == gold["name"]

    # Migration: admin only; the same host and an unknown one are refused.
    r = action(live, "demo", vol.id, {"os-migrate_volume": {"host": "other@file#file"}})
    assert r.status_code == 403 and "forbidden" in r.json()
    host = live.conn("admin").block_storage.get_volume(vol.id).host
    assert host and host.endswith("@file#file")
    for body in ({"os-migrate_volume": {"host": host}}, {"os-migrate_volume": {"host": "other@file#file"}},
                 {"os-migrate_volume": {}}, {"os-migrate_volume_completion": {"new_volume": vol.id}}):
        r = action(live, "admin", vol.id, body)
        assert r.status_code == 400, (body, r.text)
    shown = live.conn("admin").block_storage.get_volume(vol.id)
    assert shown.status == "available" and shown.migration_status is None
    demo.block_storage.delete_volume(vol)
    demo.block_storage.wait_for_delete(vol, wait=30, interval=0.2)
    live.cli("volume", "type", "delete", gold["id"], far["id"])
