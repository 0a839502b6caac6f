"""Unix socket paths that fit in sun_path, whatever directory they were meant for."""

from __future__ import annotations

import socket
from pathlib import Path

from tinystack.core import sockpath


def test_a_short_path_stays_where_it_was_meant() -> None:
    path = Path("/var/lib/tinystack/metadata.sock")
    assert sockpath.fitting(path) == path


def test_a_long_path_moves_to_a_short_directory_named_by_its_own(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / "popen-gw1" / "test_split_cluster_real_guests0" / "node1" / "network"
    path = deep / "metadata-relay.sock"
    assert len(str(path)) > 107
    moved = sockpath.fitting(path)
    assert moved.name == path.name and len(str(moved)) <= sockpath.SUN_PATH_MAX
    assert moved.parent.parent == sockpath.short_root()
    assert sockpath.fitting(path) == moved  # the same on every start
    assert sockpath.fitting(deep.parent / "other" / path.name) != moved  # another directory, another place
    moved.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(str(moved))  # what the long path could not
    finally:
        moved.unlink(missing_ok=True)
        moved.parent.rmdir()
