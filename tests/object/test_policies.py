"""Storage policies: /info lists them, ``X-Storage-Policy`` picks one at container creation (swiftclient and the
``swift`` command line), its objects live in the policy's own ring and directory with its replica count, an unknown
policy is 400 and a change on an existing container 409 with nothing changed; the replicator and the auditor
work per policy."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
import swiftclient

from tests.livecloud import LiveCloud
from tests.object.conftest import Http, swift_conn, swift_env
from tests.object.test_replicas import ACCOUNT, cluster
from tests.waiting import wait_for
from tinystack.object import policies

pytestmark = [pytest.mark.api, pytest.mark.e2e]


def _copies(devs: Path, datadir: str, name_fragment: bytes) -> list[Path]:
    """The .data files under every device's ``datadir`` whose metadata names the object."""
    out = []
    for data in devs.glob(f"*/{datadir}/*/*/*/*.data"):
        sidecar = data.with_name(data.name + ".json")
        meta = sidecar.read_bytes() if sidecar.exists() else _xattr(data)
        if name_fragment in meta:
            out.append(data)
    return out


def _xattr(path: Path) -> bytes:
    import os

    try:
        return os.getxattr(path, "user.tinystack.meta")
    except OSError:
        return b""


def test_info_lists_policies(project: tuple[Any, Http, str]) -> None:
    info = requests.get(project[1].url.split("/v1/")[0] + "/info", timeout=30).json()
    assert info["swift"]["policies"][0] == {"name": "Policy-0", "aliases": "Policy-0",
                                            "default": True}
    assert [p["name"] for p in info["swift"]["policies"]] == ["Policy-0", "reduced-redundancy"]


def test_container_policy_and_placement(project: tuple[Any, Http, str], live: LiveCloud) -> None:
    conn = swift_conn(live, project[2])
    out = subprocess.run([sys.executable, "-m", "swiftclient.shell", "post", "-H", "X-Storage-Policy: reduced-redundancy",
                          "pol-rr"], capture_output=True, text=True, env=swift_env(live, project[2]), timeout=60)
    assert out.returncode == 0, out.stderr
    conn.put_container("pol-default")
    assert conn.head_container("pol-rr")["x-storage-policy"] == "reduced-redundancy"
    assert conn.head_container("pol-default")["x-storage-policy"] == "Policy-0"
    stat = subprocess.run([sys.executable, "-m", "swiftclient.shell", "stat", "pol-rr"], capture_output=True,
                          text=True, env=swift_env(live, project[2]), timeout=60)
    assert "reduced-redundancy" in stat.stdout
    conn.put_object("pol-rr", "rr-object", b"two copies")
    conn.put_object("pol-default", "p0-object", b"three copies")
    # The account's usage per policy, by name.
    rr = "x-account-storage-policy-reduced-redundancy-"
    head = wait_for(lambda: (h := conn.head_account()).get(rr + "object-count") == "1" and h, 30,
                    "the account's reduced-redundancy usage")
    assert head[rr + "container-count"] == "1" and head[rr + "bytes-used"] == str(len(b"two copies"))
    assert int(head["x-account-storage-policy-policy-0-container-count"]) >= 1
    devs = live.config.state_dir / "object" / "devs"
    assert len(_copies(devs, "objects-1", b"/pol-rr/rr-object")) == 2
    assert _copies(devs, "objects", b"/pol-rr/rr-object") == []
    assert len(_copies(devs, "objects", b"/pol-default/p0-object")) == 3
    # Read, copy across policies, overwrite, delete: each through the container's own ring.
    assert conn.get_object("pol-rr", "rr-object")[1] == b"two copies"
    conn.put_object("pol-default", "copied", b"", headers={"X-Copy-From": "pol-rr/rr-object"})
    assert conn.get_object("pol-default", "copied")[1] == b"two copies"
    conn.post_object("pol-rr", "rr-object", {"X-Object-Meta-Color": "red"})
    assert conn.head_object("pol-rr", "rr-object")["x-object-meta-color"] == "red"
    conn.delete_object("pol-rr", "rr-object")
    with pytest.raises(swiftclient.ClientException):
        conn.head_object("pol-rr", "rr-object")
    assert [o["name"] for o in conn.get_container("pol-rr")[1]] == []


