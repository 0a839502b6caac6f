"""FormPOST: an HTML form upload without a token, signed with the account's or container's Temp-URL-Key:
several files under a prefix, the redirect form of the answer, and Swift's refusals (wrong signature, past
expiry, too many files, a file over max_file_size, a malformed form) that store nothing. Set up and checked
through python-swiftclient; the form itself is raw HTTP, as a browser sends it."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import swiftclient

from tests.livecloud import LiveCloud
from tests.object.conftest import Http, swift_conn
from tinystack.object.middleware import formpost

pytestmark = [pytest.mark.api, pytest.mark.e2e]

KEY = "form-key"


@pytest.fixture(scope="module")
def setup(project: tuple[Any, Http, str], live: LiveCloud) -> tuple[swiftclient.Connection, str, str]:
    conn = swift_conn(live, project[2])
    conn.post_account({"X-Account-Meta-Temp-URL-Key": KEY})
    conn.put_container("fp")
    split = urlsplit(conn.url)
    return conn, f"{split.scheme}://{split.netloc}", split.path


def _form(path: str, key: str = KEY, redirect: str = "", max_size: int = 1024, max_count: int = 5,
          expires: int | None = None, alg: str = "sha256") -> dict[str, str]:
    expires = expires if expires is not None else int(time.time()) + 300
    body = f"{path}\n{redirect}\n{max_size}\n{max_count}\n{expires}"
    sig = hmac.new(key.encode(), body.encode(), getattr(hashlib, alg)).hexdigest()
    return {"redirect": redirect, "max_file_size": str(max_size), "max_file_count": str(max_count),
            "expires": str(expires), "signature": sig}


def _names(conn: swiftclient.Connection, prefix: str) -> list[str]:
    return [o["name"] for o in conn.get_container("fp", prefix=prefix)[1]]


def test_upload_files_under_prefix(setup: tuple[swiftclient.Connection, str, str]) -> None:
    conn, base, account = setup
    path = f"{account}/fp/up/"
    files = [("file1", ("a.txt", b"first file", "text/plain")), ("file2", ("b.bin", b"\x00\x01second", None))]
    answer = requests.post(base + path, data=_form(path), files=files, timeout=30)
    assert answer.status_code == 201 and answer.text == "201 Created"
    assert conn.get_object("fp", "up/a.txt")[1] == b"first file"
    headers, body = conn.get_object("fp", "up/b.bin")
    assert body == b"\x00\x01second" and headers["content-type"] == "application/octet-stream"
    # sha1 signatures and the redirect form: 303 to the redirect with status and message.
    path = f"{account}/fp/re"
    form = _form(path, redirect="https://example.com/done?x=1", alg="sha1")
    answer = requests.post(base + path, data=form, files=[("f", ("c.txt", b"c", "text/plain"))], timeout=30,
                           allow_redirects=False)
    assert answer.status_code == 303
    location = urlsplit(answer.headers["Location"])
    assert location.netloc == "example.com" and parse_qs(location.query) == {"x": ["1"], "status": ["201"]}
    assert conn.get_object("fp", "rec.txt")[1] == b"c"  # "re" is a name prefix, not a directory


def test_container_key_and_delete_after(setup: tuple[swiftclient.Connection, str, str]) -> None:
    conn, base, account = setup
    conn.put_container("fp2", headers={"X-Container-Meta-Temp-URL-Key-2": "ckey"})
    path = f"{account}/fp2"
    form = {**_form(path, key="ckey"), "x_delete_after": "3600"}
    answer = requests.post(base + path, data=form, files=[("f", ("d.txt", b"d", "text/plain"))], timeout=30)
    assert answer.status_code == 201
    assert "x-delete-at" in conn.head_object("fp2", "d.txt")
    # The container's key signs nothing for another container.
    other = f"{account}/fp"
    answer = requests.post(base + other, data=_form(other, key="ckey"),
                           files=[("f", ("ckey.txt", b"x", "text/plain"))], timeout=30)
    assert answer.status_code == 401 and _names(conn, "ckey") == []


def test_refusals_store_nothing(setup: tuple[swiftclient.Connection, str, str]) -> None:
    conn, base, account = setup
    path = f"{account}/fp/bad/"
    one = [("f", ("x.txt", b"x", "text/plain"))]
    cases = [
        (_form(path, key="wrong"), one, 401, "FormPost: Invalid Signature"),
        (_form(path, expires=int(time.time()) - 5), one, 401, "FormPost: Form Expired"),
        ({**_form(path), "signature": "not-hex"}, one, 401, "FormPost: Invalid Signature"),
        ({**_form(path), "max_file_size": "lots"}, one, 400, "FormPost: max_file_size not an integer"),
        ({**_form(path), "expires": "soon"}, one, 400, "FormPost: expired not an integer"),
        (_form(path, max_size=4), [("f", ("big.txt", b"too big", "text/plain"))], 400,
         "FormPost: max_file_size exceeded"),
        (_form(path), [], 400, "400 Bad Request\r\nFormPost: No Files To Process"),
    ]
    for form, files, status, text in cases:
        answer = requests.post(base + path, data=form, files=files or {"": ("", b"")}, timeout=30)
        assert answer.status_code == status and text in answer.text, (form, answer.text)
    # Too many files: the ones within the count are stored, the rest refused.
    answer = requests.post(base + path, data=_form(path, max_count=1), timeout=30,
                           files=[("f1", ("one.txt", b"1", "text/plain")), ("f2", ("two.txt", b"2", "text/plain"))])
    assert answer.status_code == 400 and "Max File Count Exceeded" in answer.text
    assert _names(conn, "bad/") == ["bad/one.txt"]
    # A form with a bad boundary.
    answer = requests.post(base + path, data=b"garbage", headers={"Content-Type": "multipart/form-data"}, timeout=30)
    assert answer.status_code == 400 and "FormPost: no boundary" in answer.text
    answer = requests.post(base + path, data=b"garbage\r\n", timeout=30,
                           headers={"Content-Type": "multipart/form-data; boundary=XYZ"})
    assert answer.status_code == 400 and "FormPost: invalid starting boundary" in answer.text
    assert _names(conn, "bad/") == ["bad/one.txt"]


def test_rules() -> None:
    assert formpost.hmac_body("/v1/a/c", {"expires": "9"}) == "/v1/a/c\n\n0\n0\n9"
    with pytest.raises(formpost.FormUnauthorized, match="form expired"):
        formpost.check_signature("/v1/a/c", {"expires": "1"}, ["k"])
    with pytest.raises(formpost.FormUnauthorized, match="invalid signature"):
        formpost.check_signature("/v1/a/c", {"expires": str(int(time.time()) + 60)}, [])
