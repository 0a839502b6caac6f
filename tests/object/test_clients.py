"""Object storage through the real clients: openstacksdk, python-swiftclient (API and the ``swift`` command
line with a segmented upload), the ``openstack container/object`` commands, and raw HTTP for what they hide."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import swiftclient

from tests.livecloud import LiveCloud
from tests.object.conftest import Http, swift_conn, swift_env

pytestmark = [pytest.mark.api, pytest.mark.e2e]


def test_catalog_lists_object_store(live: LiveCloud) -> None:
    entries = {e["Type"]: e for e in live.cli_json("catalog", "list")}
    assert entries["object-store"]["Name"] == "swift"


def test_sdk_lifecycle(project: tuple[Any, Http, str]) -> None:
    conn, _, _ = project
    conn.object_store.create_container("sdk-c")
    conn.object_store.set_container_metadata("sdk-c", color="blue")
    conn.object_store.upload_object("sdk-c", "dir/a.txt", data=b"hello")
    conn.object_store.upload_object("sdk-c", "b.bin", data=os.urandom(3000))
    assert sorted(o.name for o in conn.object_store.objects("sdk-c")) == ["b.bin", "dir/a.txt"]
    assert conn.object_store.download_object("dir/a.txt", container="sdk-c") == b"hello"
    meta = conn.object_store.get_container_metadata("sdk-c")
    assert meta.metadata["color"] == "blue" and meta.object_count == 2 and meta.bytes_used == 3005
    conn.object_store.set_object_metadata("dir/a.txt", container="sdk-c", owner="me")
    assert conn.object_store.get_object_metadata("dir/a.txt", container="sdk-c").metadata["owner"] == "me"
    conn.object_store.delete_object("dir/a.txt", container="sdk-c")
    conn.object_store.delete_object("b.bin", container="sdk-c")
    conn.object_store.delete_container("sdk-c")
    assert "sdk-c" not in [c.name for c in conn.object_store.containers()]


def test_account_counts_follow(project: tuple[Any, Http, str], live: LiveCloud) -> None:
    _, _, cloud = project
    sc = swift_conn(live, cloud)
    sc.put_container("count-c")
    for i in range(3):
        sc.put_object("count-c", f"o{i}", b"x" * 10)
    deadline = time.monotonic() + 10
    while True:
        head = sc.head_account()
        if int(head["x-account-object-count"]) >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert int(head["x-account-bytes-used"]) >= 30
    _, containers = sc.get_account(prefix="count-")
    assert containers == [{"name": "count-c", "count": 3, "bytes": 30, "last_modified": containers[0]["last_modified"]}]


def test_swiftclient_ranges_conditions_copy_post(project: tuple[Any, Http, str], live: LiveCloud) -> None:
    _, _, cloud = project
    sc = swift_conn(live, cloud)
    sc.put_container("sc")
    body = bytes(range(256)) * 4
    etag = sc.put_object("sc", "obj", body, content_type="application/x-test", headers={"X-Object-Meta-Kind": "t"})
    assert etag == hashlib.md5(body).hexdigest()
    _, part = sc.get_object("sc", "obj", headers={"Range": "bytes=10-19"})
    assert part == body[10:20]
    headers, multi = sc.get_object("sc", "obj", headers={"Range": "bytes=0-1,-2"})
    assert headers["content-type"].startswith("multipart/byteranges") and body[-2:] in multi
    with pytest.raises(swiftclient.ClientException) as err:
        sc.get_object("sc", "obj", headers={"If-Match": "not-it"})
    assert err.value.http_status == 412
    with pytest.raises(swiftclient.ClientException) as err:
        sc.get_object("sc", "obj", headers={"If-None-Match": etag})
    assert err.value.http_status == 304
    sc.put_object("sc", "copy", None, headers={"X-Copy-From": "sc/obj", "X-Object-Meta-Extra": "1"})
    head = sc.head_object("sc", "copy")
    assert head["etag"] == etag and head["x-object-meta-kind"] == "t" and head["x-object-meta-extra"] == "1"
    sc.post_object("sc", "copy", headers={"X-Object-Meta-New": "only"})
    head = sc.head_object("sc", "copy")
    assert head["x-object-meta-new"] == "only" and "x-object-meta-kind" not in head
    assert head["content-type"] == "application/x-test"
    # Chunked transfer: an iterator body of unknown length.
    sc.put_object("sc", "chunked", iter([b"a" * 70000, b"b" * 70000]), chunk_size=65536)
    assert sc.head_object("sc", "chunked")["content-length"] == "140000"


def test_swift_cli_segmented_upload_and_download(project: tuple[Any, Http, str], live: LiveCloud,
                                                 tmp_path: Path) -> None:
    _, _, cloud = project
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(250_000))
    exe = str(Path(sys.executable).with_name("swift"))
    env = swift_env(live, cloud)
    # --use-dlo: swiftclient makes an SLO by default now that /info lists slo (tests/object/test_slo.py).
    up = subprocess.run([exe, "upload", "--use-dlo", "--segment-size", "100000", "seg", "big.bin"], cwd=tmp_path,
                        env=env, capture_output=True, text=True, timeout=120)
    assert up.returncode == 0, up.stderr
    listed = subprocess.run([exe, "list", "seg_segments"], env=env, capture_output=True, text=True, timeout=60)
    assert len(listed.stdout.split()) == 3
    out = tmp_path / "back.bin"
    down = subprocess.run([exe, "download", "seg", "big.bin", "-o", str(out)], env=env, capture_output=True,
                          text=True, timeout=120)
    assert down.returncode == 0, down.stderr
    assert out.read_bytes() == src.read_bytes()
    stat = subprocess.run([exe, "stat", "seg", "big.bin"], env=env, capture_output=True, text=True, timeout=60)
    assert "Content Length: 250000" in stat.stdout and "Manifest: seg_segments/" in stat.stdout
    # A range across two segments of the manifest.
    _, part = swift_conn(live, cloud).get_object("seg", "big.bin", headers={"Range": "bytes=99990-100009"})
    assert part == src.read_bytes()[99990:100010]


def test_openstack_cli(live: LiveCloud, project: tuple[Any, Http, str], tmp_path: Path) -> None:
    _, _, cloud = project
    f = tmp_path / "note.txt"
    f.write_text("from the cli\n")
    live.cli("container", "create", "cli-c", cloud=cloud)
    assert "cli-c" in {c["Name"] for c in live.cli_json("container", "list", cloud=cloud)}
    live.cli("object", "create", "cli-c", str(f), "--name", "note.txt", cloud=cloud)
    assert [o["Name"] for o in live.cli_json("object", "list", "cli-c", cloud=cloud)] == ["note.txt"]
    shown = live.cli_json("object", "show", "cli-c", "note.txt", cloud=cloud)
    assert shown["content-length"] == "13" and shown["etag"] == hashlib.md5(b"from the cli\n").hexdigest()
    out = tmp_path / "saved.txt"
    live.cli("object", "save", "cli-c", "note.txt", "--file", str(out), cloud=cloud)
    assert out.read_text() == "from the cli\n"
    assert live.cli_json("container", "show", "cli-c", cloud=cloud)["object_count"] == "1"
    live.cli("object", "delete", "cli-c", "note.txt", cloud=cloud)
    live.cli("container", "delete", "cli-c", cloud=cloud)
    assert live.cli("container", "show", "cli-c", cloud=cloud, check=False).returncode != 0


def test_listing_formats_and_delimiter(project: tuple[Any, Http, str]) -> None:
    _, http, _ = project
    assert http("PUT", "/fmt").status_code == 201
    assert http("PUT", "/fmt").status_code == 202
    for name in ("a", "d/1", "d/2", "z"):
        assert http("PUT", f"/fmt/{name}", data=b"x").status_code == 201
    plain = http("GET", "/fmt")
    assert plain.text.split() == ["a", "d/1", "d/2", "z"] and plain.headers["Content-Type"].startswith("text/plain")
    listed = http("GET", "/fmt?format=json&delimiter=/").json()
    assert [r.get("subdir") or r["name"] for r in listed] == ["a", "d/", "z"]
    assert listed[0]["bytes"] == 1 and listed[0]["hash"] == hashlib.md5(b"x").hexdigest()
    xml = http("GET", "/fmt", headers={"Accept": "application/xml"})
    assert xml.text.startswith("<?xml") and "<name>d/2</name>" in xml.text
    assert http("GET", "/fmt?prefix=d/&reverse=true").text.split() == ["d/2", "d/1"]
    assert http("GET", "/fmt?limit=1&marker=a").text.split() == ["d/1"]
    assert http("GET", "/fmt?prefix=nothing").status_code == 204
    assert http("DELETE", "/fmt").status_code == 409  # not empty


def test_info_healthcheck_cors(project: tuple[Any, Http, str]) -> None:
    _, http, _ = project
    base = http.url.split("/v1/")[0]
    info = requests.get(f"{base}/info", timeout=10).json()
    assert info["swift"]["max_object_name_length"] == 1024 and "container_quotas" in info
    assert requests.get(f"{base}/healthcheck", timeout=10).text == "OK"
    http("PUT", "/cors", headers={"X-Container-Meta-Access-Control-Allow-Origin": "http://ok.example"})
    http("PUT", "/cors/o", data=b"1")
    pre = {"Origin": "http://ok.example", "Access-Control-Request-Method": "GET"}
    ok = http("OPTIONS", "/cors/o", headers=pre, token=False)
    assert ok.status_code == 200 and ok.headers["Access-Control-Allow-Origin"] == "http://ok.example"
    assert http("OPTIONS", "/cors/o", headers={**pre, "Origin": "http://bad.example"}, token=False).status_code == 401
    got = http("GET", "/cors/o", headers={"Origin": "http://ok.example"})
    assert got.headers["Access-Control-Allow-Origin"] == "http://ok.example"


def test_large_object_streams_both_ways(project: tuple[Any, Http, str], live: LiveCloud) -> None:
    _, _, cloud = project
    sc = swift_conn(live, cloud)
    sc.put_container("large")
    body = os.urandom(3 * 1024 * 1024 + 17)  # over the proxy's 1 MiB: streamed to the replicas, not buffered
    assert sc.put_object("large", "blob", body) == hashlib.md5(body).hexdigest()
    headers, got = sc.get_object("large", "blob")
    assert got == body and headers["content-length"] == str(len(body))
    _, tail = sc.get_object("large", "blob", headers={"Range": f"bytes={len(body) - 5}-"})
    assert tail == body[-5:]
    sc.put_object("large", "blob2", None, headers={"X-Copy-From": "large/blob"})
    assert sc.get_object("large", "blob2")[1] == body