def test_policy_refusals(project: tuple[Any, Http, str], live: LiveCloud) -> None:
    _, http, _ = project
    assert http("PUT", "/pol-bad", headers={"X-Storage-Policy": "platinum"}).status_code == 400
    assert http("HEAD", "/pol-bad").status_code == 404  # nothing made
    assert http("PUT", "/pol-fixed", headers={"X-Storage-Policy": "reduced-redundancy"}).status_code == 201
    http("PUT", "/pol-fixed/o", data=b"x")
    changed = http("PUT", "/pol-fixed", headers={"X-Storage-Policy": "Policy-0"})
    assert changed.status_code == 409
    # A PUT without the header keeps the container's policy; so does its metadata.
    assert http("PUT", "/pol-fixed", headers={"X-Container-Meta-A": "1"}).status_code == 202
    head = http("HEAD", "/pol-fixed")
    assert head.headers["X-Storage-Policy"] == "reduced-redundancy" and head.headers["X-Container-Meta-A"] == "1"
    assert "X-Backend-Storage-Policy-Index" not in head.headers
    assert http("GET", "/pol-fixed/o").content == b"x"
    # Once deleted, a container may come back under another policy.
    http("DELETE", "/pol-fixed/o")
    assert http("DELETE", "/pol-fixed").status_code == 204
    assert http("PUT", "/pol-fixed", headers={"X-Storage-Policy": "Policy-0"}).status_code == 201
    assert http("HEAD", "/pol-fixed").headers["X-Storage-Policy"] == "Policy-0"


def test_replicator_and_auditor_per_policy(tmp_path: Path) -> None:
    async def run() -> None:
        async with cluster(tmp_path) as (node, client):
            headers = {"X-Auth-Token": "t"}
            assert (await client.put(f"/v1/{ACCOUNT}/c", headers={**headers, "X-Storage-Policy":
                                                                  "reduced-redundancy"})).status == 201
            assert (await client.put(f"/v1/{ACCOUNT}/c/o", data=b"data", headers=headers)).status == 201
            ring = node.node.rings["object-1"]
            assert ring.replica_count == 2
            part, primaries = ring.get_nodes(ACCOUNT, "c", "o")
            devs = node.settings.devices
            held = [d.device for d in primaries if list((devs / d.device / "objects-1" / str(part)).glob("*/*/*.data"))]
            assert len(held) == 2
            shutil.rmtree(devs / held[0] / "objects-1")
            stats = await node.run_once("replicator")
            assert stats.pushed >= 1
            assert list((devs / held[0] / "objects-1" / str(part)).glob("*/*/*.data"))
            # A corrupt copy of a policy-1 object is quarantined under the policy's own name.
            data = next((devs / held[1] / "objects-1" / str(part)).glob("*/*/*.data"))
            data.write_bytes(b"DATA")
            audit = await node.run_once("auditor")
            assert audit.quarantined == 1 and list((devs / held[1] / "quarantined" / "objects-1").iterdir())
            got = await client.get(f"/v1/{ACCOUNT}/c/o", headers=headers)
            assert got.status == 200 and await got.read() == b"data"

    asyncio.run(run())


def test_parse_rules() -> None:
    parsed = policies.parse("gold, silver:2", 3)
    assert [(p.index, p.name, p.replicas, p.default) for p in parsed] == [(0, "gold", 3, True), (1, "silver", 2, False)]
    assert parsed[1].ring == "object-1" and parsed[1].datadir == "objects-1" and parsed[0].ring == "object"
    for bad in ("", "a,A", "a:0", "a b"):
        with pytest.raises(ValueError):
            policies.parse(bad, 3)
    assert policies.index_of_datadir("objects-2") == 2 and policies.index_of_datadir("objects-x") is None


def test_unknown_policy_index_is_unavailable(tmp_path: Path) -> None:
    from tinystack import config as config_mod
    from tinystack.core.errors import TinyError
    from tinystack.object import settings as settings_mod

    s = settings_mod.load(config_mod.load(None, environ={}, overrides={"state_dir": str(tmp_path),
                                                                       "object__policies": "gold:2"}))
    assert s.policy(0).name == "gold" and s.policy(0).replicas == 2
    with pytest.raises(TinyError) as err:
        s.policy(1)
    assert err.value.status == 503
