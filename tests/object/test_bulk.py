"""Bulk delete and archive extraction: ``swift delete`` (which uses bulk delete once /info lists it), raw
``?bulk-delete`` with each answer format and Swift's status rules, ``?extract-archive`` for tar, tar.gz and
tar.bz2 (into the account, a container and a prefix; pax metadata), and the refusals: another project's
objects, a bad archive, an unknown format, too long a name."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from typing import Any
from urllib.parse import quote

import pytest
import requests
import swiftclient
from swiftclient.service import SwiftService

from tests.livecloud import LiveCloud
from tests.object.conftest import Http, cloud_auth, http_for, swift_conn, swift_env
from tinystack.object.middleware import bulk

pytestmark = [pytest.mark.api, pytest.mark.e2e]


def _tar(files: dict[str, bytes], mode: str = "w", pax: dict[str, dict[str, str]] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode, format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.pax_headers = (pax or {}).get(name, {})
            tar.addfile(info, io.BytesIO(data))
        folder = tarfile.TarInfo("dironly")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
    return buf.getvalue()


@pytest.fixture(scope="module")
def conn(project: tuple[Any, Http, str], live: LiveCloud) -> swiftclient.Connection:
    return swift_conn(live, project[2])


def test_info_lists_bulk(project: tuple[Any, Http, str]) -> None:
    _, http, _ = project
    info = requests.get(http.url.split("/v1/")[0] + "/info", timeout=30).json()
    assert info["bulk_delete"]["max_deletes_per_request"] == 10000
    assert info["bulk_upload"]["max_containers_per_extraction"] == 10000
    assert "formpost" in info


def test_swift_delete_uses_bulk(conn: swiftclient.Connection, project: tuple[Any, Http, str],
                                live: LiveCloud) -> None:
    # swiftclient deletes one by one below 2 x its threads, in bulk above (once /info lists bulk_delete).
    for container in ("bd-cli", "bd-svc"):
        conn.put_container(container)
        for i in range(8):
            conn.put_object(container, f"o {i}", b"x")
    out = subprocess.run([sys.executable, "-m", "swiftclient.shell", "delete", "--object-threads", "2", "bd-cli"],
                         capture_output=True, text=True, env=swift_env(live, project[2]), timeout=120)
    assert out.returncode == 0, out.stderr
    auth = cloud_auth(live, project[2])
    options = {"auth_version": "3", "os_auth_url": auth["auth_url"], "os_username": auth["username"],
               "os_password": auth["password"], "os_project_name": auth["project_name"],
               "os_user_domain_name": "Default", "os_project_domain_name": "Default", "object_dd_threads": 2}
    with SwiftService(options) as service:
        results = list(service.delete(container="bd-svc"))
    bulk_results = [r for r in results if r["action"] == "bulk_delete"]
    assert bulk_results and all(r["success"] for r in bulk_results)
    assert sum(r["result"]["Number Deleted"] for r in bulk_results) == 8
    for container in ("bd-cli", "bd-svc"):
        with pytest.raises(swiftclient.ClientException) as err:
            conn.head_container(container)
        assert err.value.http_status == 404


def test_bulk_delete_formats_and_rules(conn: swiftclient.Connection, project: tuple[Any, Http, str]) -> None:
    _, http, _ = project
    conn.put_container("bd")
    conn.put_container("bd-full")
    for name in ("a", "b c", "ü"):
        conn.put_object("bd", name, b"1")
    conn.put_object("bd-full", "stays", b"1")
    names = ["/bd/a", f"/bd/{quote('b c')}", f"bd/{quote('ü')}", "/bd/missing", "/bd-full"]
    answer = http("POST", "?bulk-delete", data="\n".join(names).encode(),
                  headers={"Accept": "application/json", "Content-Type": "text/plain"})
    body = answer.json()
    assert answer.status_code == 200 and body["Number Deleted"] == 3 and body["Number Not Found"] == 1
    assert body["Response Status"] == "400 Bad Request" and body["Errors"] == [["/bd-full", "409 Conflict"]]
    assert [o["name"] for o in conn.get_container("bd")[1]] == []
    # Objects and their container in one request: the container goes after its objects.
    answer = http("DELETE", "?bulk-delete", data=b"/bd-full\n/bd-full/stays\n/bd\n")
    assert answer.status_code == 200 and answer.text.startswith("Number Deleted: 3\nNumber Not Found: 0\n")
    assert "Response Status: 200 OK\nErrors:\n" in answer.text
    xml = http("POST", "?bulk-delete", data=b"/bd\n", headers={"Accept": "application/xml"})
    assert "<number_not_found>1</number_not_found>" in xml.text
    assert xml.text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<delete>')
    wrong_type = http("POST", "?bulk-delete", data=b"/bd\n", headers={"Content-Type": "application/json",
                                                                      "Accept": "application/json"}).json()
    assert wrong_type["Response Status"] == "406 Not Acceptable"
    empty = http("POST", "?bulk-delete", data=b"\n\n", headers={"Accept": "application/json"}).json()
    assert empty["Response Status"] == "400 Bad Request" and empty["Response Body"] == "Invalid bulk delete."
    long = http("POST", "?bulk-delete", data=("/c/" + "x" * 1400).encode(), headers={"Accept": "application/json"})
    assert long.json()["Response Status"] == "400 Bad Request" and long.json()["Response Body"] == "Invalid File Name"
    refused = http("POST", "?bulk-delete", data=b"/bd\n", headers={"Accept": "image/png"})
    assert "Response Status: 406 Not Acceptable\n" in refused.text


def test_bulk_delete_cannot_reach_another_project(conn: swiftclient.Connection, live: LiveCloud) -> None:
    conn.put_container("bd-mine")
    conn.put_object("bd-mine", "keep", b"mine")
    other = http_for(live.project_conn("obj-bulk-other"))
    # Names are relative to the account in the URL: another project's account answers 403 as a whole...
    into_mine = Http(conn.url, other.token)
    answer = into_mine("POST", "?bulk-delete", data=b"/bd-mine/keep\n", headers={"Accept": "application/json"})
    assert answer.json()["Errors"] == [["/bd-mine/keep", "403 Forbidden"]]
    # ...and its own account holds no such container.
    assert other("POST", "?bulk-delete", data=b"/bd-mine/keep\n", headers={"Accept": "application/json"}
                 ).json()["Number Not Found"] == 1
    assert conn.get_object("bd-mine", "keep")[1] == b"mine"
    assert into_mine("POST", "?bulk-delete", data=b"/bd-mine/keep\n", token=False).status_code == 200
    assert conn.get_object("bd-mine", "keep")[1] == b"mine"


def test_extract_archive(conn: swiftclient.Connection, project: tuple[Any, Http, str]) -> None:
    _, http, _ = project
    files = {"ea1/one.txt": b"one", "./ea1/sub/two.txt": b"two", "ea2/three": b"three", "toplevel": b"skip"}
    pax = {"ea1/one.txt": {"SCHILY.xattr.user.meta.color": "blue", "SCHILY.xattr.user.mime_type": "text/x-one"}}
    answer = http("PUT", "?extract-archive=tar", data=_tar(files, pax=pax), headers={"Accept": "application/json"})
    body = answer.json()
    assert answer.status_code == 200 and body == {"Number Files Created": 3, "Response Body": "",
                                                  "Response Status": "201 Created", "Errors": []}
    headers, data = conn.get_object("ea1", "one.txt")
    assert data == b"one" and headers["x-object-meta-color"] == "blue" and headers["content-type"] == "text/x-one"
    assert conn.get_object("ea1", "sub/two.txt")[1] == b"two" and conn.get_object("ea2", "three")[1] == b"three"
    # Into a container under a prefix, gzip and bzip2, with the request's metadata on every object.
    for fmt, mode in (("tar.gz", "w:gz"), ("tar.bz2", "w:bz2")):
        answer = http("PUT", f"/ea1/pre?extract-archive={fmt}", data=_tar({"x.txt": fmt.encode()}, mode),
                      headers={"X-Object-Meta-Batch": "7"})
        assert answer.status_code == 200 and "Number Files Created: 1" in answer.text, answer.text
        headers, data = conn.get_object("ea1", "pre/x.txt")
        assert data == fmt.encode() and headers["x-object-meta-batch"] == "7"


def test_extract_archive_refusals(conn: swiftclient.Connection, project: tuple[Any, Http, str],
                                  live: LiveCloud) -> None:
    _, http, _ = project
    bad = http("PUT", "?extract-archive=tar.gz", data=b"not a tarball", headers={"Accept": "application/json"})
    assert bad.json()["Response Status"] == "400 Bad Request"
    assert bad.json()["Response Body"].startswith("Invalid Tar File")
    assert http("PUT", "?extract-archive=zip", data=b"x").status_code == 400
    nothing = http("PUT", "?extract-archive=tar", data=_tar({"top": b"x"}), headers={"Accept": "application/json"})
    assert nothing.json()["Response Body"] == "Invalid Tar File: No Valid Files"
    long = http("PUT", "?extract-archive=tar", data=_tar({"c" * 300 + "/o": b"x"}),
                headers={"Accept": "application/json"}).json()
    assert long["Response Status"] == "400 Bad Request" and long["Errors"][0][1] == "400 Bad Request"
    # Each extracted object is an upload like any other: a container quota stops the ones over it.
    conn.put_container("ea-quota", headers={"X-Container-Meta-Quota-Count": "1"})
    over = http("PUT", "/ea-quota?extract-archive=tar", data=_tar({"a": b"1", "b": b"2"}),
                headers={"Accept": "application/json"}).json()
    assert over["Number Files Created"] == 1 and over["Errors"] == [["ea-quota/b", "413 Request Entity Too Large"]]
    assert [o["name"] for o in conn.get_container("ea-quota")[1]] == ["a"]
    # Another project cannot extract into this account.
    other = http_for(live.project_conn("obj-bulk-other"))
    answer = Http(conn.url, other.token)("PUT", "?extract-archive=tar", data=_tar({"ea-evil/o": b"x"}),
                   headers={"Accept": "application/json"})
    assert json.loads(answer.text)["Number Files Created"] == 0
    with pytest.raises(swiftclient.ClientException):
        conn.head_container("ea-evil")


def test_accept_rules() -> None:
    assert bulk.out_format(None) == "text/plain"
    assert bulk.out_format("application/json;q=0.9, text/xml") == "text/xml"
    assert bulk.out_format("*/*") == "text/plain"
    assert bulk.out_format("image/png") is None


def test_long_bulk_work_answers_at_once_with_whitespace(conn: swiftclient.Connection, project: tuple[Any, Http, str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    _, http, _ = project
    conn.put_container("bd-slow")
    for i in range(12):
        conn.put_object("bd-slow", f"o{i}", b"x")
    monkeypatch.setattr(bulk, "YIELD_FREQUENCY", 0.005)  # any work is long now
    answer = http("POST", "?bulk-delete", data="".join(f"/bd-slow/o{i}\n" for i in range(12)).encode(),
                  headers={"Accept": "application/json"})
    assert answer.status_code == 200 and answer.text.startswith(" ") and "\r\n\r\n{" in answer.text
    assert json.loads(answer.text)["Number Deleted"] == 12  # whitespace before JSON parses, as swiftclient reads it
