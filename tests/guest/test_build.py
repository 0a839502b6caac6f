"""The image builder: a reproducible initramfs, module ordering, the guest's JSON reader, and a full build
that is identical when repeated, small, and cached."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.guest import harness
from tinystack.guest import build, cpio

pytestmark = pytest.mark.guest

JSON_AWK = build.INIT_DIR / "json.awk"


def _tree(root: Path) -> None:
    (root / "etc").mkdir(parents=True)
    (root / "etc/b").write_text("bee")
    (root / "a").write_text("a")
    (root / "link").symlink_to("etc/b")


def test_cpio_is_reproducible_and_sorted(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    _tree(one)
    _tree(two)
    os.utime(two / "a", (1, 1))  # host times never reach the archive
    nodes = (cpio.Node("dev/console", 0o20600, 5, 1),)
    a, b = cpio.archive(one, 1704067200, nodes), cpio.archive(two, 1704067200, nodes)
    assert a == b
    assert cpio.gzipped(a) == cpio.gzipped(b)
    assert gzip.decompress(cpio.gzipped(a)) == a
    if shutil.which("cpio"):
        listing = subprocess.run(["cpio", "-t", "--quiet"], input=a, capture_output=True, check=True).stdout.split()
        assert listing == [b"a", b"dev/console", b"etc", b"etc/b", b"link"]


@pytest.mark.skipif(not shutil.which("busybox"), reason="needs busybox")
def test_guest_json_reader() -> None:
    doc = {"uuid": "u-1", "hostname": "vm1.novalocal", "public_keys": {"k1": "ssh-ed25519 AAAA a@b\n"},
           "meta": {"q": "say \"hi\"\\", "u": "\u00e9A"}, "n": 3, "list": [True, None, {"x": "y"}]}
    out = subprocess.run(["busybox", "awk", "-f", str(JSON_AWK)], input=json.dumps(doc), capture_output=True,
                         text=True, check=True).stdout
    rows = dict(line.split("\t", 1) for line in out.splitlines())
    assert rows == {"uuid": "u-1", "hostname": "vm1.novalocal", "public_keys.k1": "ssh-ed25519 AAAA a@b\\n",
                    "meta.q": 'say "hi"\\', "meta.u": "?A", "n": "3", "list.0": "true", "list.1": "null",
                    "list.2.x": "y"}


@pytest.mark.slow
@pytest.mark.skipif(not harness.tools_present(), reason="needs apt-get and the image tools")
def test_build_is_reproducible_small_and_cached(tmp_path: Path) -> None:
    first = asyncio.run(build.build(harness.SHARED_CACHE))
    again = asyncio.run(build.build(harness.SHARED_CACHE))
    assert again.cached and again.directory == first.directory
    # The forced rebuild goes to a cache of its own: rebuilding in the shared one replaces the image directory
    # that clouds of other tests (other xdist workers too) register and boot from. It reads the shared
    # cache's packages, which the first build has already fetched.
    (tmp_path / "debs").symlink_to(harness.SHARED_CACHE / "debs")
    rebuilt = asyncio.run(build.build(tmp_path, force=True))
    assert not rebuilt.cached
    assert rebuilt.manifest["files"] == first.manifest["files"]  # same bytes, byte for byte
    assert rebuilt.total_size < 40 * 1024 * 1024
    assert "virtio_net" in rebuilt.manifest["modules"] and "isofs" in rebuilt.manifest["modules"]
    assert build.cached(harness.SHARED_CACHE) is not None
