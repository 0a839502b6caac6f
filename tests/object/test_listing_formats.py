"""Listings written by SQLite (servers/listing.py) say what the proxy's Python rendering of the same rows says, in
every format, for every combination of limit, marker, end_marker, prefix, delimiter and reverse; their order holds
over thousands of rows; and through the proxy the body is the storage server's, passed on, with Swift's answers
(406, 204 for an empty plain listing) and a fallback for a storage node that sends its rows as stored."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import random
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request
from multidict import CIMultiDict

from tests.object.test_hot_paths import _settings
from tinystack.core.auth import RequestContext
from tinystack.object.common import normalize_timestamp
from tinystack.object.proxy import listing as proxy_listing
from tinystack.object.proxy.app import build
from tinystack.object.proxy.backend import Answer
from tinystack.object.servers.accountdb import AccountBroker
from tinystack.object.servers.containerdb import ContainerBroker
from tinystack.object.servers.listing import FORMAT_HEADER, ListParams, render
from tinystack.object.servers.node import StorageNode

# Names that need escaping in JSON or XML, non-ASCII ones, and directories to roll up.
NAMES = ["a", "a&b", "b/1", "b/2", "b/c/3", 'q"uote', "back\\slash", "c<d>", "d/1", "e", "tab\tname",
         "ünïcødé/x", "日本/語", "\U0001f600"]
FORMATS = ("json", "xml", "plain")


def _ts(n: int) -> str:
    return normalize_timestamp(1_700_000_000 + n * 0.37)


@pytest.fixture
def container(tmp_path: Path) -> ContainerBroker:
    b = ContainerBroker(tmp_path / "c.db")
    b.initialize("AUTH_x", "c&<\"name\">", _ts(0))
    b.put_objects([(n, _ts(i), i * 7, "text/plain; x=\"<&>\"" if i % 2 else "application/octet-stream",
                    f"{i:032x}", False) for i, n in enumerate(NAMES)])
    b.put_object("gone", _ts(99), 5, "x", "y", deleted=True)  # a tombstone is never listed
    return b


@pytest.fixture
def account(tmp_path: Path) -> AccountBroker:
    b = AccountBroker(tmp_path / "a.db")
    b.initialize("AUTH_x", _ts(0))
    for i, n in enumerate(NAMES):
        b.put_container(n, _ts(i), "0", i, i * 100)
    b.put_container("gone", _ts(1), _ts(2), 0, 0)
    return b


def _reference(kind: str, fmt: str, name: str, rows: list[dict[str, Any]]) -> tuple[int, bytes]:
    """What the proxy renders from the rows as stored (its rendering before the servers wrote the formats)."""
    resp = proxy_listing.render(make_mocked_request("GET", f"/?format={fmt}"), kind, name, rows, {})
    assert isinstance(resp.body, bytes) or resp.body is None
    return resp.status, bytes(resp.body or b"")


def _same(fmt: str, ours: bytes | None, status: int, theirs: bytes) -> None:
    if ours is None:
        assert status == 204
        return
    assert status == 200
    if fmt == "json":
        assert json.loads(ours) == json.loads(theirs)
    else:
        assert ours.decode() == theirs.decode()


PARAMS = [ListParams(limit, marker, end, prefix, delim, reverse)
          for limit, marker, end, prefix, delim, reverse in itertools.product(
              (0, 1, 3, 100), ("", "b/", "b/1", "c<d>"), ("", "d/1", "zz"), ("", "b/", "ü"), ("", "/"),
              (False, True))]


@pytest.mark.unit
@pytest.mark.parametrize("fmt", FORMATS)
def test_container_listing_matches_the_python_rendering(container: ContainerBroker, fmt: str) -> None:
    name = "c&<\"name\">"
    for p in PARAMS:
        rows = container.list_objects(p)
        status, theirs = _reference("container", fmt, name, rows)
        _same(fmt, render(container.conn, "container", fmt, name, p), status, theirs)
        # The backend's own form (what the middleware reads) is the rows as stored.
        assert json.loads(render(container.conn, "container", "", name, p) or b"") == rows


@pytest.mark.unit
@pytest.mark.parametrize("fmt", FORMATS)
def test_account_listing_matches_the_python_rendering(account: AccountBroker, fmt: str) -> None:
    for p in PARAMS:
        rows = account.list_containers(p)
        status, theirs = _reference("account", fmt, "AUTH_x", rows)
        _same(fmt, render(account.conn, "account", fmt, "AUTH_x", p), status, theirs)
        assert json.loads(render(account.conn, "account", "", "AUTH_x", p) or b"") == rows


@pytest.mark.unit
def test_timestamps_outside_the_normal_form_are_still_dated(tmp_path: Path) -> None:
    b = ContainerBroker(tmp_path / "c.db")
    b.initialize("AUTH_x", "c", _ts(0))
    # Rows as another replica might have sent them (merge_rows does not re-normalize).
    b.merge_rows([{"name": n, "created_at": ts, "size": 1, "content_type": "x", "etag": "e", "deleted": 0}
                  for n, ts in (("a", "1700000000.5"), ("b", "1700000000"), ("c", "0001700000000.25000"))])
    listed = json.loads(render(b.conn, "container", "json", "c", ListParams(10)) or b"")
    assert [r["last_modified"] for r in listed] == [proxy_listing.iso(t) for t in ("1700000000.5", "1700000000",
                                                                                 "0001700000000.25000")]


@pytest.mark.unit
def test_thousands_of_rows_come_in_order(tmp_path: Path) -> None:
    b = ContainerBroker(tmp_path / "c.db")
    b.initialize("AUTH_x", "c", _ts(0))
    names = [f"o{i:05d}" for i in range(3000)]
    shuffled = names[:]
    random.Random(7).shuffle(shuffled)  # row ids out of name order
    b.put_objects([(n, _ts(i), i, "x", "e", False) for i, n in enumerate(shuffled)])
    for p, expected in ((ListParams(3000), names), (ListParams(3000, reverse=True), names[::-1]),
                        (ListParams(1000, marker="o00500"), names[501:1501]),
                        (ListParams(3000, end_marker="o02000", reverse=True, marker="o02500"),
                         names[2001:2500][::-1])):
        assert [r["name"] for r in json.loads(render(b.conn, "container", "json", "c", p) or b"")] == expected
        assert (render(b.conn, "container", "plain", "c", p) or b"").decode().splitlines() == expected


@pytest.mark.unit
def test_a_node_that_sends_rows_as_stored_is_rendered_by_the_proxy() -> None:
    rows = [{"name": "a", "created_at": _ts(1), "size": 3, "content_type": "x", "etag": "e"}, {"subdir": "b/"}]
    old = Answer(200, CIMultiDict({"Content-Type": "application/json"}), json.dumps(rows).encode())
    request = make_mocked_request("GET", "/?format=plain")
    resp = proxy_listing.respond(request, "container", "c", "plain", old, {})
    assert (resp.status, resp.body) == (200, b"a\nb/\n")
    new = Answer(200, CIMultiDict({FORMAT_HEADER: "plain"}), b"as the server wrote it\n")
    resp = proxy_listing.respond(request, "container", "c", "plain", new, {})
    assert (resp.status, resp.body, resp.content_type) == (200, b"as the server wrote it\n", "text/plain")


def _member(token: str) -> RequestContext:
    return RequestContext(user_id="u1", project_id="p1", roles=("member",), token=token)


@pytest.mark.api
def test_the_proxy_passes_each_format_on(tmp_path: Path) -> None:
    """Through the proxy and a storage node: the formats by query and by Accept, 406, an empty container's
    plain 204 and JSON ``[]``, the account's listing, and the listing headers."""
    async def run() -> None:
        s = _settings(tmp_path)
        node = StorageNode(s)
        await node.start()
        client = TestClient(TestServer(build(s, _member).build()))
        await client.start_server()
        h = {"X-Auth-Token": "t"}
        try:
            assert (await client.put("/v1/AUTH_p1/empty", headers=h)).status == 201
            empty = await client.get("/v1/AUTH_p1/empty", headers=h)
            assert empty.status == 204 and empty.headers["Content-Type"] == "text/plain; charset=utf-8"
            empty = await client.get("/v1/AUTH_p1/empty?format=json", headers=h)
            assert empty.status == 200 and await empty.json() == []
            assert (await client.put("/v1/AUTH_p1/c", headers=h)).status == 201
            for n in ("a", "d/1", "d/2", "ü&<x>"):
                assert (await client.put(f"/v1/AUTH_p1/c/{n}", data=b"xy", headers=h)).status == 201
            got = await client.get("/v1/AUTH_p1/c?format=json", headers=h)
            assert got.headers["Content-Type"] == "application/json; charset=utf-8"
            assert got.headers["X-Container-Object-Count"] == "4"
            assert "X-Backend-Listing-Format" not in got.headers
            rows = await got.json()
            assert [r["name"] for r in rows] == ["a", "d/1", "d/2", "ü&<x>"]
            assert set(rows[0]) == {"name", "hash", "bytes", "content_type", "last_modified"}
            assert rows[0]["bytes"] == 2 and rows[0]["hash"] == hashlib.md5(b"xy").hexdigest()
            plain = await client.get("/v1/AUTH_p1/c?delimiter=/", headers=h)
            assert await plain.text() == "a\nd/\nü&<x>\n"
            xml = await client.get("/v1/AUTH_p1/c?prefix=d/&reverse=true", headers={**h, "Accept": "text/xml"})
            assert xml.headers["Content-Type"] == "application/xml; charset=utf-8"
            assert (await xml.text()).startswith('<?xml version="1.0" encoding="UTF-8"?>\n<container name="c">'
                                                 "<object><name>d/2</name>")
            paged = await client.get("/v1/AUTH_p1/c?format=json&limit=1&marker=a", headers=h)
            assert [r["name"] for r in await paged.json()] == ["d/1"]
            assert (await client.get("/v1/AUTH_p1/c", headers={**h, "Accept": "image/png"})).status == 406
            assert (await client.get("/v1/AUTH_p1/c?limit=x", headers=h)).status == 412
            account = await client.get("/v1/AUTH_p1?format=json", headers=h)
            assert [r["name"] for r in await account.json()] == ["c", "empty"]
            assert await (await client.get("/v1/AUTH_p1", headers=h)).text() == "c\nempty\n"
            account_xml = ElementTree.fromstring(await (await client.get("/v1/AUTH_p1?format=xml&limit=1",
                                                                         headers=h)).read())
            assert account_xml.tag == "account" and account_xml.get("name") == "AUTH_p1"
            # (the counts reach the account a moment later: account_update_delay)
            assert [[f.tag for f in c] for c in account_xml] == [["name", "count", "bytes", "last_modified"]]
            assert account_xml[0].findtext("name") == "c"
        finally:
            await client.close()
            await node.stop()

    asyncio.run(run())
