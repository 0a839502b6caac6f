"""Temporary URLs: the ``swift tempurl`` command line, every signature form, prefixes, ISO 8601 expiry,
filename/inline, and the refusals (wrong signature, past expiry, another object, a method not signed, another
account's key) that store or show nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import subprocess
import sys
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import swiftclient

from tests.livecloud import LiveCloud
from tests.object.conftest import Http, swift_conn, swift_env
from tinystack.object.middleware import tempurl

pytestmark = [pytest.mark.api, pytest.mark.e2e]

KEY = "s3cret-key"


@pytest.fixture(scope="module")
def setup(project: tuple[Any, Http, str], live: LiveCloud) -> tuple[swiftclient.Connection, str, str]:
    _, _, cloud = project
    conn = swift_conn(live, cloud)
    conn.post_account({"X-Account-Meta-Temp-URL-Key": KEY})
    conn.put_container("tu")
    conn.put_object("tu", "dir/file.txt", b"hello tempurl", headers={"X-Object-Meta-Secret": "x"})
    split = urlsplit(conn.url)
    return conn, f"{split.scheme}://{split.netloc}", split.path


def _sign(method: str, expires: int | str, path: str, key: str = KEY, alg: str = "sha256") -> str:
    return hmac.new(key.encode(), f"{method}\n{expires}\n{path}".encode(), getattr(hashlib, alg)).hexdigest()


def test_swift_tempurl_cli(setup: tuple[swiftclient.Connection, str, str], project: tuple[Any, Http, str],
                           live: LiveCloud) -> None:
    _, base, account_path = setup
    out = subprocess.run([sys.executable, "-m", "swiftclient.shell", "tempurl", "GET", "600",
                          f"{account_path}/tu/dir/file.txt", KEY], check=True, capture_output=True, text=True,
                         env=swift_env(live, project[2]), timeout=60).stdout.strip()
    answer = requests.get(base + out, timeout=30)
    assert answer.status_code == 200 and answer.content == b"hello tempurl"
    assert answer.headers["Content-Disposition"] == 'attachment; filename="file.txt"'
    assert "X-Object-Meta-Secret" not in answer.headers


def test_signature_forms_and_options(setup: tuple[swiftclient.Connection, str, str]) -> None:
    _, base, account_path = setup
    path = f"{account_path}/tu/dir/file.txt"
    exp = int(time.time()) + 300
    for alg in ("sha1", "sha256", "sha512"):
        sig = _sign("GET", exp, path, alg=alg)
        assert requests.get(f"{base}{path}?temp_url_sig={sig}&temp_url_expires={exp}", timeout=30).ok
    raw = hmac.new(KEY.encode(), f"GET\n{exp}\n{path}".encode(), hashlib.sha512).digest()
    b64 = "sha512:" + base64.urlsafe_b64encode(raw).decode().rstrip("=")
    answer = requests.get(f"{base}{path}", params={"temp_url_sig": b64, "temp_url_expires": exp,
                                                   "inline": "", "filename": "x.txt"}, timeout=30)
    assert answer.ok and answer.headers["Content-Disposition"] == 'inline; filename="x.txt"'
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(exp))
    sig = _sign("HEAD", iso, path)
    assert requests.head(f"{base}{path}?temp_url_sig={sig}&temp_url_expires={iso}", timeout=30).ok
    prefix_sig = _sign("GET", exp, f"prefix:{account_path}/tu/dir/")
    answer = requests.get(f"{base}{path}", params={"temp_url_sig": prefix_sig, "temp_url_expires": exp,
                                                   "temp_url_prefix": "dir/"}, timeout=30)
    assert answer.content == b"hello tempurl"


def test_put_then_refusals(setup: tuple[swiftclient.Connection, str, str]) -> None:
    conn, base, account_path = setup
    path = f"{account_path}/tu/upload.bin"
    exp = int(time.time()) + 300
    sig = _sign("PUT", exp, path)
    assert requests.put(f"{base}{path}?temp_url_sig={sig}&temp_url_expires={exp}", data=b"up",
                        timeout=30).status_code == 201
    assert conn.get_object("tu", "upload.bin")[1] == b"up"
    past = int(time.time()) - 10
    refused = [
        ("PUT", f"{account_path}/tu/upload.bin", _sign("PUT", exp, path, key="wrong"), exp),  # wrong key
        ("PUT", f"{account_path}/tu/upload.bin", _sign("PUT", past, path), past),  # expired
        ("PUT", f"{account_path}/tu/other.bin", sig, exp),  # another object
        ("DELETE", f"{account_path}/tu/upload.bin", sig, exp),  # signed for PUT only
        ("GET", f"{account_path}/tu/upload.bin", "zz" * 20, exp),  # not hex
        ("GET", f"{account_path}/tu/upload.bin", _sign("GET", exp, path), "soon"),  # bad expiry
    ]
    for method, target, bad_sig, when in refused:
        answer = requests.request(method, f"{base}{target}?temp_url_sig={bad_sig}&temp_url_expires={when}",
                                  data=b"evil" if method == "PUT" else None, timeout=30)
        assert answer.status_code == 401, (method, target)
    assert conn.get_object("tu", "upload.bin")[1] == b"up"
    # A manifest would open the rest of the account to the URL's holder.
    manifest = requests.put(f"{base}{path}?temp_url_sig={sig}&temp_url_expires={exp}", data=b"",
                            headers={"X-Object-Manifest": "tu/dir/"}, timeout=30)
    slo = requests.put(f"{base}{path}?temp_url_sig={sig}&temp_url_expires={exp}&multipart-manifest=put",
                       data=b'[{"path": "/tu/dir/file.txt"}]', timeout=30)
    assert manifest.status_code == slo.status_code == 400 and conn.get_object("tu", "upload.bin")[1] == b"up"
    with pytest.raises(swiftclient.ClientException):
        conn.head_object("tu", "other.bin")
    prefix_sig = _sign("GET", exp, f"prefix:{account_path}/tu/dir/")
    answer = requests.get(f"{base}{path}", params={"temp_url_sig": prefix_sig, "temp_url_expires": exp,
                                                   "temp_url_prefix": "dir/"}, timeout=30)
    assert answer.status_code == 401


def test_container_key_and_other_account(setup: tuple[swiftclient.Connection, str, str], live: LiveCloud) -> None:
    conn, base, account_path = setup
    conn.put_container("tu-c", headers={"X-Container-Meta-Temp-URL-Key-2": "ckey"})
    conn.put_object("tu-c", "o", b"c-data")
    exp = int(time.time()) + 300
    path = f"{account_path}/tu-c/o"
    assert requests.get(f"{base}{path}?temp_url_sig={_sign('GET', exp, path, key='ckey')}"
                        f"&temp_url_expires={exp}", timeout=30).content == b"c-data"
    # A key of another account signs nothing here.
    other = live.project_conn("obj-tu-other")
    other_url = other.object_store.get_endpoint().rstrip("/")
    requests.post(other_url, headers={"X-Auth-Token": other.auth_token,
                                      "X-Account-Meta-Temp-URL-Key": "other-key"}, timeout=30)
    answer = requests.get(f"{base}{path}?temp_url_sig={_sign('GET', exp, path, key='other-key')}"
                          f"&temp_url_expires={exp}", timeout=30)
    assert answer.status_code == 401


def test_parsing_rules() -> None:
    assert tempurl.parse_expires("1970-01-01T00:01:40Z") == 100
    assert tempurl.parse_sig("ab" * 32)[0] == "sha256"
    with pytest.raises(Exception, match="Temp URL invalid"):
        tempurl.parse_sig("md5:AAAA")
