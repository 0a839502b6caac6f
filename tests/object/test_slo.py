"""Static large objects through python-swiftclient (``swift upload --use-slo`` and the API) and raw HTTP:
manifest upload with segment checks, reading joined and by range, the manifest itself, delete with segments."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import swiftclient

from tests.livecloud import LiveCloud
from tests.object.conftest import Http, swift_conn, swift_env

pytestmark = [pytest.mark.api, pytest.mark.e2e]


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


@pytest.fixture(scope="module")
def segs(project: tuple[Any, Http, str], live: LiveCloud) -> tuple[swiftclient.Connection, bytes, bytes]:
    _, _, cloud = project
    conn = swift_conn(live, cloud)
    conn.put_container("slo")
    conn.put_container("slo_segs")
    a, b = os.urandom(3000), os.urandom(2000)
    conn.put_object("slo_segs", "a", a)
    conn.put_object("slo_segs", "b", b)
    return conn, a, b


def _manifest(a: bytes, b: bytes, **extra: Any) -> list[dict[str, Any]]:
    return [{"path": "/slo_segs/a", "etag": _md5(a), "size_bytes": len(a), **extra},
            {"path": "/slo_segs/b", "etag": _md5(b), "size_bytes": len(b)}]


def test_put_get_head_range(segs: tuple[swiftclient.Connection, bytes, bytes]) -> None:
    conn, a, b = segs
    etag = conn.put_object("slo", "big", json.dumps(_manifest(a, b)), query_string="multipart-manifest=put")
    assert etag.strip('"') == _md5((_md5(a) + _md5(b)).encode())
    head = conn.head_object("slo", "big")
    assert head["x-static-large-object"] == "True" and int(head["content-length"]) == 5000
    assert head["etag"].startswith('"')
    headers, body = conn.get_object("slo", "big")
    assert body == a + b and headers["x-static-large-object"] == "True"
    headers, body = conn.get_object("slo", "big", headers={"Range": "bytes=2990-3009"})
    assert body == a[2990:] + b[:10] and headers["content-range"] == "bytes 2990-3009/5000"
    _, raw = conn.get_object("slo", "big", query_string="multipart-manifest=get")
    stored = json.loads(raw)
    assert [s["name"] for s in stored] == ["/slo_segs/a", "/slo_segs/b"] and stored[0]["bytes"] == 3000


def test_ranged_segment(segs: tuple[swiftclient.Connection, bytes, bytes]) -> None:
    conn, a, b = segs
    conn.put_object("slo", "ranged", json.dumps(_manifest(a, b, range="10-19")),
                    query_string="multipart-manifest=put")
    _, body = conn.get_object("slo", "ranged")
    assert body == a[10:20] + b


def test_bad_manifests_store_nothing(segs: tuple[swiftclient.Connection, bytes, bytes]) -> None:
    conn, a, b = segs
    cases = [("not json", "valid JSON"), (json.dumps([]), "non-empty"),
             (json.dumps([{"path": "nocontainer"}]), "/container/object"),
             (json.dumps([{"path": "/slo_segs/missing"}]), "404 Not Found"),
             (json.dumps([*_manifest(a, b)[:1], {"path": "/slo_segs/b", "etag": "0" * 32}]), "Etag Mismatch"),
             (json.dumps([{"path": "/slo_segs/a", "size_bytes": 1}]), "Size Mismatch")]
    for body, words in cases:
        with pytest.raises(swiftclient.ClientException) as err:
            conn.put_object("slo", "bad", body, query_string="multipart-manifest=put")
        assert err.value.http_status == 400 and words in err.value.http_response_content.decode()
    with pytest.raises(swiftclient.ClientException) as err:
        conn.head_object("slo", "bad")
    assert err.value.http_status == 404


def test_delete_with_segments(segs: tuple[swiftclient.Connection, bytes, bytes]) -> None:
    conn, _, _ = segs
    conn.put_container("slo_del")
    conn.put_object("slo_del", "s1", b"x" * 10)
    conn.put_object("slo_del", "s2", b"y" * 10)
    conn.put_object("slo_del", "m", json.dumps([{"path": "/slo_del/s1"}, {"path": "/slo_del/s2"}]),
                    query_string="multipart-manifest=put")
    assert conn.get_object("slo_del", "m")[1] == b"x" * 10 + b"y" * 10
    response: dict[str, Any] = {}
    conn.delete_object("slo_del", "m", query_string="multipart-manifest=delete", response_dict=response)
    assert response["status"] == 200
    assert conn.get_container("slo_del")[1] == []


def test_delete_answer_body(project: tuple[Any, Http, str], segs: tuple[swiftclient.Connection, bytes, bytes]) -> None:
    _, http, _ = project
    conn, _, _ = segs
    conn.put_object("slo_segs", "c", b"z" * 5)
    conn.put_object("slo", "m2", json.dumps([{"path": "/slo_segs/c"}]), query_string="multipart-manifest=put")
    answer = http("DELETE", "/slo/m2?multipart-manifest=delete")
    assert answer.status_code == 200 and answer.headers.get("Transfer-Encoding") == "chunked"
    assert "Number Deleted: 2" in answer.text and "Response Status: 200 OK" in answer.text
    answer = http("DELETE", "/slo/m2?multipart-manifest=delete", headers={"Accept": "application/json"})
    assert answer.json()["Number Not Found"] == 1


def test_manifest_delete_of_a_large_plain_object(segs: tuple[swiftclient.Connection, bytes, bytes]) -> None:
    """``?multipart-manifest=delete`` on an object that is no SLO deletes just it, whatever its size (a plain
    object's body is never read to look for a manifest)."""
    conn, _, _ = segs
    conn.put_container("slo_plain")
    conn.put_object("slo_plain", "big", b"b" * (2 * 1024 * 1024 + 5))
    response: dict[str, Any] = {}
    conn.delete_object("slo_plain", "big", query_string="multipart-manifest=delete", response_dict=response)
    assert response["status"] == 200, response
    assert response["headers"]["content-type"].startswith("text/plain"), response["headers"]
    assert conn.get_container("slo_plain")[1] == []


def test_other_project_cannot_use_segments(live: LiveCloud, segs: tuple[swiftclient.Connection, bytes, bytes]) -> None:
    conn, a, _ = segs
    other = live.project_conn("obj-slo-other")
    from tests.object.conftest import http_for

    http = http_for(other)
    assert http("PUT", "/mine").status_code in (201, 202)
    owner_account = conn.url.rsplit("/", 1)[1]
    manifest = [{"path": "/slo_segs/a", "etag": _md5(a)}]
    # Segments are named within the manifest's own account: another account's are not reachable.
    answer = http("PUT", "/mine/m?multipart-manifest=put", data=json.dumps(manifest))
    assert answer.status_code == 400 and "404" in answer.text
    other_url = http.url.rsplit("/", 1)[0] + "/" + owner_account
    answer = Http(other_url, http.token)("PUT", "/slo/m?multipart-manifest=put", data=json.dumps(manifest))
    assert answer.status_code == 403
    answer = Http(other_url, http.token)("DELETE", "/slo_segs/a?multipart-manifest=delete")
    assert answer.status_code == 403 and conn.head_object("slo_segs", "a")


def test_swift_cli_use_slo(project: tuple[Any, Http, str], live: LiveCloud, tmp_path: Path,
                           segs: tuple[swiftclient.Connection, bytes, bytes]) -> None:
    _, _, cloud = project
    conn, _, _ = segs
    data = os.urandom(5000)
    (tmp_path / "file.bin").write_bytes(data)
    swift = [sys.executable, "-m", "swiftclient.shell"]
    subprocess.run([*swift, "upload", "--use-slo", "--segment-size", "2048", "cli", "file.bin"], check=True,
                   env=swift_env(live, cloud), cwd=tmp_path, capture_output=True, timeout=120)
    head = conn.head_object("cli", "file.bin")
    assert head["x-static-large-object"] == "True" and int(head["content-length"]) == 5000
    assert conn.get_object("cli", "file.bin")[1] == data
    subprocess.run([*swift, "delete", "cli", "file.bin"], check=True, env=swift_env(live, cloud),
                   capture_output=True, timeout=120)
    assert conn.get_container("cli_segments")[1] == []
