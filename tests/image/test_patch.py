"""JSON patch parsing and application, both of Glance's dialects."""

from __future__ import annotations

from typing import Any

import pytest

from tinystack.core import errors
from tinystack.image import patch

V20 = "application/openstack-images-v2.0-json-patch"
V21 = "application/openstack-images-v2.1-json-patch"


def draft() -> patch.Draft:
    return patch.Draft({"name": "n", "tags": ["a"], "min_ram": 0, "visibility": "shared"}, {"os_distro": "cirros"})


def test_rfc6902_dialect() -> None:
    changes = patch.parse(V21, [{"op": "replace", "path": "/name", "value": "new"},
                                {"op": "add", "path": "/hw_disk_bus", "value": "virtio"},
                                {"op": "remove", "path": "/os_distro"}])
    out = patch.apply(draft(), changes)
    assert out.attrs["name"] == "new"
    assert out.properties == {"hw_disk_bus": "virtio"}


def test_draft4_dialect_and_add_conflict() -> None:
    changes = patch.parse(V20, [{"replace": "/name", "value": "x"}, {"add": "/kernel_id", "value": None}])
    assert [(c.op, c.name, c.draft4) for c in changes] == [("replace", "name", True), ("add", "kernel_id", True)]
    with pytest.raises(errors.Conflict):
        patch.apply(draft(), patch.parse(V20, [{"add": "/os_distro", "value": "x"}]))
    # RFC 6902 add of an existing member replaces it.
    assert patch.apply(draft(), patch.parse(V21, [{"op": "add", "path": "/os_distro", "value": "x"}])) \
        .properties["os_distro"] == "x"


def test_pointer_escapes() -> None:
    [change] = patch.parse(V21, [{"op": "add", "path": "/a~1b~0c", "value": "v"}])
    assert change.name == "a/b~c"


def test_tags_replace_deduplicates_and_original_untouched() -> None:
    before = draft()
    after = patch.apply(before, patch.parse(V21, [{"op": "replace", "path": "/tags", "value": ["x", "y", "x"]}]))
    assert after.attrs["tags"] == ["x", "y"] and before.attrs["tags"] == ["a"]


@pytest.mark.parametrize("body", [
    {"op": "replace"},
    [1],
    [{"op": "copy", "path": "/name", "value": 1}],
    [{"replace": "/name", "add": "/x", "value": 1}],
    [{"op": "add", "path": "name", "value": "x"}],
    [{"op": "add", "path": "/a//b", "value": "x"}],
    [{"op": "add", "path": "/a/", "value": "x"}],
    [{"op": "add", "path": "/a/b", "value": "x"}],
    [{"op": "add", "path": "/a~2", "value": "x"}],
    [{"op": "add", "path": "/", "value": "x"}],
    [{"op": "add", "path": "/x"}],
    [{"op": "add", "path": "/x", "value": 1}],
    [{"op": "replace", "path": "/min_disk", "value": -1}],
    [{"op": "replace", "path": "/protected", "value": "yes"}],
    [{"op": "replace", "path": "/kernel_id", "value": "not-a-uuid"}],
    [{"op": "replace", "path": "/name", "value": "x" * 256}],
])
def test_malformed_patches_are_400(body: Any) -> None:
    with pytest.raises(errors.BadRequest):
        patch.parse(V21, body)


@pytest.mark.parametrize("path", ["/status", "/size", "/checksum", "/created_at", "/self", "/locations", "/id",
                                  "/os_hash_value", "/os_hash_algo", "/virtual_size", "/direct_url"])
@pytest.mark.parametrize("op", ["add", "replace", "remove"])
def test_read_only_is_400(path: str, op: str) -> None:
    with pytest.raises(errors.BadRequest, match=f"Attribute '{path[1:]}' is read-only."):
        patch.parse(V21, [{"op": op, "path": path, "value": "x"}])


@pytest.mark.parametrize("path", ["/os_glance_x", "/os_glance_import_task", "/deleted", "/location"])
def test_reserved_is_403(path: str) -> None:
    # Tempest's test_update_image_reserved_property expects Forbidden for os_glance_*.
    with pytest.raises(errors.Forbidden, match=f"Attribute '{path[1:]}' is reserved."):
        patch.parse(V21, [{"op": "add", "path": path, "value": "x"}])


def test_wrong_media_type_is_415() -> None:
    with pytest.raises(errors.UnsupportedMediaType):
        patch.parse("application/json", [])


def test_apply_conflicts_and_forbidden_removes() -> None:
    with pytest.raises(errors.Conflict):
        patch.apply(draft(), patch.parse(V21, [{"op": "replace", "path": "/missing", "value": "x"}]))
    with pytest.raises(errors.Conflict):
        patch.apply(draft(), patch.parse(V21, [{"op": "remove", "path": "/missing"}]))
    with pytest.raises(errors.Forbidden):
        patch.apply(draft(), patch.parse(V21, [{"op": "remove", "path": "/name"}]))
