"""The storage servers' rules without a cloud: listings (prefix, delimiter, markers, reverse), ranges and
conditional requests, name and metadata limits, and the object files' layout and last-write-wins."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from tinystack.core import errors
from tinystack.object import constraints, httprange
from tinystack.object.servers import diskfile
from tinystack.object.servers.containerdb import ContainerBroker
from tinystack.object.servers.listing import ListParams

pytestmark = pytest.mark.unit

NAMES = ["a", "b/1", "b/2", "b/c/3", "c", "d/1", "e"]


@pytest.fixture
def broker(tmp_path: Path) -> ContainerBroker:
    b = ContainerBroker(tmp_path / "c.db")
    b.initialize("AUTH_x", "c", "0000000001.00000")
    for i, name in enumerate(NAMES):
        b.put_object(name, f"00000000{10 + i}.00000", i, "text/plain", "e" * 32, deleted=False)
    return b


def names(rows: list[dict[str, object]]) -> list[object]:
    return [r.get("subdir") or r["name"] for r in rows]


def test_listing_walks_with_markers_prefix_and_reverse(broker: ContainerBroker) -> None:
    assert names(broker.list_objects(ListParams(100))) == NAMES
    assert names(broker.list_objects(ListParams(2, marker="b/1"))) == ["b/2", "b/c/3"]
    assert names(broker.list_objects(ListParams(100, end_marker="b/2"))) == ["a", "b/1"]
    assert names(broker.list_objects(ListParams(100, prefix="b/"))) == ["b/1", "b/2", "b/c/3"]
    assert names(broker.list_objects(ListParams(3, reverse=True))) == ["e", "d/1", "c"]
    assert names(broker.list_objects(ListParams(100, marker="c", reverse=True))) == ["b/c/3", "b/2", "b/1", "a"]


def test_delimiter_rolls_up_directories(broker: ContainerBroker) -> None:
    assert names(broker.list_objects(ListParams(100, delimiter="/"))) == ["a", "b/", "c", "d/", "e"]
    assert names(broker.list_objects(ListParams(100, prefix="b/", delimiter="/"))) == ["b/1", "b/2", "b/c/"]
    assert names(broker.list_objects(ListParams(100, delimiter="/", reverse=True))) == ["e", "d/", "c", "b/", "a"]
    assert names(broker.list_objects(ListParams(2, delimiter="/", marker="b/"))) == ["c", "d/"]


def test_rows_keep_the_newest_timestamp_and_counts(broker: ContainerBroker) -> None:
    assert broker.put_object("a", "0000000005.00000", 99, "x", "f" * 32, deleted=False) is False
    assert broker.put_object("a", "0000000050.00000", 0, "", "", deleted=True) is True
    s = broker.stat()
    assert s["object_count"] == len(NAMES) - 1
    assert s["bytes_used"] == sum(range(len(NAMES))) - 0
    assert "a" not in names(broker.list_objects(ListParams(100)))
    assert broker.put_object("b/1", "0000000060.00000", 100, "x", "f" * 32, deleted=False)
    assert broker.stat()["bytes_used"] == sum(range(len(NAMES))) - 1 + 100


def test_ranges() -> None:
    assert httprange.parse_ranges("bytes=2-4", 10) == [(2, 5)]
    assert httprange.parse_ranges("bytes=-3", 10) == [(7, 10)]
    assert httprange.parse_ranges("bytes=8-", 10) == [(8, 10)]
    assert httprange.parse_ranges("bytes=0-1,5-6", 10) == [(0, 2), (5, 7)]
    assert httprange.parse_ranges("bytes=5-2", 10) is None  # malformed: the whole object
    assert httprange.parse_ranges("items=0-1", 10) is None
    with pytest.raises(errors.TinyError) as info:
        httprange.parse_ranges("bytes=20-30", 10)
    assert info.value.status == 416


def test_conditions() -> None:
    ts = "0001700000000.00000"
    assert httprange.check_conditions({"If-Match": '"abc"'}, "abc", ts, "GET") is None
    assert httprange.check_conditions({"If-Match": "nope"}, "abc", ts, "GET") == 412
    assert httprange.check_conditions({"If-None-Match": "abc"}, "abc", ts, "GET") == 304
    assert httprange.check_conditions({"If-None-Match": "*"}, "abc", ts, "PUT") == 412
    assert httprange.check_conditions({"If-Modified-Since": "Sat, 01 Jan 2050 00:00:00 GMT"}, "abc", ts, "GET") == 304
    assert httprange.check_conditions({"If-Unmodified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"}, "abc", ts, "GET") == 412


@pytest.mark.parametrize(("headers", "status"), [
    ({f"X-Object-Meta-K{i}": "v" for i in range(constraints.MAX_META_COUNT + 1)}, 400),
    ({"X-Object-Meta-" + "k" * 129: "v"}, 400),
    ({"X-Object-Meta-K": "v" * 257}, 400),
])
def test_metadata_limits(headers: dict[str, str], status: int) -> None:
    with pytest.raises(errors.TinyError) as info:
        constraints.check_metadata(headers, "object")
    assert info.value.status == status


def test_names_and_expiry() -> None:
    for bad in ("a/b", "x" * 257, ""):
        with pytest.raises(errors.TinyError):
            constraints.check_container_name(bad)
    with pytest.raises(errors.TinyError):
        constraints.check_object_name("o" * 1025)
    constraints.check_object_name("o" * 1024)
    for value in ("12", "abc"):
        with pytest.raises(errors.TinyError):
            constraints.check_delete_headers({"X-Delete-At": value}, 1.0)
    assert constraints.check_delete_headers({"X-Delete-After": "10"}, 100.0) == 110


def _write(root: Path, directory: Path, ts: str, body: bytes) -> None:
    w = diskfile.Writer(root, directory, fsync=True)
    w.write(body)
    w.commit(f"{ts}.data", {"etag": w.md5.hexdigest(), "content-length": w.size, "x-timestamp": ts})


def test_object_files_newest_wins_and_tombstones(tmp_path: Path) -> None:
    directory = diskfile.object_dir(tmp_path, 7, "0" * 29 + "abc")
    assert directory.parts[-3:] == ("7", "abc", "0" * 29 + "abc")
    _write(tmp_path, directory, "0000000002.00000", b"two")
    _write(tmp_path, directory, "0000000003.00000", b"three")
    state = diskfile.scan(directory)
    assert state.data is not None and state.data.read_bytes() == b"three"
    assert sorted(os.listdir(directory)) == ["0000000003.00000.data"]  # the older file is gone
    assert diskfile.read_meta(state.data)["content-length"] == 5
    diskfile.write_empty(tmp_path, directory, "0000000004.00000.ts", {"x-timestamp": "0000000004.00000"}, True)
    state = diskfile.scan(directory)
    assert state.data is None and state.tombstone is not None and state.timestamp == "0000000004.00000"
    assert os.listdir(tmp_path / "tmp") == []


def test_metadata_falls_back_to_a_sidecar_without_xattrs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_xattr(*_args: object) -> None:
        raise OSError(errno.ENOTSUP, "not supported")

    monkeypatch.setattr(os, "setxattr", no_xattr)
    monkeypatch.setattr(os, "getxattr", no_xattr)
    directory = diskfile.object_dir(tmp_path, 1, "f" * 32)
    _write(tmp_path, directory, "0000000002.00000", b"data")
    state = diskfile.scan(directory)
    assert state.data is not None
    assert (directory / "0000000002.00000.data.json").exists()
    assert diskfile.read_meta(state.data)["etag"] == "8d777f385d3dfec8815d20f7496026dc"


def _write_seen(root: Path, directory: Path, ts: str, body: bytes, sidecar: bool = False) -> None:
    """A write as the object server makes it: the hash dir scanned first, the scan handed to the commit."""
    before = diskfile.scan(directory)
    w = diskfile.Writer(root, directory, fsync=False)
    w.write(body)
    w.commit(f"{ts}.data", {"etag": w.md5.hexdigest(), "content-length": w.size, "x-timestamp": ts}, before)


def test_a_write_that_scanned_first_removes_what_it_saw_and_no_more(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    directory = diskfile.object_dir(tmp_path, 3, "a" * 32)
    _write_seen(tmp_path, directory, "0000000002.00000", b"two")  # makes the dir
    listed: list[str] = []
    real_listdir = os.listdir
    monkeypatch.setattr(os, "listdir", lambda p: listed.append(str(p)) or real_listdir(p))
    _write_seen(tmp_path, directory, "0000000003.00000", b"three")
    assert listed == [str(directory)]  # its own scan only: the older file is known from it
    assert sorted(real_listdir(directory)) == ["0000000003.00000.data"]
    # A .meta newer than the write stays (it applies to whichever .data is newest), as with a rescan.
    diskfile.write_empty(tmp_path, directory, "0000000009.00000.meta", {"x-timestamp": "0000000009.00000"}, False)
    _write_seen(tmp_path, directory, "0000000004.00000", b"four")
    assert sorted(real_listdir(directory)) == ["0000000004.00000.data", "0000000009.00000.meta"]
    # A leftover an older racing write renamed in after the newer one looked is removed by the hash pass.
    stale = diskfile.Writer(tmp_path, directory, fsync=False)
    stale.commit("0000000001.00000.data", {"x-timestamp": "0000000001.00000"}, diskfile.State(found=True))
    assert "0000000001.00000.data" in real_listdir(directory)
    from tinystack.object.servers.hashes import suffix_hash

    suffix_hash(directory.parent)
    assert sorted(real_listdir(directory)) == ["0000000004.00000.data", "0000000009.00000.meta"]


def test_a_write_whose_hash_dir_went_away_after_its_scan_makes_it_again(tmp_path: Path) -> None:
    directory = diskfile.object_dir(tmp_path, 3, "b" * 32)
    _write(tmp_path, directory, "0000000002.00000", b"two")
    before = diskfile.scan(directory)
    for name in os.listdir(directory):  # reclaimed meanwhile: emptied and removed
        os.unlink(directory / name)
    os.rmdir(directory)
    w = diskfile.Writer(tmp_path, directory, fsync=True)
    w.write(b"three")
    w.commit("0000000003.00000.data", {"x-timestamp": "0000000003.00000"}, before)
    assert os.listdir(directory) == ["0000000003.00000.data"]


def test_sidecars_go_with_their_files_when_the_scan_is_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_xattr(*_args: object) -> None:
        raise OSError(errno.ENOTSUP, "not supported")

    monkeypatch.setattr(os, "setxattr", no_xattr)
    directory = diskfile.object_dir(tmp_path, 1, "c" * 32)
    _write_seen(tmp_path, directory, "0000000002.00000", b"two")
    _write_seen(tmp_path, directory, "0000000003.00000", b"three")
    assert sorted(os.listdir(directory)) == ["0000000003.00000.data", "0000000003.00000.data.json"]


def test_wal_is_folded_back_off_the_loop(tmp_path: Path) -> None:
    from tinystack.object.servers.db import BrokerCache

    cache = BrokerCache(ContainerBroker)
    b = cache.get(tmp_path / "c.db")
    assert isinstance(b, ContainerBroker)
    b.initialize("AUTH_x", "c", "0000000001.00000")
    for i in range(3000):
        b.put_object(f"o{i:05d}", "0000000002.00000", 1, "t", "e" * 32, deleted=False)
    wal = tmp_path / "c.db-wal"
    assert wal.stat().st_size > 1024 * 1024  # no automatic checkpoint on the writer's connection
    assert cache.checkpoint() == 1
    b.put_object("after", "0000000003.00000", 1, "t", "e" * 32, deleted=False)
    assert wal.stat().st_size <= 1024 * 1024  # the WAL starts over, cut back to its limit, once checkpointed
    assert b.stat()["object_count"] == 3001
    cache.close()
