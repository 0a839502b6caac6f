"""Bad requests get Swift's status codes and store nothing."""

from __future__ import annotations

import hashlib
import socket
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.object.conftest import Http

pytestmark = [pytest.mark.api, pytest.mark.e2e]


@pytest.fixture(scope="module")
def http(project: tuple[Any, Http, str]) -> Http:
    _, h, _ = project
    assert h("PUT", "/bad").status_code == 201
    return h


@pytest.mark.parametrize(("path", "headers", "status"), [
    ("/bad/" + "o" * 1025, {}, 400),
    ("/bad/past", {"X-Delete-At": "12"}, 400),
    ("/bad/word", {"X-Delete-At": "soon"}, 400),
    ("/bad/neg", {"X-Delete-After": "-5"}, 400),
    ("/bad/meta", {f"X-Object-Meta-K{i}": "v" for i in range(91)}, 400),
    ("/bad/long-meta", {"X-Object-Meta-K": "v" * 257}, 400),
    ("/bad/etag", {"ETag": hashlib.md5(b"other").hexdigest()}, 422),
    ("/bad/md5", {"Content-MD5": "bm90LWl0LWF0LWFsbA=="}, 422),
    ("/nope/obj", {}, 404),
])
def test_object_put_refused(http: Http, path: str, headers: dict[str, str], status: int) -> None:
    assert http("PUT", path, headers=headers, data=b"body").status_code == status
    assert http("HEAD", path).status_code in (404, 400)
    assert http("GET", "/bad").status_code == 204  # still empty


def test_put_if_none_match(http: Http) -> None:
    assert http("PUT", "/bad/once", headers={"If-None-Match": "*"}, data=b"1").status_code == 201
    assert http("PUT", "/bad/once", headers={"If-None-Match": "*"}, data=b"2").status_code == 412
    assert http("PUT", "/bad/once", headers={"If-None-Match": "abc"}, data=b"3").status_code == 400
    assert http("GET", "/bad/once").content == b"1"
    assert http("DELETE", "/bad/once").status_code == 204


def test_container_names(http: Http) -> None:
    assert http("PUT", "/" + "c" * 257).status_code == 400
    assert http("PUT", "/" + "c" * 256).status_code == 201
    names = http("GET", "").text.split()
    assert "c" * 257 not in names and "c" * 256 in names
    # A slash makes the second part an object name (Swift splits the path): no container "a/b" appears.
    assert http("PUT", "/a%2Fb").status_code == 404
    assert "a/b" not in http("GET", "").text.split()


def test_container_metadata_limits(http: Http) -> None:
    assert http("POST", "/bad", headers={f"X-Container-Meta-K{i}": "v" for i in range(91)}).status_code == 400
    assert http("PUT", "/toomuch", headers={"X-Container-Meta-" + "k" * 129: "v"}).status_code == 400
    assert http("HEAD", "/toomuch").status_code == 404
    assert not [k for k in http("HEAD", "/bad").headers if k.lower().startswith("x-container-meta-k")]


def test_missing_length_and_account_management(http: Http) -> None:
    url = urlsplit(http.url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        # Neither Content-Length nor chunked: every client library adds one, so the request is written by hand.
        sock.sendall(f"PUT {url.path}/bad/nolen HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {http.token}\r\n"
                     "Connection: close\r\n\r\n".encode())
        assert sock.recv(100).split()[1] == b"411"
    assert http("PUT", "").status_code == 405
    assert http("DELETE", "").status_code == 405
    assert http("GET", "/bad?limit=10001").status_code == 412
    assert http("GET", "/bad?limit=x").status_code == 412


def test_container_quotas(http: Http) -> None:
    assert http("PUT", "/quota", headers={"X-Container-Meta-Quota-Count": "1",
                                          "X-Container-Meta-Quota-Bytes": "10"}).status_code == 201
    assert http("PUT", "/quota/big", data=b"x" * 11).status_code == 413
    assert http("PUT", "/quota/one", data=b"x").status_code == 201
    assert http("PUT", "/quota/two", data=b"x").status_code == 413
    assert http("GET", "/quota").text.split() == ["one"]
    assert http("POST", "/quota", headers={"X-Container-Meta-Quota-Bytes": "lots"}).status_code == 400
