"""Object versioning through python-swiftclient: stack mode (X-Versions-Location) keeps overwritten objects and
a DELETE brings the previous one back; history mode (X-History-Location) keeps them and leaves a delete marker;
bad locations are refused; another project's archive container is out of reach."""

from __future__ import annotations

from typing import Any

import pytest
import swiftclient

from tests.livecloud import LiveCloud
from tests.object.conftest import Http, http_for, swift_conn

pytestmark = [pytest.mark.api, pytest.mark.e2e]


@pytest.fixture(scope="module")
def conn(project: tuple[Any, Http, str], live: LiveCloud) -> swiftclient.Connection:
    return swift_conn(live, project[2])


def _counts(conn: swiftclient.Connection, container: str) -> tuple[int, int]:
    head = conn.head_container(container)
    return int(head["x-container-object-count"]), int(head["x-container-bytes-used"])


def test_stack_mode(conn: swiftclient.Connection) -> None:
    conn.put_container("v-archive")
    conn.put_container("v-base", headers={"X-Versions-Location": "v-archive"})
    assert conn.head_container("v-base")["x-versions-location"] == "v-archive"
    conn.put_object("v-base", "obj", b"one", headers={"X-Object-Meta-Rev": "1"})
    conn.put_object("v-base", "obj", b"two!")
    conn.put_object("v-base", "obj", b"three")
    names = [o["name"] for o in conn.get_container("v-archive")[1]]
    assert len(names) == 2 and all(n.startswith("003obj/") for n in names)
    assert conn.get_object("v-base", "obj")[1] == b"three"
    conn.delete_object("v-base", "obj")
    assert conn.get_object("v-base", "obj")[1] == b"two!" and _counts(conn, "v-archive") == (1, 3)
    conn.delete_object("v-base", "obj")
    headers, body = conn.get_object("v-base", "obj")
    assert body == b"one" and headers["x-object-meta-rev"] == "1"
    assert _counts(conn, "v-base") == (1, 3) and _counts(conn, "v-archive") == (0, 0)
    conn.delete_object("v-base", "obj")
    assert _counts(conn, "v-base") == (0, 0)
    with pytest.raises(swiftclient.ClientException) as err:
        conn.get_object("v-base", "obj")
    assert err.value.http_status == 404


def test_history_mode(conn: swiftclient.Connection) -> None:
    conn.put_container("h-archive")
    conn.put_container("h-base", headers={"X-History-Location": "h-archive"})
    conn.put_object("h-base", "doc", b"v1")
    conn.put_object("h-base", "doc", b"v2")
    conn.delete_object("h-base", "doc")
    rows = conn.get_container("h-archive")[1]
    assert len(rows) == 3 and rows[-1]["content_type"].startswith("application/x-deleted")
    assert [conn.get_object("h-archive", r["name"])[1] for r in rows[:2]] == [b"v1", b"v2"]
    with pytest.raises(swiftclient.ClientException) as err:
        conn.get_object("h-base", "doc")
    assert err.value.http_status == 404


def test_bad_locations(conn: swiftclient.Connection) -> None:
    for headers in ({"X-Versions-Location": "a", "X-History-Location": "b"}, {"X-Versions-Location": "a/b"}):
        with pytest.raises(swiftclient.ClientException) as err:
            conn.put_container("v-bad", headers=headers)
        assert err.value.http_status in (400, 412)
    with pytest.raises(swiftclient.ClientException):
        conn.head_container("v-bad")


def test_unversioned_after_removal(conn: swiftclient.Connection) -> None:
    conn.put_container("r-archive")
    conn.put_container("r-base", headers={"X-Versions-Location": "r-archive"})
    conn.post_container("r-base", headers={"X-Remove-Versions-Location": "x"})
    conn.put_object("r-base", "o", b"1")
    conn.put_object("r-base", "o", b"2")
    assert conn.get_container("r-archive")[1] == []


def test_other_project_reads_no_archive(live: LiveCloud, conn: swiftclient.Connection) -> None:
    conn.put_container("p-archive")
    conn.put_container("p-base", headers={"X-Versions-Location": "p-archive"})
    conn.put_object("p-base", "o", b"secret-1")
    conn.put_object("p-base", "o", b"secret-2")
    other = http_for(live.project_conn("obj-ver-other"))
    owner = Http(other.url.rsplit("/", 1)[0] + "/" + conn.url.rsplit("/", 1)[1], other.token)
    assert owner("DELETE", "/p-base/o").status_code == 403
    assert owner("GET", "/p-archive").status_code == 403
    assert conn.get_object("p-base", "o")[1] == b"secret-2" and _counts(conn, "p-archive")[0] == 1
